"""Stream a reply, then persist it: the write-ahead run of one message."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from application.clock import new_id, new_run_id, utcnow
from application.known import KnownTasks
from application.reply import ReplyBuilder
from application.run import LiveRun, Runner
from application.titles import fallback_title
from domain.errors import (
    DomainError,
    NoActiveRun,
    ShuttingDown,
    TaskBusy,
    TaskExists,
    TaskNotFound,
    UnknownEventId,
)
from domain.events import Error, Started
from domain.model import (
    Driver,
    MessageRequest,
    Task,
    TaskKey,
    Thread,
    ThreadStatus,
)
from domain.ports import LLM, BlobStore, RunRegistry, TaskStore

log = logging.getLogger(__name__)

DOUBLE_TEXT_WAIT_S = 10.0
CLAIM_AFTER_INSERT_S = 2.0
"""How long a new task's first run may take to claim the task after storing it (one registry call, normally)."""


class Conversation:
    """Starts runs (one per task at a time), follows them, interrupts them and drains them at shutdown."""

    def __init__(
        self,
        *,
        store: TaskStore,
        llm: LLM,
        blobs: BlobStore,
        registry: RunRegistry,
        persist_interval_s: float = 1.0,
        persist_max_per_s: float = 100.0,
        double_text: str = "reject",
        now: Callable[[], datetime] = utcnow,
        claim_wait_s: float = CLAIM_AFTER_INSERT_S,
    ) -> None:
        self._store = store
        self._llm = llm
        self._blobs = blobs
        self._registry = registry
        self._double_text = double_text
        self._accepting = True
        self._now = now
        self._claim_wait = claim_wait_s
        self._runner = Runner(
            store=store,
            llm=llm,
            blobs=blobs,
            registry=registry,
            persist_interval_s=persist_interval_s,
            persist_max_per_s=persist_max_per_s,
        )
        self._live: dict[TaskKey, LiveRun] = {}
        self._known = KnownTasks()
        self._background: set[asyncio.Task[Any]] = set()

    def live(self, key: TaskKey) -> LiveRun | None:
        return self._live.get(key)

    async def start(self, request: MessageRequest) -> tuple[LiveRun, Started]:
        """Store the request write-ahead and start the reply. Raise TaskNotFound or TaskBusy first.

        The task is read (or, for a key not seen here, stored with the request in the same round trip) and its
        team checked before its run is claimed: a request of another team never holds, delays or interrupts
        the task's runs. With the `interrupt` double-text policy a running reply of the task is stopped first.
        """
        if not self._accepting:
            raise ShuttingDown()
        fresh = not request.id_task
        if fresh:
            request.id_task = new_id()  # unguessable and unused: there is nothing to read
        key = request.key
        run = LiveRun(key, new_run_id(), "", request, [], ReplyBuilder(request, self._now()))
        task, stored = None, False
        if fresh:
            pass  # claimed first, stored while the model starts (below)
        elif self._known.seen(key):
            task = await self._store.get_task(key=key)
        else:  # most likely a new conversation: stored before the claim, in one round trip with the lookup
            task = await self._add_task_or_get(run)
            stored = task is None
        _check_team(task, request)
        stale = task is not None and await self._let_the_inserter_claim(task)
        if stored:
            self.spawn_title(key, request.text, fallback_title(request.text))
        try:
            interrupted = await self._claim(run)
        except BaseException as error:
            if stored:
                await self._end_unstarted(run, error)
            raise
        try:
            if not stored:  # (a stored first thread has no history and nothing left to store: the run starts the model)
                if interrupted or stale:  # the task as the run before this one left it
                    task = await self._store.get_task(key=key)
                    _check_team(task, request)
                await self._write_ahead(task, run)
                stored = True
            self._known.add(key)
            self._live[key] = run
            started = Started(
                id_team_agent=request.id_team_agent,
                id_team=request.id_team,
                id_task=request.id_task,
                created_at=run.builder.created_at,
            )
            await self._runner.publish(run, started)
        except BaseException as error:
            if self._live.get(key) is run:
                del self._live[key]
            try:
                await self._runner.unprime(run)
                if stored:  # while the claim still keeps the next message out
                    await self._end_unstarted(run, error)
            finally:
                await self._registry.close(key=key, id_run=run.id_run)
            raise
        self._spawn(self._run(run))
        return run, started

    async def _run(self, run: LiveRun) -> None:
        try:
            await self._runner.execute(run)
        finally:
            if self._live.get(run.key) is run:
                del self._live[run.key]

    async def _claim(self, run: LiveRun) -> bool:
        """Open the run in the registry; True if another run had to be interrupted first."""
        try:
            await self._registry.open(key=run.key, id_run=run.id_run, on_interrupt=run.interrupt)
            return False
        except TaskBusy:
            if self._double_text != "interrupt":
                raise
        # the task read before may predate the running one: only its own team may interrupt it
        _check_team(await self._store.get_task(key=run.key, include_content=False), run.request)
        with contextlib.suppress(NoActiveRun):
            await self._registry.interrupt(key=run.key, reason="replaced by a newer message")
        try:
            async with asyncio.timeout(DOUBLE_TEXT_WAIT_S):
                # the old run may live on another replica: poll the shared registry
                while await self._registry.active(key=run.key) is not None:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise TaskBusy() from None
        await self._registry.open(key=run.key, id_run=run.id_run, on_interrupt=run.interrupt)
        return True

    async def _let_the_inserter_claim(self, task: Task) -> bool:
        """A new task is stored with its first message just before that message's run claims it. A request that
        finds a task whose only reply is running may be racing that claim (for the same new id, maybe on
        another replica): it waits, by its own clock, until that run is known to the registry or the reply
        is no longer running, so that it is refused, or interrupts that run, or follows it, instead of
        answering in its place. True if the task read may be stale."""
        if len(task.threads) != 1 or task.threads[0].status is not ThreadStatus.RUNNING:
            return False
        first, loop = task.threads[0], asyncio.get_running_loop()
        deadline = loop.time() + self._claim_wait
        for poll in itertools.count(1):
            if first.id_run is None or loop.time() >= deadline:
                break
            try:  # an opened run is known to the registry, running or ended (for a while)
                await self._registry.read_encoded(key=task.key, id_run=first.id_run, after=2**62, timeout=0)
                break
            except UnknownEventId:
                pass
            if poll % 10 == 0:  # ended and forgotten, or stored as ended by a run that could not start
                now = await self._store.get_task(key=task.key)
                if now is None or not now.threads or now.threads[0].status is not ThreadStatus.RUNNING:
                    break
            await asyncio.sleep(0.01)
        return True

    async def _add_task_or_get(self, run: LiveRun) -> Task | None:
        """Store a new task holding the request and return None, or store nothing and return the task that
        holds the key (in one round trip)."""
        request = run.request
        placeholder = run.builder.snapshot()
        run.id_thread = new_id()
        thread = Thread(run.id_thread, request=request, response=placeholder, id_run=run.id_run)
        new_task = Task(
            id_team_agent=request.id_team_agent,
            id_task=request.id_task,
            id_team=request.id_team,
            title=fallback_title(request.text),
            driver=Driver.AUTO,
            created_at=placeholder.created_at,
            updated_at=placeholder.created_at,
            threads=[thread],
        )
        try:
            return await self._store.add_task_or_get(task=new_task)
        except TaskExists:  # created and deleted meanwhile, more than once
            raise TaskNotFound() from None

    async def _end_unstarted(self, run: LiveRun, error: BaseException) -> None:
        """The request was stored but its run could not start: its reply ends in an error, not running (a
        registry shared by replicas would have it reaped; an in-process one, only at the next restart)."""
        run.builder.add(Error(str(error) if isinstance(error, DomainError) else "the reply could not start"))
        try:
            await self._store.save_response(
                key=run.key, id_thread=run.id_thread, response=run.builder.snapshot(), id_run=run.id_run
            )
        except Exception:  # recovery marks it interrupted: its run never held a lease
            log.warning("could not end the unstarted reply of task %s", run.key, exc_info=True)

    async def _write_ahead(self, task: Task | None, run: LiveRun) -> None:
        """Store the request (a new task, a new thread, or the pending thread it answers).

        The model starts first and runs meanwhile: its first event waits for the request to be stored.
        """
        request = run.request
        if task is None:
            self._runner.prime(run)
            task = await self._add_task_or_get(run)
            if task is None:
                self.spawn_title(run.key, request.text, fallback_title(request.text))
                return
            _check_team(task, request)  # created meanwhile, by POST /tasks
            await self._runner.unprime(run)  # the model started without the task's history
        placeholder = run.builder.snapshot()
        pending = _pending_thread(task, request)
        if pending is not None:
            run.id_thread, run.request = pending.id_thread, pending.request
            run.history = task.threads[: task.threads.index(pending)]
            self._runner.prime(run)
            await self._store.save_response(
                key=task.key, id_thread=pending.id_thread, response=placeholder, id_run=run.id_run
            )
            return
        run.id_thread, run.history = new_id(), list(task.threads)
        self._runner.prime(run)
        thread = Thread(run.id_thread, request=request, response=placeholder, id_run=run.id_run)
        await self._store.add_thread(key=task.key, thread=thread)

    async def interrupt(self, *, key: TaskKey, reason: str) -> str:
        """Stop the run holding the task (on any replica); return its id. Raise NoActiveRun if none."""
        return await self._registry.interrupt(key=key, reason=reason)

    def spawn_title(self, key: TaskKey, text: str, fallback: str) -> None:
        self._spawn(self._refine_title(key, text, fallback))

    async def _refine_title(self, key: TaskKey, text: str, fallback: str) -> None:
        try:
            title = await self._llm.title(text=text)
            if not title:
                return
            task = await self._store.get_task(key=key, include_content=False)
            if task is not None and task.title == fallback:
                await self._store.update_task(key=key, title=title)
        except Exception:
            log.warning("could not make a title for task %s", key, exc_info=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self, *, grace_s: float, reason: str = "server shutting down") -> None:
        """Refuse new runs, let running ones end within `grace_s`, then interrupt the rest and wait for them."""
        self._accepting = False
        runs = list(self._live.values())
        if runs:
            await asyncio.wait([asyncio.create_task(r.done.wait()) for r in runs], timeout=grace_s)
        for run in list(self._live.values()):
            run.interrupt(reason)
        pending = [t for t in self._background if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=max(grace_s, 5.0))


def _check_team(task: Task | None, request: MessageRequest) -> None:
    """Another team's task is not found (its existence is not revealed)."""
    if task is not None and task.id_team != request.id_team:
        raise TaskNotFound()


def _pending_thread(task: Task, request: MessageRequest) -> Thread | None:
    """The last thread if it is an unanswered request with the same text (from POST /tasks)."""
    if not task.threads or request.attachments:
        return None
    last = task.threads[-1]
    if last.status is ThreadStatus.PENDING and last.request.text == request.text:
        return last
    return None
