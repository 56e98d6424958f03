"""FastAPI's native OpenTelemetry is off unless TELEMETRY_ENABLED asks for it (each request would check the
global providers)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from opentelemetry import _logs, metrics, trace

from adapters.memory_runs import InMemoryRunRegistry
from entrypoints.app import create_app
from entrypoints.bootstrap import compose
from entrypoints.settings import Settings
from tests.fakes import FakeBlobStore, FakeTaskStore, ScriptedLLM


class SdkProvider:
    """What an OpenTelemetry SDK installs: anything but the API's own deferred providers."""


def app_with(**env: object) -> FastAPI:
    settings = Settings(_env_file=None, **env)  # type: ignore[arg-type]
    services = compose(
        settings=settings,
        store=FakeTaskStore(),
        llm=ScriptedLLM(),
        blobs=FakeBlobStore(),
        registry=InMemoryRunRegistry(),
    )
    return create_app(services, settings)


def test_fastapis_telemetry_follows_the_setting_even_with_an_sdk_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trace, "get_tracer_provider", SdkProvider)
    monkeypatch.setattr(metrics, "get_meter_provider", SdkProvider)
    monkeypatch.setattr(_logs, "get_logger_provider", SdkProvider)

    assert not app_with()._native_telemetry.enabled()
    assert app_with(telemetry_enabled=True)._native_telemetry.enabled()
