"""SqlAlchemyTaskStore: tasks and threads in two tables, on any SQLAlchemy async driver.

The service runs the native stores on SQLite and asyncpg; this one serves other drivers (e.g. psycopg), and
the contract suite runs it on SQLite and PostgreSQL too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters import store_codec as codec
from adapters.sqlalchemy_store.engine import Database
from adapters.sqlalchemy_store.tables import tasks, threads
from domain.errors import TaskExists, TaskNotFound
from domain.model import Driver, MessageResponse, Task, TaskKey, Thread, ThreadStatus
from domain.ports import TaskPage


def _task_pk(key: TaskKey) -> Any:
    return and_(tasks.c.id_team_agent == key.id_team_agent, tasks.c.id_task == key.id_task)


def _thread_fk(key: TaskKey) -> Any:
    return and_(threads.c.id_team_agent == key.id_team_agent, threads.c.id_task == key.id_task)


class SqlAlchemyTaskStore:
    """The durable TaskStore. Writes go through `db.writer`, reads through `db.reader`."""

    def __init__(self, db: Database, *, now_us: Callable[[], int] = codec.now_us) -> None:
        self._db = db
        self._now_us = now_us

    async def _write(self, op: Callable[[AsyncConnection], Awaitable[None]]) -> None:
        async with self._db.writer.begin() as conn:
            await op(conn)

    async def add_task(self, *, task: Task) -> None:
        async def op(conn: AsyncConnection) -> None:
            await conn.execute(
                insert(tasks).values(dict(zip(codec.TASK_COLUMNS, codec.task_values(task), strict=True)))
            )
            if task.threads:
                now = codec.to_us(task.updated_at)
                rows = [_thread_row(task.key, seq, t, now) for seq, t in enumerate(task.threads, 1)]
                await conn.execute(insert(threads), rows)

        try:
            await self._write(op)
        except IntegrityError:
            raise TaskExists() from None

    async def add_task_or_get(self, *, task: Task) -> Task | None:
        return await codec.add_or_get_in_steps(self, task)

    async def get_task(self, *, key: TaskKey, include_content: bool = True) -> Task | None:
        async with self._db.reader.connect() as conn:
            row = (await conn.execute(select(tasks).where(_task_pk(key)))).first()
            if row is None:
                return None
            task = codec.task_from(row)
            if include_content:
                query = select(threads).where(_thread_fk(key)).order_by(threads.c.seq)
                task.threads = [codec.thread_from(r) for r in await conn.execute(query)]
            return task

    async def list_tasks(self, *, id_team_agent: str, page: TaskPage) -> list[Task]:
        query = select(tasks).where(tasks.c.id_team_agent == id_team_agent)
        if page.driver is not None:
            query = query.where(tasks.c.driver == page.driver.value)
        if page.updated_since is not None:
            query = query.where(tasks.c.updated_us >= codec.to_us(page.updated_since))
        if page.before is not None:
            before_us, before_id = codec.to_us(page.before[0]), page.before[1]
            query = query.where(
                or_(
                    tasks.c.updated_us < before_us,
                    and_(tasks.c.updated_us == before_us, tasks.c.id_task < before_id),
                )
            )
        query = query.order_by(tasks.c.updated_us.desc(), tasks.c.id_task.desc()).limit(page.limit)
        async with self._db.reader.connect() as conn:
            found = [codec.task_from(r) for r in await conn.execute(query)]
            if page.include_content and found:
                await _load_threads(conn, id_team_agent, found)
        return found

    async def update_task(self, *, key: TaskKey, title: str | None = None, driver: Driver | None = None) -> Task | None:
        values: dict[str, Any] = {"updated_us": self._now_us()}
        if title is not None:
            values["title"] = title
        if driver is not None:
            values["driver"] = driver.value
        async with self._db.writer.begin() as conn:
            result = await conn.execute(update(tasks).where(_task_pk(key)).values(**values))
        if result.rowcount == 0:
            return None
        return await self.get_task(key=key)

    async def delete_task(self, *, key: TaskKey) -> Task | None:
        task = await self.get_task(key=key)
        if task is None:
            return None
        async with self._db.writer.begin() as conn:
            await conn.execute(delete(threads).where(_thread_fk(key)))
            result = await conn.execute(delete(tasks).where(_task_pk(key)))
        return task if result.rowcount else None

    async def add_thread(self, *, key: TaskKey, thread: Thread) -> None:
        now = self._now_us()

        async def op(conn: AsyncConnection) -> None:
            moved = await conn.execute(update(tasks).where(_task_pk(key)).values(updated_us=now))
            if moved.rowcount == 0:
                raise TaskNotFound()
            last = await conn.scalar(select(func.max(threads.c.seq)).where(_thread_fk(key)))
            await conn.execute(insert(threads).values(**_thread_row(key, (last or 0) + 1, thread, now)))

        await self._write(op)

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
        values: dict[str, Any] = {
            "response": codec.dump_response(response),
            "status": response.status.value,
            "updated_us": now,
        }
        if id_run is not None:
            values["id_run"] = id_run
        if model_turn is not None:
            values["model_turn"] = codec.dump_any(model_turn)

        async def op(conn: AsyncConnection) -> None:
            saved = await conn.execute(
                update(threads).where(_thread_fk(key), threads.c.id_thread == id_thread).values(**values)
            )
            if saved.rowcount == 0:
                raise TaskNotFound()
            await conn.execute(update(tasks).where(_task_pk(key)).values(updated_us=now))

        await self._write(op)

    async def interrupt_running(self, *, reason: str, id_runs: Sequence[str] | None = None) -> int:
        query = select(threads).where(threads.c.status == ThreadStatus.RUNNING.value)
        if id_runs is not None:
            query = query.where(threads.c.id_run.in_(list(id_runs)))
        count = 0
        async with self._db.writer.begin() as conn:
            for row in (await conn.execute(query)).all():
                response = codec.interrupted_response(row, reason)
                if response is None:
                    continue
                await conn.execute(
                    update(threads)
                    .where(_thread_fk(TaskKey(row.id_team_agent, row.id_task)), threads.c.seq == row.seq)
                    .values(
                        response=response,
                        status=ThreadStatus.INTERRUPTED.value,
                        updated_us=self._now_us(),
                    )
                )
                count += 1
        return count

    async def running_runs(self) -> list[str]:
        query = (
            select(threads.c.id_run)
            .where(threads.c.status == ThreadStatus.RUNNING.value, threads.c.id_run.is_not(None))
            .distinct()
        )
        async with self._db.reader.connect() as conn:
            return [row.id_run for row in await conn.execute(query)]


async def _load_threads(conn: AsyncConnection, id_team_agent: str, found: list[Task]) -> None:
    by_id = {t.id_task: t for t in found}
    query = (
        select(threads)
        .where(threads.c.id_team_agent == id_team_agent, threads.c.id_task.in_(list(by_id)))
        .order_by(threads.c.id_task, threads.c.seq)
    )
    for row in await conn.execute(query):
        by_id[row.id_task].threads.append(codec.thread_from(row))


def _thread_row(key: TaskKey, seq: int, thread: Thread, now_us: int) -> dict[str, Any]:
    return dict(zip(codec.THREAD_COLUMNS, codec.thread_values(key, seq, thread, now_us), strict=True))
