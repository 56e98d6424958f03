"""One suite, every RunRegistry: in-process, and Redis with two instances standing for two replicas.

`a` and `b` are the same registry in memory; on Redis they are two registries with their own clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from redis.asyncio import Redis

from adapters import event_codec
from adapters.memory_runs import InMemoryRunRegistry
from adapters.redis_runs import LEASE_LOST, RedisRunRegistry
from domain.errors import NoActiveRun, TaskBusy, UnknownEventId
from domain.events import (
    Error,
    Finished,
    Interrupted,
    Loading,
    MediaChunk,
    MessageChunk,
    ReasoningChunk,
    Started,
    Step,
    TextChunk,
)
from domain.model import TaskKey
from domain.ports import RunRegistry
from tests.conftest import REDIS_URL, need
from tests.registry_reads import read

KEY = TaskKey("agent", "task-1")


@dataclass
class Interrupts:
    reasons: list[str] = field(default_factory=list)
    seen: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, reason: str) -> None:
        self.reasons.append(reason)
        self.seen.set()


@dataclass
class Pair:
    a: RunRegistry
    b: RunRegistry
    make: Callable[..., Any]
    kind: str


async def redis_cleanup(prefix: str) -> None:
    client = Redis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[Pair]:
    if request.param == "memory":
        registry = InMemoryRunRegistry(keep_s=60)
        yield Pair(registry, registry, lambda **kw: InMemoryRunRegistry(**kw), "memory")
        return
    need(REDIS_URL, "Redis")
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    made: list[RedisRunRegistry] = []

    def make(**options: Any) -> RedisRunRegistry:
        registry = RedisRunRegistry.from_url(REDIS_URL, prefix=prefix, **{"keep_s": 60, **options})
        made.append(registry)
        return registry

    yield Pair(make(), make(), make, "redis")
    for registry in made:
        await registry.aclose()
    await redis_cleanup(prefix)


async def test_one_run_per_task(pair: Pair) -> None:
    await pair.a.open(key=KEY, id_run="r1", on_interrupt=Interrupts())

    with pytest.raises(TaskBusy):
        await pair.b.open(key=KEY, id_run="r2", on_interrupt=Interrupts())
    await pair.b.open(key=TaskKey("agent", "task-2"), id_run="r3", on_interrupt=Interrupts())
    assert await pair.b.active(key=KEY) == "r1"
    assert await pair.a.live_runs() == {"r1", "r3"}

    await pair.a.close(key=KEY, id_run="r1")
    assert await pair.b.active(key=KEY) is None
    await pair.b.open(key=KEY, id_run="r4", on_interrupt=Interrupts())
    assert await pair.a.active(key=KEY) == "r4"


async def test_events_read_in_order_from_after_a_seq_then_ended(pair: Pair) -> None:
    await pair.a.open(key=KEY, id_run="r1", on_interrupt=Interrupts())
    for seq in range(1, 6):
        await pair.a.publish(key=KEY, id_run="r1", seq=seq, event=TextChunk(f"w{seq}"))

    assert await read(pair.b, key=KEY, id_run="r1", after=0, timeout=0) == (
        [(seq, TextChunk(f"w{seq}")) for seq in range(1, 6)],
        False,
    )
    assert await read(pair.b, key=KEY, id_run="r1", after=3, timeout=0) == (
        [(4, TextChunk("w4")), (5, TextChunk("w5"))],
        False,
    )
    assert await read(pair.b, key=KEY, id_run="r1", after=4, timeout=0) == ([(5, TextChunk("w5"))], False)
    assert await read(pair.b, key=KEY, id_run="r1", after=5, timeout=0) == ([], False)

    await pair.a.publish(key=KEY, id_run="r1", seq=6, event=Finished())
    await pair.a.close(key=KEY, id_run="r1")

    assert await read(pair.b, key=KEY, id_run="r1", after=4, timeout=1) == (
        [(5, TextChunk("w5")), (6, Finished())],
        True,
    )
    assert await read(pair.b, key=KEY, id_run="r1", after=6, timeout=1) == ([], True)
    everything = [(seq, TextChunk(f"w{seq}")) for seq in range(1, 6)] + [(6, Finished())]
    assert await read(pair.b, key=KEY, id_run="r1", after=0, timeout=1) == (everything, True)


async def test_a_follower_that_keeps_up_is_pushed_every_event_or_told_to_read(pair: Pair) -> None:
    await pair.a.open(key=KEY, id_run="r1", on_interrupt=Interrupts())
    await pair.a.publish(key=KEY, id_run="r1", seq=1, event=TextChunk("w1"))
    got: list[tuple[int, bytes]] = []
    told_closed: list[int] = []

    def sink(seq: int, data: bytes) -> bool:
        if not data:  # the run closed with every event pushed
            told_closed.append(seq)
            return False
        got.append((seq, data))
        return True

    # behind (seq 1 is unread): nothing is pushed, the follower reads first
    assert await pair.b.push_encoded(key=KEY, id_run="r1", after=0, timeout=1, sink=sink) is False
    pushing = asyncio.create_task(pair.b.push_encoded(key=KEY, id_run="r1", after=1, timeout=5, sink=sink))
    await asyncio.sleep(0.05)
    for seq in (2, 3):
        await pair.a.publish(key=KEY, id_run="r1", seq=seq, event=TextChunk(f"w{seq}"))
    await pair.a.publish(key=KEY, id_run="r1", seq=4, event=Finished())
    await pair.a.close(key=KEY, id_run="r1")

    if await asyncio.wait_for(pushing, 5):
        assert [(seq, event_codec.loads(data)) for seq, data in got] == [
            (2, TextChunk("w2")),
            (3, TextChunk("w3")),
            (4, Finished()),
        ]
        assert told_closed == [4]
    else:
        assert got == told_closed == []
    cursor = got[-1][0] if got else 1
    events, ended = await pair.b.read_encoded(key=KEY, id_run="r1", after=cursor, timeout=1)
    assert [seq for seq, _ in events] == list(range(cursor + 1, 5)) and ended
    assert await pair.b.push_encoded(key=KEY, id_run="r1", after=4, timeout=1, sink=sink) is False  # it ended


async def test_a_reader_waiting_past_the_end_sees_the_run_end(pair: Pair) -> None:
    await pair.a.open(key=KEY, id_run="r1", on_interrupt=Interrupts())
    await pair.a.publish(key=KEY, id_run="r1", seq=1, event=TextChunk("w1"))

    waiting = asyncio.create_task(read(pair.b, key=KEY, id_run="r1", after=999, timeout=5))
    await asyncio.sleep(0.05)
    await pair.a.publish(key=KEY, id_run="r1", seq=2, event=Finished())
    await pair.a.close(key=KEY, id_run="r1")

    assert await waiting == ([], True)


async def test_an_event_published_after_close_is_dropped(pair: Pair) -> None:
    await pair.a.open(key=KEY, id_run="r1", on_interrupt=Interrupts())
    for seq in (1, 2):
        await pair.a.publish(key=KEY, id_run="r1", seq=seq, event=TextChunk(f"w{seq}"))
    await pair.a.publish(key=KEY, id_run="r1", seq=3, event=Finished())
    await pair.a.close(key=KEY, id_run="r1")

    await pair.a.publish(key=KEY, id_run="r1", seq=4, event=TextChunk("late"))

    assert await read(pair.b, key=KEY, id_run="r1", after=0, timeout=0) == (
        [(1, TextChunk("w1")), (2, TextChunk("w2")), (3, Finished())],
        True,
    )


async def test_encoded_reads_carry_the_contract_json_of_each_event(pair: Pair) -> None:
    await pair.a.open(key=KEY, id_run="r1", on_interrupt=Interrupts())
    events = [TextChunk("héllo\n"), Finished()]
    for seq, event in enumerate(events, 1):
        await pair.a.publish(key=KEY, id_run="r1", seq=seq, event=event)
    await pair.a.close(key=KEY, id_run="r1")

    encoded, ended = await pair.b.read_encoded(key=KEY, id_run="r1", after=0, timeout=0)

    assert ended
    assert encoded == [(1, '{"event":"text-chunk","content":"héllo\\n"}'.encode()), (2, b'{"event":"finished"}')]


async def test_every_event_type_round_trips(pair: Pair) -> None:
    events: list[MessageChunk] = [
        Started("agent", "team", "task-1", datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC)),
        Started("agent", "team", "task-1", datetime(2026, 11, 25, 12, 0, tzinfo=timezone(timedelta(hours=2)))),
        TextChunk('héllo\n"quoted" 🌍'),
        ReasoningChunk("thinking"),
        MediaChunk("image", "cat.png", "image/png", "aGk="),
        MediaChunk("document", "a.pdf", "application/pdf", "https://x/a.pdf", is_base64=False, is_url=True),
        Step(2, "searching"),
        Loading(),
        Loading(progress=0.5),
        Finished(reason="stop"),
        Error("the model failed"),
        Interrupted("interrupted by the user"),
    ]
    await pair.a.open(key=KEY, id_run="r1", on_interrupt=Interrupts())
    for seq, event in enumerate(events, 1):
        await pair.a.publish(key=KEY, id_run="r1", seq=seq, event=event)

    got, _ = await read(pair.b, key=KEY, id_run="r1", after=0, timeout=0)

    assert got == list(enumerate(events, 1))
    assert got[1][1].created_at.utcoffset() == timedelta(hours=2)  # type: ignore[union-attr]


async def test_a_read_with_nothing_new_times_out_empty(pair: Pair) -> None:
    await pair.a.open(key=KEY, id_run="r1", on_interrupt=Interrupts())
    await pair.a.publish(key=KEY, id_run="r1", seq=1, event=TextChunk("x"))

    started = time.monotonic()
    assert await read(pair.b, key=KEY, id_run="r1", after=1, timeout=0) == ([], False)
    assert await read(pair.b, key=KEY, id_run="r1", after=1, timeout=0.2) == ([], False)
    assert 0.15 < time.monotonic() - started < 1.5


async def test_a_waiting_reader_wakes_on_publish_and_on_close(pair: Pair) -> None:
    await pair.a.open(key=KEY, id_run="r1", on_interrupt=Interrupts())

    waiting = asyncio.create_task(read(pair.b, key=KEY, id_run="r1", after=0, timeout=10))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await pair.a.publish(key=KEY, id_run="r1", seq=1, event=TextChunk("x"))
    assert await waiting == ([(1, TextChunk("x"))], False)
    assert time.monotonic() - started < 1

    waiting = asyncio.create_task(read(pair.b, key=KEY, id_run="r1", after=1, timeout=10))
    await asyncio.sleep(0.1)
    await pair.a.close(key=KEY, id_run="r1")
    assert await asyncio.wait_for(waiting, 2) == ([], True)


async def test_interrupt_reaches_the_callback_of_the_owner(pair: Pair) -> None:
    with pytest.raises(NoActiveRun):
        await pair.b.interrupt(key=KEY, reason="stop")
    interrupts = Interrupts()
    await pair.a.open(key=KEY, id_run="r1", on_interrupt=interrupts)

    assert await pair.b.interrupt(key=KEY, reason="interrupted by the user") == "r1"

    await asyncio.wait_for(interrupts.seen.wait(), 2)
    assert interrupts.reasons == ["interrupted by the user"]
    assert await pair.a.active(key=KEY) == "r1", "the owner closes the run once it stopped"


async def test_unknown_runs_and_other_tasks_are_unknown_event_ids(pair: Pair) -> None:
    with pytest.raises(UnknownEventId):
        await read(pair.b, key=KEY, id_run="nope", after=0, timeout=0)
    await pair.a.open(key=KEY, id_run="r1", on_interrupt=Interrupts())
    await pair.a.publish(key=KEY, id_run="r1", seq=1, event=TextChunk("x"))

    with pytest.raises(UnknownEventId):
        await read(pair.b, key=TaskKey("agent", "another-task"), id_run="r1", after=0, timeout=0)
    with pytest.raises(UnknownEventId):
        await read(pair.b, key=TaskKey("another-agent", "task-1"), id_run="r1", after=0, timeout=0)


async def test_a_run_opened_but_silent_is_readable(pair: Pair) -> None:
    await pair.a.open(key=KEY, id_run="r1", on_interrupt=Interrupts())

    assert await read(pair.b, key=KEY, id_run="r1", after=0, timeout=0.05) == ([], False)


async def test_closed_runs_stay_readable_until_they_expire(pair: Pair) -> None:
    registry = pair.make(keep_s=0.3)
    await registry.open(key=KEY, id_run="r1", on_interrupt=Interrupts())
    await registry.publish(key=KEY, id_run="r1", seq=1, event=Finished())
    await registry.close(key=KEY, id_run="r1")

    assert await read(registry, key=KEY, id_run="r1", after=0, timeout=0) == ([(1, Finished())], True)
    await asyncio.sleep(0.5)
    await registry.open(key=KEY, id_run="r2", on_interrupt=Interrupts())  # the in-memory buffer prunes here

    with pytest.raises(UnknownEventId):
        await read(registry, key=KEY, id_run="r1", after=0, timeout=0)


async def test_nothing_expires_while_the_owner_lives(pair: Pair) -> None:
    registry = pair.make(**({"lease_s": 0.3} if pair.kind == "redis" else {}))
    await registry.open(key=KEY, id_run="r1", on_interrupt=Interrupts())

    other = pair.b if pair.kind == "redis" else registry

    await asyncio.sleep(0.8 if pair.kind == "redis" else 0)  # more than two leases: the heartbeat renews

    assert await other.expired_runs() == []
    assert await other.reap(id_runs=["r1"], reason="x") == []
    assert await other.live_runs() == {"r1"}
    assert await other.active(key=KEY) == "r1"


# --- Redis only: several replicas, leases ------------------------------------------------------------


REDIS_ONLY = pytest.mark.parametrize("pair", ["redis"], indirect=True)


@REDIS_ONLY
async def test_a_dead_replicas_run_is_reaped_once_for_its_followers(pair: Pair) -> None:
    dying = pair.make(lease_s=0.3)
    await dying.open(key=KEY, id_run="r1", on_interrupt=Interrupts())
    await dying.publish(key=KEY, id_run="r1", seq=1, event=TextChunk("half"))
    await dying.aclose()  # the heartbeat stops: as if the process was killed
    follower = asyncio.create_task(read(pair.b, key=KEY, id_run="r1", after=1, timeout=5))

    deadline = time.monotonic() + 3
    while not await pair.b.expired_runs():
        assert time.monotonic() < deadline, "the lease never expired"
        await asyncio.sleep(0.05)
    assert await pair.b.live_runs() == set()
    reaped = await asyncio.gather(*(r.reap(id_runs=["r1"], reason="server gone") for r in (pair.a, pair.b)))

    assert sorted(reaped) == [[], ["r1"]], "exactly one reaper ends the run"
    assert await asyncio.wait_for(follower, 2) == ([(2, Interrupted("server gone"))], True)
    assert await read(pair.a, key=KEY, id_run="r1", after=0, timeout=0) == (
        [(1, TextChunk("half")), (2, Interrupted("server gone"))],
        True,
    )
    assert await pair.b.active(key=KEY) is None
    assert await pair.b.expired_runs() == []
    await pair.b.open(key=KEY, id_run="r2", on_interrupt=Interrupts())


@REDIS_ONLY
async def test_a_run_that_ended_but_was_never_closed_keeps_its_terminal_event(pair: Pair) -> None:
    dying = pair.make(lease_s=0.3)
    await dying.open(key=KEY, id_run="r1", on_interrupt=Interrupts())
    await dying.publish(key=KEY, id_run="r1", seq=1, event=TextChunk("all"))
    await dying.publish(key=KEY, id_run="r1", seq=2, event=Finished())
    await dying.aclose()  # died between the terminal event and close

    deadline = time.monotonic() + 3
    while await pair.b.reap(id_runs=["r1"], reason="gone") != ["r1"]:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)

    assert await read(pair.b, key=KEY, id_run="r1", after=0, timeout=0) == (
        [(1, TextChunk("all")), (2, Finished())],
        True,
    )


@REDIS_ONLY
async def test_a_run_that_lost_its_lease_is_interrupted_and_its_late_events_dropped(pair: Pair) -> None:
    owner = pair.make(lease_s=0.3)
    interrupts = Interrupts()
    await owner.open(key=KEY, id_run="r1", on_interrupt=interrupts)
    raw = Redis.from_url(REDIS_URL)
    await raw.delete(f"{owner._keys.prefix}:claim:agent/task-1")  # as if it expired while the process was frozen
    await raw.aclose()

    await asyncio.wait_for(interrupts.seen.wait(), 2)
    assert interrupts.reasons == [LEASE_LOST]
    deadline = time.monotonic() + 3
    while not await pair.b.expired_runs():
        assert time.monotonic() < deadline, "the lost lease is never renewed, so it expires"
        await asyncio.sleep(0.05)
    assert await pair.b.reap(id_runs=["r1"], reason="gone") == ["r1"]
    await owner.publish(key=KEY, id_run="r1", seq=1, event=Interrupted(LEASE_LOST))  # too late: dropped
    await owner.close(key=KEY, id_run="r1")

    assert await read(pair.b, key=KEY, id_run="r1", after=0, timeout=0) == ([(1, Interrupted("gone"))], True)


@REDIS_ONLY
async def test_interrupt_through_another_replica_uses_pub_sub(pair: Pair) -> None:
    interrupts = Interrupts()
    await pair.a.open(key=KEY, id_run="r1", on_interrupt=interrupts)

    assert await pair.b.interrupt(key=KEY, reason="from b") == "r1"

    await asyncio.wait_for(interrupts.seen.wait(), 2)
    assert interrupts.reasons == ["from b"]


@REDIS_ONLY
async def test_closing_ends_a_task_that_lost_its_first_cancellation(pair: Pair) -> None:
    registry = pair.make()
    assert isinstance(registry, RedisRunRegistry)
    await registry.open(key=KEY, id_run="r1", on_interrupt=Interrupts())

    async def stubborn() -> None:
        with contextlib.suppress(asyncio.CancelledError):  # as a lost cancellation would
            await asyncio.sleep(3600)
        await asyncio.sleep(3600)

    task = asyncio.create_task(stubborn())
    registry._tasks.append(task)
    await asyncio.sleep(0)
    await asyncio.wait_for(registry.aclose(), 10)
    assert task.cancelled()
