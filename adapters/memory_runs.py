"""InMemoryRunRegistry: live runs of one process, with a bounded buffer of recently ended ones."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from domain.errors import NoActiveRun, TaskBusy, UnknownEventId
from domain.events import MessageChunk
from domain.model import TaskKey

MIN_KEEP_S = 30.0
"""Even when crowded, an ended run stays this long so readers still sending its tail can finish."""


@dataclass(slots=True)
class _Run:
    key: TaskKey
    on_interrupt: Callable[[str], None]
    events: list[tuple[int, MessageChunk]] = field(default_factory=list)
    closed: bool = False
    waiter: asyncio.Future[None] | None = None

    def wake(self) -> None:
        if self.waiter is not None:
            if not self.waiter.done():
                self.waiter.set_result(None)
            self.waiter = None


class InMemoryRunRegistry:
    """One process's runs. Ended runs stay readable for `keep_s` seconds, at most `max_kept` of them."""

    def __init__(self, *, keep_s: float = 300.0, max_kept: int = 1000) -> None:
        self._keep_s = keep_s
        self._max_kept = max_kept
        self._active: dict[TaskKey, str] = {}
        self._runs: dict[str, _Run] = {}
        self._ended: OrderedDict[str, float] = OrderedDict()

    async def open(self, *, key: TaskKey, id_run: str, on_interrupt: Callable[[str], None]) -> None:
        if key in self._active:
            raise TaskBusy()
        self._active[key] = id_run
        self._runs[id_run] = _Run(key, on_interrupt)
        self._prune()

    async def publish(self, *, key: TaskKey, id_run: str, seq: int, event: MessageChunk) -> None:
        run = self._runs[id_run]
        run.events.append((seq, event))
        run.wake()

    async def close(self, *, key: TaskKey, id_run: str) -> None:
        if self._active.get(key) == id_run:
            del self._active[key]
        run = self._runs.get(id_run)
        if run is not None:
            run.closed = True
            run.wake()
            self._ended[id_run] = time.monotonic()
        self._prune()

    async def active(self, *, key: TaskKey) -> str | None:
        return self._active.get(key)

    async def read(
        self, *, key: TaskKey, id_run: str, after: int, timeout: float
    ) -> tuple[list[tuple[int, MessageChunk]], bool]:
        run = self._runs.get(id_run)
        if run is None or run.key != key:
            raise UnknownEventId()
        first_seq = run.events[0][0] if run.events else 1
        start = max(after - first_seq + 1, 0)
        if start < len(run.events):
            return run.events[start:], run.closed
        if run.closed:
            return [], True
        if run.waiter is None:
            run.waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(run.waiter)
        except TimeoutError:
            return [], False
        return run.events[start:], run.closed

    async def interrupt(self, *, key: TaskKey, reason: str) -> str:
        id_run = self._active.get(key)
        if id_run is None:
            raise NoActiveRun()
        self._runs[id_run].on_interrupt(reason)
        return id_run

    async def live_runs(self) -> set[str]:
        return set(self._active.values())

    async def expired_runs(self) -> list[str]:
        """Always empty: a run of this process lives exactly as long as the process."""
        return []

    async def reap(self, *, id_runs: Sequence[str], reason: str) -> list[str]:
        return []

    def _prune(self) -> None:
        now = time.monotonic()
        while self._ended:
            id_run, ended_at = next(iter(self._ended.items()))
            expired = ended_at <= now - self._keep_s
            crowded = len(self._ended) > self._max_kept and ended_at <= now - MIN_KEEP_S
            if not (expired or crowded):
                break
            del self._ended[id_run]
            self._runs.pop(id_run, None)
