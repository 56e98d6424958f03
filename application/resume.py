"""Resume: follow a task's latest run from right after the last event a client saw."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from application.replay import replay
from domain.errors import InvalidInput, NoActiveRun, TaskNotFound, UnknownEventId
from domain.events import MessageChunk
from domain.model import TaskKey
from domain.ports import BlobStore, EventSink, RunRegistry, TaskStore

Events = tuple[list[tuple[int, bytes]], bool]
_EVENT_ID = re.compile(r"^([0-9a-z]{1,64}):(\d{1,9})$")


def parse_event_id(value: str) -> tuple[str, int]:
    match = _EVENT_ID.fullmatch(value.strip())
    if match is None:
        raise InvalidInput("Last-Event-ID", "must be an event id of this API, like 3f9c0a1b22de:12")
    return match.group(1), int(match.group(2))


_T = TypeVar("_T")


async def _ready(value: _T) -> _T:
    return value


class EventSource(Protocol):
    """What an SSE response follows: a live run in the registry, or a replay of a stored one."""

    @property
    def id_run(self) -> str: ...

    def read(self, *, after: int, timeout: float) -> Awaitable[Events]:
        """Events after seq `after`, each as the contract's JSON, and whether the run ended with them."""
        ...

    def push(self, *, after: int, timeout: float, sink: EventSink) -> Awaitable[bool]:
        """Hand new events to `sink` as they come, if the source can (see `RunRegistry.push_encoded`)."""
        ...


@dataclass(frozen=True, slots=True)
class LiveSource:
    registry: RunRegistry
    key: TaskKey
    id_run: str

    def read(self, *, after: int, timeout: float) -> Awaitable[Events]:
        # the registry's own coroutine, not a wrapper: a follower resumes through one frame less per event
        return self.registry.read_encoded(key=self.key, id_run=self.id_run, after=after, timeout=timeout)

    def push(self, *, after: int, timeout: float, sink: EventSink) -> Awaitable[bool]:
        return self.registry.push_encoded(key=self.key, id_run=self.id_run, after=after, timeout=timeout, sink=sink)


@dataclass(frozen=True, slots=True)
class StoredSource:
    id_run: str
    events: list[tuple[int, bytes]]

    def read(self, *, after: int, timeout: float) -> Awaitable[Events]:
        return _ready(([(seq, event) for seq, event in self.events if seq > after], True))

    def push(self, *, after: int, timeout: float, sink: EventSink) -> Awaitable[bool]:
        return _ready(False)


@dataclass(frozen=True, slots=True)
class Resumption:
    source: EventSource
    after: int


class Resume:
    """Where to resume: the live buffer while it lasts, else the stored reply rebuilt event by event."""

    def __init__(
        self, *, store: TaskStore, registry: RunRegistry, blobs: BlobStore, encode: Callable[[MessageChunk], bytes]
    ) -> None:
        """`encode` must write events exactly as the registry does, so a replay sends the same bytes."""
        self._store = store
        self._registry = registry
        self._blobs = blobs
        self._encode = encode

    def live(self, key: TaskKey, id_run: str) -> EventSource:
        return LiveSource(self._registry, key, id_run)

    async def open(self, *, key: TaskKey, last_event_id: str | None, id_team: str | None = None) -> Resumption:
        """Raise TaskNotFound, InvalidInput (malformed id), UnknownEventId (no such run), NoActiveRun (no run)."""
        wanted = parse_event_id(last_event_id) if last_event_id else None
        task = await self._store.get_task(key=key)
        if task is None or (id_team is not None and task.id_team != id_team):
            raise TaskNotFound()
        runs = [t.id_run for t in task.threads if t.id_run]
        latest = await self._registry.active(key=key) or (runs[-1] if runs else None)
        if latest is None:
            raise NoActiveRun()
        after = 0
        if wanted is not None:
            id_run, seq = wanted
            if id_run == latest:
                after = seq
            elif id_run not in runs:
                raise UnknownEventId()
        try:
            await self._registry.read_encoded(key=key, id_run=latest, after=after, timeout=0)
            return Resumption(self.live(key, latest), after)
        except UnknownEventId:
            pass
        thread = next((t for t in reversed(task.threads) if t.id_run == latest), None)
        if thread is None or thread.response is None:
            raise UnknownEventId()
        events = [(seq, self._encode(event)) for seq, event in await replay(thread.response, self._blobs)]
        return Resumption(StoredSource(latest, events), after)
