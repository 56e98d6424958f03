"""Conversations: a task holds threads, each a request and (once answered) a response."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

AttachmentKind = Literal["image", "video", "audio", "document"]
KINDS: tuple[AttachmentKind, ...] = ("image", "video", "audio", "document")

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"
_ID = re.compile(ID_PATTERN)


def is_valid_id(value: str) -> bool:
    return _ID.fullmatch(value) is not None


class Driver(StrEnum):
    AUTO = "auto"
    AGENT = "agent"
    USER = "user"


class ThreadStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    FINISHED = "finished"
    ERROR = "error"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file in a request or a response; its bytes live in the BlobStore under `id_file`."""

    name: str
    type: AttachmentKind
    mime_type: str
    size: int | None = None
    id_file: str | None = None


@dataclass(frozen=True, slots=True)
class TaskKey:
    id_team_agent: str
    id_task: str


@dataclass(slots=True)
class MessageRequest:
    id_team_agent: str
    id_team: str
    id_task: str
    text: str
    created_at: datetime
    attachments: tuple[Attachment, ...] = ()

    @property
    def key(self) -> TaskKey:
        return TaskKey(self.id_team_agent, self.id_task)


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    output_tokens: int = 0
    thoughts_tokens: int = 0
    total_tokens: int = 0


@dataclass(slots=True)
class MessageResponse:
    id_team_agent: str
    id_team: str
    id_task: str
    created_at: datetime
    text: str = ""
    reasoning: str = ""
    attachments: tuple[Attachment, ...] = ()
    event: str | None = None
    is_finished: bool = False
    is_error: bool = False
    is_interrupted: bool = False
    error: str | None = None
    reason: str | None = None
    usage: Usage | None = None
    outline: tuple[Any, ...] = ()
    """The streamed events in order, compactly (see application/replay.py), so a stream can be replayed."""

    @property
    def status(self) -> ThreadStatus:
        if self.is_error:
            return ThreadStatus.ERROR
        if self.is_interrupted:
            return ThreadStatus.INTERRUPTED
        if self.is_finished:
            return ThreadStatus.FINISHED
        return ThreadStatus.RUNNING


@dataclass(slots=True)
class Thread:
    """One exchange. `model_turn` is opaque LLM state (e.g. thought signatures) kept for replay."""

    id_thread: str
    request: MessageRequest
    response: MessageResponse | None = None
    id_run: str | None = None
    model_turn: Any = None

    @property
    def status(self) -> ThreadStatus:
        return self.response.status if self.response else ThreadStatus.PENDING


@dataclass(slots=True)
class Task:
    id_team_agent: str
    id_task: str
    id_team: str
    title: str
    driver: Driver
    created_at: datetime
    updated_at: datetime
    threads: list[Thread] = field(default_factory=list)

    @property
    def key(self) -> TaskKey:
        return TaskKey(self.id_team_agent, self.id_task)


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """What is known of a stored file besides its bytes."""

    id_team_agent: str
    id_file: str
    name: str
    mime_type: str
    size: int
    kind: AttachmentKind
    id_task: str | None = None
