from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from adapters.postgres_store import AsyncpgTaskStore
from adapters.sqlalchemy_store import Database, SqlAlchemyTaskStore, create_database
from adapters.sqlalchemy_store.migrate import downgrade, upgrade, upgrade_async
from adapters.sqlite_store import SqliteConnections, SqliteTaskStore
from entrypoints.bootstrap import asyncpg_connect_args
from tests.conftest import POSTGRES_URL, need
from tests.fakes import FakeTaskStore


@pytest.fixture(scope="session")
def postgres_url() -> str:
    need(POSTGRES_URL, "PostgreSQL")
    downgrade(POSTGRES_URL, "base")
    upgrade(POSTGRES_URL)
    return POSTGRES_URL


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    url = sqlite_url(tmp_path)
    await upgrade_async(url)
    db = create_database(url)
    yield db
    await db.dispose()


async def clean_postgres(url: str, tables: str = "threads, tasks") -> Database:
    db = create_database(url)
    async with db.writer.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables}"))
    return db


@pytest.fixture
async def postgres_db(postgres_url: str) -> AsyncIterator[Database]:
    db = await clean_postgres(postgres_url)
    yield db
    await db.dispose()


@pytest.fixture(params=["fake", "sqlite", "sqlalchemy-sqlite", "postgres", "sqlalchemy-postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[object]:
    if request.param == "fake":
        yield FakeTaskStore()
        return
    url = sqlite_url(tmp_path)
    if request.param == "sqlite":
        await upgrade_async(url)
        connections = SqliteConnections(tmp_path / "store.db")
        yield SqliteTaskStore(connections)
        await connections.close()
        return
    if request.param == "postgres":
        postgres = request.getfixturevalue("postgres_url")
        await (await clean_postgres(postgres)).dispose()
        pg_store = AsyncpgTaskStore(asyncpg_connect_args(postgres))
        yield pg_store
        await pg_store.close()
        return
    if request.param == "sqlalchemy-sqlite":
        await upgrade_async(url)
        db = create_database(url)
    else:
        db = await clean_postgres(request.getfixturevalue("postgres_url"))
    yield SqlAlchemyTaskStore(db)
    await db.dispose()
