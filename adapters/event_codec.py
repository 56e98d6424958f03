"""MessageChunk events to and from JSON, for buffers shared between replicas (Redis streams)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, cast

import orjson

from domain.events import (
    Error,
    Finished,
    Interrupted,
    Loading,
    MediaChunk,
    MessageChunk,
    ReasoningChunk,
    Started,
    Step,
    TextChunk,
)
from domain.model import KINDS, AttachmentKind


def encode(event: MessageChunk) -> dict[str, Any]:
    """A JSON-ready dict tagged by `event`; datetimes as ISO 8601 with their offset."""
    if isinstance(event, TextChunk | ReasoningChunk):
        return {"event": event.event, "content": event.content}
    if isinstance(event, Started):
        return {
            "event": "started",
            "id_team_agent": event.id_team_agent,
            "id_team": event.id_team,
            "id_task": event.id_task,
            "created_at": event.created_at.isoformat(),
        }
    if isinstance(event, MediaChunk):
        return {
            "event": event.event,
            "name": event.name,
            "mime_type": event.mime_type,
            "content": event.content,
            "is_base64": event.is_base64,
            "is_url": event.is_url,
        }
    if isinstance(event, Step):
        return {"event": "step", "step": event.step, "content": event.content}
    if isinstance(event, Loading):
        return {"event": "loading", "progress": event.progress}
    if isinstance(event, Finished):
        return {"event": "finished", "reason": event.reason}
    if isinstance(event, Error):
        return {"event": "error", "error": event.error}
    if isinstance(event, Interrupted):
        return {"event": "interrupted", "reason": event.reason}
    raise TypeError(f"not a MessageChunk: {event!r}")


def _media(kind: AttachmentKind) -> Callable[[Mapping[str, Any]], MessageChunk]:
    def build(data: Mapping[str, Any]) -> MessageChunk:
        return MediaChunk(
            kind=kind,
            name=data["name"],
            mime_type=data["mime_type"],
            content=data["content"],
            is_base64=data["is_base64"],
            is_url=data["is_url"],
        )

    return build


_DECODERS: dict[str, Callable[[Mapping[str, Any]], MessageChunk]] = {
    "started": lambda d: Started(
        id_team_agent=d["id_team_agent"],
        id_team=d["id_team"],
        id_task=d["id_task"],
        created_at=datetime.fromisoformat(d["created_at"]),
    ),
    "text-chunk": lambda d: TextChunk(content=d["content"]),
    "reasoning-chunk": lambda d: ReasoningChunk(content=d["content"]),
    "step": lambda d: Step(step=d["step"], content=d["content"]),
    "loading": lambda d: Loading(progress=d.get("progress")),
    "finished": lambda d: Finished(reason=d.get("reason")),
    "error": lambda d: Error(error=d["error"]),
    "interrupted": lambda d: Interrupted(reason=d["reason"]),
    **{f"{kind}-chunk": _media(kind) for kind in KINDS},
}


def decode(data: Mapping[str, Any]) -> MessageChunk:
    """The event `encode` made. Raise ValueError on an unknown tag or a missing field."""
    try:
        return _DECODERS[cast(str, data["event"])](data)
    except KeyError as missing:
        raise ValueError(f"not an encoded MessageChunk: {missing} is missing or unknown") from None


def dumps(event: MessageChunk) -> bytes:
    return orjson.dumps(encode(event))


def loads(raw: bytes | str) -> MessageChunk:
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("not an encoded MessageChunk: expected a JSON object")
    return decode(data)
