from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
from datetime import timedelta

import pytest

from application.run import INTERNAL_ERROR, LiveRun
from domain.errors import LLMError, ShuttingDown, TaskBusy, TaskNotFound, UnknownEventId
from domain.events import (
    Error,
    Finished,
    Interrupted,
    MediaChunk,
    MessageChunk,
    ModelTurn,
    ReasoningChunk,
    Started,
    TextChunk,
    UsageReport,
)
from domain.model import Attachment, MessageResponse, TaskKey, ThreadStatus, Usage
from tests.registry_reads import read
from tests.unit.conftest import World, request


async def collect(world: World, run: LiveRun) -> list[MessageChunk]:
    events: list[MessageChunk] = []
    after = 0
    while True:
        batch, ended = await read(world.registry, key=run.key, id_run=run.id_run, after=after, timeout=5)
        events += [event for _, event in batch]
        if batch:
            after = batch[-1][0]
        if ended:
            return events


async def test_a_reply_streams_and_is_stored_with_the_request(world: World) -> None:
    world.llm.script = [
        TextChunk("Hi"),
        ReasoningChunk("thinking"),
        TextChunk(" there"),
        UsageReport(Usage(1, 2, 3, 6)),
    ]

    run, started = await world.conversation.start(request())
    events = await collect(world, run)

    assert isinstance(events[0], Started) and events[0] == started
    assert events[1:] == [TextChunk("Hi"), ReasoningChunk("thinking"), TextChunk(" there"), Finished()]
    task = world.store.tasks[TaskKey("agent", "t1")]
    assert task.title == "hello world"
    [thread] = task.threads
    assert thread.request.text == "hello world"
    assert thread.response is not None
    assert (thread.response.text, thread.response.reasoning) == ("Hi there", "thinking")
    assert thread.response.is_finished and thread.response.event == "finished"
    assert thread.response.usage == Usage(1, 2, 3, 6)


async def test_the_request_is_stored_before_the_reply_starts(world: World) -> None:
    world.llm.gate = asyncio.Event()
    world.llm.script = [TextChunk("late")]

    run, _ = await world.conversation.start(request())

    [thread] = world.store.tasks[run.key].threads
    assert thread.status is ThreadStatus.RUNNING
    assert thread.response is not None and thread.response.text == ""
    world.llm.gate.set()
    await run.done.wait()


async def test_a_failing_model_ends_with_an_error_event_and_keeps_the_request(world: World) -> None:
    world.llm.script = [TextChunk("partial"), LLMError("The model is overloaded, try again", retryable=True)]

    run, _ = await world.conversation.start(request())
    events = await collect(world, run)

    assert events[-1] == Error("The model is overloaded, try again")
    response = world.store.tasks[run.key].threads[0].response
    assert response is not None and response.is_error and response.text == "partial"
    assert response.error == "The model is overloaded, try again"


async def test_a_bug_in_the_model_adapter_never_leaks_its_text(world: World) -> None:
    world.llm.script = [RuntimeError("secret /etc/passwd SELECT *")]

    run, _ = await world.conversation.start(request())
    events = await collect(world, run)

    assert events[-1] == Error(INTERNAL_ERROR)


async def test_interrupt_cancels_the_model_and_stores_the_partial_reply(world: World) -> None:
    world.llm.script = [TextChunk("one"), TextChunk("two")]
    world.llm.gate = asyncio.Event()
    world.llm.gate.set()
    hold = asyncio.Event()

    async def held_stream(**kwargs):  # type: ignore[no-untyped-def]
        yield TextChunk("one")
        await hold.wait()
        yield TextChunk("never")

    world.llm.stream = held_stream  # type: ignore[method-assign]
    run, _ = await world.conversation.start(request())
    while run.seq < 2:
        await asyncio.sleep(0.01)

    assert await world.conversation.interrupt(key=run.key, reason="stop") == run.id_run
    events = await collect(world, run)

    assert events[-1] == Interrupted("stop")
    response = world.store.tasks[run.key].threads[0].response
    assert response is not None and response.is_interrupted and response.reason == "stop"
    assert response.text == "one"


async def test_a_second_message_while_a_reply_runs_is_refused(world: World) -> None:
    world.llm.gate = asyncio.Event()
    world.llm.script = [TextChunk("x")]
    run, _ = await world.conversation.start(request())

    with pytest.raises(TaskBusy):
        await world.conversation.start(request("again"))

    assert len(world.store.tasks[run.key].threads) == 1
    world.llm.gate.set()
    await run.done.wait()
    second, _ = await world.conversation.start(request("again"))
    await second.done.wait()
    assert len(world.store.tasks[run.key].threads) == 2


async def test_a_task_of_another_team_is_not_found(world: World) -> None:
    run, _ = await world.conversation.start(request())
    await run.done.wait()

    with pytest.raises(TaskNotFound):
        await world.conversation.start(request(id_team="intruder"))

    assert len(world.store.tasks[run.key].threads) == 1


@pytest.mark.parametrize("double_text", ["reject", "interrupt"])
async def test_a_busy_task_of_another_team_is_not_found_and_keeps_running(double_text: str) -> None:
    world = World(double_text=double_text)
    world.llm.gate = asyncio.Event()
    world.llm.script = [TextChunk("x")]
    run, _ = await world.conversation.start(request())

    with pytest.raises(TaskNotFound):
        await world.conversation.start(request("intrusion", id_team="intruder"))

    assert run.interrupt_reason is None
    assert await world.registry.active(key=run.key) == run.id_run
    world.llm.gate.set()
    await run.done.wait()
    assert [t.request.text for t in world.store.tasks[run.key].threads] == ["hello world"]


async def test_a_request_of_another_team_never_holds_the_task_meanwhile(world: World) -> None:
    first, _ = await world.conversation.start(request("mine"))
    await first.done.wait()
    gate, store = asyncio.Event(), world.store
    for name in ("get_task", "add_task_or_get"):  # every store call of the intruder is slow

        async def slow_for_the_intruder(_real=getattr(store, name), **kwargs):  # type: ignore[no-untyped-def]
            task = asyncio.current_task()
            if task is not None and task.get_name() == "intruder":
                await gate.wait()
            return await _real(**kwargs)

        setattr(store, name, slow_for_the_intruder)
    intruder = asyncio.create_task(world.conversation.start(request("let me in", id_team="x")), name="intruder")
    await asyncio.sleep(0.01)

    second, _ = await world.conversation.start(request("mine again"))
    gate.set()
    with pytest.raises(TaskNotFound):
        await intruder
    await second.done.wait()
    assert [t.request.text for t in world.store.tasks[second.key].threads] == ["mine", "mine again"]


async def test_another_team_that_read_before_the_task_existed_cannot_interrupt_it() -> None:
    world = World(double_text="interrupt")
    world.llm.gate = asyncio.Event()
    world.llm.script = [TextChunk("x")]
    run, _ = await world.conversation.start(request())  # the owner's run, holding the task
    miss_the_first_read(world)  # as if the intruder had read before the task was created
    intruder = request("let me in", id_team="x")

    with pytest.raises(TaskNotFound):
        await world.conversation.start(intruder)

    assert run.interrupt_reason is None
    world.llm.gate.set()
    await run.done.wait()
    assert [t.request.text for t in world.store.tasks[run.key].threads] == ["hello world"]


async def test_history_goes_to_the_model(world: World) -> None:
    world.llm.script = [TextChunk("a")]
    first, _ = await world.conversation.start(request("first"))
    await first.done.wait()
    second, _ = await world.conversation.start(request("second"))
    await second.done.wait()

    history, current = world.llm.calls[1]
    assert [t.request.text for t in history] == ["first"]
    assert current.text == "second"


async def test_a_created_task_request_is_answered_not_duplicated(world: World) -> None:
    task = await world.tasks.create(id_team_agent="agent", id_team="team", text="plan a trip", id_task="t1")
    assert task.threads[0].response is None

    run, _ = await world.conversation.start(request("plan a trip"))
    await run.done.wait()

    [thread] = world.store.tasks[run.key].threads
    assert thread.response is not None and thread.response.is_finished
    [(history, _)] = world.llm.calls  # read, not tried as a new task: no model started without its history
    assert history == []


async def test_a_task_created_here_is_read_by_its_first_message_not_tried_as_a_new_one(world: World) -> None:
    await world.tasks.create(id_team_agent="agent", id_team="team", text="plan a trip", id_task="t1")
    calls = record_store_calls(world)
    run, _ = await world.conversation.start(request("plan a trip"))
    await run.done.wait()

    assert calls == ["get_task", "save_response", "save_response"]
    assert len(world.llm.calls) == 1


async def test_generated_media_is_kept_as_a_file(world: World) -> None:
    png = base64.b64encode(b"\x89PNG fake").decode()
    world.llm.script = [MediaChunk(kind="image", name="image-1.png", mime_type="image/png", content=png)]

    run, _ = await world.conversation.start(request())
    await run.done.wait()

    response = world.store.tasks[run.key].threads[0].response
    assert response is not None
    [attachment] = response.attachments
    assert attachment == Attachment("image-1.png", "image", "image/png", 9, attachment.id_file)
    assert world.blobs.files[("agent", attachment.id_file or "")][1] == b"\x89PNG fake"


async def test_the_model_turn_is_kept_for_replay(world: World) -> None:
    world.llm.script = [TextChunk("a"), ModelTurn([{"text": "a", "thought_signature": "c2ln"}])]

    run, _ = await world.conversation.start(request())
    await run.done.wait()

    assert world.store.tasks[run.key].threads[0].model_turn == [{"text": "a", "thought_signature": "c2ln"}]


async def test_long_replies_are_persisted_while_they_run(world: World) -> None:
    release = asyncio.Event()

    async def slow(**kwargs):  # type: ignore[no-untyped-def]
        for word in ["a", "b", "c", "d"]:
            yield TextChunk(word)
            await asyncio.sleep(0.03)
        await release.wait()

    world.llm.stream = slow  # type: ignore[method-assign]
    run, _ = await world.conversation.start(request())
    await asyncio.sleep(0.2)

    partial = [r for _, r in world.store.saves if r.text and not r.is_finished]
    assert partial, "a partial reply should have been stored before the end"
    assert world.store.tasks[run.key].threads[0].status is ThreadStatus.RUNNING
    release.set()
    await run.done.wait()


async def test_reading_a_task_shows_the_live_partial_reply() -> None:
    world = World(persist_interval_s=60)  # no periodic write: the overlay is what shows it
    hold = asyncio.Event()

    async def held(**kwargs):  # type: ignore[no-untyped-def]
        yield TextChunk("so far")
        await hold.wait()

    world.llm.stream = held  # type: ignore[method-assign]
    run, _ = await world.conversation.start(request())
    while run.seq < 2:
        await asyncio.sleep(0.01)

    task = await world.tasks.get(key=run.key)
    response = task.threads[0].response
    assert response is not None and response.text == "so far"
    assert not (response.is_finished or response.is_error or response.is_interrupted)
    hold.set()
    await run.done.wait()


async def test_drain_interrupts_what_does_not_end_in_time(world: World) -> None:
    hold = asyncio.Event()

    async def held(**kwargs):  # type: ignore[no-untyped-def]
        yield TextChunk("x")
        await hold.wait()

    world.llm.stream = held  # type: ignore[method-assign]
    run, _ = await world.conversation.start(request())

    await world.conversation.drain(grace_s=0.05)

    response = world.store.tasks[run.key].threads[0].response
    assert response is not None and response.is_interrupted and response.reason == "server shutting down"


def elsewhere(world: World) -> World:
    """Another process (a replica, or this one before a restart) on the same database."""
    return World(store=world.store)


def miss_the_first_read(world: World) -> None:
    """The store answers "no such task" once, as if POST /tasks created it right after that read: whatever
    the start reads first, the message must land in the task that holds the key."""
    real_get = world.store.get_task
    calls = 0

    async def stale_once(**kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return None if calls == 1 else await real_get(**kwargs)

    world.store.get_task = stale_once  # type: ignore[method-assign]


async def recreated(world: World, *, id_team: str = "team") -> None:
    """Task t1 was answered here, then deleted and created again by POST /tasks: its key is known here, and
    with `miss_the_first_read` the start reads it as gone."""
    run, _ = await world.conversation.start(request("zero"))
    await run.done.wait()
    await world.tasks.delete(key=run.key)
    await world.tasks.create(id_team_agent="agent", id_team=id_team, text="first", id_task="t1")
    world.llm.calls.clear()
    world.llm.closed = 0


@pytest.mark.parametrize("known", [False, True])
async def test_a_task_created_meanwhile_by_the_same_team_gets_the_message(world: World, known: bool) -> None:
    if known:
        await recreated(world)
    else:
        await elsewhere(world).tasks.create(id_team_agent="agent", id_team="team", text="first", id_task="t1")
    miss_the_first_read(world)
    run, _ = await world.conversation.start(request("second"))
    await run.done.wait()

    assert [t.request.text for t in world.store.tasks[run.key].threads] == ["first", "second"]


@pytest.mark.parametrize("known", [False, True])
async def test_a_task_created_meanwhile_by_another_team_is_not_found(world: World, known: bool) -> None:
    if known:
        await recreated(world, id_team="other")
    else:
        await elsewhere(world).tasks.create(id_team_agent="agent", id_team="other", text="first", id_task="t1")
    miss_the_first_read(world)
    with pytest.raises(TaskNotFound):
        await world.conversation.start(request("second"))

    assert await world.registry.active(key=TaskKey("agent", "t1")) is None


async def test_partial_saves_are_capped_for_the_whole_process() -> None:
    world = World(persist_interval_s=0.01, persist_max_per_s=20)

    async def slow(**kwargs):  # type: ignore[no-untyped-def]
        for word in range(10):
            yield TextChunk(str(word))
            await asyncio.sleep(0.02)

    world.llm.stream = slow  # type: ignore[method-assign]
    runs = [(await world.conversation.start(request(id_task=f"t{i}")))[0] for i in range(10)]
    await asyncio.gather(*(run.done.wait() for run in runs))

    partial = [r for _, r in world.store.saves if not (r.is_finished or r.is_error or r.is_interrupted)]
    finals = [r for _, r in world.store.saves if r.is_finished]
    assert len(finals) == 10
    assert len(partial) <= 20 * 0.3 + 10, "about 20 partial saves a second for all 10 runs together, not 100 each"


def hold_writes(world: World) -> asyncio.Event:
    """The store's write-ahead (a new task or a new thread) waits for the returned event."""
    release = asyncio.Event()
    for name in ("add_task_or_get", "add_thread"):
        real = getattr(world.store, name)

        async def held(real=real, **kwargs):  # type: ignore[no-untyped-def]
            await release.wait()
            return await real(**kwargs)

        setattr(world.store, name, held)
    return release


@pytest.mark.parametrize("kind", ["new task, its id the server's", "new task, its id the client's", "existing"])
async def test_the_model_starts_while_the_request_is_stored_and_nothing_is_published_before(
    world: World, kind: str
) -> None:
    existing = kind == "existing"
    if existing:
        first, _ = await world.conversation.start(request("first"))
        await first.done.wait()
        world.llm.calls.clear()
    world.llm.script = [TextChunk("early")]
    release = hold_writes(world)
    second = request("second", id_task="" if "server" in kind else "t1")
    starting = asyncio.create_task(world.conversation.start(second))
    while not world.llm.calls:
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)

    assert not starting.done()
    id_run = await world.registry.active(key=second.key)
    if "client" in kind:  # a key not seen here is claimed once stored (its team checked): no run yet
        assert id_run is None
    else:
        assert id_run is not None
        assert await read(world.registry, key=second.key, id_run=id_run, after=0, timeout=0) == ([], False)
    [(history, current)] = world.llm.calls
    assert [t.request.text for t in history] == (["first"] if existing else []) and current.text == "second"
    release.set()
    run, started = await starting
    assert await collect(world, run) == [started, TextChunk("early"), Finished()]


async def test_a_request_that_cannot_be_stored_stops_the_model_it_started(world: World) -> None:
    world.llm.script = [TextChunk("never seen")]
    world.llm.gate = asyncio.Event()

    async def broken(**kwargs):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.01)
        raise RuntimeError("database is gone")

    world.store.add_task_or_get = broken  # type: ignore[method-assign]
    fresh = request(id_task="")
    with pytest.raises(RuntimeError):
        await world.conversation.start(fresh)

    assert len(world.llm.calls) == 1 and world.llm.closed == 1
    assert await world.registry.active(key=fresh.key) is None


async def test_a_model_that_fails_while_the_request_is_stored_ends_the_run_with_its_error(world: World) -> None:
    world.llm.script = [LLMError("The model is overloaded, try again", retryable=True)]
    release = hold_writes(world)
    starting = asyncio.create_task(world.conversation.start(request(id_task="")))
    while not world.llm.closed:
        await asyncio.sleep(0)
    release.set()
    run, started = await starting

    assert await collect(world, run) == [started, Error("The model is overloaded, try again")]
    [thread] = world.store.tasks[run.key].threads
    assert thread.request.text == "hello world" and thread.response is not None and thread.response.is_error


@pytest.mark.parametrize("id_task", ["", "t1"])
async def test_a_run_interrupted_before_it_runs_stops_the_model_it_started(world: World, id_task: str) -> None:
    world.llm.script = [TextChunk("never seen")]
    world.llm.gate = asyncio.Event()
    run, _ = await world.conversation.start(request(id_task=id_task))
    run.interrupt("stop")  # before the run's task takes the model over
    await run.done.wait()

    assert (len(world.llm.calls), world.llm.closed) == (1, 1)  # a new task is stored while its model starts
    response = world.store.tasks[run.key].threads[0].response
    assert response is not None and response.is_interrupted and response.text == ""


async def test_a_model_started_without_the_history_of_a_task_created_meanwhile_is_restarted(world: World) -> None:
    await recreated(world)
    miss_the_first_read(world)
    world.llm.script = [TextChunk("ok")]
    release = hold_writes(world)
    starting = asyncio.create_task(world.conversation.start(request("second")))
    while not world.llm.calls:
        await asyncio.sleep(0)
    release.set()
    run, _ = await starting
    await run.done.wait()

    [(blind, _), (history, _)] = world.llm.calls
    assert blind == [] and [t.request.text for t in history] == ["first"]
    assert world.llm.closed == 2


async def test_with_replicas_a_task_created_meanwhile_elsewhere_gets_one_model_call_with_its_history() -> None:
    world = World(early_model_start=False)
    await recreated(world)
    miss_the_first_read(world)
    world.llm.script = [TextChunk("ok")]
    run, _ = await world.conversation.start(request("second"))
    await run.done.wait()

    [(history, _)] = world.llm.calls
    assert [t.request.text for t in history] == ["first"]


async def interrupted_while_stored(world: World, *, held: bool) -> tuple[LiveRun, list[MessageChunk]]:
    """A follow-up whose interrupt is acknowledged while its request is being stored (its model primed)."""
    first, _ = await world.conversation.start(request("first"))
    await first.done.wait()
    world.llm.script = [TextChunk("early")]
    if held:  # the model says one thing at once, then holds
        scripted = world.llm.stream

        async def holding(**kwargs):  # type: ignore[no-untyped-def]
            async for event in scripted(**kwargs):
                yield event
            await asyncio.Event().wait()

        world.llm.stream = holding  # type: ignore[method-assign]
    release = hold_writes(world)
    starting = asyncio.create_task(world.conversation.start(request("second")))
    while not world.llm.calls[1:]:
        await asyncio.sleep(0)
    assert await world.conversation.interrupt(key=request().key, reason="stop")
    release.set()
    run, started = await starting
    events = await collect(world, run)
    assert events[0] == started
    return run, events[1:]


@pytest.mark.parametrize("more", [True, False])
async def test_an_interrupt_acknowledged_while_the_request_is_stored_lets_nothing_of_the_model_out(
    world: World, more: bool
) -> None:
    # held: the model has more to say; else it says everything at once, and must not be stored as finished
    run, events = await interrupted_while_stored(world, held=more)

    assert events == [Interrupted("stop")]
    response = world.store.tasks[run.key].threads[-1].response
    assert response is not None and response.is_interrupted and response.text == ""


async def test_a_model_that_fails_to_close_still_lets_an_interrupted_run_end(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    async def raises_on_close(**kwargs):  # type: ignore[no-untyped-def]
        try:
            yield TextChunk("first")
            await asyncio.Event().wait()
            yield TextChunk("never")
        finally:
            raise RuntimeError("the connection broke while closing")

    world.llm.stream = raises_on_close  # type: ignore[method-assign]
    release = hold_writes(world)
    starting = asyncio.create_task(world.conversation.start(request(id_task="")))
    for _ in range(10):  # the primed model gives its first event while the request is stored
        await asyncio.sleep(0)
    release.set()
    run, _ = await starting
    while run.seq < 2:  # `started`, then "first": the model is open
        await asyncio.sleep(0)
    run.interrupt("stop")
    await asyncio.wait_for(run.done.wait(), 5)

    assert await world.registry.active(key=run.key) is None
    response = world.store.tasks[run.key].threads[0].response
    assert response is not None and response.is_interrupted
    assert "failed while interrupted" in caplog.text and "the connection broke while closing" in caplog.text


async def test_a_model_that_fails_to_close_after_its_last_event_still_lets_the_run_finish(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    class Stream:
        def __init__(self) -> None:
            self.events = iter([TextChunk("all"), TextChunk(" of it")])

        def __aiter__(self) -> Stream:
            return self

        async def __anext__(self) -> TextChunk:
            for event in self.events:
                return event
            raise StopAsyncIteration

        async def aclose(self) -> None:
            raise RuntimeError("the connection broke while closing")

    world.llm.stream = lambda **kwargs: Stream()  # type: ignore[method-assign]
    run, started = await world.conversation.start(request())

    assert await collect(world, run) == [started, TextChunk("all"), TextChunk(" of it"), Finished()]
    response = world.store.tasks[run.key].threads[0].response
    assert response is not None and response.text == "all of it" and not response.is_error
    assert "could not close a model's stream" in caplog.text


async def test_a_client_gone_while_a_model_is_stopped_still_gets_it_closed(world: World) -> None:
    await recreated(world)
    miss_the_first_read(world)
    world.llm.script = [TextChunk("x")]
    kept = []  # referenced, as an SDK's pool might: only an explicit aclose() closes it, not the collector
    scripted = world.llm.stream

    def keeping(**kwargs):  # type: ignore[no-untyped-def]
        kept.append(scripted(**kwargs))
        return kept[-1]

    world.llm.stream = keeping  # type: ignore[method-assign]
    real = world.store.add_task_or_get
    starting: asyncio.Task[object]

    async def created_meanwhile(**kwargs):  # type: ignore[no-untyped-def]
        for _ in range(10):  # the blind model reaches its first event
            await asyncio.sleep(0)
        asyncio.get_running_loop().call_soon(starting.cancel)  # lands while that model is being stopped
        return await real(**kwargs)

    world.store.add_task_or_get = created_meanwhile  # type: ignore[method-assign]
    starting = asyncio.create_task(world.conversation.start(request("second")))
    with pytest.raises(asyncio.CancelledError):
        await starting
    async with asyncio.timeout(1):  # the stop goes on without the request that was cancelled
        while not world.llm.closed:
            await asyncio.sleep(0.001)

    assert len(world.llm.calls) == 1 and world.llm.closed == 1
    assert await world.registry.active(key=TaskKey("agent", "t1")) is None


def record_store_calls(world: World) -> list[str]:
    calls: list[str] = []
    for name in ("get_task", "add_task_or_get", "add_thread", "save_response"):

        async def recorded(_real=getattr(world.store, name), _name=name, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(_name)
            return await _real(**kwargs)

        setattr(world.store, name, recorded)
    return calls


async def test_a_new_task_is_stored_in_one_round_trip_while_its_model_starts(world: World) -> None:
    calls = record_store_calls(world)
    run, _ = await world.conversation.start(request())
    await run.done.wait()

    assert calls == ["add_task_or_get", "save_response"]
    [(history, _)] = world.llm.calls
    assert history == []


async def test_a_follow_up_reads_the_task_it_knows_then_appends_a_thread(world: World) -> None:
    first, _ = await world.conversation.start(request("first"))
    await first.done.wait()
    calls = record_store_calls(world)
    second, _ = await world.conversation.start(request("second"))
    await second.done.wait()

    assert calls == ["get_task", "add_thread", "save_response"]
    [_, (history, _)] = world.llm.calls
    assert [t.request.text for t in history] == ["first"]


@pytest.mark.parametrize("early", [True, False], ids=["one process", "replicas"])
async def test_a_follow_up_on_a_task_stored_before_a_restart_gets_its_history(world: World, early: bool) -> None:
    first, _ = await world.conversation.start(request("first"))
    await first.done.wait()
    restarted = World(store=world.store, early_model_start=early)  # a new process on the same database
    calls = record_store_calls(restarted)
    second, _ = await restarted.conversation.start(request("second"))
    await second.done.wait()

    assert calls == ["add_task_or_get", "add_thread", "save_response"]
    *blind, (history, _) = restarted.llm.calls
    assert [t.request.text for t in history] == ["first"]
    # one process: the model started as if the task were new is stopped; replicas: none is started blind
    assert [h for h, _ in blind] == ([[]] if early else []) and restarted.llm.closed == len(blind) + 1
    assert [t.request.text for t in world.store.tasks[second.key].threads] == ["first", "second"]


async def test_another_team_on_a_task_stored_before_a_restart_finds_nothing_and_holds_nothing() -> None:
    world = World()
    await elsewhere(world).tasks.create(id_team_agent="agent", id_team="owner", text="first", id_task="t1")
    with pytest.raises(TaskNotFound):
        await world.conversation.start(request("let me in", id_team="intruder"))

    [(history, _)] = world.llm.calls  # started as for a new task, with the intruder's own text alone
    assert history == [] and world.llm.closed == 1
    assert await world.registry.active(key=TaskKey("agent", "t1")) is None
    assert [t.request.text for t in world.store.tasks[TaskKey("agent", "t1")].threads] == ["first"]


def claimed_first_by_another_replica(world: World) -> None:
    """The next claim finds the run claimed already, by another replica."""
    real_open = world.registry.open

    async def beaten(**kwargs):  # type: ignore[no-untyped-def]
        world.registry.open = real_open  # type: ignore[method-assign]
        await real_open(key=kwargs["key"], id_run="another replica", on_interrupt=lambda reason: None)
        return await real_open(**kwargs)

    world.registry.open = beaten  # type: ignore[method-assign]


async def test_a_new_task_whose_run_another_replica_claimed_first_ends_in_an_error_not_running(
    world: World,
) -> None:
    claimed_first_by_another_replica(world)
    with pytest.raises(TaskBusy):
        await world.conversation.start(request())

    assert (len(world.llm.calls), world.llm.closed) == (1, 1)  # the model started while it was stored is stopped
    [thread] = world.store.tasks[TaskKey("agent", "t1")].threads
    assert thread.request.text == "hello world"
    assert thread.response is not None and thread.response.is_error
    assert thread.response.error == str(TaskBusy()) and thread.status is ThreadStatus.ERROR


def insert_then_hold(world: World) -> asyncio.Event:
    """The first `add_task_or_get` that inserts returns only once the returned event is set: its request
    has stored the new task but not yet claimed its run (as on a replica whose claim is slower)."""
    release, real = asyncio.Event(), world.store.add_task_or_get

    async def held(**kwargs):  # type: ignore[no-untyped-def]
        found = await real(**kwargs)
        if found is None:
            await release.wait()
        return found

    world.store.add_task_or_get = held  # type: ignore[method-assign]
    return release


async def racing(
    inserter: World, first: str, second: str, *, racer: World | None = None
) -> tuple[asyncio.Task[tuple[LiveRun, Started]], asyncio.Task[tuple[LiveRun, Started]], asyncio.Event]:
    """Message `first` stores the new task t1 and is held before its claim until the returned event is set;
    message `second`, for the same id (through `racer`, another replica, if given), starts meanwhile."""
    release = insert_then_hold(inserter)
    one = asyncio.create_task(inserter.conversation.start(request(first)))
    await asyncio.sleep(0.01)
    two = asyncio.create_task((racer or inserter).conversation.start(request(second)))
    await asyncio.sleep(0.05)
    return one, two, release


@pytest.mark.parametrize("replicas", ["one", "two, with clocks ten minutes apart"])
async def test_of_two_messages_racing_for_one_new_id_the_second_waits_for_the_first_run_and_is_refused(
    replicas: str,
) -> None:
    inserter = World(clock_skew=-timedelta(minutes=10), claim_wait_s=30)
    racer = inserter if replicas == "one" else World(store=inserter.store, registry=inserter.registry, claim_wait_s=30)
    inserter.llm.gate = asyncio.Event()
    inserter.llm.script = [TextChunk("x")]
    first, second, release = await racing(inserter, "same", "same", racer=racer)

    assert not second.done()  # it found the task the first one stored: it waits for that one's run
    release.set()
    run, _ = await first
    with pytest.raises(TaskBusy):
        async with asyncio.timeout(1):  # as soon as that run is known, not after the whole wait
            await second
    inserter.llm.gate.set()
    await run.done.wait()

    assert [t.request.text for t in inserter.store.tasks[run.key].threads] == ["same"]
    # the run's model, and the refused message's (started while it tried to store the task), both stopped
    assert [history for history, _ in inserter.llm.calls] == ([[], []] if racer is inserter else [[]])
    assert len(racer.llm.calls) == racer.llm.closed == (2 if racer is inserter else 1)


async def test_a_message_racing_a_new_task_that_already_ended_follows_it_with_its_history(world: World) -> None:
    world.llm.script = [TextChunk("x")]
    first, second, release = await racing(world, "one", "two")
    release.set()
    run, _ = await first
    await run.done.wait()
    follow, _ = await second
    await follow.done.wait()

    [_, (blind, _), (history, _)] = world.llm.calls  # the second's model started as for a new task, then again
    assert blind == [] and world.llm.closed == 3
    assert [(t.request.text, t.response.text if t.response else None) for t in history] == [("one", "x")]
    assert [t.request.text for t in world.store.tasks[run.key].threads] == ["one", "two"]


async def test_a_new_task_gets_one_title_even_when_its_run_cannot_start(world: World) -> None:
    titled = []

    async def title(*, text: str) -> str | None:
        titled.append(text)
        return "A title"

    world.llm.title = title  # type: ignore[method-assign]

    async def registry_down(**kwargs):  # type: ignore[no-untyped-def]
        raise ConnectionError("registry unreachable")

    world.registry.open = registry_down  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await world.conversation.start(request())
    await world.conversation.drain(grace_s=1)

    task = world.store.tasks[TaskKey("agent", "t1")]
    assert titled == ["hello world"] and task.title == "A title"
    response = task.threads[0].response
    assert response is not None and response.is_error and response.error == "the reply could not start"


async def test_a_racer_whose_registry_forgot_the_ended_first_run_learns_it_from_the_store() -> None:
    inserter = World()
    racer = World(store=inserter.store, registry=inserter.registry, claim_wait_s=30)
    inserter.llm.script = racer.llm.script = [TextChunk("x")]

    async def forgotten(**kwargs):  # type: ignore[no-untyped-def]
        raise UnknownEventId()  # as a shared registry keeping ended runs for no time at all

    inserter.registry.read_encoded = forgotten  # type: ignore[method-assign]
    first, second, release = await racing(inserter, "one", "two", racer=racer)
    release.set()
    run, _ = await first
    await run.done.wait()
    async with asyncio.timeout(1):
        follow, _ = await second
    await follow.done.wait()

    [(blind, _), (history, _)] = racer.llm.calls
    assert blind == [] and racer.llm.closed == 2
    assert [(t.request.text, t.response.text if t.response else None) for t in history] == [("one", "x")]


async def test_a_new_task_whose_first_run_never_claimed_it_takes_messages_after_a_short_wait_and_ends_it() -> None:
    world = World(claim_wait_s=0.1)
    await elsewhere(world).tasks.create(id_team_agent="agent", id_team="team", text="lost", id_task="t1")
    task = world.store.tasks[TaskKey("agent", "t1")]
    task.threads[0] = dataclasses.replace(  # stored as running by a replica that died before its claim
        task.threads[0], response=MessageResponse("agent", "team", "t1", task.created_at), id_run="never opened"
    )
    world.llm.script = [TextChunk("x")]
    started_at = asyncio.get_running_loop().time()
    run, _ = await world.conversation.start(request("hello"))
    waited = asyncio.get_running_loop().time() - started_at
    await run.done.wait()

    assert 0.1 <= waited < 1.0
    lost, hello = world.store.tasks[run.key].threads  # the lost reply is ended, not left running until a restart
    assert (lost.request.text, lost.status, hello.request.text) == ("lost", ThreadStatus.INTERRUPTED, "hello")
    _, (history, _) = world.llm.calls  # (the first started as for a new task, and was stopped)
    assert [t.status for t in history] == [ThreadStatus.INTERRUPTED]


@pytest.mark.parametrize("known", [False, True])
async def test_a_stored_request_whose_run_cannot_announce_itself_ends_in_an_error(world: World, known: bool) -> None:
    if known:
        first, _ = await world.conversation.start(request("first"))
        await first.done.wait()
    real_publish = world.registry.publish

    async def started_lost(**kwargs):  # type: ignore[no-untyped-def]
        if isinstance(kwargs["event"], Started):
            raise ConnectionError("registry unreachable")
        return await real_publish(**kwargs)

    world.registry.publish = started_lost  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await world.conversation.start(request("second"))

    threads = world.store.tasks[TaskKey("agent", "t1")].threads
    assert [t.request.text for t in threads] == (["first", "second"] if known else ["second"])
    assert threads[-1].status is ThreadStatus.ERROR
    assert threads[-1].response is not None and threads[-1].response.error == "the reply could not start"
    assert await world.registry.active(key=TaskKey("agent", "t1")) is None
    assert world.llm.closed == len(world.llm.calls)


async def test_a_request_that_fails_before_it_is_stored_stores_no_error_reply(world: World) -> None:
    first, _ = await world.conversation.start(request("first"))
    await first.done.wait()
    calls = record_store_calls(world)

    async def broken(**kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("database is gone")

    world.store.add_thread = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await world.conversation.start(request("second"))

    assert "save_response" not in calls
    assert [t.request.text for t in world.store.tasks[first.key].threads] == ["first"]
    assert await world.registry.active(key=first.key) is None


async def test_a_reply_that_ends_between_the_read_and_the_claim_reaches_the_next_history(world: World) -> None:
    world.llm.script = [TextChunk("answer")]
    one, _ = await world.conversation.start(request("one"))
    await one.done.wait()
    world.llm.gate = asyncio.Event()
    two, _ = await world.conversation.start(request("two"))
    real_get = world.store.get_task

    async def read_then_let_two_end(**kwargs):  # type: ignore[no-untyped-def]
        world.store.get_task = real_get  # type: ignore[method-assign]
        task = await real_get(**kwargs)  # "two" still running in this copy
        assert world.llm.gate is not None
        world.llm.gate.set()
        await two.done.wait()
        return task

    world.store.get_task = read_then_let_two_end  # type: ignore[method-assign]
    three, _ = await world.conversation.start(request("three"))
    await three.done.wait()

    history = world.llm.calls[-1][0]
    assert [(t.request.text, t.response.text if t.response else None) for t in history] == [
        ("one", "answer"),
        ("two", "answer"),
    ]


async def test_a_request_waiting_for_a_first_claim_is_refused_once_the_server_drains() -> None:
    world = World(claim_wait_s=0.2)
    first, second, release = await racing(world, "same", "same")
    asyncio.get_running_loop().call_later(0.05, release.set)  # stored before the drain, claimed after its grace
    await world.conversation.drain(grace_s=0.01)

    with pytest.raises(ShuttingDown):
        await second
    run, _ = first.result()  # stored: it runs, interrupted by the drain, which waited for it
    assert run.done.is_set()
    [thread] = world.store.tasks[TaskKey("agent", "t1")].threads
    assert thread.status is ThreadStatus.INTERRUPTED
    assert (len(world.llm.calls), world.llm.closed) == (2, 2)  # the stored one's, and the racer's started blind
    assert await world.registry.active(key=TaskKey("agent", "t1")) is None


def slow_to_close(world: World) -> tuple[asyncio.Event, asyncio.Event]:
    """The model gives one event, then holds; closing it takes a round trip. The events are set as it starts
    closing and once it is closed."""
    closing, closed = asyncio.Event(), asyncio.Event()

    async def stream(**kwargs):  # type: ignore[no-untyped-def]
        world.llm.calls.append(([], kwargs["request"]))
        try:
            yield TextChunk("x")
            await asyncio.Event().wait()
        finally:
            closing.set()
            await asyncio.sleep(0.05)
            closed.set()

    world.llm.stream = stream  # type: ignore[method-assign]
    return closing, closed


@pytest.mark.parametrize("refused_by", ["the claim", "the registry, as started is published"])
async def test_a_request_cancelled_while_its_model_is_stopped_leaves_no_reply_running(
    world: World, refused_by: str
) -> None:
    closing, _ = slow_to_close(world)
    if refused_by == "the claim":
        claimed_first_by_another_replica(world)
    else:

        async def broken(**kwargs):  # type: ignore[no-untyped-def]
            raise RuntimeError("registry is gone")

        world.registry.publish = broken  # type: ignore[method-assign]
    starting = asyncio.create_task(world.conversation.start(request()))
    await closing.wait()  # refused: the start stops the model it called while the task was stored
    starting.cancel()
    with contextlib.suppress(asyncio.CancelledError, TaskBusy, RuntimeError):
        await starting

    [thread] = world.store.tasks[TaskKey("agent", "t1")].threads
    assert thread.status is ThreadStatus.ERROR  # not left running until a restart's recovery


async def test_a_message_stored_while_the_server_drains_ends_interrupted_before_the_drain_returns(
    world: World,
) -> None:
    first, _ = await world.conversation.start(request("first"))
    await first.done.wait()
    world.llm.script = [TextChunk("x")]
    world.llm.gate = asyncio.Event()  # the reply would run until the test ends
    release = hold_writes(world)
    starting = asyncio.create_task(world.conversation.start(request("second")))  # claimed, being stored
    while not world.llm.calls[1:]:
        await asyncio.sleep(0)
    asyncio.get_running_loop().call_later(0.05, release.set)  # stored after the grace and the interrupts
    await world.conversation.drain(grace_s=0.01)

    assert starting.done()
    run, _ = starting.result()
    assert run.done.is_set()
    assert world.store.tasks[run.key].threads[-1].status is ThreadStatus.INTERRUPTED
    world.llm.gate.set()


@pytest.mark.parametrize("kind", ["follow-up", "new task, the server's id", "new task, the client's id"])
async def test_a_message_stored_during_the_drains_grace_gets_the_grace(kind: str) -> None:
    world = World()
    if kind == "follow-up":
        first, _ = await world.conversation.start(request("first"))
        await first.done.wait()
        release = hold_writes(world)
    else:
        release = insert_then_hold(world)
    world.llm.script = [TextChunk("x")]
    world.llm.gate = asyncio.Event()
    starting = asyncio.create_task(
        world.conversation.start(request("second", id_task="" if "server" in kind else "t1"))
    )
    await asyncio.sleep(0.01)  # being stored
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, release.set)
    loop.call_later(0.2, world.llm.gate.set)  # the reply ends well within the grace
    began = loop.time()
    await world.conversation.drain(grace_s=2)

    assert 0.2 <= loop.time() - began < 1
    run, _ = starting.result()
    assert world.store.tasks[run.key].threads[-1].status is ThreadStatus.FINISHED


async def test_a_model_still_being_stopped_when_the_server_drains_is_closed_before_the_drain_returns(
    world: World,
) -> None:
    closing, closed = slow_to_close(world)
    claimed_first_by_another_replica(world)
    starting = asyncio.create_task(world.conversation.start(request()))
    await closing.wait()  # refused: the model it called is being stopped
    starting.cancel()  # and the client went
    with contextlib.suppress(asyncio.CancelledError):
        await starting
    await world.conversation.drain(grace_s=0.01)

    assert closed.is_set()
