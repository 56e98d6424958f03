"""The threads behind SqliteConnections: readers, the writer (group commit) and the checkpointer.

Each job carries its caller's event loop and future; results go back with `call_soon_threadsafe`, one
wake-up of the loop per batch.
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
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], T]
Outcome = tuple[BaseException | None, Any]
Job = tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], Callable[[sqlite3.Connection], Any]]


class StoreClosed(RuntimeError):
    """A call after `close()`."""


def _submit(jobs: queue.SimpleQueue[Job | None], op: Op[T]) -> asyncio.Future[T]:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    jobs.put((loop, future, op))
    return future


class ReaderThreads:
    """Threads that each own a connection and take jobs from one queue; results go back to the job's loop."""

    def __init__(self, count: int, name: str, connect: Callable[[], sqlite3.Connection]) -> None:
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._connect = connect
        self._threads = [threading.Thread(target=self._serve, name=f"{name}-{i}", daemon=True) for i in range(count)]
        for thread in self._threads:
            thread.start()

    def submit(self, job: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        return _submit(self._jobs, job)

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
                fn = job[2]
                try:
                    conn = conn or self._connect()  # a failed connect fails this job; the next one retries
                    result = fn(conn)
                except BaseException as error:  # handed to the awaiting coroutine
                    deliver_all([job], [(error, None)])
                else:
                    deliver_all([job], [(None, result)])
        finally:
            if conn is not None:
                conn.close()


class WriterThread:
    """The writer thread: it commits whatever writes are queued when it comes round, as one transaction.

    Batches form on this side: while one commits, the next calls queue up, and the thread takes them all
    as soon as it is done, with no trip through the event loop in between.
    """

    def __init__(
        self, connect: Callable[[], sqlite3.Connection], max_batch: int, committed: Callable[[], None]
    ) -> None:
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._connect, self._max_batch, self._committed = connect, max_batch, committed
        self._thread = threading.Thread(target=self._serve, name="sqlite-write-0", daemon=True)
        self._thread.start()

    def submit(self, op: Op[T]) -> asyncio.Future[T]:
        return _submit(self._jobs, op)

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
                    outcomes = commit_batch(conn, [op for _, _, op in batch])
                except BaseException as error:  # the transaction failed as a whole
                    outcomes = [(_batch_failed(error), None) for _ in batch]
                try:
                    deliver_all(batch, outcomes)
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
                    deliver_all([job], [(StoreClosed("the SQLite writer stopped"), None)])

    def _next_batch(self) -> list[Job] | None:
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


class Checkpointer:
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


def stop_all(threads: list[ReaderThreads | WriterThread | Checkpointer]) -> None:
    for group in threads:  # readers, then the writer (it commits what is queued first), then the checkpointer
        group.stop()


def deliver_all(batch: list[Job], outcomes: list[Outcome]) -> None:
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


def commit_batch(conn: sqlite3.Connection, ops: list[Op[Any]]) -> list[Outcome]:
    outcomes: list[Outcome] = []
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
