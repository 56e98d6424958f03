"""Reaper: runs whose replica died (lease expired) are stored as interrupted and ended for their followers."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from domain.ports import RunRegistry, TaskStore

log = logging.getLogger(__name__)

REAPED = "the server running this reply stopped"
RESTARTED = "server restarted"


class Reaper:
    """Any replica may reap: the registry hands each expired run to one reaper only."""

    def __init__(
        self, *, registry: RunRegistry, store: TaskStore, interval_s: float = 5.0, settle_s: float = 0.0
    ) -> None:
        self._registry = registry
        self._store = store
        self._interval = interval_s
        self._settle = settle_s
        self._task: asyncio.Task[None] | None = None

    async def reap_once(self) -> list[str]:
        """Store expired runs as interrupted first, then end their streams (so a follower that sees the
        terminal event and reloads finds the stored reply interrupted). Return the ids ended here."""
        expired = await self._registry.expired_runs()
        if not expired:
            return []
        await self._store.interrupt_running(reason=REAPED, id_runs=expired)
        ended = await self._registry.reap(id_runs=expired, reason=REAPED)
        if ended:
            log.warning("reaped %d runs whose replica stopped: %s", len(ended), ", ".join(ended))
        return ended

    async def recover(self, *, reason: str = RESTARTED) -> int:
        """At startup: mark stored replies that no live run holds any more as interrupted; return how many.

        Running ids are read before the live leases. The first message of a new task is stored as running just
        before its run opens its lease: with a registry shared by replicas, replies without a lease get
        `settle_s` to show one (a run that ends meanwhile is no longer stored as running), so a run started
        meanwhile on another replica is never taken for an orphan.
        """
        await self.reap_once()
        running = await self._store.running_runs()
        if not running:
            return 0
        live = await self._registry.live_runs()
        orphans = [id_run for id_run in running if id_run not in live]
        if orphans and self._settle > 0:
            await asyncio.sleep(self._settle)
            live = await self._registry.live_runs()
            orphans = [id_run for id_run in orphans if id_run not in live]
        if not orphans:
            return 0
        return await self._store.interrupt_running(reason=reason, id_runs=orphans)

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.reap_once()
            except Exception:
                log.warning("reaping failed; trying again in %.1f s", self._interval, exc_info=True)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run_forever(), name="reaper")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
