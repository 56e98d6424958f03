"""InMemoryRunRegistry's pushes: a follower that keeps up is handed each event from inside `publish`."""

from __future__ import annotations

import asyncio

import pytest

from adapters.memory_runs import InMemoryRunRegistry
from domain.errors import UnknownEventId
from domain.events import TextChunk
from domain.model import TaskKey

KEY = TaskKey("agent", "task-1")


class Sink:
    def __init__(self, *, takes: int = 1_000, fails: bool = False) -> None:
        self.got: list[int] = []
        self.takes = takes
        self.fails = fails
        self.ended_after: int | None = None

    def __call__(self, seq: int, data: bytes) -> bool:
        if self.fails:
            raise OSError("broken pipe")
        if not data:
            self.ended_after = seq
            return False
        self.got.append(seq)
        return len(self.got) < self.takes


async def started(registry: InMemoryRunRegistry, sink: Sink, *, timeout: float = 5) -> asyncio.Task[bool]:
    task = asyncio.create_task(registry.push_encoded(key=KEY, id_run="r1", after=0, timeout=timeout, sink=sink))
    await asyncio.sleep(0)
    return task


async def publish(registry: InMemoryRunRegistry, *seqs: int) -> None:
    for seq in seqs:
        await registry.publish(key=KEY, id_run="r1", seq=seq, event=TextChunk(f"w{seq}"))


@pytest.fixture
async def registry() -> InMemoryRunRegistry:
    registry = InMemoryRunRegistry()
    await registry.open(key=KEY, id_run="r1", on_interrupt=lambda reason: None)
    return registry


async def test_a_sink_that_cannot_take_more_ends_the_push_and_is_handed_nothing_after(
    registry: InMemoryRunRegistry,
) -> None:
    sink = Sink(takes=2)
    pushing = await started(registry, sink)
    await publish(registry, 1, 2, 3)
    assert await pushing is True
    assert sink.got == [1, 2]
    events, ended = await registry.read_encoded(key=KEY, id_run="r1", after=2, timeout=0)
    assert [seq for seq, _ in events] == [3] and not ended


async def test_several_followers_are_pushed_each_event(registry: InMemoryRunRegistry) -> None:
    first, second = Sink(), Sink()
    pushes = [await started(registry, first), await started(registry, second)]
    await publish(registry, 1, 2)
    await registry.close(key=KEY, id_run="r1")
    assert await asyncio.gather(*pushes) == [True, True]
    assert first.got == second.got == [1, 2]
    assert first.ended_after == second.ended_after == 2  # told as the run closed, from inside `close`


async def test_only_a_follower_that_took_every_event_is_told_the_run_closed(registry: InMemoryRunRegistry) -> None:
    keeps_up, falls_behind = Sink(), Sink(takes=1)
    pushes = [await started(registry, keeps_up), await started(registry, falls_behind)]
    await publish(registry, 1, 2)
    await registry.close(key=KEY, id_run="r1")
    await asyncio.gather(*pushes)
    assert (keeps_up.ended_after, falls_behind.ended_after) == (2, None)


async def test_a_failing_sink_fails_its_push_not_the_run(registry: InMemoryRunRegistry) -> None:
    pushing = await started(registry, Sink(fails=True))
    await publish(registry, 1)
    with pytest.raises(OSError, match="broken pipe"):
        await pushing
    events, _ = await registry.read_encoded(key=KEY, id_run="r1", after=0, timeout=0)
    assert [seq for seq, _ in events] == [1]


async def test_a_quiet_run_ends_the_push_after_the_timeout(registry: InMemoryRunRegistry) -> None:
    pushing = await started(registry, Sink(), timeout=0.05)
    assert await asyncio.wait_for(pushing, 2) is True


async def test_a_cancelled_push_leaves_no_sink_behind(registry: InMemoryRunRegistry) -> None:
    sink = Sink()
    pushing = await started(registry, sink)
    pushing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pushing
    await publish(registry, 1)
    assert sink.got == []


async def test_no_push_to_a_follower_behind_or_ahead_of_the_run(registry: InMemoryRunRegistry) -> None:
    await publish(registry, 1, 2)
    for after in (1, 3, 10):  # behind: it reads first; ahead (a stale or forged id): it must not get 3 and 4
        assert await registry.push_encoded(key=KEY, id_run="r1", after=after, timeout=1, sink=Sink()) is False


async def test_no_push_without_a_wait_or_for_another_task(registry: InMemoryRunRegistry) -> None:
    assert await registry.push_encoded(key=KEY, id_run="r1", after=0, timeout=0, sink=Sink()) is False
    with pytest.raises(UnknownEventId):
        await registry.push_encoded(key=TaskKey("agent", "other"), id_run="r1", after=0, timeout=1, sink=Sink())
