"""Stream a reply, then persist it: the write-ahead run of one message."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from application.claims import CLAIM_AFTER_INSERT_S, Claims, check_team
from application.clock import new_id, new_run_id, utcnow
from application.known import KnownTasks
from application.reply import ReplyBuilder
from application.run import LiveRun, Runner
from application.titles import fallback_title, refine_title
from application.write_ahead import WriteAhead
from domain.errors import ShuttingDown
from domain.events import Started
from domain.model import MessageRequest, TaskKey
from domain.ports import LLM, BlobStore, RunRegistry, TaskStore


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
        early_model_start: bool = True,
    ) -> None:
        self._store = store
        self._llm = llm
        self._registry = registry
        self._accepting = True
        self._drain_reason: str | None = None  # set as the drain interrupts what is left
        self._now = now
        self._claims = Claims(registry=registry, store=store, double_text=double_text, first_claim_wait_s=claim_wait_s)
        self._runner = Runner(
            store=store,
            llm=llm,
            blobs=blobs,
            registry=registry,
            persist_interval_s=persist_interval_s,
            persist_max_per_s=persist_max_per_s,
        )
        self._write_ahead = WriteAhead(store=store, runner=self._runner, on_new_task=self._new_task)
        self._live: dict[TaskKey, LiveRun] = {}
        self._known = KnownTasks()
        self._background: set[asyncio.Task[Any]] = set()
        self._starting: set[asyncio.Future[None]] = set()
        self._early_model_start = early_model_start

    def live(self, key: TaskKey) -> LiveRun | None:
        return self._live.get(key)

    def remember(self, key: TaskKey) -> None:
        """A task stored by another use case (POST /tasks): its first message reads it, not tries to insert it."""
        self._known.add(key)

    async def start(self, request: MessageRequest) -> tuple[LiveRun, Started]:
        """Store the request write-ahead and start the reply. Raise TaskNotFound or TaskBusy first.

        The task is read (or, for a key not seen here, stored with the request in the same round trip) and its
        team checked before its run is claimed: a request of another team never holds, delays or interrupts
        the task's runs. With the `interrupt` double-text policy a running reply of the task is stopped first.
        """
        if not self._accepting:
            raise ShuttingDown()
        starting = asyncio.get_running_loop().create_future()
        self._starting.add(starting)  # a drain waits for it: it may start a run after the drain interrupted them
        try:
            return await self._start(request)
        finally:
            self._starting.discard(starting)
            starting.set_result(None)

    async def _start(self, request: MessageRequest) -> tuple[LiveRun, Started]:
        fresh = not request.id_task
        if fresh:
            request.id_task = new_id()  # unguessable and unused: there is nothing to read
        key = request.key
        run = LiveRun(key, new_run_id(), "", request, [], ReplyBuilder(request, self._now()))
        task, stored = None, False
        if not fresh:
            if self._known.seen(key):
                task = await self._store.get_task(key=key)
            else:  # most likely a new conversation: stored now, in the round trip that would find the task
                task = await self._write_ahead.first_or_get(run, prime=self._early_model_start)
                stored = task is None
        check_team(task, request)
        stale = task is not None and await self._claims.after_a_running_reply(task)
        try:
            if not self._accepting and not stored:  # drained meanwhile (a stored message gets the drain's grace)
                raise ShuttingDown()
            interrupted = await self._claims.claim(run)
        except BaseException as error:
            await self._abandon(run, error, stored=stored)
            raise
        try:
            if not stored:  # (a new task's first thread has nothing left to store: its run starts the model)
                if interrupted or stale:  # the task as the run before this one left it
                    task = await self._store.get_task(key=key)
                    check_team(task, request)
                await self._write_ahead.store(task, run, prime_new=fresh or self._early_model_start)
                stored = True
            self._known.add(key)
            self._live[key] = run
            if self._drain_reason is not None:  # stored after the drain interrupted the live runs
                run.interrupt(self._drain_reason)
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
                await self._abandon(run, error, stored=stored)  # while the claim still keeps the next message out
            finally:
                await self._registry.close(key=key, id_run=run.id_run)
            raise
        self._runner.begin(run)
        self._spawn(self._run(run))
        return run, started

    async def _abandon(self, run: LiveRun, error: BaseException, *, stored: bool) -> None:
        """A run that will not begin: stop the model it may have started, and end its stored reply in an error."""
        try:
            await self._runner.unprime(run)
        finally:
            if stored:
                await self._write_ahead.end_unstarted(run, error)

    async def _run(self, run: LiveRun) -> None:
        try:
            await self._runner.execute(run)
        finally:
            if self._live.get(run.key) is run:
                del self._live[run.key]

    async def interrupt(self, *, key: TaskKey, reason: str) -> str:
        """Stop the run holding the task (on any replica); return its id. Raise NoActiveRun if none."""
        return await self._registry.interrupt(key=key, reason=reason)

    def _new_task(self, run: LiveRun) -> None:
        self.spawn_title(run.key, run.request.text, fallback_title(run.request.text))

    def spawn_title(self, key: TaskKey, text: str, fallback: str) -> None:
        self._spawn(refine_title(store=self._store, llm=self._llm, key=key, text=text, fallback=fallback))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self, *, grace_s: float, reason: str = "server shutting down") -> None:
        """Refuse new runs; let running ones, and those of messages being stored, end within `grace_s`; then
        interrupt the rest and wait for them."""
        self._accepting = False
        loop = asyncio.get_running_loop()
        grace_end, waited = loop.time() + grace_s, set[str]()
        while (runs := [r for r in self._live.values() if r.id_run not in waited]) or self._starting:
            if (left := grace_end - loop.time()) <= 0:
                break
            waited.update(r.id_run for r in runs)
            ending: list[asyncio.Future[Any]] = [asyncio.create_task(r.done.wait()) for r in runs]
            await asyncio.wait([*ending, *self._starting], timeout=left)
        self._drain_reason = reason
        for run in list(self._live.values()):
            run.interrupt(reason)
        deadline = loop.time() + max(grace_s, 5.0)
        # a message still being stored starts its run interrupted, in a task that may come after this wait began
        while (pending := [t for t in self._unfinished() if not t.done()]) and loop.time() < deadline:
            await asyncio.wait(pending, timeout=deadline - loop.time())

    def _unfinished(self) -> list[asyncio.Future[Any]]:
        return [*self._background, *self._starting, *self._runner.stopping]
