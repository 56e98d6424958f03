"""`python -m entrypoints.main`: serve on WEB_SERVER_HOST:WEB_SERVER_PORT, draining streams on SIGTERM."""

from __future__ import annotations

import gc
import logging
import socket

import uvicorn
from fastapi import FastAPI

from entrypoints.app import create_app
from entrypoints.bootstrap import Services, build
from entrypoints.settings import Settings

GC_THRESHOLDS = (2_000, 1, 140)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class DrainingServer(uvicorn.Server):
    """On SIGTERM: stop accepting, give running replies the grace period, interrupt the rest.

    uvicorn alone would wait and then cancel open streams without a last frame; here every stream gets its
    terminal event and `[DONE]` before uvicorn closes the connections.
    """

    def __init__(self, config: uvicorn.Config, services: Services) -> None:
        super().__init__(config)
        self._services = services

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        # What startup built lives as long as the process: keep the collector from rescanning it. A young
        # generation of 2,000 (not 700) lets most per-event garbage die before a collection sees it. A middle
        # pass scans what survived the young passes since the one before (an open stream's coroutines: ~190
        # objects). Every third collection (after two young ones), not every fifth of 5,000, it scans about a
        # quarter as many: at most ~4 ms while 1,000 streams open, not 7-9. 140 middle passes per full one keep
        # full passes as rare as before: one per 850,000 net allocations at least, the default's per 93,000
        # (bench/findings.md, tenth round).
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        await self._services.conversation.drain(grace_s=self._services.shutdown_grace_s)
        await super().shutdown(sockets=sockets)


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory entrypoints.main:app_from_env` (several workers)."""
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    return create_app(build(settings), settings)


def build_server(settings: Settings | None = None) -> DrainingServer:
    """The server `python -m entrypoints.main` runs (also what the benchmarks measure)."""
    settings = settings or Settings()
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    services = build(settings)
    config = uvicorn.Config(
        create_app(services, settings),
        host=settings.web_server_host,
        port=settings.web_server_port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) + 10,
    )
    return DrainingServer(config, services)


def main() -> None:
    build_server().run()


if __name__ == "__main__":
    main()
