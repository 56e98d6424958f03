"""Reaper over the in-process registry: recovery at startup interrupts exactly the replies nobody runs."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

from adapters.memory_runs import InMemoryRunRegistry
from application.reaper import Reaper
from domain.model import Driver, MessageRequest, MessageResponse, Task, TaskKey, Thread, ThreadStatus
from tests.fakes import FakeTaskStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def running_thread(key: TaskKey, id_thread: str, id_run: str) -> Thread:
    request = MessageRequest(key.id_team_agent, "team", key.id_task, "hi", T0)
    response = replace(MessageResponse(key.id_team_agent, "team", key.id_task, T0), text="half")
    return Thread(id_thread, request, response, id_run=id_run)


async def test_recover_interrupts_orphans_and_spares_live_runs() -> None:
    store, registry = FakeTaskStore(), InMemoryRunRegistry()
    for id_task, id_run in (("t1", "dead"), ("t2", "live")):
        key = TaskKey("agent", id_task)
        thread = running_thread(key, f"th-{id_task}", id_run)
        await store.add_task(task=Task("agent", id_task, "team", "t", Driver.AUTO, T0, T0, [thread]))
    await registry.open(key=TaskKey("agent", "t2"), id_run="live", on_interrupt=lambda reason: None)
    reaper = Reaper(registry=registry, store=store, interval_s=0.01)

    assert await reaper.recover() == 1
    assert await reaper.recover() == 0

    dead, live = store.tasks[TaskKey("agent", "t1")].threads[0], store.tasks[TaskKey("agent", "t2")].threads[0]
    assert dead.status is ThreadStatus.INTERRUPTED
    assert dead.response is not None and dead.response.reason == "server restarted"
    assert live.status is ThreadStatus.RUNNING


async def test_in_process_runs_never_expire_and_the_loop_stops() -> None:
    reaper = Reaper(registry=InMemoryRunRegistry(), store=FakeTaskStore(), interval_s=0.01)

    assert await reaper.reap_once() == []
    reaper.start()
    await reaper.stop()
    await reaper.stop()


async def test_recover_spares_a_reply_whose_run_opens_while_it_settles() -> None:
    store, registry = FakeTaskStore(), InMemoryRunRegistry()
    for id_task in ("t1", "t2"):
        key = TaskKey("agent", id_task)
        thread = running_thread(key, f"th-{id_task}", f"run-{id_task}")
        await store.add_task(task=Task("agent", id_task, "team", "t", Driver.AUTO, T0, T0, [thread]))
    reaper = Reaper(registry=registry, store=store, settle_s=0.2)

    async def claimed_late() -> None:  # the first message of a new task: stored, then claimed
        await asyncio.sleep(0.05)
        await registry.open(key=TaskKey("agent", "t1"), id_run="run-t1", on_interrupt=lambda reason: None)

    claiming = asyncio.create_task(claimed_late())
    assert await reaper.recover() == 1
    await claiming

    assert store.tasks[TaskKey("agent", "t1")].threads[0].status is ThreadStatus.RUNNING
    assert store.tasks[TaskKey("agent", "t2")].threads[0].status is ThreadStatus.INTERRUPTED
