from __future__ import annotations

import asyncio

from adapters.memory_runs import InMemoryRunRegistry
from application.reply import ReplyBuilder
from application.run import LiveRun, Runner
from domain.events import Finished, Interrupted, TextChunk
from tests.fakes import FakeBlobStore, FakeTaskStore, ScriptedLLM
from tests.registry_reads import read
from tests.unit.conftest import request


async def opened() -> tuple[Runner, LiveRun, ScriptedLLM, InMemoryRunRegistry]:
    llm, registry = ScriptedLLM([TextChunk("hi")]), InMemoryRunRegistry()
    runner = Runner(store=FakeTaskStore(), llm=llm, blobs=FakeBlobStore(), registry=registry, persist_interval_s=1)
    message = request()
    run = LiveRun(message.key, "r1", "th1", message, [], ReplyBuilder(message, message.created_at))
    await registry.open(key=run.key, id_run=run.id_run, on_interrupt=run.interrupt)
    return runner, run, llm, registry


async def events_of(registry: InMemoryRunRegistry, run: LiveRun) -> list[object]:
    found, ended = await read(registry, key=run.key, id_run=run.id_run, after=0, timeout=0)
    assert ended
    return [event for _, event in found]


async def test_a_primed_model_publishes_nothing_until_the_run_begins() -> None:
    runner, run, llm, registry = await opened()
    runner.prime(run)
    await asyncio.sleep(0.01)  # (the request being stored)

    assert len(llm.calls) == 1
    assert await read(registry, key=run.key, id_run=run.id_run, after=0, timeout=0) == ([], False)
    await runner.execute(run)
    assert await events_of(registry, run) == [TextChunk("hi"), Finished()]


async def test_a_run_interrupted_before_it_is_primed_never_calls_its_model() -> None:
    runner, run, llm, registry = await opened()
    run.interrupt("stop")
    runner.prime(run)
    await asyncio.sleep(0.01)
    await runner.execute(run)

    assert llm.calls == [] and await events_of(registry, run) == [Interrupted("stop")]


async def test_an_unprimed_model_is_closed_and_a_new_one_runs_the_run() -> None:
    runner, run, llm, registry = await opened()
    runner.prime(run)
    await asyncio.sleep(0.01)
    await runner.unprime(run)
    await runner.unprime(run)  # (twice: nothing more)

    assert (len(llm.calls), llm.closed) == (1, 1)
    await runner.execute(run)
    assert (len(llm.calls), llm.closed) == (2, 2)
    assert await events_of(registry, run) == [TextChunk("hi"), Finished()]


async def test_an_interrupt_while_a_primed_pump_waits_for_the_run_to_begin_ends_it_and_counts_it_once() -> None:
    runner, run, llm, registry = await opened()
    runner.prime(run)
    await asyncio.sleep(0.01)  # the pump took the first event and waits at its gate
    run.interrupt("stop")  # (the claim registered the run: an interrupt may come before it begins)
    await asyncio.sleep(0)
    runner.begin(run)
    assert runner.running == 1
    await runner.execute(run)

    assert runner.running == 0 and llm.closed == 1
    assert await events_of(registry, run) == [Interrupted("stop")]


async def test_a_primed_pump_stopped_by_an_interrupt_is_still_unprimed() -> None:
    runner, run, llm, _ = await opened()
    runner.prime(run)
    await asyncio.sleep(0.01)
    run.interrupt("stop")
    await runner.unprime(run)

    assert llm.closed == 1  # closed by the time unprime returns
