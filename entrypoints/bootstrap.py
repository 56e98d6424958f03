"""The composition root: builds every adapter from Settings. Nothing connects until `start()`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from adapters import event_codec
from adapters.echo_llm import EchoLLM
from adapters.gemini import GeminiConfig, GeminiLLM, supported_mime
from adapters.postgres_store import AsyncpgTaskStore
from adapters.sqlalchemy_store import Database, PoolSettings, SqlAlchemyTaskStore, create_database
from adapters.sqlalchemy_store.migrate import upgrade_async
from adapters.sqlite_store import SqliteConnections, SqliteTaskStore
from application.conversation import Conversation
from application.resume import Resume
from application.tasks import Tasks
from domain.ports import LLM, BlobStore, RunRegistry, TaskStore
from entrypoints.forms import FormLimits
from entrypoints.scaleout import build_blobs, build_registry, lifecycle
from entrypoints.settings import Settings

log = logging.getLogger("agent.bootstrap")

Hook = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class Services:
    """Ready ports and use cases, plus what must run at startup and shutdown."""

    conversation: Conversation
    tasks: Tasks
    resume: Resume
    blobs: BlobStore
    limits: FormLimits
    keepalive_s: float = 15.0
    on_disconnect: str = "continue"
    shutdown_grace_s: float = 20.0
    public_base_url: str = ""
    # (kind, mime type) -> whether the model reads such a file; None accepts every file
    accepts: Callable[[str, str], bool] | None = None
    on_startup: list[Hook] = field(default_factory=list)
    on_shutdown: list[Hook] = field(default_factory=list)

    async def start(self) -> None:
        for hook in self.on_startup:
            await hook()

    async def stop(self) -> None:
        await self.conversation.drain(grace_s=self.shutdown_grace_s)
        for hook in reversed(self.on_shutdown):
            try:
                await hook()
            except Exception:
                log.exception("shutdown hook failed")


def limits_from(settings: Settings) -> FormLimits:
    return FormLimits(
        max_upload_bytes=settings.max_upload_bytes,
        max_request_bytes=settings.max_request_bytes,
        max_files=settings.max_files,
        max_text_bytes=settings.max_text_bytes,
    )


def compose(
    *,
    settings: Settings,
    store: TaskStore,
    llm: LLM,
    blobs: BlobStore,
    registry: RunRegistry,
) -> Services:
    """Wire use cases over ready ports (tests call this with fakes)."""
    conversation = Conversation(
        store=store,
        llm=llm,
        blobs=blobs,
        registry=registry,
        persist_interval_s=settings.stream_persist_interval_ms / 1000,
        persist_max_per_s=settings.stream_persist_max_per_s,
        double_text=settings.stream_double_text,
        # several replicas (Redis): a key this one has not seen is often another replica's task, and a model
        # started before the task is read would be started again with its history: a call wasted
        early_model_start=not settings.redis_url,
    )
    return Services(
        conversation=conversation,
        tasks=Tasks(store=store, blobs=blobs, conversation=conversation),
        resume=Resume(store=store, registry=registry, blobs=blobs, encode=event_codec.dumps),
        blobs=blobs,
        limits=limits_from(settings),
        keepalive_s=settings.stream_keepalive_s,
        on_disconnect=settings.stream_on_disconnect,
        shutdown_grace_s=settings.shutdown_grace_s,
        public_base_url=settings.public_base_url,
    )


def build_llm(settings: Settings, blobs: BlobStore, http: httpx.AsyncClient) -> LLM:
    if settings.ai_provider == "echo":
        return EchoLLM(delay_s=settings.ai_echo_delay_ms / 1000)
    key = settings.ai_google_gemini_api_key
    config = GeminiConfig(
        api_key=key.get_secret_value() if key is not None and key.get_secret_value() else None,
        model=settings.ai_google_gemini_model,
        base_url=settings.ai_google_gemini_base_url or None,
        api_version=settings.ai_google_gemini_api_version or None,
        thinking=settings.ai_google_gemini_thinking,
        system_instruction=settings.ai_system_instruction or None,
        timeout_s=settings.ai_google_gemini_timeout_s,
        max_retries=settings.ai_google_gemini_max_retries,
        google_search=settings.ai_google_gemini_search,
        code_execution=settings.ai_google_gemini_code_execution,
        inline_limit_bytes=settings.ai_google_gemini_inline_limit_bytes,
        vertexai=settings.ai_google_gemini_vertexai,
        project=settings.ai_google_cloud_project or None,
        location=settings.ai_google_cloud_location or None,
    )
    if not config.configured:
        log.warning(
            "AI_GOOGLE_GEMINI_API_KEY is not set: every message will end with an error event. "
            "Set it, or use AI_PROVIDER=echo for an offline model."
        )
    return GeminiLLM(config, blobs=blobs, http_client=http)


def build_store(url: str, database: Database, pool: PoolSettings | None = None) -> tuple[TaskStore, Hook]:
    """SQLite through the standard library's sqlite3 (one thread hop per call), PostgreSQL through asyncpg;
    any other SQLAlchemy async driver through SQLAlchemy."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        connections = SqliteConnections(parsed.database)
        return SqliteTaskStore(connections), connections.close
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() == "asyncpg":
        pool = pool or PoolSettings()
        store = AsyncpgTaskStore(
            asyncpg_connect_args(url), max_size=pool.size + pool.max_overflow, timeout_s=pool.timeout_s
        )
        return store, store.close
    return SqlAlchemyTaskStore(database), _nothing


def asyncpg_connect_args(url: str) -> dict[str, Any]:
    """DATABASE_URL as the keyword arguments of `asyncpg.connect`, read as SQLAlchemy's asyncpg dialect reads
    it (hosts, ports, `ssl`, ...), so both of the service's connections to PostgreSQL honour the same URL.
    SQLAlchemy's `prepared_statement_cache_size` (0 behind PgBouncer in transaction mode) is asyncpg's
    `statement_cache_size`."""
    parsed = make_url(url)
    _, kwargs = parsed.get_dialect()().create_connect_args(parsed)
    kwargs["statement_cache_size"] = int(kwargs.pop("prepared_statement_cache_size", 100))
    return dict(kwargs)


async def _nothing() -> None:
    return None


def build(settings: Settings) -> Services:
    """Every adapter from Settings: SQL store, blobs, run registry (in-process or Redis), the chosen LLM."""
    url = settings.resolved_database_url()
    pool = PoolSettings(
        size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        timeout_s=settings.database_pool_timeout_s,
        pre_ping=settings.database_pool_pre_ping,
    )
    database = create_database(url, pool)
    store, close_store = build_store(url, database, pool)
    blobs = build_blobs(settings, database)
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(settings.ai_google_gemini_timeout_s, connect=10.0),
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
    )
    registry = build_registry(settings)
    services = compose(
        settings=settings, store=store, llm=build_llm(settings, blobs, http), blobs=blobs, registry=registry
    )
    if settings.ai_provider == "gemini":
        services.accepts = supported_mime

    async def migrate() -> None:
        if settings.migrate_on_start:
            await upgrade_async(url)

    recover, stop_runs = lifecycle(settings, registry=registry, store=store, blobs=blobs)
    services.on_startup += [migrate, recover]
    services.on_shutdown += [http.aclose, close_store, database.dispose, stop_runs]
    return services
