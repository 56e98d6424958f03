"""Microbenchmark of the store calls one message makes, on every TaskStore adapter.

`python -m bench.micro_store [sqlite] [postgres]`.

In-process, sequential, no HTTP: for N new tasks, the calls `Conversation.start` and the end of a run make
(get_task miss, add_task with its thread, save_response), then a read of each task, timed one by one
(wall, and this process's CPU, all threads). SQLite: the shipped `SqliteTaskStore` (stdlib sqlite3, one
thread hop per call) next to `SqlAlchemyTaskStore` on aiosqlite (what shipped before). PostgreSQL: the
shipped `AsyncpgTaskStore` next to `SqlAlchemyTaskStore` on asyncpg. Backs the findings in
docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.postgres_store import AsyncpgTaskStore
from adapters.sqlalchemy_store import SqlAlchemyTaskStore, create_database
from adapters.sqlalchemy_store.migrate import upgrade
from adapters.sqlite_store import SqliteConnections, SqliteTaskStore
from application.reply import ReplyBuilder
from bench.servers import PG_URL, drop_pg_database, reset_pg_database
from bench.stats import pct
from domain.model import Driver, MessageRequest, Task, TaskKey, Thread
from domain.ports import TaskStore
from entrypoints.bootstrap import asyncpg_connect_args

N = 500


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
    thread = Thread(f"th{i}", request=request, response=ReplyBuilder(request, now).snapshot(), id_run="r1")
    return Task("agent-m", f"{prefix}{i}", "team-1", "w0 w1 w2", Driver.AUTO, now, now, [thread])


async def measure(store: TaskStore, prefix: str, n: int) -> dict[str, Any]:
    tasks = [task_for(i, prefix) for i in range(n)]
    for i in range(20):  # warm caches, pools and threads
        await store.get_task(key=TaskKey("agent-m", f"{prefix}warm{i}"))
        await store.add_task(task=task_for(i, f"{prefix}warm"))

    async def save(i: int) -> None:
        t = tasks[i]
        response = t.threads[0].response
        assert response is not None
        response.text, response.is_finished, response.event = "You said: w0 w1 w2", True, "finished"
        await store.save_response(key=t.key, id_thread=t.threads[0].id_thread, response=response, id_run="r1")

    return {
        "get_task (miss)": await timed(n, lambda i: store.get_task(key=TaskKey("agent-m", f"{prefix}none{i}"))),
        "add_task (+1 thread)": await timed(n, lambda i: store.add_task(task=tasks[i])),
        "save_response": await timed(n, save),
        "get_task (hit, 1 thread)": await timed(n, lambda i: store.get_task(key=tasks[i].key)),
    }


async def run(db: str, n: int) -> dict[str, dict[str, Any]]:
    work = Path(tempfile.mkdtemp(prefix="micro-store-"))
    out: dict[str, dict[str, Any]] = {}
    try:
        if db == "postgres":
            await asyncio.to_thread(reset_pg_database)
            await asyncio.to_thread(upgrade, PG_URL)
            native = AsyncpgTaskStore(asyncpg_connect_args(PG_URL))
            out["AsyncpgTaskStore (shipped)"] = await measure(native, "n", n)
            await native.close()
            database = create_database(PG_URL)
        else:
            url = f"sqlite+aiosqlite:///{work / 'agent.db'}"
            await asyncio.to_thread(upgrade, url)
            connections = SqliteConnections(work / "agent.db")
            out["SqliteTaskStore (shipped)"] = await measure(SqliteTaskStore(connections), "n", n)
            await connections.close()
            database = create_database(url)
        out["SqlAlchemyTaskStore"] = await measure(SqlAlchemyTaskStore(database), "s", n)
        await database.dispose()
    finally:
        if db == "postgres":
            await asyncio.to_thread(drop_pg_database)
        shutil.rmtree(work, ignore_errors=True)
    return out


def main() -> None:
    import uvloop

    for db in sys.argv[1:] or ["sqlite", "postgres"]:
        result = uvloop.run(run(db, N))
        print(f"{db}: {N} sequential calls each, ms per call (p50 / p99 wall, CPU of this process)")
        for store, calls in result.items():
            print(f"  {store}")
            for name, value in calls.items():
                print(
                    f"    {name:26s} p50 {value['p50_ms']:7.3f}  p99 {value['p99_ms']:7.3f}  cpu {value['cpu_ms']:7.3f}"
                )


if __name__ == "__main__":
    main()
