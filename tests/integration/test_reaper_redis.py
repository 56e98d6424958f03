"""Reaper with Redis and SQLite: a dead replica's run ends for its followers and is stored as interrupted."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.redis_runs import RedisRunRegistry
from adapters.sqlalchemy_store import SqlAlchemyTaskStore, create_database
from adapters.sqlalchemy_store.migrate import upgrade_async
from application.reaper import REAPED, Reaper
from domain.events import Interrupted, TextChunk
from domain.model import Driver, MessageRequest, MessageResponse, Task, TaskKey, Thread, ThreadStatus
from tests.conftest import REDIS_URL, need
from tests.integration.conftest import sqlite_url
from tests.integration.test_run_registry_contract import redis_cleanup
from tests.registry_reads import read

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def replicas() -> AsyncIterator[Callable[..., RedisRunRegistry]]:
    need(REDIS_URL, "Redis")
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    made: list[RedisRunRegistry] = []

    def make(**options: Any) -> RedisRunRegistry:
        made.append(RedisRunRegistry.from_url(REDIS_URL, prefix=prefix, **options))
        return made[-1]

    yield make
    for registry in made:
        await registry.aclose()
    await redis_cleanup(prefix)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlAlchemyTaskStore]:
    url = sqlite_url(tmp_path)
    await upgrade_async(url)
    db = create_database(url)
    yield SqlAlchemyTaskStore(db)
    await db.dispose()


async def add_running(store: SqlAlchemyTaskStore, id_task: str, id_run: str) -> TaskKey:
    key = TaskKey("agent", id_task)
    request = MessageRequest("agent", "team", id_task, "hi", T0)
    response = replace(MessageResponse("agent", "team", id_task, T0), text="half")
    thread = Thread(f"th-{id_task}", request, response, id_run=id_run)
    await store.add_task(task=Task("agent", id_task, "team", "t", Driver.AUTO, T0, T0, [thread]))
    return key


async def status(store: SqlAlchemyTaskStore, key: TaskKey) -> tuple[ThreadStatus, str | None]:
    task = await store.get_task(key=key)
    assert task is not None and task.threads[0].response is not None
    return task.threads[0].status, task.threads[0].response.reason


async def test_a_survivor_reaps_a_dead_replicas_run(
    replicas: Callable[..., RedisRunRegistry], store: SqlAlchemyTaskStore
) -> None:
    dying, survivor = replicas(lease_s=0.3), replicas(lease_s=0.3)
    key = await add_running(store, "t1", "r1")
    await dying.open(key=key, id_run="r1", on_interrupt=lambda reason: None)
    await dying.publish(key=key, id_run="r1", seq=1, event=TextChunk("half"))
    await dying.aclose()  # killed: no more heartbeats
    follower = asyncio.create_task(read(survivor, key=key, id_run="r1", after=1, timeout=10))
    reaper = Reaper(registry=survivor, store=store, interval_s=0.05)
    started = time.monotonic()

    reaper.start()
    try:
        events, ended = await asyncio.wait_for(follower, 5)
    finally:
        await reaper.stop()

    assert (events, ended) == ([(2, Interrupted(REAPED))], True)
    assert time.monotonic() - started < 1.5
    assert await status(store, key) == (ThreadStatus.INTERRUPTED, REAPED)


async def test_recovery_spares_runs_live_on_another_replica(
    replicas: Callable[..., RedisRunRegistry], store: SqlAlchemyTaskStore
) -> None:
    other, starting = replicas(), replicas()
    live = await add_running(store, "t-live", "r-live")
    orphan = await add_running(store, "t-orphan", "r-orphan")
    await other.open(key=live, id_run="r-live", on_interrupt=lambda reason: None)

    assert await Reaper(registry=starting, store=store).recover() == 1

    assert await status(store, live) == (ThreadStatus.RUNNING, None)
    assert await status(store, orphan) == (ThreadStatus.INTERRUPTED, "server restarted")
