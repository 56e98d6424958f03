# ruff: noqa: S608 (SQL here is assembled from constant fragments only; every value is a bound parameter)
"""AsyncpgTaskStore: the TaskStore on PostgreSQL through asyncpg directly (no ORM layer per call).

The same schema as the other SQL stores (alembic owns it). Fixed SQL strings, so asyncpg prepares each
once per connection; a write that touches two tables is one statement where it can be.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import asyncpg

from adapters import store_codec as codec
from domain.errors import TaskExists, TaskNotFound
from domain.model import Driver, MessageResponse, Task, TaskKey, Thread, ThreadStatus
from domain.ports import TaskPage

log = logging.getLogger(__name__)

TASK = ", ".join(codec.TASK_COLUMNS)
THREAD = ", ".join(codec.THREAD_COLUMNS)
GET_TASK = f"SELECT {TASK} FROM tasks WHERE id_team_agent = $1 AND id_task = $2"
INSERT_TASK = f"INSERT INTO tasks ({TASK}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
INSERT_THREAD = f"INSERT INTO threads ({THREAD}) VALUES ({', '.join(f'${i}' for i in range(1, 12))})"
# a new task with its first thread in one statement (one round trip, and atomic on its own)
INSERT_TASK_AND_THREAD = (
    f"WITH task AS ({INSERT_TASK}) INSERT INTO threads ({THREAD}) VALUES ({', '.join(f'${i}' for i in range(8, 19))})"
)
# a new task with its first thread, or (nothing stored) the task that holds the key with its threads: one row
# per thread with `created` false; `created` true and NULL columns if it was stored. A task that another
# transaction commits while this statement runs is in neither (the statement's snapshot predates it).
ADD_TASK_OR_GET = (
    f"WITH task AS ({INSERT_TASK} ON CONFLICT DO NOTHING RETURNING 1),"
    f" thread AS (INSERT INTO threads ({THREAD}) SELECT {', '.join(f'${i}' for i in range(8, 19))}"
    " WHERE EXISTS (SELECT 1 FROM task))"
    f" SELECT EXISTS (SELECT 1 FROM task) AS created, {', '.join('t.' + c for c in codec.TASK_COLUMNS)},"
    f" {', '.join('th.' + c for c in codec.THREAD_COLUMNS)}"
    " FROM (SELECT 1) AS one LEFT JOIN tasks t"
    " ON t.id_team_agent = $1 AND t.id_task = $2 AND NOT EXISTS (SELECT 1 FROM task)"
    " LEFT JOIN threads th ON th.id_team_agent = t.id_team_agent AND th.id_task = t.id_task ORDER BY th.seq"
)
# the task and its threads in one round trip: one row per thread, or one row with NULL thread columns
GET_TASK_WITH_THREADS = (
    f"SELECT {', '.join('t.' + c for c in codec.TASK_COLUMNS)}, {', '.join('th.' + c for c in codec.THREAD_COLUMNS)}"
    " FROM tasks t LEFT JOIN threads th ON th.id_team_agent = t.id_team_agent AND th.id_task = t.id_task"
    " WHERE t.id_team_agent = $1 AND t.id_task = $2 ORDER BY th.seq"
)
TOUCH_TASK = "UPDATE tasks SET updated_us = $3 WHERE id_team_agent = $1 AND id_task = $2"
NEXT_SEQ = "SELECT coalesce(max(seq), 0) + 1 FROM threads WHERE id_team_agent = $1 AND id_task = $2"
RUNNING = ThreadStatus.RUNNING.value


class AsyncpgTaskStore:
    """The durable TaskStore on PostgreSQL: one asyncpg pool, opened on first use."""

    def __init__(
        self,
        connect_args: Mapping[str, Any],
        *,
        min_size: int = 2,
        max_size: int = 20,
        timeout_s: float = 30.0,
        now_us: Callable[[], int] = codec.now_us,
    ) -> None:
        """`connect_args` are those of `asyncpg.connect` (a `dsn`, or host, user, ...; a `statement_cache_size`
        of 0 suits PgBouncer in transaction mode); `timeout_s` bounds the wait for a free connection."""
        self._connect_args = dict(connect_args)
        self._sizes = (min(min_size, max_size), max_size)
        self._timeout_s = timeout_s
        self._now_us = now_us
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self._closed = False
        self._releasing: set[asyncio.Future[None]] = set()

    async def close(self) -> None:
        self._closed = True
        if self._releasing:
            await asyncio.wait(list(self._releasing))
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def add_task(self, *, task: Task) -> None:
        row = codec.task_values(task)
        rows = [codec.thread_values(task.key, seq, t, row[-1]) for seq, t in enumerate(task.threads, 1)]
        try:
            async with self._connection() as conn:
                if len(rows) == 1:
                    await conn.execute(INSERT_TASK_AND_THREAD, *row, *rows[0])
                    return
                async with conn.transaction():
                    await conn.execute(INSERT_TASK, *row)
                    if rows:
                        await conn.executemany(INSERT_THREAD, rows)
        except asyncpg.UniqueViolationError:
            raise TaskExists() from None

    async def add_task_or_get(self, *, task: Task) -> Task | None:
        if len(task.threads) != 1:
            return await codec.add_or_get_in_steps(self, task)
        row = codec.task_values(task)
        thread = codec.thread_values(task.key, 1, task.threads[0], row[-1])
        async with self._connection() as conn:
            for _ in range(codec.ADD_OR_GET_TRIES):
                rows = await conn.fetch(ADD_TASK_OR_GET, *row, *thread)
                if rows[0]["created"]:
                    return None
                if rows[0]["id_task"] is not None:
                    return _task_from_rows(rows, skip=1)
                if (existing := await _load(conn, task.key, True)) is not None:
                    return existing
        raise TaskExists()

    async def get_task(self, *, key: TaskKey, include_content: bool = True) -> Task | None:
        async with self._connection() as conn:
            return await _load(conn, key, include_content)

    async def list_tasks(self, *, id_team_agent: str, page: TaskPage) -> list[Task]:
        where, args = ["id_team_agent = $1"], list[Any]([id_team_agent])
        if page.driver is not None:
            args.append(page.driver.value)
            where.append(f"driver = ${len(args)}")
        if page.updated_since is not None:
            args.append(codec.to_us(page.updated_since))
            where.append(f"updated_us >= ${len(args)}")
        if page.before is not None:
            args += [codec.to_us(page.before[0]), page.before[1]]
            n = len(args)
            where.append(f"(updated_us < ${n - 1} OR (updated_us = ${n - 1} AND id_task < ${n}))")
        args.append(page.limit)
        order = f"ORDER BY updated_us DESC, id_task DESC LIMIT ${len(args)}"
        sql = f"SELECT {TASK} FROM tasks WHERE {' AND '.join(where)} {order}"
        async with self._connection() as conn:
            found = [codec.task_from(row) for row in await conn.fetch(sql, *args)]
            if page.include_content and found:
                by_id = {task.id_task: task for task in found}
                query = (
                    f"SELECT {THREAD} FROM threads WHERE id_team_agent = $1 AND id_task = ANY($2) ORDER BY id_task, seq"
                )
                for row in await conn.fetch(query, id_team_agent, list(by_id)):
                    by_id[row[1]].threads.append(codec.thread_from(row))
        return found

    async def update_task(self, *, key: TaskKey, title: str | None = None, driver: Driver | None = None) -> Task | None:
        sets, args = ["updated_us = $3"], list[Any]([*codec.key_args(key), self._now_us()])
        if title is not None:
            args.append(title)
            sets.append(f"title = ${len(args)}")
        if driver is not None:
            args.append(driver.value)
            sets.append(f"driver = ${len(args)}")
        sql = f"UPDATE tasks SET {', '.join(sets)} WHERE id_team_agent = $1 AND id_task = $2"
        async with self._connection() as conn, conn.transaction():
            if await conn.execute(sql, *args) == "UPDATE 0":
                return None
            return await _load(conn, key, include_content=True)

    async def delete_task(self, *, key: TaskKey) -> Task | None:
        async with self._connection() as conn, conn.transaction():
            # the task's row lock first: an append (which takes it too) cannot slip in between read and delete
            await conn.execute(f"{GET_TASK} FOR UPDATE", *codec.key_args(key))
            task = await _load(conn, key, include_content=True)
            if task is not None:
                await conn.execute(
                    "DELETE FROM threads WHERE id_team_agent = $1 AND id_task = $2", *codec.key_args(key)
                )
                await conn.execute("DELETE FROM tasks WHERE id_team_agent = $1 AND id_task = $2", *codec.key_args(key))
            return task

    async def add_thread(self, *, key: TaskKey, thread: Thread) -> None:
        now = self._now_us()
        async with self._connection() as conn, conn.transaction(isolation="read_committed"):
            # the task's row lock orders concurrent appends; each statement after it sees the seq the one
            # before took (read committed: a fresh snapshot per statement)
            if await conn.execute(TOUCH_TASK, *codec.key_args(key), now) == "UPDATE 0":
                raise TaskNotFound()
            seq = await conn.fetchval(NEXT_SEQ, *codec.key_args(key))
            await conn.execute(INSERT_THREAD, *codec.thread_values(key, seq, thread, now))

    async def save_response(
        self,
        *,
        key: TaskKey,
        id_thread: str,
        response: MessageResponse,
        id_run: str | None = None,
        model_turn: object = None,
    ) -> None:
        now = self._now_us()
        args: list[Any] = [*codec.key_args(key), id_thread, codec.dump_response(response), response.status.value, now]
        sets = "response = $4, status = $5, updated_us = $6"
        if id_run is not None:
            args.append(id_run)
            sets += f", id_run = ${len(args)}"
        if model_turn is not None:
            args.append(codec.dump_any(model_turn))
            sets += f", model_turn = ${len(args)}"
        # the task's row is locked before the thread's, as a delete and an append lock them (else a save and a
        # delete of the same task can deadlock)
        sql = (
            "WITH task AS (SELECT 1 FROM tasks WHERE id_team_agent = $1 AND id_task = $2 FOR NO KEY UPDATE),"
            f" saved AS (UPDATE threads SET {sets}"
            " WHERE id_team_agent = $1 AND id_task = $2 AND id_thread = $3 AND EXISTS (SELECT 1 FROM task) RETURNING 1)"
            " UPDATE tasks SET updated_us = $6 WHERE id_team_agent = $1 AND id_task = $2"
            " AND EXISTS (SELECT 1 FROM saved)"
        )
        async with self._connection() as conn:
            if await conn.execute(sql, *args) == "UPDATE 0":
                raise TaskNotFound()

    async def interrupt_running(self, *, reason: str, id_runs: Sequence[str] | None = None) -> int:
        sql, args = f"SELECT {THREAD} FROM threads WHERE status = $1", list[Any]([RUNNING])
        if id_runs is not None:
            sql, args = sql + " AND id_run = ANY($2)", [*args, list(id_runs)]
        now = self._now_us()
        count = 0
        async with self._connection() as conn, conn.transaction():
            for row in await conn.fetch(sql + " ORDER BY id_team_agent, id_task, seq FOR UPDATE", *args):
                response = codec.interrupted_response(row, reason)
                if response is None:
                    continue
                await conn.execute(
                    "UPDATE threads SET response = $4, status = $5, updated_us = $6"
                    " WHERE id_team_agent = $1 AND id_task = $2 AND seq = $3",
                    row[0],
                    row[1],
                    row[2],
                    response,
                    ThreadStatus.INTERRUPTED.value,
                    now,
                )
                count += 1
        return count

    async def running_runs(self) -> list[str]:
        sql = "SELECT DISTINCT id_run FROM threads WHERE status = $1 AND id_run IS NOT NULL"
        async with self._connection() as conn:
            return [row[0] for row in await conn.fetch(sql, RUNNING)]

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        pool = await self._ready()
        conn = await pool.acquire(timeout=self._timeout_s)
        try:
            yield conn
        finally:
            # asyncpg releases in a task of its own (shielded from cancellation), which its `async with`
            # then waits for: two more loop iterations before every store call returns. Nothing here needs
            # the connection back first, so the release goes on in the background. The cost: a caller's next
            # call may take another connection meanwhile (the pool holds up to about twice the calls in
            # flight, never more than max_size), and a release that fails is logged, not raised (the
            # statement has completed; asyncpg drops that connection).
            releasing = asyncio.ensure_future(pool.release(conn))
            self._releasing.add(releasing)
            releasing.add_done_callback(self._released)

    def _released(self, task: asyncio.Future[None]) -> None:
        self._releasing.discard(task)
        if task.cancelled():
            log.debug("a PostgreSQL connection's release was cancelled (the loop is shutting down)")
        elif (error := task.exception()) is not None:
            log.warning("could not return a PostgreSQL connection to the pool", exc_info=error)

    async def _ready(self) -> asyncpg.Pool:
        if self._closed:
            raise RuntimeError("the task store is closed")
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    min_size, max_size = self._sizes
                    self._pool = await asyncpg.create_pool(
                        min_size=min_size, max_size=max_size, reset=_keep_session, **self._connect_args
                    )
        return self._pool


async def _keep_session(conn: Any) -> None:
    """Instead of asyncpg's reset query on every release (a round trip per call): this store changes no
    session state (no SET, LISTEN, cursors or advisory locks); asyncpg still rolls back an open transaction."""


async def _load(conn: Any, key: TaskKey, include_content: bool) -> Task | None:
    if not include_content:
        row = await conn.fetchrow(GET_TASK, *codec.key_args(key))
        return None if row is None else codec.task_from(row)
    rows = await conn.fetch(GET_TASK_WITH_THREADS, *codec.key_args(key))
    return _task_from_rows(rows) if rows else None


def _task_from_rows(rows: Sequence[Any], skip: int = 0) -> Task:
    """A task from rows of its columns then its threads' (after `skip` leading columns), one row per thread."""
    task = codec.task_from(rows[0][skip:])
    start = skip + len(codec.TASK_COLUMNS)
    task.threads = [codec.thread_from(row[start:]) for row in rows if row[start + 3] is not None]
    return task
