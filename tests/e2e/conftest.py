from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from entrypoints.app import create_app
from entrypoints.bootstrap import Services, build
from entrypoints.settings import Settings
from tests.sse import Stream, parse


class LiveServer:
    """A real uvicorn serving the app in a thread with its own event loop."""

    def __init__(self, settings: Settings, services: Services | None = None) -> None:
        self.settings = settings
        self.services = services or build(settings)
        config = uvicorn.Config(
            create_app(self.services, settings),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                break
            threading.Event().wait(0.01)
        assert self.server.started, "server did not start"
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "server did not stop"


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "ai_provider": "echo",
        "ai_echo_delay_ms": 0,
        "data_dir": tmp_path / "data",
        "stream_keepalive_s": 15,
        "shutdown_grace_s": 2,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@contextmanager
def serve(settings: Settings, services: Services | None = None) -> Iterator[LiveServer]:
    server = LiveServer(settings, services)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings_factory(tmp_path: Path) -> Callable[..., Settings]:
    return lambda **overrides: make_settings(tmp_path, **overrides)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with serve(make_settings(tmp_path)) as server:
        yield server


@pytest.fixture
async def client(live: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        yield http


async def post_stream(http: httpx.AsyncClient, url: str = "/messages", **kwargs: Any) -> tuple[httpx.Response, Stream]:
    async with http.stream("POST", url, **kwargs) as response:
        if response.status_code != 200:
            await response.aread()
            return response, Stream()
        return response, await parse(response.aiter_raw())
