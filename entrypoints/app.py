"""The FastAPI app factory: takes ready Services, mounts one router at / and /api/v1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from entrypoints.bootstrap import Services
from entrypoints.errors import install_error_handlers
from entrypoints.middleware import RequestIdMiddleware
from entrypoints.routes import health, router
from entrypoints.settings import Settings

API_PREFIX = "/api/v1"


def create_app(services: Services, settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings(_env_file=None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await services.start()
        try:
            yield
        finally:
            await services.stop()

    app = FastAPI(
        title=settings.app_title,
        version=settings.app_version,
        description="Streams Gemini replies as Server-Sent Events; every task is kept in SQL.",
        lifespan=lifespan,
    )
    app.state.services = services
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(router)
    app.include_router(router, prefix=API_PREFIX, include_in_schema=False)
    origins = Settings.split(settings.web_server_cors_origins)
    credentials = settings.web_server_cors_credentials and origins != ["*"]
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_credentials=credentials,
        allow_methods=Settings.split(settings.web_server_cors_methods),
        allow_headers=Settings.split(settings.web_server_cors_headers),
        expose_headers=["X-Request-ID", "Link", "Retry-After"],
    )
    app.add_middleware(RequestIdMiddleware)
    return app
