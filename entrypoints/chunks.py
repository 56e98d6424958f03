"""SSE framing of the contract's MessageChunk events, and their models for the API docs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

DONE = b"data: [DONE]\n\n"
PING = b": ping\n\n"


FRAME = b"id: %b:%d\ndata: %b\n\n"
"""One event: `FRAME % (run id, seq, JSON)`."""


def frames(id_run: str, events: list[tuple[int, bytes]]) -> bytes:
    """Each event as `id: <run>:<seq>` then `data: <compact JSON>` (JSON escapes newlines: one data line)."""
    if len(events) == 1:
        return FRAME % (id_run.encode(), events[0][0], events[0][1])
    head = b"id: " + id_run.encode() + b":"
    parts: list[bytes] = []
    for seq, data in events:
        parts += (head, b"%d" % seq, b"\ndata: ", data, b"\n\n")
    return b"".join(parts)


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
