"""SQLite off the event loop: each store call runs whole on a thread, in one hop.

Writes go to one writer thread and connection; concurrent writes share one transaction and one commit
(group commit: SQLite has a single writer anyway). Reads run on a few reader threads, each with its own
connection, inside a read transaction (one snapshot per call, in WAL mode).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], T]
_Outcome = tuple[BaseException | None, Any]


class SqliteConnections:
    def __init__(
        self, path: str | Path, *, readers: int = 2, busy_timeout_ms: int = 30000, max_batch: int = 256
    ) -> None:
        self._path = str(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._max_batch = max_batch
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._local = threading.local()
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="sqlite-read")
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-write")
        self._queue: list[tuple[Op[Any], bool, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def read(self, op: Op[T]) -> T:
        """Run `op` on a reader connection inside one read transaction."""
        return await asyncio.get_running_loop().run_in_executor(self._readers, self._read, op)

    async def write(self, op: Op[T], *, isolated: bool = False) -> T:
        """Run `op` in the next write transaction, with whatever other writes are waiting.

        SQLite undoes just the failing statement of a constraint violation and keeps the transaction, so an
        `isolated` op (one that may hit a constraint) fails alone, as does an op's own exception raised after
        a statement that changed nothing. Any other database error fails the whole batch.
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((op, isolated, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._drain())
        return await future

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._shutdown)

    def _shutdown(self) -> None:
        self._readers.shutdown(wait=True)
        self._writer.shutdown(wait=True)
        with self._lock:
            for conn in self._opened:
                conn.close()
            self._opened.clear()

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                ops = [(op, isolated) for op, isolated, _ in batch]
                try:
                    outcomes = await loop.run_in_executor(self._writer, self._commit, ops)
                except Exception as error:
                    outcomes = [(error, None)] * len(batch)
                for (_, _, future), (failure, result) in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if failure is not None:
                        future.set_exception(failure)
                    else:
                        future.set_result(result)
        finally:
            self._flusher = None

    def _commit(self, ops: list[tuple[Op[Any], bool]]) -> list[_Outcome]:
        conn = self._connection()
        outcomes: list[_Outcome] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for op, isolated in ops:
                try:
                    outcomes.append((None, op(conn)))
                except sqlite3.Error as error:
                    if not isolated or not isinstance(error, sqlite3.IntegrityError):
                        raise
                    outcomes.append((error, None))
                except Exception as error:
                    outcomes.append((error, None))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return outcomes

    def _read(self, op: Op[T]) -> T:
        conn = self._connection()
        conn.execute("BEGIN")
        try:
            return op(conn)
        finally:
            conn.execute("COMMIT")

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        return conn
