"""The service's app on fakes, with settings of a test's choosing (no `.env`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from adapters.memory_runs import InMemoryRunRegistry
from entrypoints.app import create_app
from entrypoints.bootstrap import compose
from entrypoints.settings import Settings
from tests.fakes import FakeBlobStore, FakeTaskStore, ScriptedLLM


def fake_app(**settings: Any) -> FastAPI:
    config = Settings(_env_file=None, **settings)
    services = compose(
        settings=config,
        store=FakeTaskStore(),
        llm=ScriptedLLM(),
        blobs=FakeBlobStore(),
        registry=InMemoryRunRegistry(),
    )
    return create_app(services, config)
