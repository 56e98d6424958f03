"""SQLite off the event loop: each store call runs whole on a thread, in one hop.

Writes go to one writer thread and connection; concurrent writes share one transaction and one commit
(group commit: SQLite has a single writer anyway). Reads run on a few reader threads, each with its own
connection, inside a read transaction (one snapshot per call, in WAL mode). Checkpoints (copying the WAL
back into the database, the only step that syncs to disk with synchronous=NORMAL) run on a thread of
their own, at most once per `checkpoint_every_s`, so no write waits for the disk.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from adapters.sqlite_store.threads import Checkpointer, Op, ReaderThreads, StoreClosed, T, WriterThread, stop_all

__all__ = ["SqliteConnections", "StoreClosed"]


class SqliteConnections:
    def __init__(
        self,
        path: str | Path,
        *,
        readers: int = 2,
        busy_timeout_ms: int = 30000,
        max_batch: int = 256,
        checkpoint_every_s: float = 1.0,
    ) -> None:
        self._path = str(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._max_batch = max_batch
        self._reader_count = readers
        self._readers: ReaderThreads | None = None
        self._writer: WriterThread | None = None
        self._checkpoint_every_s = checkpoint_every_s
        self._checkpointer: Checkpointer | None = None
        self._closed = False
        self._closing: asyncio.Future[None] | None = None

    @property
    def checkpoints(self) -> int:
        return self._checkpointer.count if self._checkpointer is not None else 0

    async def read(self, op: Op[T]) -> T:
        """Run `op` on a reader connection inside one read transaction."""
        if self._closed:
            raise StoreClosed()
        if self._readers is None:
            self._readers = ReaderThreads(self._reader_count, "sqlite-read", self._connect)
        return await self._readers.submit(lambda conn: _read(conn, op))

    async def write(self, op: Op[T]) -> T:
        """Run `op` in the next write transaction, with whatever other writes are waiting (one commit).

        Each op runs inside its own savepoint (or, alone in its batch, its own transaction): one that raises
        leaves nothing behind and fails alone. Only a failure of the transaction itself (BEGIN, COMMIT, an
        error that ends it) fails the whole batch. An op must not end the transaction itself.
        """
        if self._closed:
            raise StoreClosed()
        if self._writer is None:  # the writer asks its checkpointer after each commit: both start together
            self._checkpointer = checkpointer = Checkpointer(self._connect, self._checkpoint_every_s)
            self._writer = WriterThread(
                lambda: self._connect(autocheckpoint=False), self._max_batch, checkpointer.maybe
            )
        return await self._writer.submit(op)

    async def close(self) -> None:
        """Refuse new calls, let the queued ones finish (writes committed), then stop every thread. Every call
        of close(), concurrent, repeated or after one was cancelled, returns only once that is done."""
        self._closed = True
        if self._closing is None:
            threads = [t for t in (self._readers, self._writer, self._checkpointer) if t is not None]
            self._closing = asyncio.ensure_future(asyncio.to_thread(stop_all, threads))
        await asyncio.shield(self._closing)

    def _connect(self, *, autocheckpoint: bool = True) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            if not autocheckpoint:  # the writer: checkpoints are the checkpoint thread's
                conn.execute("PRAGMA wal_autocheckpoint=0")
        except BaseException:
            conn.close()
            raise
        return conn


def _read(conn: sqlite3.Connection, op: Op[T]) -> T:
    conn.execute("BEGIN")
    try:
        return op(conn)
    finally:
        conn.execute("COMMIT")
