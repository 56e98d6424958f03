"""The write-ahead: a message is stored, its reply marked running, before any of the reply goes out."""

from __future__ import annotations

import logging
from collections.abc import Callable

from application.claims import check_team
from application.clock import new_id
from application.run import LiveRun, Runner
from application.titles import fallback_title
from domain.errors import DomainError, TaskExists, TaskNotFound
from domain.events import Error
from domain.model import Driver, MessageRequest, Task, Thread, ThreadStatus
from domain.ports import TaskStore

log = logging.getLogger(__name__)


class WriteAhead:
    """Stores the request of a run: in a new task, as a new thread, or in the pending thread it answers."""

    def __init__(self, *, store: TaskStore, runner: Runner, on_new_task: Callable[[LiveRun], None]) -> None:
        self._store = store
        self._runner = runner
        self._on_new_task = on_new_task

    async def _add_task_or_get(self, run: LiveRun) -> Task | None:
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
            found = await self._store.add_task_or_get(task=new_task)
        except TaskExists:  # created and deleted meanwhile, more than once
            raise TaskNotFound() from None
        if found is None:
            self._on_new_task(run)
        return found

    async def first_or_get(self, run: LiveRun, *, prime: bool = True) -> Task | None:
        """Store a new task holding the request and return None, or store nothing and return the task that
        holds the key (in one round trip). With `prime`, the model starts first and runs while the task is
        stored; it is stopped again if the task exists (it started without the task's history)."""
        if prime:
            self._runner.prime(run)
        try:
            task = await self._add_task_or_get(run)
        except BaseException:
            await self._runner.unprime(run)
            raise
        if task is not None:
            await self._runner.unprime(run)
        return task

    async def store(self, task: Task | None, run: LiveRun, *, prime_new: bool = True) -> None:
        """Store the request of a claimed run. The model starts first and runs meanwhile: its first event
        waits for the request to be stored. With `prime_new` false, a task read as missing is stored before
        the model starts (it may have been created meanwhile, with a history)."""
        request = run.request
        if task is None:
            task = await self.first_or_get(run, prime=prime_new)
            if task is None:
                return
            check_team(task, request)  # created meanwhile, by POST /tasks
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

    async def end_unstarted(self, run: LiveRun, error: BaseException) -> None:
        """The request was stored but its run could not start: its reply ends in an error, not running
        (else only startup recovery would end it)."""
        run.builder.add(Error(str(error) if isinstance(error, DomainError) else "the reply could not start"))
        try:
            await self._store.save_response(
                key=run.key, id_thread=run.id_thread, response=run.builder.snapshot(), id_run=run.id_run
            )
        except Exception:  # left running: startup recovery ends it
            log.warning("could not end the unstarted reply of task %s", run.key, exc_info=True)


def _pending_thread(task: Task, request: MessageRequest) -> Thread | None:
    """The last thread if it is an unanswered request with the same text (from POST /tasks)."""
    if not task.threads or request.attachments:
        return None
    last = task.threads[-1]
    if last.status is ThreadStatus.PENDING and last.request.text == request.text:
        return last
    return None
