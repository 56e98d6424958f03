"""One suite, every TaskStore: the in-memory fake, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from domain.errors import TaskExists, TaskNotFound
from domain.model import (
    Attachment,
    Driver,
    MessageRequest,
    MessageResponse,
    Task,
    TaskKey,
    Thread,
    ThreadStatus,
    Usage,
)
from domain.ports import TaskPage, TaskStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_request(text: str, key: TaskKey = TaskKey("agent", "t1"), team: str = "team") -> MessageRequest:
    return MessageRequest(
        key.id_team_agent, team, key.id_task, text, T0, (Attachment("a.png", "image", "image/png", 3, "f1"),)
    )


def make_task(key: TaskKey = TaskKey("agent", "t1"), *, updated: datetime = T0, threads: int = 1) -> Task:
    return Task(
        id_team_agent=key.id_team_agent,
        id_task=key.id_task,
        id_team="team",
        title="A title",
        driver=Driver.AUTO,
        created_at=T0,
        updated_at=updated,
        threads=[Thread(f"th{i}-{key.id_task}", make_request(f"message {i}", key)) for i in range(threads)],
    )


def make_response(text: str, **flags: object) -> MessageResponse:
    return replace(MessageResponse("agent", "team", "t1", T0, text=text), **flags)  # type: ignore[arg-type]


async def test_a_task_round_trips_with_its_threads(store: TaskStore) -> None:
    task = make_task(threads=2)
    await store.add_task(task=task)

    got = await store.get_task(key=task.key)

    assert got is not None
    assert (got.id_team, got.title, got.driver, got.created_at) == ("team", "A title", Driver.AUTO, T0)
    assert [t.request.text for t in got.threads] == ["message 0", "message 1"]
    assert got.threads[0].request.attachments == (Attachment("a.png", "image", "image/png", 3, "f1"),)
    assert got.threads[0].status is ThreadStatus.PENDING


async def test_keys_are_unique(store: TaskStore) -> None:
    await store.add_task(task=make_task())
    with pytest.raises(TaskExists):
        await store.add_task(task=make_task())


@pytest.mark.parametrize("threads", [1, 2])
async def test_add_or_get_stores_a_new_task_or_returns_the_one_holding_the_key(store: TaskStore, threads: int) -> None:
    assert await store.add_task_or_get(task=make_task(threads=threads)) is None
    stored = await store.get_task(key=TaskKey("agent", "t1"))
    assert stored is not None and [t.request.text for t in stored.threads] == [f"message {i}" for i in range(threads)]

    other = replace(make_task(threads=1), id_team="other-team", title="Other")
    other.threads = [Thread("th-other", make_request("other message", team="other-team"))]
    existing = await store.add_task_or_get(task=other)

    assert existing is not None
    assert (existing.id_team, existing.title) == ("team", "A title")
    assert [t.id_thread for t in existing.threads] == [t.id_thread for t in stored.threads]
    assert existing.threads[0].request.attachments == stored.threads[0].request.attachments
    after = await store.get_task(key=TaskKey("agent", "t1"))
    assert after is not None and [t.id_thread for t in after.threads] == [t.id_thread for t in stored.threads]


async def test_add_or_get_of_a_task_without_threads(store: TaskStore) -> None:
    assert await store.add_task_or_get(task=make_task(threads=0)) is None
    existing = await store.add_task_or_get(task=make_task(threads=1))
    assert existing is not None and existing.threads == []


async def test_concurrent_add_or_get_stores_one_task(store: TaskStore) -> None:
    tasks = [replace(make_task(threads=1), title=f"title {i}") for i in range(8)]
    for i, task in enumerate(tasks):
        task.threads = [Thread(f"th-{i}", make_request(f"m{i}"))]
    results = await asyncio.gather(*(store.add_task_or_get(task=task) for task in tasks))

    assert sum(result is None for result in results) == 1
    winner = tasks[results.index(None)]
    assert all(
        r is None or (r.title, [t.id_thread for t in r.threads]) == (winner.title, [winner.threads[0].id_thread])
        for r in results
    )


async def test_unknown_tasks_are_none(store: TaskStore) -> None:
    await store.add_task(task=make_task())
    assert await store.get_task(key=TaskKey("other-agent", "t1")) is None
    assert await store.get_task(key=TaskKey("agent", "t2")) is None


async def test_threads_append_and_responses_are_saved(store: TaskStore) -> None:
    task = make_task(threads=1)
    await store.add_task(task=task)
    await store.add_thread(key=task.key, thread=Thread("second", make_request("second")))
    response = make_response(
        "hi",
        reasoning="r",
        is_finished=True,
        event="finished",
        usage=Usage(1, 2, 3, 6),
        attachments=(Attachment("out.png", "image", "image/png", 10, "gen1"),),
    )

    await store.save_response(
        key=task.key, id_thread="second", response=response, id_run="run1", model_turn=[{"text": "hi"}]
    )

    got = await store.get_task(key=task.key)
    assert got is not None
    assert [t.id_thread for t in got.threads] == ["th0-t1", "second"]
    assert got.threads[1].response == response
    assert got.threads[1].id_run == "run1"
    assert got.threads[1].model_turn == [{"text": "hi"}]
    assert got.threads[1].status is ThreadStatus.FINISHED
    assert got.updated_at > T0


async def test_saving_into_a_missing_task_or_thread_fails(store: TaskStore) -> None:
    with pytest.raises(TaskNotFound):
        await store.add_thread(key=TaskKey("agent", "none"), thread=Thread("x", make_request("x")))
    await store.add_task(task=make_task())
    with pytest.raises(TaskNotFound):
        await store.save_response(key=TaskKey("agent", "t1"), id_thread="nope", response=make_response("x"))


async def test_listing_is_newest_first_with_a_cursor_and_filters(store: TaskStore) -> None:
    for i in range(5):
        task = make_task(TaskKey("agent", f"t{i}"), updated=T0 + timedelta(minutes=i))
        task.driver = Driver.USER if i % 2 else Driver.AUTO
        await store.add_task(task=task)
    await store.add_task(task=make_task(TaskKey("someone-else", "x")))

    first = await store.list_tasks(id_team_agent="agent", page=TaskPage(limit=2))
    assert [t.id_task for t in first] == ["t4", "t3"]
    assert [len(t.threads) for t in first] == [1, 1]
    rest = await store.list_tasks(
        id_team_agent="agent", page=TaskPage(limit=10, before=(first[-1].updated_at, first[-1].id_task))
    )
    assert [t.id_task for t in rest] == ["t2", "t1", "t0"]
    users = await store.list_tasks(id_team_agent="agent", page=TaskPage(limit=10, driver=Driver.USER))
    assert [t.id_task for t in users] == ["t3", "t1"]
    recent = await store.list_tasks(
        id_team_agent="agent", page=TaskPage(limit=10, updated_since=T0 + timedelta(minutes=3))
    )
    assert [t.id_task for t in recent] == ["t4", "t3"]
    bare = await store.list_tasks(id_team_agent="agent", page=TaskPage(limit=10, include_content=False))
    assert all(t.threads == [] for t in bare)


async def test_update_and_delete(store: TaskStore) -> None:
    await store.add_task(task=make_task())
    key = TaskKey("agent", "t1")

    updated = await store.update_task(key=key, title="Renamed", driver=Driver.USER)
    assert updated is not None and (updated.title, updated.driver) == ("Renamed", Driver.USER)
    assert await store.update_task(key=TaskKey("agent", "nope"), title="x") is None

    deleted = await store.delete_task(key=key)
    assert deleted is not None and len(deleted.threads) == 1
    assert await store.get_task(key=key) is None
    assert await store.delete_task(key=key) is None


async def test_replies_left_running_are_marked_interrupted(store: TaskStore) -> None:
    task = make_task(threads=3)
    await store.add_task(task=task)
    await store.save_response(key=task.key, id_thread="th0-t1", response=make_response("done", is_finished=True))
    await store.save_response(key=task.key, id_thread="th1-t1", response=make_response("half"), id_run="r1")
    await store.save_response(key=task.key, id_thread="th2-t1", response=make_response("other"), id_run="r2")

    assert await store.interrupt_running(reason="server restarted", id_runs=["r1"]) == 1
    assert await store.interrupt_running(reason="server restarted") == 1

    got = await store.get_task(key=task.key)
    assert got is not None
    assert [t.status for t in got.threads] == [
        ThreadStatus.FINISHED,
        ThreadStatus.INTERRUPTED,
        ThreadStatus.INTERRUPTED,
    ]
    half = got.threads[1].response
    assert half is not None and half.text == "half" and half.reason == "server restarted"


async def test_concurrent_appends_never_lose_a_thread(store: TaskStore) -> None:
    await store.add_task(task=make_task(threads=0))
    key = TaskKey("agent", "t1")

    await asyncio.gather(*(store.add_thread(key=key, thread=Thread(f"c{i}", make_request(f"m{i}"))) for i in range(30)))

    got = await store.get_task(key=key)
    assert got is not None and sorted(t.id_thread for t in got.threads) == sorted(f"c{i}" for i in range(30))


async def test_a_taken_key_fails_alone_among_concurrent_writes(store: TaskStore) -> None:
    await store.add_task(task=make_task(TaskKey("agent", "taken")))

    results = await asyncio.gather(
        *(store.add_task(task=make_task(TaskKey("agent", key))) for key in ("a", "taken", "b")),
        return_exceptions=True,
    )

    assert [type(r).__name__ for r in results] == ["NoneType", "TaskExists", "NoneType"]
    for key in ("a", "b", "taken"):
        got = await store.get_task(key=TaskKey("agent", key))
        assert got is not None
        assert len(got.threads) == 1


async def test_a_task_deleted_while_its_reply_is_saved_is_deleted_and_the_saves_find_nothing(store: TaskStore) -> None:
    for i in range(40):  # the delete and the saves race: no order of theirs may fail the delete
        key = TaskKey("agent", f"race{i}")
        task = make_task(key)
        await store.add_task(task=task)
        id_thread = task.threads[0].id_thread
        saves = [store.save_response(key=key, id_thread=id_thread, response=make_response(f"{n}")) for n in range(3)]
        results = await asyncio.gather(store.delete_task(key=key), *saves, return_exceptions=True)

        deleted, *saved = results
        assert isinstance(deleted, Task) and deleted.key == key, deleted
        assert all(result is None or isinstance(result, TaskNotFound) for result in saved), saved
        assert await store.get_task(key=key) is None
