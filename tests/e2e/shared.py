"""One live server per test module (starting one takes ~0.5 s): tests keep apart by using their own agent ids."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from entrypoints.settings import Settings
from tests.e2e.conftest import LiveServer, make_settings, serve


def module_server(name: str, **overrides: Any) -> Callable[..., Iterator[LiveServer]]:
    @pytest.fixture(scope="module")
    def fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
        with serve(make_settings(tmp_path_factory.mktemp(name), **overrides)) as server:
            yield server

    return fixture


def module_client(server_fixture: str = "server") -> Callable[..., AsyncIterator[httpx.AsyncClient]]:
    @pytest.fixture
    async def fixture(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
        server: LiveServer = request.getfixturevalue(server_fixture)
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            yield http

    return fixture


def new_agent() -> str:
    return "agent-" + uuid.uuid4().hex[:12]


def files_of(settings: Settings, agent: str) -> list[Path]:
    """The agent's stored files, plus any upload left half-written."""
    root = settings.data_dir / "files"
    return [p for p in [*(root / agent).rglob("*"), *(root / ".tmp").rglob("*")] if p.is_file()]
