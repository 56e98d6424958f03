"""In-memory fakes of the ports that record what happened (no I/O)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from domain.errors import FileNotFound, LLMError, TaskExists, TaskNotFound
from domain.events import LLMEvent
from domain.model import (
    Attachment,
    BlobInfo,
    Driver,
    MessageRequest,
    MessageResponse,
    Task,
    TaskKey,
    Thread,
    ThreadStatus,
)
from domain.ports import TaskPage


class FakeTaskStore:
    def __init__(self) -> None:
        self.tasks: dict[TaskKey, Task] = {}
        self.saves: list[tuple[str, MessageResponse]] = []

    async def add_task(self, *, task: Task) -> None:
        if task.key in self.tasks:
            raise TaskExists()
        self.tasks[task.key] = copy.deepcopy(task)

    async def add_task_or_get(self, *, task: Task) -> Task | None:
        await asyncio.sleep(0)  # a round trip, as to a database: a model started meanwhile runs
        if task.key in self.tasks:
            return copy.deepcopy(self.tasks[task.key])
        await self.add_task(task=task)
        return None

    async def get_task(self, *, key: TaskKey, include_content: bool = True) -> Task | None:
        task = self.tasks.get(key)
        if task is None:
            return None
        task = copy.deepcopy(task)
        if not include_content:
            task.threads = []
        return task

    async def list_tasks(self, *, id_team_agent: str, page: TaskPage) -> list[Task]:
        found = [t for t in self.tasks.values() if t.id_team_agent == id_team_agent]
        if page.driver is not None:
            found = [t for t in found if t.driver == page.driver]
        if page.updated_since is not None:
            found = [t for t in found if t.updated_at >= page.updated_since]
        found.sort(key=lambda t: (t.updated_at, t.id_task), reverse=True)
        if page.before is not None:
            found = [t for t in found if (t.updated_at, t.id_task) < page.before]
        result = [copy.deepcopy(t) for t in found[: page.limit]]
        if not page.include_content:
            for task in result:
                task.threads = []
        return result

    async def update_task(self, *, key: TaskKey, title: str | None = None, driver: Driver | None = None) -> Task | None:
        task = self.tasks.get(key)
        if task is None:
            return None
        if title is not None:
            task.title = title
        if driver is not None:
            task.driver = driver
        task.updated_at = datetime.now(UTC)
        return copy.deepcopy(task)

    async def delete_task(self, *, key: TaskKey) -> Task | None:
        return self.tasks.pop(key, None)

    async def add_thread(self, *, key: TaskKey, thread: Thread) -> None:
        await asyncio.sleep(0)  # (as add_task_or_get)
        task = self.tasks.get(key)
        if task is None:
            raise TaskNotFound()
        task.threads.append(copy.deepcopy(thread))
        task.updated_at = datetime.now(UTC)

    async def save_response(
        self,
        *,
        key: TaskKey,
        id_thread: str,
        response: MessageResponse,
        id_run: str | None = None,
        model_turn: object = None,
    ) -> None:
        task = self.tasks.get(key)
        thread = next((t for t in task.threads if t.id_thread == id_thread), None) if task else None
        if thread is None:
            raise TaskNotFound()
        thread.response = copy.deepcopy(response)
        assert task is not None
        task.updated_at = datetime.now(UTC)
        if id_run is not None:
            thread.id_run = id_run
        if model_turn is not None:
            thread.model_turn = model_turn
        self.saves.append((id_thread, copy.deepcopy(response)))

    async def interrupt_running(self, *, reason: str, id_runs: Sequence[str] | None = None) -> int:
        count = 0
        for task in self.tasks.values():
            for thread in task.threads:
                if thread.status is ThreadStatus.RUNNING and (id_runs is None or thread.id_run in id_runs):
                    assert thread.response is not None
                    thread.response = replace(thread.response, is_interrupted=True, event="interrupted", reason=reason)
                    count += 1
        return count

    async def running_runs(self) -> list[str]:
        return [
            t.id_run
            for task in self.tasks.values()
            for t in task.threads
            if t.status is ThreadStatus.RUNNING and t.id_run is not None
        ]


@dataclass
class FakeBlobWriter:
    store: FakeBlobStore
    info: BlobInfo
    data: bytearray = field(default_factory=bytearray)

    async def write(self, data: bytes) -> None:
        self.data += data

    async def commit(self) -> BlobInfo:
        info = replace(self.info, size=len(self.data))
        self.store.files[(info.id_team_agent, info.id_file)] = (info, bytes(self.data))
        return info

    async def abort(self) -> None:
        self.store.aborted.append(self.info.id_file)


class FakeBlobStore:
    def __init__(self) -> None:
        self.files: dict[tuple[str, str], tuple[BlobInfo, bytes]] = {}
        self.aborted: list[str] = []
        self.deleted: list[str] = []

    def add(
        self, id_file: str, data: bytes, *, name: str, mime_type: str, kind: Any, agent: str = "agent"
    ) -> Attachment:
        """Put a file in place directly; returns the attachment that refers to it."""
        self.files[(agent, id_file)] = (BlobInfo(agent, id_file, name, mime_type, len(data), kind), data)
        return Attachment(name=name, type=kind, mime_type=mime_type, size=len(data), id_file=id_file)

    async def writer(
        self,
        *,
        id_team_agent: str,
        id_file: str,
        name: str,
        mime_type: str,
        kind: str,
        id_task: str | None = None,
    ) -> FakeBlobWriter:
        info = BlobInfo(id_team_agent, id_file, name, mime_type, 0, kind, id_task)  # type: ignore[arg-type]
        return FakeBlobWriter(self, info)

    async def info(self, *, id_team_agent: str, id_file: str) -> BlobInfo | None:
        found = self.files.get((id_team_agent, id_file))
        return found[0] if found else None

    async def read(self, *, id_team_agent: str, id_file: str, chunk_size: int = 65536) -> AsyncIterator[bytes]:
        found = self.files.get((id_team_agent, id_file))
        if found is None:
            raise FileNotFound()
        data = found[1]
        for start in range(0, len(data), chunk_size):
            yield data[start : start + chunk_size]

    async def delete(self, *, id_team_agent: str, id_file: str) -> None:
        self.deleted.append(id_file)
        self.files.pop((id_team_agent, id_file), None)


class ScriptedLLM:
    """Yields a script of events; an exception in the script is raised at that point.

    `gate` (if set) is awaited before each event, so a test can hold a run open.
    """

    def __init__(self, script: Sequence[LLMEvent | Exception] = (), title: str | None = None) -> None:
        self.script = list(script)
        self.calls: list[tuple[list[Thread], MessageRequest]] = []
        self.gate: asyncio.Event | None = None
        self.closed = 0
        self._title = title

    async def stream(self, *, history: Sequence[Thread], request: MessageRequest) -> AsyncIterator[LLMEvent]:
        self.calls.append((list(history), request))
        try:
            for item in self.script:
                if self.gate is not None:
                    await self.gate.wait()
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self.closed += 1

    async def title(self, *, text: str) -> str | None:
        if self._title == "fail":
            raise LLMError("no title")
        return self._title
