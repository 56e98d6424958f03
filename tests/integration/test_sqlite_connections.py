"""SqliteConnections: group-committed writes where each op stands alone, and no call left hanging."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.sqlite_store.connections import SqliteConnections, StoreClosed


def make_table(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")


def insert(key: str, *then: str) -> Callable[[sqlite3.Connection], None]:
    def op(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (?, 1)", (key,))
        for sql in then:
            conn.execute(sql)

    return op


async def rows(db: SqliteConnections) -> list[str]:
    return await db.read(lambda conn: [k for (k,) in conn.execute("SELECT k FROM t ORDER BY k")])


async def test_an_op_that_fails_after_writing_leaves_nothing_and_fails_alone(tmp_path: Path) -> None:
    make_table(tmp_path / "db")
    db = SqliteConnections(tmp_path / "db")

    def writes_then_raises(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES ('half', 1)")
        raise KeyError("a bug half way")

    results = await asyncio.gather(
        db.write(insert("a")),
        db.write(writes_then_raises),
        db.write(insert("b", "INSERT INTO t VALUES ('a', 2)")),
        db.write(insert("c")),
        return_exceptions=True,
    )

    assert [type(r).__name__ for r in results] == ["NoneType", "KeyError", "IntegrityError", "NoneType"]
    assert await rows(db) == ["a", "c"]
    await db.close()


async def test_a_database_that_cannot_be_opened_fails_calls_then_recovers(tmp_path: Path) -> None:
    path = tmp_path / "later" / "db"
    db = SqliteConnections(path)

    with pytest.raises(sqlite3.OperationalError):
        await asyncio.wait_for(db.read(lambda conn: 1), 5)
    with pytest.raises(sqlite3.OperationalError):
        await asyncio.wait_for(db.write(lambda conn: 1), 5)

    path.parent.mkdir()
    make_table(path)
    await asyncio.wait_for(db.write(insert("x")), 5)
    assert await asyncio.wait_for(rows(db), 5) == ["x"]
    await db.close()


async def test_calls_after_close_are_refused(tmp_path: Path) -> None:
    make_table(tmp_path / "db")
    db = SqliteConnections(tmp_path / "db")
    await db.write(insert("x"))
    await db.close()

    with pytest.raises(StoreClosed):
        await db.read(lambda conn: 1)
    with pytest.raises(StoreClosed):
        await db.write(lambda conn: 1)


async def test_checkpoints_run_on_their_own_thread_not_in_the_writes(tmp_path: Path) -> None:
    make_table(tmp_path / "db")
    db = SqliteConnections(tmp_path / "db", checkpoint_every_s=0.05)

    def autocheckpoint(conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])

    for i in range(5):
        assert await db.write(autocheckpoint) == 0  # the writer never checkpoints by itself
        await db.write(insert(f"k{i}"))
        await asyncio.sleep(0.06)

    for _ in range(100):  # the last ones may still be running on their thread
        if db.checkpoints >= 3:
            break
        await asyncio.sleep(0.02)
    assert db.checkpoints >= 3
    assert await rows(db) == [f"k{i}" for i in range(5)]
    await db.close()


async def test_a_lone_op_that_fails_after_writing_leaves_nothing(tmp_path: Path) -> None:
    make_table(tmp_path / "db")
    db = SqliteConnections(tmp_path / "db")
    await db.write(insert("a"))

    with pytest.raises(sqlite3.IntegrityError):
        await db.write(insert("b", "INSERT INTO t VALUES ('a', 2)"))

    assert await rows(db) == ["a"]
    await db.write(insert("c"))
    assert await rows(db) == ["a", "c"]
    await db.close()


async def test_writes_queued_behind_a_commit_go_next_without_the_event_loop(tmp_path: Path) -> None:
    make_table(tmp_path / "db")
    db = SqliteConnections(tmp_path / "db")
    release, ran, statements = threading.Event(), threading.Event(), list[str]()

    def slow(conn: sqlite3.Connection) -> None:
        conn.set_trace_callback(statements.append)
        release.wait(5)
        conn.execute("INSERT INTO t VALUES ('slow', 1)")

    def last(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES ('last', 1)")
        ran.set()

    first = asyncio.ensure_future(db.write(slow))
    await asyncio.sleep(0.05)  # the slow write is on the writer thread
    queued = [asyncio.ensure_future(db.write(insert(f"q{i}"))) for i in range(3)]
    queued.append(asyncio.ensure_future(db.write(last)))
    await asyncio.sleep(0)  # each call has queued its op
    release.set()
    # the loop is held here: the writer must take the queued batch on its own
    assert ran.wait(5)
    await asyncio.gather(first, *queued)
    await db.write(lambda conn: conn.set_trace_callback(None))
    assert await rows(db) == ["last", "q0", "q1", "q2", "slow"]
    # the four queued writes shared one transaction (and the last write, alone, began its own)
    assert statements.count("BEGIN IMMEDIATE") == 2 and statements.count("COMMIT") == 2
    await db.close()


async def test_every_close_returns_only_once_the_queued_writes_are_committed(tmp_path: Path) -> None:
    make_table(tmp_path / "db")
    db = SqliteConnections(tmp_path / "db")
    release = threading.Event()

    def slow(conn: sqlite3.Connection) -> None:
        release.wait(5)
        conn.execute("INSERT INTO t VALUES ('slow', 1)")

    writes = [asyncio.ensure_future(db.write(slow)), asyncio.ensure_future(db.write(insert("queued")))]
    await asyncio.sleep(0.05)
    given_up = asyncio.ensure_future(db.close())
    await asyncio.sleep(0.01)
    given_up.cancel()
    threading.Timer(0.2, release.set).start()
    await asyncio.wait_for(asyncio.gather(db.close(), db.close()), 5)  # a retry and another caller, at once

    assert [w.done() and w.exception() for w in writes] == [None, None]
    with sqlite3.connect(tmp_path / "db") as conn:
        assert [k for (k,) in conn.execute("SELECT k FROM t ORDER BY k")] == ["queued", "slow"]


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message")


async def test_the_writer_outlives_an_error_it_cannot_describe(tmp_path: Path) -> None:
    make_table(tmp_path / "db")
    db = SqliteConnections(tmp_path / "db")
    await db.write(insert("a"))

    def conflicting(conn: sqlite3.Connection) -> None:
        try:
            conn.execute("INSERT OR ROLLBACK INTO t VALUES ('a', 2)")  # the error ends the transaction
        except sqlite3.IntegrityError:
            raise Unprintable() from None

    with pytest.raises(sqlite3.OperationalError, match="Unprintable"):
        await asyncio.wait_for(db.write(conflicting), 5)
    await asyncio.wait_for(db.write(insert("b")), 5)
    assert await rows(db) == ["a", "b"]
    await db.close()


async def test_a_commit_that_fails_fails_its_whole_batch_and_the_next_one_goes(tmp_path: Path) -> None:
    make_table(tmp_path / "db")
    with sqlite3.connect(tmp_path / "db") as conn:
        conn.execute("CREATE TABLE parent (k TEXT PRIMARY KEY)")
        conn.execute("CREATE TABLE child (p TEXT REFERENCES parent DEFERRABLE INITIALLY DEFERRED)")
    db = SqliteConnections(tmp_path / "db")
    release = threading.Event()

    def slow(conn: sqlite3.Connection) -> None:
        release.wait(5)

    first = asyncio.ensure_future(db.write(slow))
    await asyncio.sleep(0.05)  # the next three queue up behind it and share one transaction
    batch = [
        asyncio.ensure_future(db.write(insert("a"))),
        asyncio.ensure_future(db.write(lambda conn: conn.execute("INSERT INTO child VALUES ('none')"))),
        asyncio.ensure_future(db.write(insert("c"))),
    ]
    await asyncio.sleep(0)
    release.set()
    await first
    results = await asyncio.gather(*batch, return_exceptions=True)

    assert [type(r).__name__ for r in results] == ["OperationalError"] * 3  # the deferred key fails the COMMIT
    assert all("FOREIGN KEY" in str(r) for r in results)
    await db.write(insert("after"))
    assert await rows(db) == ["after"]
    await db.close()
