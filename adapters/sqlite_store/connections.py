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


def _stop_all(threads: list[_Threads | _Writer | _Checkpointer]) -> None:
    for group in threads:  # readers, then the writer (it commits what is queued first), then the checkpointer
        group.stop()


def _deliver_all(batch: list[_Job], outcomes: list[_Outcome]) -> None:
    """Each outcome to its future, with one wake-up of the loop for the whole batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], BaseException | None, Any]]] = {}
    for (loop, future, _), (error, result) in zip(batch, outcomes, strict=True):
        by_loop.setdefault(loop, []).append((future, error, result))
    for loop, settled in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(_settle_all, settled)


def _settle_all(settled: list[tuple[asyncio.Future[Any], BaseException | None, Any]]) -> None:
    for future, error, result in settled:
        _settle(future, error, result)


def _settle(future: asyncio.Future[Any], error: BaseException | None, result: Any) -> None:
    if future.done():
        return
    if isinstance(error, StopIteration):  # a future refuses it (it would end the awaiting coroutine)
        error = RuntimeError(f"the store call raised {error!r}")
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class _Writer:
    """The writer thread: it commits whatever writes are queued when it comes round, as one transaction.

    Batches form on this side: while one commits, the next calls queue up, and the thread takes them all
    as soon as it is done, with no trip through the event loop in between.
    """

    def __init__(
        self, connect: Callable[[], sqlite3.Connection], max_batch: int, committed: Callable[[], None]
    ) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._connect, self._max_batch, self._committed = connect, max_batch, committed
        self._thread = threading.Thread(target=self._serve, name="sqlite-write-0", daemon=True)
        self._thread.start()

    def submit(self, op: Op[T]) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, future, op))
        return future

    def stop(self) -> None:
        """Commit what is queued, then close the connection (blocking: call it off the loop)."""
        self._jobs.put(None)
        self._thread.join()

    def _serve(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while (batch := self._next_batch()) is not None:
                try:
                    conn = conn or self._connect()  # a failed connect fails this batch; the next one retries
                    outcomes = _commit(conn, [op for _, _, op in batch])
                except BaseException as error:  # the transaction failed as a whole
                    outcomes = [(_batch_failed(error), None) for _ in batch]
                try:
                    _deliver_all(batch, outcomes)
                    self._committed()
                except Exception:  # the thread must go on: every later write would wait for it forever
                    log.exception("SQLite writer: could not hand back a batch")
        finally:
            if conn is not None:
                conn.close()
            while True:  # a write queued behind a thread that is going away fails instead of waiting forever
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    _deliver_all([job], [(StoreClosed("the SQLite writer stopped"), None)])

    def _next_batch(self) -> list[_Job] | None:
        job = self._jobs.get()
        if job is None:
            return None
        batch = [job]
        while len(batch) < self._max_batch:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is None:
                self._jobs.put(None)  # stop after this batch
                break
            batch.append(job)
        return batch


class _Checkpointer:
    """A thread that checkpoints when asked, at most once per `every_s`; asking while it runs is a no-op."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], every_s: float) -> None:
        self._connect, self._every_s = connect, every_s
        self._due = threading.Event()
        self._stopping = self._running = False
        self._last = 0.0
        self.count = 0
        self._thread = threading.Thread(target=self._serve, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def maybe(self) -> None:
        now = time.monotonic()
        if not self._running and now - self._last >= self._every_s:
            self._last = now
            self._due.set()

    def stop(self) -> None:
        self._stopping = True
        self._due.set()
        self._thread.join()

    def _serve(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                self._due.wait()
                self._due.clear()
                if self._stopping:
                    return
                self._running = True
                try:
                    conn = conn or self._connect()
                    _checkpoint(conn)
                    self.count += 1
                except Exception:
                    log.warning("SQLite checkpoint failed (the next one retries)", exc_info=True)
                finally:
                    self._running = False
        finally:
            if conn is not None:
                conn.close()


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
        self._writer: _Writer | None = None
        self._checkpoint_every_s = checkpoint_every_s
        self._checkpointer: _Checkpointer | None = None
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
            self._readers = _Threads(self._reader_count, "sqlite-read", self._connect)
        return await self._readers.submit(lambda conn: _read(conn, op))

    async def write(self, op: Op[T]) -> T:
        """Run `op` in the next write transaction, with whatever other writes are waiting (one commit).

        Each op runs inside its own savepoint (or, alone in its batch, its own transaction): one that raises
        leaves nothing behind and fails alone. Only a failure of the transaction itself (BEGIN, COMMIT, an
        error that ends it) fails the whole batch. An op must not end the transaction itself.
        """
        if self._closed:
            raise StoreClosed()
        if self._writer is None:
            self._checkpointer = self._checkpointer or _Checkpointer(self._connect, self._checkpoint_every_s)
            self._writer = _Writer(
                lambda: self._connect(autocheckpoint=False), self._max_batch, self._checkpointer.maybe
            )
        return await self._writer.submit(op)

    async def close(self) -> None:
        """Refuse new calls, let the queued ones finish (writes committed), then stop every thread. Every call
        of close(), concurrent, repeated or after one was cancelled, returns only once that is done."""
        self._closed = True
        if self._closing is None:
            threads = [t for t in (self._readers, self._writer, self._checkpointer) if t is not None]
            self._closing = asyncio.ensure_future(asyncio.to_thread(_stop_all, threads))
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


def _commit(conn: sqlite3.Connection, ops: list[Op[Any]]) -> list[_Outcome]:
    outcomes: list[_Outcome] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        if len(ops) == 1:  # the transaction is the op's own: no savepoint needed
            try:
                outcomes.append((None, ops[0](conn)))
            except Exception as error:
                if not conn.in_transaction:
                    raise
                conn.execute("ROLLBACK")
                return [(error, None)]
        else:
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


def _batch_failed(error: BaseException) -> Exception:
    """Each op of a failed batch gets its own error (not one object raised in many coroutines), never one
    of its own kind: an `IntegrityError` of another op must not read as this op's constraint violation."""
    try:
        described = str(error) or type(error).__name__
    except Exception:  # an error whose message cannot be made still fails the batch, with its type
        described = type(error).__name__
    failure = sqlite3.OperationalError(f"the write transaction failed: {described}")
    failure.__cause__ = error
    return failure


def _read(conn: sqlite3.Connection, op: Op[T]) -> T:
    conn.execute("BEGIN")
    try:
        return op(conn)
    finally:
        conn.execute("COMMIT")
