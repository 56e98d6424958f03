"""Domain objects to and from the rows and JSON columns of the task tables (every SQL TaskStore)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

import orjson

from domain.errors import TaskExists
from domain.model import (
    Attachment,
    AttachmentKind,
    Driver,
    MessageRequest,
    MessageResponse,
    Task,
    TaskKey,
    Thread,
    Usage,
)
from domain.ports import TaskStore

ADD_OR_GET_TRIES = 3
"""`add_task_or_get` where it takes two steps: each retry means the task was deleted between them."""


async def add_or_get_in_steps(store: TaskStore, task: Task) -> Task | None:
    """`add_task_or_get` as an insert, then (if the key is taken) a read."""
    for _ in range(ADD_OR_GET_TRIES):
        try:
            await store.add_task(task=task)
            return None
        except TaskExists:
            if (existing := await store.get_task(key=task.key)) is not None:
                return existing
    raise TaskExists()


TASK_COLUMNS = ("id_team_agent", "id_task", "id_team", "title", "driver", "created_us", "updated_us")
THREAD_COLUMNS = (
    "id_team_agent",
    "id_task",
    "seq",
    "id_thread",
    "status",
    "id_run",
    "request",
    "response",
    "model_turn",
    "created_us",
    "updated_us",
)


def now_us() -> int:
    return time.time_ns() // 1000


def key_args(key: TaskKey) -> tuple[str, str]:
    """The primary key of a task row (the first two columns of both tables)."""
    return key.id_team_agent, key.id_task


def to_us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, UTC)


def _attachment(raw: dict[str, Any]) -> Attachment:
    return Attachment(
        name=raw["name"],
        type=cast(AttachmentKind, raw["type"]),
        mime_type=raw["mime_type"],
        size=raw.get("size"),
        id_file=raw.get("id_file"),
    )


def _attachments(items: tuple[Attachment, ...]) -> list[dict[str, Any]]:
    return [
        {"name": a.name, "type": a.type, "mime_type": a.mime_type, "size": a.size, "id_file": a.id_file} for a in items
    ]


def dump_request(request: MessageRequest) -> str:
    return orjson.dumps(
        {
            "id_team": request.id_team,
            "text": request.text,
            "created_at": request.created_at.isoformat(),
            "attachments": _attachments(request.attachments),
        }
    ).decode()


def load_request(raw: str, id_team_agent: str, id_task: str) -> MessageRequest:
    data = orjson.loads(raw)
    return MessageRequest(
        id_team_agent=id_team_agent,
        id_team=data["id_team"],
        id_task=id_task,
        text=data["text"],
        created_at=datetime.fromisoformat(data["created_at"]),
        attachments=tuple(_attachment(a) for a in data["attachments"]),
    )


def dump_response(response: MessageResponse) -> str:
    usage = response.usage
    return orjson.dumps(
        {
            "id_team": response.id_team,
            "created_at": response.created_at.isoformat(),
            "text": response.text,
            "reasoning": response.reasoning,
            "attachments": _attachments(response.attachments),
            "event": response.event,
            "is_finished": response.is_finished,
            "is_error": response.is_error,
            "is_interrupted": response.is_interrupted,
            "error": response.error,
            "reason": response.reason,
            "outline": response.outline,
            "usage": None
            if usage is None
            else {
                "prompt_tokens": usage.prompt_tokens,
                "output_tokens": usage.output_tokens,
                "thoughts_tokens": usage.thoughts_tokens,
                "total_tokens": usage.total_tokens,
            },
        }
    ).decode()


def load_response(raw: str, id_team_agent: str, id_task: str) -> MessageResponse:
    data = orjson.loads(raw)
    usage = data.get("usage")
    return MessageResponse(
        id_team_agent=id_team_agent,
        id_team=data["id_team"],
        id_task=id_task,
        created_at=datetime.fromisoformat(data["created_at"]),
        text=data["text"],
        reasoning=data.get("reasoning") or "",
        attachments=tuple(_attachment(a) for a in data["attachments"]),
        event=data.get("event"),
        is_finished=data["is_finished"],
        is_error=data["is_error"],
        is_interrupted=data["is_interrupted"],
        error=data.get("error"),
        reason=data.get("reason"),
        usage=Usage(**usage) if usage else None,
        outline=tuple(data.get("outline") or ()),
    )


def dump_any(value: object) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def load_any(raw: str | None) -> object:
    return None if raw is None else orjson.loads(raw)


def task_from(row: Sequence[Any]) -> Task:
    """A task (without threads) from a row of TASK_COLUMNS."""
    return Task(
        id_team_agent=row[0],
        id_task=row[1],
        id_team=row[2],
        title=row[3],
        driver=Driver(row[4]),
        created_at=from_us(row[5]),
        updated_at=from_us(row[6]),
    )


def thread_from(row: Sequence[Any]) -> Thread:
    """A thread from a row of THREAD_COLUMNS."""
    agent, id_task, response = row[0], row[1], row[7]
    return Thread(
        id_thread=row[3],
        request=load_request(row[6], agent, id_task),
        response=None if response is None else load_response(response, agent, id_task),
        id_run=row[5],
        model_turn=load_any(row[8]),
    )


def task_values(task: Task) -> tuple[Any, ...]:
    """The values of TASK_COLUMNS for a new task row."""
    created, updated = to_us(task.created_at), to_us(task.updated_at)
    return (task.id_team_agent, task.id_task, task.id_team, task.title, task.driver.value, created, updated)


def interrupted_response(row: Sequence[Any], reason: str) -> str | None:
    """The response of a thread row (THREAD_COLUMNS) left running, marked interrupted, as stored JSON;
    None if it has no response."""
    response = thread_from(row).response
    if response is None:
        return None
    response.is_interrupted, response.event, response.reason = True, "interrupted", reason
    return dump_response(response)


def thread_values(key: TaskKey, seq: int, thread: Thread, now_us: int) -> tuple[Any, ...]:
    """The values of THREAD_COLUMNS for a new thread row."""
    return (
        key.id_team_agent,
        key.id_task,
        seq,
        thread.id_thread,
        thread.status.value,
        thread.id_run,
        dump_request(thread.request),
        None if thread.response is None else dump_response(thread.response),
        dump_any(thread.model_turn),
        to_us(thread.request.created_at),
        now_us,
    )
