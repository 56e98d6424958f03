"""Engines for the store: SQLite gets one writer connection (BEGIN IMMEDIATE) and a reader pool."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


@dataclass(frozen=True, slots=True)
class PoolSettings:
    size: int = 10
    max_overflow: int = 10
    timeout_s: float = 30.0
    recycle_s: int = 1800
    pre_ping: bool = False


@dataclass(slots=True)
class Database:
    writer: AsyncEngine
    reader: AsyncEngine

    async def dispose(self) -> None:
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()


def create_database(url: str, pool: PoolSettings | None = None, *, busy_timeout_ms: int = 30000) -> Database:
    pool = pool or PoolSettings()
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_async_engine(
            url,
            pool_size=pool.size,
            max_overflow=pool.max_overflow,
            pool_timeout=pool.timeout_s,
            pool_recycle=pool.recycle_s,
            pool_pre_ping=pool.pre_ping,
        )
        return Database(writer=engine, reader=engine)
    ensure_sqlite_dir(url)
    writer = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=pool.timeout_s)
    reader = create_async_engine(url, pool_size=pool.size, max_overflow=pool.max_overflow)
    _sqlite_setup(writer, busy_timeout_ms, immediate=True)
    _sqlite_setup(reader, busy_timeout_ms, immediate=False)
    return Database(writer=writer, reader=reader)


def ensure_sqlite_dir(url: str) -> None:
    """SQLite creates the file but not its folder (a fresh DATA_DIR)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_setup(engine: AsyncEngine, busy_timeout_ms: int, *, immediate: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
