# ruff: noqa: S608 (SQL here is assembled from constant fragments only; every value is a bound parameter)
"""SqliteTaskStore: the TaskStore on the standard library's sqlite3, each call in one thread hop.

The same schema as the SQLAlchemy store (alembic owns it); fixed SQL strings, so sqlite3's statement cache
prepares each once per connection, and rows are decoded on the database thread, off the event loop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from adapters import store_codec as codec
from adapters.sqlite_store.connections import SqliteConnections
from domain.errors import TaskExists, TaskNotFound
from domain.model import Driver, MessageResponse, Task, TaskKey, Thread, ThreadStatus
from domain.ports import TaskPage

TASK = ", ".join(codec.TASK_COLUMNS)
THREAD = ", ".join(codec.THREAD_COLUMNS)
BY_TASK = "id_team_agent = ? AND id_task = ?"
GET_TASK = f"SELECT {TASK} FROM tasks WHERE {BY_TASK}"
GET_THREADS = f"SELECT {THREAD} FROM threads WHERE {BY_TASK} ORDER BY seq"
INSERT_TASK = f"INSERT INTO tasks ({TASK}) VALUES (?, ?, ?, ?, ?, ?, ?)"
INSERT_TASK_IF_NEW = INSERT_TASK + " ON CONFLICT DO NOTHING"
INSERT_THREAD = f"INSERT INTO threads ({THREAD}) VALUES ({', '.join('?' * len(codec.THREAD_COLUMNS))})"
TOUCH_TASK = f"UPDATE tasks SET updated_us = ? WHERE {BY_TASK}"
LAST_SEQ = f"SELECT max(seq) FROM threads WHERE {BY_TASK}"
RUNNING = ThreadStatus.RUNNING.value


class SqliteTaskStore:
    """The durable TaskStore on one SQLite file (WAL): one writer thread, a few reader threads."""

    def __init__(self, db: SqliteConnections, *, now_us: Callable[[], int] = codec.now_us) -> None:
        self._db = db
        self._now_us = now_us

    async def add_task(self, *, task: Task) -> None:
        row = codec.task_values(task)
        rows = [codec.thread_values(task.key, seq, t, row[-1]) for seq, t in enumerate(task.threads, 1)]

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(INSERT_TASK, row)
            if rows:
                conn.executemany(INSERT_THREAD, rows)

        try:
            await self._db.write(op)
        except sqlite3.IntegrityError:
            raise TaskExists() from None

    async def add_task_or_get(self, *, task: Task) -> Task | None:
        row = codec.task_values(task)
        rows = [codec.thread_values(task.key, seq, t, row[-1]) for seq, t in enumerate(task.threads, 1)]

        def op(conn: sqlite3.Connection) -> Task | None:
            if conn.execute(INSERT_TASK_IF_NEW, row).rowcount == 0:
                return _load(conn, task.key, True)
            if rows:
                conn.executemany(INSERT_THREAD, rows)
            return None

        return await self._db.write(op)

    async def get_task(self, *, key: TaskKey, include_content: bool = True) -> Task | None:
        return await self._db.read(lambda conn: _load(conn, key, include_content))

    async def list_tasks(self, *, id_team_agent: str, page: TaskPage) -> list[Task]:
        sql = f"SELECT {TASK} FROM tasks WHERE id_team_agent = ?"
        args: list[Any] = [id_team_agent]
        if page.driver is not None:
            sql, args = sql + " AND driver = ?", [*args, page.driver.value]
        if page.updated_since is not None:
            sql, args = sql + " AND updated_us >= ?", [*args, codec.to_us(page.updated_since)]
        if page.before is not None:
            before_us, before_id = codec.to_us(page.before[0]), page.before[1]
            sql += " AND (updated_us < ? OR (updated_us = ? AND id_task < ?))"
            args += [before_us, before_us, before_id]
        sql, args = sql + " ORDER BY updated_us DESC, id_task DESC LIMIT ?", [*args, page.limit]

        def op(conn: sqlite3.Connection) -> list[Task]:
            found = [codec.task_from(row) for row in conn.execute(sql, args)]
            if page.include_content and found:
                by_id = {task.id_task: task for task in found}
                marks = ", ".join("?" * len(by_id))
                query = (
                    f"SELECT {THREAD} FROM threads WHERE id_team_agent = ? AND id_task IN ({marks})"
                    " ORDER BY id_task, seq"
                )
                for row in conn.execute(query, [id_team_agent, *by_id]):
                    by_id[row[1]].threads.append(codec.thread_from(row))
            return found

        return await self._db.read(op)

    async def update_task(self, *, key: TaskKey, title: str | None = None, driver: Driver | None = None) -> Task | None:
        sets, args = ["updated_us = ?"], list[Any]([self._now_us()])
        if title is not None:
            sets, args = [*sets, "title = ?"], [*args, title]
        if driver is not None:
            sets, args = [*sets, "driver = ?"], [*args, driver.value]
        sql = f"UPDATE tasks SET {', '.join(sets)} WHERE {BY_TASK}"

        def op(conn: sqlite3.Connection) -> Task | None:
            if conn.execute(sql, [*args, *codec.key_args(key)]).rowcount == 0:
                return None
            return _load(conn, key, include_content=True)

        return await self._db.write(op)

    async def delete_task(self, *, key: TaskKey) -> Task | None:
        def op(conn: sqlite3.Connection) -> Task | None:
            task = _load(conn, key, include_content=True)
            if task is not None:
                conn.execute(f"DELETE FROM threads WHERE {BY_TASK}", codec.key_args(key))
                conn.execute(f"DELETE FROM tasks WHERE {BY_TASK}", codec.key_args(key))
            return task

        return await self._db.write(op)

    async def add_thread(self, *, key: TaskKey, thread: Thread) -> None:
        now = self._now_us()

        def op(conn: sqlite3.Connection) -> None:
            if conn.execute(TOUCH_TASK, (now, *codec.key_args(key))).rowcount == 0:
                raise TaskNotFound()
            last = conn.execute(LAST_SEQ, codec.key_args(key)).fetchone()[0]
            conn.execute(INSERT_THREAD, codec.thread_values(key, (last or 0) + 1, thread, now))

        await self._db.write(op)

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
        sets = "response = ?, status = ?, updated_us = ?"
        args: list[Any] = [codec.dump_response(response), response.status.value, now]
        if id_run is not None:
            sets, args = sets + ", id_run = ?", [*args, id_run]
        if model_turn is not None:
            sets, args = sets + ", model_turn = ?", [*args, codec.dump_any(model_turn)]
        sql = f"UPDATE threads SET {sets} WHERE {BY_TASK} AND id_thread = ?"
        args += [*codec.key_args(key), id_thread]

        def op(conn: sqlite3.Connection) -> None:
            if conn.execute(sql, args).rowcount == 0:
                raise TaskNotFound()
            conn.execute(TOUCH_TASK, (now, *codec.key_args(key)))

        await self._db.write(op)

    async def interrupt_running(self, *, reason: str, id_runs: Sequence[str] | None = None) -> int:
        sql, args = f"SELECT {THREAD} FROM threads WHERE status = ?", [RUNNING]
        if id_runs is not None:
            sql, args = sql + f" AND id_run IN ({', '.join('?' * len(id_runs))})", [*args, *id_runs]
        now = self._now_us()

        def op(conn: sqlite3.Connection) -> int:
            count = 0
            for row in conn.execute(sql, args).fetchall():
                response = codec.interrupted_response(row, reason)
                if response is None:
                    continue
                conn.execute(
                    "UPDATE threads SET response = ?, status = ?, updated_us = ?"
                    " WHERE id_team_agent = ? AND id_task = ? AND seq = ?",
                    (response, ThreadStatus.INTERRUPTED.value, now, row[0], row[1], row[2]),
                )
                count += 1
            return count

        return await self._db.write(op)

    async def running_runs(self) -> list[str]:
        sql = "SELECT DISTINCT id_run FROM threads WHERE status = ? AND id_run IS NOT NULL"
        return await self._db.read(lambda conn: [row[0] for row in conn.execute(sql, (RUNNING,))])


def _load(conn: sqlite3.Connection, key: TaskKey, include_content: bool) -> Task | None:
    row = conn.execute(GET_TASK, codec.key_args(key)).fetchone()
    if row is None:
        return None
    task = codec.task_from(row)
    if include_content:
        task.threads = [codec.thread_from(r) for r in conn.execute(GET_THREADS, codec.key_args(key))]
    return task
