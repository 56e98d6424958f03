"""The contract's JSON shape of each MessageChunk, both ways (the SSE frames and shared run buffers)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, cast

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


def to_dict(event: MessageChunk) -> dict[str, Any]:
    """The event as the contract writes it: optional fields only when set, UTC times with a `Z`."""
    if isinstance(event, TextChunk | ReasoningChunk):
        return {"event": event.event, "content": event.content}
    if isinstance(event, Started):
        return {
            "event": "started",
            "id_team_agent": event.id_team_agent,
            "id_team": event.id_team,
            "id_task": event.id_task,
            "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        }
    if isinstance(event, MediaChunk):
        return {
            "event": event.event,
            "name": event.name,
            "is_base64": event.is_base64,
            "is_url": event.is_url,
            "mime_type": event.mime_type,
            "content": event.content,
        }
    if isinstance(event, Step):
        return {"event": "step", "step": event.step, "content": event.content}
    if isinstance(event, Loading):
        return {"event": "loading"} if event.progress is None else {"event": "loading", "progress": event.progress}
    if isinstance(event, Finished):
        return {"event": "finished"} if event.reason is None else {"event": "finished", "reason": event.reason}
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


_FROM: dict[str, Callable[[Mapping[str, Any]], MessageChunk]] = {
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


def from_dict(data: Mapping[str, Any]) -> MessageChunk:
    """The event `to_dict` wrote. Raise ValueError on an unknown tag or a missing field."""
    try:
        return _FROM[cast(str, data["event"])](data)
    except KeyError as missing:
        raise ValueError(f"not a MessageChunk: {missing} is missing or unknown") from None
