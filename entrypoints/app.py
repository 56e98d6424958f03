"""The FastAPI app factory: takes ready Services, mounts the routes at / and /api/v1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from entrypoints.auth import ApiKeys, AuthMiddleware
from entrypoints.bootstrap import Services
from entrypoints.errors import install_error_handlers
from entrypoints.failsafe import InternalErrorMiddleware
from entrypoints.middleware import RequestIdMiddleware
from entrypoints.ratelimit import RateLimitMiddleware
from entrypoints.routes import ROUTERS
from entrypoints.routes.messages import bare_routes
from entrypoints.routes.openapi import error_responses
from entrypoints.settings import Settings

API_PREFIX = "/api/v1"


class AgentApp(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        return RequestIdMiddleware(super().build_middleware_stack())


def create_app(services: Services, settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings(_env_file=None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await services.start()
        try:
            yield
        finally:
            await services.stop()

    app = AgentApp(
        telemetry=None if settings.telemetry_enabled else {"tracing": False, "metrics": False, "logs": False},
        title=settings.app_title,
        version=settings.app_version,
        description="Streams Gemini replies as Server-Sent Events; every task is kept in SQL.",
        lifespan=lifespan,
    )
    app.state.services = services
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router, responses=error_responses())
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX, include_in_schema=False)
    app.router.routes[:0] = bare_routes(["", API_PREFIX])
    app.add_middleware(InternalErrorMiddleware)
    # a layer that would only pass every request on is left out: each costs a coroutine per request and
    # a few objects per open stream
    if settings.rate_limit_streams_per_client or settings.rate_limit_requests_per_minute:
        app.add_middleware(
            RateLimitMiddleware,
            streams_per_client=settings.rate_limit_streams_per_client,
            requests_per_minute=settings.rate_limit_requests_per_minute,
        )
    keys = ApiKeys.parse(settings.auth_api_keys.get_secret_value())
    if keys:
        app.add_middleware(AuthMiddleware, keys=keys)
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
    return app
