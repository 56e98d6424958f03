"""Write paths: one transaction per write, or (SQLite) group commit of concurrent writes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

T = TypeVar("T")
Op = Callable[[AsyncConnection], Awaitable[T]]


class Writer(Protocol):
    async def run(self, op: Op[T], *, isolated: bool = False) -> T: ...


class DirectWriter:
    """Each write in its own transaction (PostgreSQL: row locks let writers run side by side)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def run(self, op: Op[T], *, isolated: bool = False) -> T:
        async with self._engine.begin() as conn:
            return await op(conn)


class BatchingWriter:
    """Concurrent writes share one transaction and one commit (SQLite has a single writer anyway).

    SQLite undoes just the failing statement of a constraint violation and keeps the transaction, so an
    `isolated` write (one that may hit a constraint) fails alone, as does an op's own exception raised after a
    statement that changed nothing. Any other database error fails the whole batch.
    """

    def __init__(self, engine: AsyncEngine, *, max_batch: int = 256) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._queue: list[tuple[Op[Any], bool, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def run(self, op: Op[T], *, isolated: bool = False) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((op, isolated, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                await self._commit(batch)
        finally:
            self._flusher = None

    async def _commit(self, batch: list[tuple[Op[Any], bool, asyncio.Future[Any]]]) -> None:
        outcomes: list[tuple[asyncio.Future[Any], BaseException | None, Any]] = []
        try:
            async with self._engine.begin() as conn:
                for op, isolated, future in batch:
                    try:
                        result = await op(conn)
                    except DBAPIError as error:
                        if not isolated:
                            raise
                        outcomes.append((future, error, None))
                    except Exception as error:
                        outcomes.append((future, error, None))
                    else:
                        outcomes.append((future, None, result))
        except BaseException as error:
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(error)
            if not isinstance(error, Exception):
                raise
            return
        for future, failure, result in outcomes:
            if future.done():
                continue
            if failure is not None:
                future.set_exception(failure)
            else:
                future.set_result(result)
