"""The events of a streamed reply (the contract's MessageChunk family) and what an LLM yields."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.model import AttachmentKind, Usage


@dataclass(frozen=True, slots=True)
class Started:
    id_team_agent: str
    id_team: str
    id_task: str
    created_at: datetime
    event: str = "started"


@dataclass(frozen=True, slots=True)
class TextChunk:
    content: str
    event: str = "text-chunk"


@dataclass(frozen=True, slots=True)
class ReasoningChunk:
    content: str
    event: str = "reasoning-chunk"


@dataclass(frozen=True, slots=True)
class MediaChunk:
    """Generated media. `content` is base64 (is_base64) or a URL (is_url)."""

    kind: AttachmentKind
    name: str
    mime_type: str
    content: str
    is_base64: bool = True
    is_url: bool = False

    @property
    def event(self) -> str:
        return f"{self.kind}-chunk"


@dataclass(frozen=True, slots=True)
class Step:
    step: int
    content: str
    event: str = "step"


@dataclass(frozen=True, slots=True)
class Loading:
    progress: float | None = None
    event: str = "loading"


@dataclass(frozen=True, slots=True)
class Finished:
    reason: str | None = None
    event: str = "finished"


@dataclass(frozen=True, slots=True)
class Error:
    error: str
    event: str = "error"


@dataclass(frozen=True, slots=True)
class Interrupted:
    reason: str
    event: str = "interrupted"


MessageChunk = Started | TextChunk | ReasoningChunk | MediaChunk | Step | Loading | Finished | Error | Interrupted
Terminal = Finished | Error | Interrupted
TERMINAL_TYPES = (Finished, Error, Interrupted)


@dataclass(frozen=True, slots=True)
class UsageReport:
    """Token counts; the LLM may yield it any number of times, the last one wins."""

    usage: Usage


@dataclass(frozen=True, slots=True)
class ModelTurn:
    """Opaque state the LLM wants back with the history next time (e.g. raw parts with signatures)."""

    data: Any


LLMEvent = TextChunk | ReasoningChunk | MediaChunk | Step | Loading | Finished | UsageReport | ModelTurn
