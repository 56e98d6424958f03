"""The adapters that let several replicas (or uvicorn workers) serve together, chosen from Settings.

REDIS_URL set: runs live in Redis (resume, interrupt and double-text rejection work across replicas; dead
replicas' runs are reaped). BLOB_STORE=database: files live in the database every replica reads.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from adapters.fs_blobs import FilesystemBlobStore
from adapters.memory_runs import InMemoryRunRegistry
from adapters.redis_runs import RedisRunRegistry
from adapters.sqlalchemy_store.blobs import SqlAlchemyBlobStore
from adapters.sqlalchemy_store.engine import Database
from application.claims import CLAIM_AFTER_INSERT_S
from application.reaper import Reaper
from domain.ports import BlobStore, RunRegistry, TaskStore
from entrypoints.settings import Settings

log = logging.getLogger("agent.bootstrap")

Hook = Callable[[], Awaitable[None]]
ABANDONED_UPLOAD_S = 24 * 3600


def build_blobs(settings: Settings, database: Database) -> BlobStore:
    if settings.blob_store == "database":
        return SqlAlchemyBlobStore(database)
    return FilesystemBlobStore(settings.data_dir / "files")


def build_registry(settings: Settings) -> RunRegistry:
    if settings.redis_url:
        return RedisRunRegistry.from_url(
            settings.redis_url,
            prefix=settings.redis_key_prefix,
            lease_s=settings.run_lease_s,
            keep_s=settings.stream_buffer_keep_s,
        )
    return InMemoryRunRegistry(keep_s=settings.stream_buffer_keep_s)


def lifecycle(settings: Settings, *, registry: RunRegistry, store: TaskStore, blobs: BlobStore) -> tuple[Hook, Hook]:
    """(startup, shutdown) hooks: recover replies nobody runs any more, then reap dead replicas' runs."""
    shared = isinstance(registry, RedisRunRegistry)
    settle_s = CLAIM_AFTER_INSERT_S if shared else 0.0
    reaper = Reaper(registry=registry, store=store, interval_s=settings.run_reap_interval_s, settle_s=settle_s)

    async def start() -> None:
        if isinstance(registry, RedisRunRegistry):
            await registry.start()
        count = await reaper.recover()
        if count:
            log.warning("marked %d replies that no live run holds any more as interrupted", count)
        if isinstance(blobs, SqlAlchemyBlobStore):
            await blobs.purge_abandoned(older_than_s=ABANDONED_UPLOAD_S)
        if shared:
            reaper.start()

    async def stop() -> None:
        await reaper.stop()
        if isinstance(registry, RedisRunRegistry):
            await registry.aclose()

    return start, stop
