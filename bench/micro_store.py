"""Microbenchmark of the store calls one message makes.

`python -m bench.micro_store [sqlite|postgres|postgres-no-ping]`.

In-process, sequential, no HTTP: for N new tasks, the calls `Conversation.start` and the end of a run make
(get_task miss, add_task with its thread, save_response), timed one by one (wall and this process's CPU),
next to the same SQL done with the plain sqlite3 module in ONE thread hop per call, which is what an
aiosqlite-free SQLite path would cost; and PostgreSQL with and without `pool_pre_ping`. Used to back
the findings in docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters import store_codec as codec
from adapters.sqlalchemy_store import SqlAlchemyTaskStore, create_database
from adapters.sqlalchemy_store.engine import Database
from adapters.sqlalchemy_store.migrate import upgrade
from application.reply import ReplyBuilder
from bench.servers import PG_URL, drop_pg_database, reset_pg_database
from bench.stats import pct
from domain.model import Driver, MessageRequest, Task, TaskKey, Thread


async def timed(n: int, call: Callable[[int], Awaitable[Any]]) -> dict[str, float]:
    walls = []
    cpu0 = time.process_time()
    for i in range(n):
        t0 = time.perf_counter()
        await call(i)
        walls.append(time.perf_counter() - t0)
    cpu = time.process_time() - cpu0
    return {
        "p50_ms": round(pct(walls, 50) * 1000, 3),
        "p99_ms": round(pct(walls, 99) * 1000, 3),
        "cpu_ms": round(cpu / n * 1000, 3),
    }


def task_for(i: int, prefix: str) -> Task:
    now = datetime.now(UTC)
    request = MessageRequest("agent-m", "team-1", f"{prefix}{i}", "w0 w1 w2", now)
    builder = ReplyBuilder(request, now)
    thread = Thread(f"th{i}", request=request, response=builder.snapshot(), id_run="r1")
    return Task("agent-m", f"{prefix}{i}", "team-1", "w0 w1 w2", Driver.AUTO, now, now, [thread])


async def run(db: str, n: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="micro-store-"))
    if db.startswith("postgres"):
        await asyncio.to_thread(reset_pg_database)
        url = PG_URL
    else:
        url = f"sqlite+aiosqlite:///{work / 'agent.db'}"
    await asyncio.to_thread(upgrade, url)
    database = create_database(url)
    if db == "postgres-no-ping":  # the same engine as create_database's, without pool_pre_ping
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(url, pool_size=10, max_overflow=10, pool_recycle=1800)
        database = Database(writer=engine, reader=engine)
    store = SqlAlchemyTaskStore(database)
    tasks = [task_for(i, "t") for i in range(n)]
    for i in range(20):  # warm caches and pools
        await store.get_task(key=TaskKey("agent-m", f"warm{i}"))
        await store.add_task(task=task_for(i, "warm"))
    out: dict[str, Any] = {"db": db, "n": n}
    out["get_task (miss)"] = await timed(n, lambda i: store.get_task(key=TaskKey("agent-m", f"t{i}")))
    out["add_task (+1 thread)"] = await timed(n, lambda i: store.add_task(task=tasks[i]))

    async def save(i: int) -> None:
        t = tasks[i]
        response = t.threads[0].response
        assert response is not None
        response.text, response.is_finished, response.event = "You said: w0 w1 w2", True, "finished"
        await store.save_response(key=t.key, id_thread=t.threads[0].id_thread, response=response, id_run="r1")

    out["save_response"] = await timed(n, save)
    out["get_task (hit, 1 thread)"] = await timed(n, lambda i: store.get_task(key=tasks[i].key))
    await database.dispose()
    if db == "sqlite":
        out.update(await plain_sqlite(work / "agent.db", tasks))
    else:
        await asyncio.to_thread(drop_pg_database)
    shutil.rmtree(work, ignore_errors=True)  # a temp dir, once, after the measurements
    return out


async def plain_sqlite(path: Path, tasks: list[Task]) -> dict[str, Any]:
    """The same statements through sqlite3 in one `asyncio.to_thread` hop per store call."""
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")

    def get(key: TaskKey) -> Any:
        return conn.execute(
            "SELECT * FROM tasks WHERE id_team_agent=? AND id_task=?", (key.id_team_agent, key.id_task)
        ).fetchone()

    def add(t: Task) -> None:
        th = t.threads[0]
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO tasks (id_team_agent,id_task,id_team,title,driver,created_us,updated_us)"
            " VALUES (?,?,?,?,?,?,?)",
            (t.id_team_agent, t.id_task + "p", t.id_team, t.title, "auto", 1, 1),
        )
        conn.execute(
            "INSERT INTO threads (id_team_agent,id_task,seq,id_thread,status,id_run,request,response,created_us,"
            "updated_us) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                t.id_team_agent,
                t.id_task + "p",
                1,
                th.id_thread,
                "running",
                "r1",
                codec.dump_request(th.request),
                codec.dump_response(th.response) if th.response else None,
                1,
                1,
            ),
        )
        conn.execute("COMMIT")

    from sqlalchemy import create_engine, insert, select

    from adapters.sqlalchemy_store.tables import tasks as tasks_table
    from adapters.sqlalchemy_store.tables import threads as threads_table

    engine = create_engine(f"sqlite:///{path}")

    def core_get(key: TaskKey) -> Any:
        with engine.connect() as c:
            query = select(tasks_table).where(
                tasks_table.c.id_team_agent == key.id_team_agent, tasks_table.c.id_task == key.id_task
            )
            return c.execute(query).first()

    def core_add(t: Task) -> None:
        th = t.threads[0]
        with engine.begin() as c:
            c.execute(
                insert(tasks_table).values(
                    id_team_agent=t.id_team_agent,
                    id_task=t.id_task + "c",
                    id_team=t.id_team,
                    title=t.title,
                    driver="auto",
                    created_us=1,
                    updated_us=1,
                )
            )
            c.execute(
                insert(threads_table).values(
                    id_team_agent=t.id_team_agent,
                    id_task=t.id_task + "c",
                    seq=1,
                    id_thread=th.id_thread,
                    status="running",
                    id_run="r1",
                    request=codec.dump_request(th.request),
                    response=codec.dump_response(th.response) if th.response else None,
                    created_us=1,
                    updated_us=1,
                )
            )

    out = {
        "sync SQLAlchemy Core, 1 hop: get_task (miss)": await timed(
            len(tasks), lambda i: asyncio.to_thread(core_get, TaskKey("agent-m", f"none{i}"))
        ),
        "sync SQLAlchemy Core, 1 hop: add_task (+1)": await timed(
            len(tasks), lambda i: asyncio.to_thread(core_add, tasks[i])
        ),
        "plain sqlite3, 1 hop: get_task (miss)": await timed(
            len(tasks), lambda i: asyncio.to_thread(get, TaskKey("agent-m", f"none{i}"))
        ),
        "plain sqlite3, 1 hop: add_task (+1 thread)": await timed(
            len(tasks), lambda i: asyncio.to_thread(add, tasks[i])
        ),
    }
    conn.close()
    engine.dispose()
    return out


def main() -> None:
    import uvloop

    dbs = sys.argv[1:] or ["sqlite", "postgres", "postgres-no-ping"]
    for db in dbs:
        result = uvloop.run(run(db, 300))
        print(f"{db}: sequential, ms per call (p50 / p99 wall, CPU of this process)")
        for name, value in result.items():
            if isinstance(value, dict):
                print(
                    f"  {name:45s} p50 {value['p50_ms']:7.3f}  p99 {value['p99_ms']:7.3f}  cpu {value['cpu_ms']:7.3f}"
                )


if __name__ == "__main__":
    main()
