"""`python -m entrypoints.main`: serve on WEB_SERVER_HOST:WEB_SERVER_PORT."""

from __future__ import annotations

import logging

import uvicorn
from fastapi import FastAPI

from entrypoints.app import create_app
from entrypoints.bootstrap import build
from entrypoints.settings import Settings


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory entrypoints.main:app_from_env` (several workers)."""
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return create_app(build(settings), settings)


def main() -> None:
    settings = Settings()
    uvicorn.run(
        "entrypoints.main:app_from_env",
        factory=True,
        host=settings.web_server_host,
        port=settings.web_server_port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) + 10,
    )


if __name__ == "__main__":
    main()
