"""SSE framing of the contract's MessageChunk events, and their models for the API docs."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel

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

DONE = b"data: [DONE]\n\n"
PING = b": ping\n\n"


def chunk_dict(event: MessageChunk) -> dict[str, Any]:
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


def frame(id_run: str, seq: int, event: MessageChunk) -> bytes:
    """`id: <run>:<seq>` then `data: <compact JSON>`; JSON escapes newlines, so one data line is enough."""
    if type(event) is TextChunk:
        data = b'{"event":"text-chunk","content":' + orjson.dumps(event.content) + b"}"
    else:
        data = orjson.dumps(chunk_dict(event))
    return b"id: " + id_run.encode() + b":" + str(seq).encode() + b"\ndata: " + data + b"\n\n"


class MessageChunkStarted(BaseModel):
    event: Literal["started"]
    id_team_agent: str
    id_team: str
    id_task: str
    created_at: str


class MessageChunkText(BaseModel):
    event: Literal["text-chunk"]
    content: str


class MessageChunkReasoning(BaseModel):
    event: Literal["reasoning-chunk"]
    content: str


class MessageChunkMedia(BaseModel):
    event: Literal["image-chunk", "video-chunk", "audio-chunk", "document-chunk"]
    name: str
    is_base64: bool
    is_url: bool
    mime_type: str
    content: str


class MessageChunkStep(BaseModel):
    event: Literal["step"]
    step: int
    content: str


class MessageChunkLoading(BaseModel):
    event: Literal["loading"]
    progress: float | None = None


class MessageChunkFinished(BaseModel):
    event: Literal["finished"]
    reason: str | None = None


class MessageChunkError(BaseModel):
    event: Literal["error"]
    error: str


class MessageChunkInterrupted(BaseModel):
    event: Literal["interrupted"]
    reason: str


CHUNK_MODELS: tuple[type[BaseModel], ...] = (
    MessageChunkStarted,
    MessageChunkText,
    MessageChunkReasoning,
    MessageChunkMedia,
    MessageChunkStep,
    MessageChunkLoading,
    MessageChunkFinished,
    MessageChunkError,
    MessageChunkInterrupted,
)
