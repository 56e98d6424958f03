"""Fill a throwaway database fast for scenario 4: migrations, then bulk inserts through SQLAlchemy Core.

Layout: `agents` team agents share the tasks evenly; every task has `threads_per_task` small threads
(a few words each way), except `task-big` of `agent-0`, which has `big_threads`. Rows are made with the
service's own codec, so the service reads them as its own.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import create_engine, insert
from sqlalchemy.ext.asyncio import create_async_engine

from adapters import store_codec as codec
from adapters.sqlalchemy_store.migrate import upgrade
from adapters.sqlalchemy_store.tables import tasks, threads
from domain.model import MessageRequest, MessageResponse, Usage

BATCH = 20_000
BIG_TASK = "task-big"


def layout(n_tasks: int, agents: int) -> list[tuple[str, str]]:
    """(agent, task) of every task; agent-0's first task is the big one."""
    keys = [(f"agent-{i % agents}", f"task-{i:07d}") for i in range(n_tasks)]
    keys[0] = ("agent-0", BIG_TASK)
    return keys


def _payloads(agent: str) -> tuple[str, str]:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    request = MessageRequest(agent, "team-1", "x", "w0 w1 w2", moment)
    response = MessageResponse(
        agent,
        "team-1",
        "x",
        moment,
        text="You said: w0 w1 w2",
        event="finished",
        is_finished=True,
        usage=Usage(3, 5, 0, 8),
    )
    return codec.dump_request(request), codec.dump_response(response)


def rows(n_tasks: int, agents: int, per_task: int, big: int) -> tuple[list[dict[str, Any]], Any]:
    keys = layout(n_tasks, agents)
    base = 1_767_225_600_000_000  # 2026-01-01 in microseconds
    task_rows = [
        {
            "id_team_agent": agent,
            "id_task": task,
            "id_team": "team-1",
            "title": f"Task {i}",
            "driver": "auto",
            "created_us": base + i * 1000,
            "updated_us": base + i * 1000 + 500,
        }
        for i, (agent, task) in enumerate(keys)
    ]
    payload = {f"agent-{a}": _payloads(f"agent-{a}") for a in range(agents)}

    def thread_rows() -> Any:
        batch: list[dict[str, Any]] = []
        for i, (agent, task) in enumerate(keys):
            request, response = payload[agent]
            count = big if task == BIG_TASK else per_task
            at = base + i * 1000
            for seq in range(1, count + 1):
                batch.append(
                    {
                        "id_team_agent": agent,
                        "id_task": task,
                        "seq": seq,
                        "id_thread": f"th{i:07d}{seq:05d}",
                        "status": "finished",
                        "id_run": None,
                        "request": request,
                        "response": response,
                        "model_turn": None,
                        "created_us": at + seq,
                        "updated_us": at + seq,
                    }
                )
                if len(batch) >= BATCH:
                    yield batch
                    batch = []
        if batch:
            yield batch

    return task_rows, thread_rows()


def seed(async_url: str, *, n_tasks: int, agents: int, per_task: int, big: int) -> dict[str, Any]:
    started = time.monotonic()
    upgrade(async_url)
    migrated = time.monotonic()
    task_rows, batches = rows(n_tasks, agents, per_task, big)
    count = 0
    if async_url.startswith("sqlite"):
        engine = create_engine(async_url.replace("+aiosqlite", ""))
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA synchronous=OFF")
            for start in range(0, len(task_rows), BATCH):
                conn.execute(insert(tasks), task_rows[start : start + BATCH])
            for batch in batches:
                conn.execute(insert(threads), batch)
                count += len(batch)
        engine.dispose()
    else:

        async def run() -> int:
            engine = create_async_engine(async_url)
            n = 0
            try:
                async with engine.begin() as conn:
                    for start in range(0, len(task_rows), BATCH):
                        await conn.execute(insert(tasks), task_rows[start : start + BATCH])
                    for batch in batches:
                        await conn.execute(insert(threads), batch)
                        n += len(batch)
                async with engine.begin() as conn:  # what autovacuum would soon do after a bulk load
                    await conn.exec_driver_sql("ANALYZE")
            finally:
                await engine.dispose()
            return n

        count = asyncio.run(run())
    return {
        "tasks": len(task_rows),
        "threads": count,
        "agents": agents,
        "threads_per_task": per_task,
        "big_task_threads": big,
        "migrate_s": round(migrated - started, 2),
        "insert_s": round(time.monotonic() - migrated, 2),
    }
