"""PostgreSQL shared by replicas: concurrent writers from separate engines, replicas migrating at once."""

from __future__ import annotations

import asyncio
import sys
from asyncio.subprocess import PIPE
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from adapters.sqlalchemy_store import SqlAlchemyTaskStore, create_database
from domain.errors import TaskExists
from domain.model import Driver, MessageRequest, MessageResponse, Task, TaskKey, Thread, ThreadStatus
from tests.conftest import POSTGRES_URL, need
from tests.integration.conftest import clean_postgres

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KEY = TaskKey("agent", "shared")
ROOT = Path(__file__).resolve().parents[2]


def request(text: str) -> MessageRequest:
    return MessageRequest("agent", "team", "shared", text, T0)


async def test_two_replicas_append_and_save_into_one_task_without_losing_anything(postgres_url: str) -> None:
    engines = [await clean_postgres(postgres_url), create_database(postgres_url)]
    a, b = (SqlAlchemyTaskStore(db) for db in engines)
    try:
        await a.add_task(task=Task("agent", "shared", "team", "t", Driver.AUTO, T0, T0))
        count = 40

        await asyncio.gather(
            *((a if i % 2 else b).add_thread(key=KEY, thread=Thread(f"th{i}", request(f"m{i}"))) for i in range(count))
        )
        await asyncio.gather(
            *(
                (b if i % 2 else a).save_response(
                    key=KEY,
                    id_thread=f"th{i}",
                    response=replace(MessageResponse("agent", "team", "shared", T0), text=f"r{i}", is_finished=True),
                    id_run=f"run{i}",
                )
                for i in range(count)
            )
        )

        task = await b.get_task(key=KEY)
        assert task is not None
        assert sorted(t.id_thread for t in task.threads) == sorted(f"th{i}" for i in range(count))
        assert all(t.status is ThreadStatus.FINISHED for t in task.threads)
        assert {t.id_thread: t.response.text for t in task.threads if t.response} == {
            f"th{i}": f"r{i}" for i in range(count)
        }
        results = await asyncio.gather(
            *(s.add_task(task=Task("agent", "race", "team", "t", Driver.AUTO, T0, T0)) for s in (a, b)),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in results) == ["NoneType", "TaskExists"]
        assert any(isinstance(r, TaskExists) for r in results)
    finally:
        for db in engines:
            await db.dispose()


async def _recreate(database: str) -> str:
    url = make_url(POSTGRES_URL)
    admin = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password, database="postgres"
    )
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()
    return url.set(database=database).render_as_string(hide_password=False)


@pytest.mark.slow
async def test_replicas_starting_at_once_migrate_one_at_a_time() -> None:
    need(POSTGRES_URL, "PostgreSQL")
    url = await _recreate("test_migrate_race")

    # alembic keeps global state, so replicas are processes here as in production
    script = "import sys; from adapters.sqlalchemy_store.migrate import upgrade; upgrade(sys.argv[1])"
    processes = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", script, url, cwd=ROOT, stderr=PIPE) for _ in range(3)
    ]
    outcomes = [(await p.wait(), (await p.stderr.read()).decode() if p.stderr else "") for p in processes]

    assert [(code, err) for code, err in outcomes if code != 0] == []
    db = create_database(url)
    try:
        async with db.reader.connect() as conn:
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
    finally:
        await db.dispose()
    assert len(versions) == 1


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    need(POSTGRES_URL, "PostgreSQL")
