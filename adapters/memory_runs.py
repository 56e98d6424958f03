"""InMemoryRunRegistry: live runs of one process, with a bounded buffer of recently ended ones."""

from __future__ import annotations

import asyncio
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate

from adapters import event_codec
from domain.errors import NoActiveRun, TaskBusy, UnknownEventId
from domain.events import MessageChunk
from domain.model import TaskKey
from domain.ports import EventSink

SWEEP_S = 0.25
MIN_KEEP_S = 30.0
"""Even when crowded, an ended run stays this long so readers still sending its tail can finish."""


@dataclass(slots=True)
class _Run:
    key: TaskKey
    on_interrupt: Callable[[str], None]
    # each event's contract JSON, in seq order from `first_seq`: bytes are invisible to the garbage collector,
    # and bare bytes cost 64 B less per kept event than (seq, bytes) pairs
    frames: list[bytes] = field(default_factory=list)
    first_seq: int = 1
    closed: bool = False
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    sinks: list[tuple[EventSink, asyncio.Future[None]]] = field(default_factory=list)
    # once closed, the frames packed in one buffer with their end offsets: ~40 B less per event kept
    packed: bytes = b""
    ends: array[int] = field(default_factory=lambda: array("Q"))

    def count(self) -> int:
        return len(self.ends) if self.packed else len(self.frames)

    def since(self, after: int) -> list[tuple[int, bytes]]:
        start = min(max(after - self.first_seq + 1, 0), self.count())
        if not self.packed:
            if start == len(self.frames) - 1:  # a follower that keeps up: the newest event alone
                return [(self.first_seq + start, self.frames[start])]
            return [(seq, frame) for seq, frame in enumerate(self.frames[start:], self.first_seq + start)]
        ends, begin = self.ends, self.ends[start - 1] if start else 0
        found = []
        for i in range(start, len(ends)):
            found.append((self.first_seq + i, self.packed[begin : ends[i]]))
            begin = ends[i]
        return found

    def pack(self) -> None:
        if self.frames:
            self.ends = array("Q", accumulate(map(len, self.frames)))
            self.packed, self.frames = b"".join(self.frames), []

    def wake(self) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def push(self, seq: int, frame: bytes) -> None:
        for sink, attached in tuple(self.sinks):
            self._hand(sink, attached, seq, frame)

    def end_pushes(self) -> None:
        """Tell each follower that took every event that the run closed, and stop pushing."""
        for sink, attached in tuple(self.sinks):
            self._hand(sink, attached, self.first_seq + self.count() - 1, b"")
            if not attached.done():
                attached.set_result(None)
        self.sinks.clear()

    def _hand(self, sink: EventSink, attached: asyncio.Future[None], seq: int, frame: bytes) -> None:
        try:
            kept = sink(seq, frame)
        except Exception as error:  # the follower's failure, not the run's: it comes out of its push
            kept = False
            if not attached.done():
                attached.set_exception(error)
        if not kept:
            self.sinks.remove((sink, attached))
            if not attached.done():
                attached.set_result(None)


class InMemoryRunRegistry:
    """One process's runs. Ended runs stay readable for `keep_s` seconds, at most `max_kept` of them."""

    def __init__(self, *, keep_s: float = 300.0, max_kept: int = 1000) -> None:
        self._keep_s = keep_s
        self._max_kept = max_kept
        self._active: dict[TaskKey, str] = {}
        self._runs: dict[str, _Run] = {}
        self._ended: OrderedDict[str, float] = OrderedDict()
        self._deadlines: dict[asyncio.Future[None], float] = {}
        self._sweeping = False

    async def open(self, *, key: TaskKey, id_run: str, on_interrupt: Callable[[str], None]) -> None:
        if key in self._active:
            raise TaskBusy()
        self._active[key] = id_run
        self._runs[id_run] = _Run(key, on_interrupt)
        self._prune()

    async def publish(self, *, key: TaskKey, id_run: str, seq: int, event: MessageChunk) -> None:
        run = self._runs[id_run]
        if run.closed:  # too late: its readers were told it ended
            return
        if not run.frames:
            run.first_seq = seq
        frame = event_codec.dumps(event)
        run.frames.append(frame)
        if run.sinks:
            run.push(seq, frame)
        if run.waiters:
            run.wake()

    async def close(self, *, key: TaskKey, id_run: str) -> None:
        if self._active.get(key) == id_run:
            del self._active[key]
        run = self._runs.get(id_run)
        if run is not None:
            run.closed = True
            run.end_pushes()
            run.pack()
            run.wake()
            self._ended[id_run] = time.monotonic()
        self._prune()

    async def active(self, *, key: TaskKey) -> str | None:
        return self._active.get(key)

    async def read_encoded(
        self, *, key: TaskKey, id_run: str, after: int, timeout: float
    ) -> tuple[list[tuple[int, bytes]], bool]:
        run = self._run_of(key, id_run)
        if after - run.first_seq + 1 < run.count():
            return run.since(after), run.closed
        if run.closed:
            return [], True
        if timeout <= 0:
            return [], False
        # wait (inline: a reader waits between every two events) until the run changes or about `timeout`
        # passes; deadlines are swept together, so there is no timer per wait
        waiter = self._with_deadline(timeout)
        run.waiters.append(waiter)
        try:
            await waiter
        finally:
            self._deadlines.pop(waiter, None)
        return run.since(after), run.closed

    async def push_encoded(self, *, key: TaskKey, id_run: str, after: int, timeout: float, sink: EventSink) -> bool:
        run = self._run_of(key, id_run)
        if after - run.first_seq + 1 != run.count() or run.closed or timeout <= 0:  # behind, ahead, over
            return False
        attached = self._with_deadline(timeout)
        entry = (sink, attached)
        run.sinks.append(entry)
        try:
            await attached
        finally:
            self._deadlines.pop(attached, None)
            if entry in run.sinks:
                run.sinks.remove(entry)
        return True

    def _run_of(self, key: TaskKey, id_run: str) -> _Run:
        run = self._runs.get(id_run)
        if run is None or (run.key is not key and run.key != key):
            raise UnknownEventId()
        return run

    def _with_deadline(self, timeout: float) -> asyncio.Future[None]:
        """A future that the sweep resolves about `timeout` from now, if nothing else does first."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._deadlines[future] = loop.time() + timeout
        if not self._sweeping:
            self._sweeping = True
            loop.call_later(SWEEP_S, self._sweep, loop)
        return future

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for waiter, deadline in list(self._deadlines.items()):
            if deadline <= now and not waiter.done():
                waiter.set_result(None)
        if self._deadlines:
            loop.call_later(SWEEP_S, self._sweep, loop)
        else:
            self._sweeping = False

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
