"""RedisRunRegistry: the run registry shared by every replica (and uvicorn worker) through Redis.

Per run: a claim `<prefix>:claim:<agent>/<task>` (SET NX PX: one run per task, a lease renewed by a heartbeat),
an entry in the `<prefix>:leases` sorted set (deadline, for reapers), a stream `<prefix>:run:<id_run>` of its
events (see redis_scripts) and a hash `<prefix>:meta:<id_run>` (task and owner replica). Interrupts go to the
owner over pub/sub on `<prefix>:interrupt:<replica>`. Ended runs stay readable for `keep_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from adapters import event_codec, redis_scripts
from domain.errors import NoActiveRun, TaskBusy, UnknownEventId
from domain.events import Interrupted, MessageChunk
from domain.model import TaskKey
from domain.ports import EventSink

log = logging.getLogger(__name__)

LEASE_LOST = "the server lost track of this reply"
MARKER = b"1-0"
BLOCK_SLICE_S = 4.0


@dataclass(slots=True)
class _Local:
    key: TaskKey
    on_interrupt: Callable[[str], None]
    lost: bool = False


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix.rstrip(":")
        self.leases = f"{self.prefix}:leases"
        self.unknown = f"{self.prefix}:claim:?"

    def claim(self, key: TaskKey) -> str:
        return f"{self.prefix}:claim:{key.id_team_agent}/{key.id_task}"  # '/' is in no id

    def stream(self, id_run: str) -> str:
        return f"{self.prefix}:run:{id_run}"

    def meta(self, id_run: str) -> str:
        return f"{self.prefix}:meta:{id_run}"

    def channel(self, replica: str) -> str:
        return f"{self.prefix}:interrupt:{replica}"


class RedisRunRegistry:
    """Runs shared by replicas. `start()` (or the first `open`) subscribes to interrupts and starts the heartbeat;
    `aclose()` stops both (and closes the client if this registry made it)."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "agent-stream",
        lease_s: float = 15.0,
        keep_s: float = 300.0,
        max_events: int = 50_000,
        read_batch: int = 1000,
        owns_client: bool = False,
    ) -> None:
        self._redis = redis
        self._keys = Keys(prefix)
        self._lease_ms = max(int(lease_s * 1000), 100)
        self._keep_ms = max(int(keep_s * 1000), 1)
        self._max_events = max_events
        self._batch = read_batch
        self._owns_client = owns_client
        self.replica = uuid.uuid4().hex[:16]
        self._local: dict[str, _Local] = {}
        self._pubsub: PubSub | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._start_lock = asyncio.Lock()
        self._open = redis.register_script(redis_scripts.OPEN)
        self._renew = redis.register_script(redis_scripts.RENEW)
        self._publish = redis.register_script(redis_scripts.PUBLISH)
        self._close = redis.register_script(redis_scripts.CLOSE)
        self._reap = redis.register_script(redis_scripts.REAP)
        self._leases = redis.register_script(redis_scripts.LEASES)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisRunRegistry:
        """A registry over its own client (no connection is made before the first command)."""
        return cls(Redis.from_url(url, health_check_interval=30), owns_client=True, **options)

    async def start(self) -> None:
        """Subscribe to this replica's interrupt channel (confirmed) and start the heartbeat."""
        async with self._start_lock:
            if self._tasks:
                return
            pubsub = self._redis.pubsub()
            await pubsub.subscribe(self._keys.channel(self.replica))
            async with asyncio.timeout(10):
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and _text(message["type"]) == "subscribe":
                        break
            self._pubsub = pubsub
            self._tasks = [asyncio.create_task(self._listen(pubsub)), asyncio.create_task(self._heartbeat())]

    async def aclose(self) -> None:
        # cancelled again until they end: a cancellation can get lost inside redis-py (seen once: a close
        # waited over 120 s while the loop kept waking at the heartbeat's period)
        rounds = 0
        while running := [task for task in self._tasks if not task.done()]:
            if rounds:
                log.warning("%d registry tasks still running after %d cancellations", len(running), rounds)
            rounds += 1
            for task in running:
                task.cancel()
            await asyncio.wait(running, timeout=1.0)
        for task in self._tasks:
            if not task.cancelled():
                task.exception()  # retrieved: a task that failed before the close has nothing more to say
        self._tasks = []
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None
        if self._owns_client:
            await self._redis.aclose()

    async def open(self, *, key: TaskKey, id_run: str, on_interrupt: Callable[[str], None]) -> None:
        await self.start()
        keys = [self._keys.claim(key), self._keys.leases, self._keys.meta(id_run)]
        args: list[str | int] = [id_run, self._lease_ms, key.id_team_agent, key.id_task, self.replica]
        if not await self._open(keys=keys, args=args):
            raise TaskBusy()
        self._local[id_run] = _Local(key, on_interrupt)

    async def publish(self, *, key: TaskKey, id_run: str, seq: int, event: MessageChunk) -> None:
        args: list[bytes | int] = [seq, event_codec.dumps(event), self._max_events]
        if not await self._publish(keys=[self._keys.stream(id_run)], args=args):
            log.warning("event %s of run %s dropped: the run was already ended (reaped?)", seq, id_run)

    async def close(self, *, key: TaskKey, id_run: str) -> None:
        self._local.pop(id_run, None)
        keys = [self._keys.claim(key), self._keys.leases, self._keys.stream(id_run), self._keys.meta(id_run)]
        try:
            await self._close(keys=keys, args=[id_run, self._keep_ms])
        except (RedisError, OSError):
            # no more heartbeats: the lease runs out and a reaper closes the run (its terminal event is kept)
            log.warning("could not close run %s; it is reaped once its lease runs out", id_run, exc_info=True)

    async def active(self, *, key: TaskKey) -> str | None:
        id_run = await self._redis.get(self._keys.claim(key))
        return None if id_run is None else _text(id_run)

    async def read_encoded(
        self, *, key: TaskKey, id_run: str, after: int, timeout: float
    ) -> tuple[list[tuple[int, bytes]], bool]:
        after = max(after, 0)
        stream = self._keys.stream(id_run)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hmget(self._keys.meta(id_run), ["agent", "task"])
            pipe.xrange(stream, min=f"0-{after + 1}", max="+", count=self._batch)
            owner, entries = await pipe.execute()
        if [None if v is None else _text(v) for v in owner] != [key.id_team_agent, key.id_task]:
            raise UnknownEventId()
        if not entries and timeout > 0:
            entries = await self._wait(stream, after, timeout)
        return _events(entries, after)

    async def push_encoded(self, *, key: TaskKey, id_run: str, after: int, timeout: float, sink: EventSink) -> bool:
        """Never: events go through Redis, whichever replica runs them, and followers read them there."""
        return False

    async def _wait(self, stream: str, after: int, timeout: float) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """XREAD BLOCK in slices shorter than the client's socket timeout (redis-py's default is 5 s)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            block_ms = max(int(min(left, BLOCK_SLICE_S) * 1000), 1)
            found: Any = await self._redis.xread({stream: f"0-{after}"}, count=self._batch, block=block_ms)
            if found:
                return [entry for _stream, entries in found for entry in entries]
        return []

    async def interrupt(self, *, key: TaskKey, reason: str) -> str:
        id_run = await self.active(key=key)
        if id_run is None:
            raise NoActiveRun()
        local = self._local.get(id_run)
        if local is not None:
            local.on_interrupt(reason)
            return id_run
        replica = await self._redis.hget(self._keys.meta(id_run), "replica")
        if replica is not None:
            message = orjson.dumps({"id_run": id_run, "reason": reason})
            if not await self._redis.publish(self._keys.channel(_text(replica)), message):
                log.warning("the replica of run %s does not listen: it is reaped once its lease runs out", id_run)
        return id_run

    async def live_runs(self) -> set[str]:
        return {_text(i) for i in await self._leases(keys=[self._keys.leases], args=["live"])}

    async def expired_runs(self) -> list[str]:
        return [_text(i) for i in await self._leases(keys=[self._keys.leases], args=["expired"])]

    async def reap(self, *, id_runs: Sequence[str], reason: str) -> list[str]:
        ended: list[str] = []
        interrupted = event_codec.dumps(Interrupted(reason=reason))
        for id_run in id_runs:
            agent, task = await self._redis.hmget(self._keys.meta(id_run), ["agent", "task"])
            claim = self._keys.claim(TaskKey(_text(agent), _text(task))) if agent and task else self._keys.unknown
            keys = [claim, self._keys.leases, self._keys.stream(id_run), self._keys.meta(id_run)]
            if await self._reap(keys=keys, args=[id_run, self._keep_ms, interrupted]):
                ended.append(id_run)
        return ended

    async def _listen(self, pubsub: PubSub) -> None:
        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            except (RedisError, OSError):
                log.warning("interrupt subscription failed; retrying", exc_info=True)
                await asyncio.sleep(1.0)
                continue
            if message is None or _text(message["type"]) != "message":
                continue
            try:
                data = orjson.loads(message["data"])
                local = self._local.get(data["id_run"])
                if local is not None:
                    local.on_interrupt(str(data["reason"]))
            except Exception:
                log.exception("bad interrupt message %r", message.get("data"))

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self._lease_ms / 3000)
            await self.renew()

    async def renew(self) -> None:
        """Extend the lease of every run open here; a run whose lease was lost is interrupted."""
        runs = [(id_run, run) for id_run, run in self._local.items() if not run.lost]
        if not runs:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for id_run, run in runs:
                    await self._renew(
                        keys=[self._keys.claim(run.key), self._keys.leases], args=[id_run, self._lease_ms], client=pipe
                    )
                results = await pipe.execute()
        except (RedisError, OSError):
            log.warning("could not renew %d run leases", len(runs), exc_info=True)
            return
        for (id_run, run), renewed in zip(runs, results, strict=True):
            if not renewed:
                log.warning("run %s lost its lease; interrupting it", id_run)
                run.lost = True
                run.on_interrupt(LEASE_LOST)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _events(entries: list[tuple[bytes, dict[bytes, bytes]]], after: int) -> tuple[list[tuple[int, bytes]], bool]:
    """The encoded events of stream entries; a gap after `after` (events trimmed away) reads as an unknown id."""
    events: list[tuple[int, bytes]] = []
    expected = after + 1
    for entry_id, fields in entries:
        if entry_id == MARKER:
            if int(fields[b"end"]) >= expected:
                raise UnknownEventId()
            return events, True
        seq = int(entry_id.split(b"-")[1])
        if seq != expected and seq > 1:
            raise UnknownEventId()
        events.append((seq, fields[b"e"]))
        expected = seq + 1
    return events, False
