"""Executing one run: consume the model, publish each event, persist as it goes and at the end."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from application.clock import new_id
from application.reply import ReplyBuilder
from domain.errors import LLMError, TaskNotFound
from domain.events import (
    Error,
    Finished,
    Interrupted,
    LLMEvent,
    MediaChunk,
    MessageChunk,
    ModelTurn,
    Terminal,
    TextChunk,
    UsageReport,
)
from domain.model import Attachment, MessageRequest, MessageResponse, TaskKey, Thread
from domain.ports import LLM, BlobStore, RunRegistry, TaskStore

log = logging.getLogger(__name__)

INTERNAL_ERROR = "The reply failed because of an internal error"


@dataclass(slots=True)
class LiveRun:
    key: TaskKey
    id_run: str
    id_thread: str
    request: MessageRequest
    history: list[Thread]
    builder: ReplyBuilder
    seq: int = 0
    model_turn: Any = None
    interrupt_reason: str | None = None
    pump: asyncio.Task[Terminal] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    last_persist: float = 0.0
    persist_due: float = 0.0
    persisting: asyncio.Task[None] | None = None
    gate: asyncio.Future[None] | None = None  # a primed pump waits on it before it publishes anything
    begun: bool = False

    def interrupt(self, reason: str) -> None:
        if self.interrupt_reason is None:
            self.interrupt_reason = reason
        if self.pump is not None:
            self.pump.cancel()


class Runner:
    """Runs a LiveRun to its terminal event. The model is consumed in a child task, so an interrupt
    cancels exactly that (closing the model's HTTP response) while the run still stores and announces
    how it ended."""

    def __init__(
        self,
        *,
        store: TaskStore,
        llm: LLM,
        blobs: BlobStore,
        registry: RunRegistry,
        persist_interval_s: float,
        persist_max_per_s: float = 100.0,
    ) -> None:
        self._store = store
        self._llm = llm
        self._blobs = blobs
        self._registry = registry
        self._persist_interval = persist_interval_s
        self._persist_max_per_s = persist_max_per_s
        self._running = 0
        self._stopping: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> int:
        """Runs begun and not yet ended."""
        return self._running

    @property
    def stopping(self) -> list[asyncio.Task[None]]:
        """Models being stopped for runs that did not execute (their callers may be gone)."""
        return list(self._stopping)

    def begin(self, run: LiveRun) -> None:
        """Let the run's pump publish: start it now (it starts in the next loop iteration, not after `execute`
        starts, one iteration later), or open the gate of the one `prime` started. `execute` must follow: it
        takes the run to its end."""
        if run.begun:
            return
        run.begun = True
        self._running += 1
        run.last_persist = time.monotonic()
        run.persist_due = run.last_persist + self._persist_interval
        if run.pump is None:
            run.pump = asyncio.create_task(self._pump(run))
        elif run.gate is not None and not run.gate.done():  # (an interrupt that cancelled the pump cancelled it)
            run.gate.set_result(None)
        if run.interrupt_reason is not None:  # interrupted while it was being stored: nothing of the model goes out
            run.pump.cancel()

    async def execute(self, run: LiveRun) -> None:
        self.begin(run)
        try:
            await self._execute(run)
        finally:
            self._running -= 1

    def prime(self, run: LiveRun) -> None:
        """Start the model now, while the request is being stored: the run's pump takes its first event and
        waits for `begin` before it publishes anything."""
        if run.interrupt_reason is not None:  # it will not run: `begin` cancels its pump before it starts
            return
        run.gate = asyncio.get_running_loop().create_future()
        run.pump = asyncio.create_task(self._pump(run))

    async def unprime(self, run: LiveRun) -> None:
        """Stop a model started for a run that will not execute (or not with this history); nothing if the
        run was not primed, or has begun.

        The stop runs to its end even if the caller is cancelled meanwhile, and never raises: a model that
        fails to close is logged, and the run still ends and announces how.
        """
        pump = run.pump
        if pump is None or run.gate is None or run.begun:
            return
        run.pump = run.gate = None
        pump.cancel()
        stop = asyncio.create_task(_settle(pump))
        self._stopping.add(stop)
        stop.add_done_callback(self._stopping.discard)
        await asyncio.shield(stop)

    async def _execute(self, run: LiveRun) -> None:
        assert run.pump is not None
        hard_cancel = False
        terminal: Terminal
        try:
            terminal = await run.pump
        except asyncio.CancelledError:
            hard_cancel = _being_cancelled()
            if hard_cancel:
                run.pump.cancel()
            terminal = Interrupted(reason=run.interrupt_reason or "cancelled")
        except Exception as error:
            terminal = self._failed(run, error)
        await self._finish(run, terminal)
        if hard_cancel:
            raise asyncio.CancelledError()

    def _failed(self, run: LiveRun, error: Exception) -> Terminal:
        if run.interrupt_reason is not None:  # the model failed as it was stopped: the run still ends as asked
            log.warning("run %s of task %s failed while interrupted", run.id_run, run.key, exc_info=error)
            return Interrupted(reason=run.interrupt_reason)
        if isinstance(error, LLMError):
            return Error(error=str(error))
        log.error("run %s of task %s failed", run.id_run, run.key, exc_info=error)
        return Error(error=INTERNAL_ERROR)

    async def _pump(self, run: LiveRun) -> Terminal:
        gate = run.gate
        stream = self._llm.stream(history=run.history, request=run.request)
        registry, clock = self._registry, time.monotonic
        try:
            if gate is not None:  # primed: the first event waits until the run begins
                event = await anext(stream, None)
                await gate
                if event is None:
                    return Finished()
                end = await self._take(run, event)
                if end is not None:
                    return end
            async for event in stream:
                if type(event) is TextChunk:  # nearly every event: the short way
                    run.builder.add_text(event.content)
                    run.seq += 1
                    await registry.publish(key=run.key, id_run=run.id_run, seq=run.seq, event=event)
                    if run.persisting is None and clock() >= run.persist_due:
                        self._maybe_persist(run)
                else:
                    end = await self._take(run, event)
                    if end is not None:
                        return end
        finally:
            try:
                await _aclose(stream)
            except Exception:  # the run ends as it would have: its events are all in
                log.warning("could not close a model's stream", exc_info=True)
        return Finished()

    async def _take(self, run: LiveRun, event: LLMEvent) -> Terminal | None:
        """Keep and publish one event of the model; the terminal event ends the run instead."""
        if isinstance(event, Finished):
            return event
        if isinstance(event, UsageReport):
            run.builder.usage = event.usage
        elif isinstance(event, ModelTurn):
            run.model_turn = event.data
        else:
            attachment = await self._keep_media(run, event) if isinstance(event, MediaChunk) else None
            run.builder.add(event, attachment)
            await self.publish(run, event)
            self._maybe_persist(run)
        return None

    async def _keep_media(self, run: LiveRun, event: MediaChunk) -> Attachment | None:
        if not event.is_base64:
            return None
        content = event.content
        data = (
            await asyncio.to_thread(base64.b64decode, content) if len(content) > 65536 else (base64.b64decode(content))
        )
        writer = await self._blobs.writer(
            id_team_agent=run.key.id_team_agent,
            id_file=new_id(),
            name=event.name,
            mime_type=event.mime_type,
            kind=event.kind,
            id_task=run.key.id_task,
        )
        try:
            await writer.write(data)
            info = await writer.commit()
        except BaseException:
            await writer.abort()
            raise
        return Attachment(
            name=info.name, type=event.kind, mime_type=info.mime_type, size=info.size, id_file=info.id_file
        )

    async def publish(self, run: LiveRun, event: MessageChunk) -> None:
        run.seq += 1
        await self._registry.publish(key=run.key, id_run=run.id_run, seq=run.seq, event=event)

    def _maybe_persist(self, run: LiveRun) -> None:
        now = time.monotonic()
        if run.persisting is not None or now < run.persist_due:
            return
        # every run saves at most once per interval, and all of them together at most persist_max_per_s times
        due = run.last_persist + max(self._persist_interval, self._running / self._persist_max_per_s)
        if now < due:
            run.persist_due = due
            return
        run.last_persist, run.persist_due = now, now + self._persist_interval
        run.persisting = asyncio.create_task(self._persist_partial(run))

    async def _persist_partial(self, run: LiveRun) -> None:
        try:
            await self._save(run, run.builder.snapshot())
        except Exception:
            log.warning("could not store the partial reply of run %s", run.id_run, exc_info=True)
        finally:
            run.persisting = None

    async def _save(self, run: LiveRun, response: MessageResponse) -> None:
        await self._store.save_response(
            key=run.key,
            id_thread=run.id_thread,
            response=response,
            id_run=run.id_run,
            model_turn=run.model_turn,
        )

    async def _finish(self, run: LiveRun, terminal: Terminal) -> None:
        if run.persisting is not None:
            with contextlib.suppress(BaseException):
                await run.persisting
        run.builder.add(terminal)
        try:
            await self._save(run, run.builder.snapshot())
        except TaskNotFound:
            log.info("task %s was deleted while run %s ran", run.key, run.id_run)
        except Exception:
            log.exception("could not store the reply of run %s", run.id_run)
        await self.publish(run, terminal)
        await self._registry.close(key=run.key, id_run=run.id_run)
        run.done.set()


async def _settle(pump: asyncio.Task[Terminal]) -> None:
    await asyncio.wait([pump])  # its model is closed as it ends
    if not pump.cancelled():
        pump.exception()  # the model failed too: nobody needs to hear it


async def _aclose(model: AsyncIterator[LLMEvent]) -> None:
    aclose = getattr(model, "aclose", None)
    if aclose is not None:
        await aclose()


def _being_cancelled() -> bool:
    current = asyncio.current_task()
    return current is not None and current.cancelling() > 0
