"""The ports: what the application needs from the outside world, as Protocols."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.events import LLMEvent, MessageChunk
from domain.model import BlobInfo, Driver, MessageRequest, MessageResponse, Task, TaskKey, Thread


class LLM(Protocol):
    """A language model that answers a request given the earlier threads of its task."""

    def stream(self, *, history: Sequence[Thread], request: MessageRequest) -> AsyncIterator[LLMEvent]:
        """Yield the reply as it is produced. Raise `LLMError` (with a user-safe message) on failure.

        Attachments with an `id_file` are readable from the BlobStore the adapter was built with.
        Cancelling the consuming task must release every resource (open HTTP responses included).
        """
        ...

    async def title(self, *, text: str) -> str | None:
        """A short title for a conversation that starts with `text`, or None to keep the fallback."""
        ...


@dataclass(frozen=True, slots=True)
class TaskPage:
    """Filters and cursor of a task listing (newest `updated_at` first)."""

    limit: int
    before: tuple[datetime, str] | None = None
    driver: Driver | None = None
    updated_since: datetime | None = None
    include_content: bool = True


class TaskStore(Protocol):
    """Durable tasks and their threads. Appending a thread never rewrites the others."""

    async def add_task(self, *, task: Task) -> None:
        """Store a new task (and any threads it carries). Raise `TaskExists` if the key is taken."""
        ...

    async def add_task_or_get(self, *, task: Task) -> Task | None:
        """Store a new task (and its threads) and return None; if the key is taken, store nothing and return
        the task that holds it, with its threads (where the adapter can, in one round trip)."""
        ...

    async def get_task(self, *, key: TaskKey, include_content: bool = True) -> Task | None: ...

    async def list_tasks(self, *, id_team_agent: str, page: TaskPage) -> list[Task]: ...

    async def update_task(self, *, key: TaskKey, title: str | None = None, driver: Driver | None = None) -> Task | None:
        """Change the given fields (None leaves one as it is); return the task or None if unknown."""
        ...

    async def delete_task(self, *, key: TaskKey) -> Task | None:
        """Delete the task with its threads; return what was deleted (for blob clean-up)."""
        ...

    async def add_thread(self, *, key: TaskKey, thread: Thread) -> None:
        """Append a thread and move the task's updated_at. Raise `TaskNotFound` if the task is gone."""
        ...

    async def save_response(
        self,
        *,
        key: TaskKey,
        id_thread: str,
        response: MessageResponse,
        id_run: str | None = None,
        model_turn: object = None,
    ) -> None:
        """Store (or overwrite) a thread's response and move the task's updated_at."""
        ...

    async def interrupt_running(self, *, reason: str, id_runs: Sequence[str] | None = None) -> int:
        """Mark replies left running (all, or those of `id_runs`) as interrupted; return how many."""
        ...

    async def running_runs(self) -> list[str]:
        """The `id_run` of every reply stored as running (recovery compares them with live leases)."""
        ...


class BlobWriter(Protocol):
    async def write(self, data: bytes) -> None: ...

    async def commit(self) -> BlobInfo: ...

    async def abort(self) -> None: ...


class BlobStore(Protocol):
    """File bytes with their metadata, scoped by team agent."""

    async def writer(
        self,
        *,
        id_team_agent: str,
        id_file: str,
        name: str,
        mime_type: str,
        kind: str,
        id_task: str | None = None,
    ) -> BlobWriter:
        """Start a streamed write; nothing is visible until `commit`, `abort` leaves nothing."""
        ...

    async def info(self, *, id_team_agent: str, id_file: str) -> BlobInfo | None: ...

    def read(self, *, id_team_agent: str, id_file: str, chunk_size: int = 65536) -> AsyncIterator[bytes]:
        """Stream the bytes of a file. Raise `FileNotFound` if it does not exist."""
        ...

    async def delete(self, *, id_team_agent: str, id_file: str) -> None: ...


EventSink = Callable[[int, bytes], bool]
"""Takes one event (seq, contract JSON) as it is published; False once it cannot take the next one now. A sink
that took every event is told the run closed: `(seq of the last event, b"")`, then nothing more."""


class RunRegistry(Protocol):
    """Live runs: one per task at a time, their events buffered for followers, interrupts delivered."""

    async def open(self, *, key: TaskKey, id_run: str, on_interrupt: Callable[[str], None]) -> None:
        """Claim the task for a run. Raise `TaskBusy` if another run holds it."""
        ...

    async def publish(self, *, key: TaskKey, id_run: str, seq: int, event: MessageChunk) -> None: ...

    async def close(self, *, key: TaskKey, id_run: str) -> None:
        """Release the task after the terminal event was published; the buffer stays readable a while."""
        ...

    async def active(self, *, key: TaskKey) -> str | None:
        """The id of the run holding the task, if any."""
        ...

    async def read_encoded(
        self, *, key: TaskKey, id_run: str, after: int, timeout: float
    ) -> tuple[list[tuple[int, bytes]], bool]:
        """Events of `id_run` with seq > `after`, waiting up to `timeout` for one, each as the contract's
        compact JSON (what an SSE `data:` line carries), encoded once when published, whoever reads it.

        Returns (events, ended): `ended` once the run closed and every event was returned.
        Raise `UnknownEventId` if the run is not (or no longer) buffered here.
        """
        ...

    async def push_encoded(self, *, key: TaskKey, id_run: str, after: int, timeout: float, sink: EventSink) -> bool:
        """Hand each event of `id_run` to `sink` as it is published, from inside `publish`, while `sink` takes
        them, until the run closes or about `timeout` passes. For a follower that keeps up, this spares it a
        wake-up per event.

        Return False at once, having pushed nothing, when `after` is not the last event published (there is
        something to read first, or `after` is past the run), when the run has ended, or when this registry
        does not push: the follower then reads. Else return True once the push stops; an exception `sink`
        raised comes out here.
        Raise `UnknownEventId` as `read_encoded` does.
        """
        ...

    async def interrupt(self, *, key: TaskKey, reason: str) -> str:
        """Ask the run holding the task to stop; return its id. Raise `NoActiveRun` if none."""
        ...

    async def live_runs(self) -> set[str]:
        """Ids of the runs open now and holding a live lease, on any replica sharing this registry."""
        ...

    async def expired_runs(self) -> list[str]:
        """Ids of open runs whose lease ran out: their replica stopped renewing it (crashed, frozen, cut off)."""
        ...

    async def reap(self, *, id_runs: Sequence[str], reason: str) -> list[str]:
        """End the runs of `id_runs` whose lease is still expired, for followers: publish `Interrupted(reason)`
        and close them. Return the ids ended here (each by one caller only, even with several reapers)."""
        ...
