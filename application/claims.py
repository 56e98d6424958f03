"""Claiming a task for a run: one run per task at a time, whichever replica starts it."""

from __future__ import annotations

import asyncio
import contextlib

from application.reaper import REAPED
from application.run import LiveRun
from domain.errors import NoActiveRun, TaskBusy, TaskNotFound, UnknownEventId
from domain.model import MessageRequest, Task, TaskKey, ThreadStatus
from domain.ports import RunRegistry, TaskStore

DOUBLE_TEXT_WAIT_S = 10.0
CLAIM_AFTER_INSERT_S = 2.0
"""How long a new task's first run may take to claim the task after storing it (one registry call, normally)."""


class Claims:
    """Opens runs in the registry: refused while another run holds the task, or (with the `interrupt`
    double-text policy) once that run has been stopped."""

    def __init__(
        self,
        *,
        registry: RunRegistry,
        store: TaskStore,
        double_text: str = "reject",
        first_claim_wait_s: float = CLAIM_AFTER_INSERT_S,
    ) -> None:
        self._registry = registry
        self._store = store
        self._double_text = double_text
        self._first_claim_wait = first_claim_wait_s

    async def claim(self, run: LiveRun) -> bool:
        """Open the run in the registry; True if another run had to be interrupted first."""
        try:
            await self._registry.open(key=run.key, id_run=run.id_run, on_interrupt=run.interrupt)
            return False
        except TaskBusy:
            if self._double_text != "interrupt":
                raise
        # the task read before may predate the running one: only its own team may interrupt it
        check_team(await self._store.get_task(key=run.key, include_content=False), run.request)
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

    async def after_a_running_reply(self, task: Task) -> bool:
        """True if the task as read may be stale: its last reply was running, and may have ended since.

        A new task is stored with its first message a moment before that message's run claims it. So when the
        only reply is running, another request (for the same new id, maybe on another replica) may be about to
        claim: wait, by this process's clock, until that run is known to the registry or the reply is stored as
        ended, so that this request is refused, interrupts that run, or follows it, instead of answering in
        its place. A reply still running after the whole wait was left by a run that never claimed (its server
        stopped in between): it is ended as interrupted, so that no later message waits for it again.
        """
        last = task.threads[-1] if task.threads else None
        if last is None or last.status is not ThreadStatus.RUNNING:
            return False
        if len(task.threads) == 1 and last.id_run is not None:
            await self._until_opened(task.key, last.id_run)
        return True

    async def _until_opened(self, key: TaskKey, id_run: str) -> None:
        loop = asyncio.get_running_loop()
        deadline, polls = loop.time() + self._first_claim_wait, 0
        while loop.time() < deadline:
            try:  # an opened run is known to the registry, running or ended (for a while)
                await self._registry.read_encoded(key=key, id_run=id_run, after=2**62, timeout=0)
                return
            except UnknownEventId:
                polls += 1
            if polls % 10 == 0 and not await self._still_running(key):  # ended, and forgotten by the registry
                return
            await asyncio.sleep(0.01)
        # never claimed (a run that claims this late is refused, and ends its reply in an error itself)
        await self._store.interrupt_running(reason=REAPED, id_runs=[id_run])

    async def _still_running(self, key: TaskKey) -> bool:
        task = await self._store.get_task(key=key)
        return task is not None and bool(task.threads) and task.threads[0].status is ThreadStatus.RUNNING


def check_team(task: Task | None, request: MessageRequest) -> None:
    """Another team's task is not found (its existence is not revealed)."""
    if task is not None and task.id_team != request.id_team:
        raise TaskNotFound()
