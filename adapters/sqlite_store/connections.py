"""SQLite off the event loop: each store call runs whole on a thread, in one hop.

Writes go to one writer thread and connection; concurrent writes share one transaction and one commit
(group commit: SQLite has a single writer anyway). Reads run on a few reader threads, each with its own
connection, inside a read transaction (one snapshot per call, in WAL mode). Checkpoints (copying the WAL
back into the database, the only step that syncs to disk with synchronous=NORMAL) run on a thread of
their own, at most once per `checkpoint_every_s`, so no write waits for the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], T]
_Outcome = tuple[BaseException | None, Any]


class StoreClosed(RuntimeError):
    """A call after `close()`."""


_Job = tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], Callable[[sqlite3.Connection], Any]]


class _Threads:
    """Threads that each own a connection and take jobs from one queue; results go back to the job's loop."""

    def __init__(self, count: int, name: str, connect: Callable[[], sqlite3.Connection]) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._connect = connect
        self._threads = [threading.Thread(target=self._serve, name=f"{name}-{i}", daemon=True) for i in range(count)]
        for thread in self._threads:
            thread.start()

    def submit(self, job: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, future, job))
        return future

    def stop(self) -> None:
        """Let the queued jobs finish, then close every connection (blocking: call it off the loop)."""
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()

    def _serve(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while (job := self._jobs.get()) is not None:
                loop, future, fn = job
                try:
                    conn = conn or self._connect()  # a failed connect fails this job; the next one retries
                    result = fn(conn)
                except BaseException as error:  # handed to the awaiting coroutine
                    _deliver(loop, future, error, None)
                else:
                    _deliver(loop, future, None, result)
        finally:
            if conn is not None:
                conn.close()


def _deliver(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], error: BaseException | None, result: Any
) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
        loop.call_soon_threadsafe(_settle, future, error, result)


def _settle(future: asyncio.Future[Any], error: BaseException | None, result: Any) -> None:
    if future.done():
        return
    if isinstance(error, StopIteration):  # a future refuses it (it would end the awaiting coroutine)
        error = RuntimeError(f"the store call raised {error!r}")
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


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
        self._readers: _Threads | None = None
        self._writer: _Threads | None = None
        self._queue: list[tuple[Op[Any], asyncio.Future[Any]]] = []
        self._committing: asyncio.Future[list[_Outcome]] | None = None  # the batch on the writer thread
        self._checkpoint_every_s = checkpoint_every_s
        self._checkpointer: _Threads | None = None
        self._checkpointing = False
        self._last_checkpoint = 0.0
        self.checkpoints = 0
        self._closed = False

    async def read(self, op: Op[T]) -> T:
        """Run `op` on a reader connection inside one read transaction."""
        if self._closed:
            raise StoreClosed()
        if self._readers is None:
            self._readers = _Threads(self._reader_count, "sqlite-read", self._connect)
        return await self._readers.submit(lambda conn: _read(conn, op))

    async def write(self, op: Op[T]) -> T:
        """Run `op` in the next write transaction, with whatever other writes are waiting (one commit).

        Each op runs inside its own savepoint: one that raises leaves nothing behind and fails alone. Only a
        failure of the transaction itself (BEGIN, COMMIT, an error that ends it) fails the whole batch.
        """
        if self._closed:
            raise StoreClosed()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        entry = (op, future)
        self._queue.append(entry)
        if self._committing is None:
            try:
                self._commit_next()
            except BaseException:  # no writer thread: nothing of this call may be committed later
                if entry in self._queue:
                    self._queue.remove(entry)
                raise
        return await future

    async def close(self) -> None:
        self._closed = True
        while self._committing is not None:  # each batch's callback submits the next one
            await asyncio.wait([self._committing])
        threads = [t for t in (self._readers, self._writer, self._checkpointer) if t is not None]
        self._readers = self._writer = self._checkpointer = None
        for group in threads:
            await asyncio.to_thread(group.stop)

    def _commit_next(self) -> None:
        """Hand the waiting writes, as one transaction, to the writer thread (no task: a callback per batch)."""
        if self._writer is None:
            self._writer = _Threads(1, "sqlite-write", lambda: self._connect(autocheckpoint=False))
        batch = self._queue[: self._max_batch]
        del self._queue[: self._max_batch]
        self._committing = self._writer.submit(functools.partial(_commit, ops=[op for op, _ in batch]))
        self._committing.add_done_callback(functools.partial(self._committed, batch))

    def _committed(self, batch: list[tuple[Op[Any], asyncio.Future[Any]]], done: asyncio.Future[Any]) -> None:
        self._committing = None
        try:
            try:
                outcomes = done.result()
            except BaseException as error:  # the transaction failed as a whole (or its thread was stopped)
                failure = error if isinstance(error, Exception) else StoreClosed(repr(error))
                outcomes = [(_batch_failed(failure), None) for _ in batch]
            for (_, future), (failure, result) in zip(batch, outcomes, strict=True):
                _settle(future, failure, result)
        finally:  # whatever happened to this batch, the next one goes
            if self._queue:
                self._commit_next()
            self._maybe_checkpoint()

    def _maybe_checkpoint(self) -> None:
        now = time.monotonic()
        if self._checkpointing or self._closed or now - self._last_checkpoint < self._checkpoint_every_s:
            return
        if self._checkpointer is None:
            self._checkpointer = _Threads(1, "sqlite-checkpoint", self._connect)
        self._checkpointing, self._last_checkpoint = True, now
        self._checkpointer.submit(_checkpoint).add_done_callback(self._checkpointed)

    def _checkpointed(self, done: asyncio.Future[None]) -> None:
        self._checkpointing = False
        if done.cancelled():
            return
        if done.exception() is not None:
            log.warning("SQLite checkpoint failed (the next one retries)", exc_info=done.exception())
        else:
            self.checkpoints += 1

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


def _commit(conn: sqlite3.Connection, ops: list[Op[Any]]) -> list[_Outcome]:
    outcomes: list[_Outcome] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for op in ops:
            conn.execute("SAVEPOINT op")
            try:
                result = op(conn)
            except Exception as error:
                if not conn.in_transaction:  # the error ended the transaction: nothing of the batch is kept
                    raise
                conn.execute("ROLLBACK TO op")
                conn.execute("RELEASE op")
                outcomes.append((error, None))
            else:
                conn.execute("RELEASE op")
                outcomes.append((None, result))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return outcomes


def _checkpoint(conn: sqlite3.Connection) -> None:
    """PASSIVE: copies what no reader still needs, and never waits for (or blocks) the writer or readers."""
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _batch_failed(error: Exception) -> Exception:
    """Each op of a failed batch gets its own error (not one object raised in many coroutines), never one
    of its own kind: an `IntegrityError` of another op must not read as this op's constraint violation."""
    failure = sqlite3.OperationalError(f"the write transaction failed: {error}")
    failure.__cause__ = error
    return failure


def _read(conn: sqlite3.Connection, op: Op[T]) -> T:
    conn.execute("BEGIN")
    try:
        return op(conn)
    finally:
        conn.execute("COMMIT")
