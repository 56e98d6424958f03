"""FastAPI's native OpenTelemetry is off unless TELEMETRY_ENABLED asks for it (each request would check the
global providers)."""

from __future__ import annotations

import pytest
from opentelemetry import _logs, metrics, trace

from tests.unit.apps import fake_app


class SdkProvider:
    """What an OpenTelemetry SDK installs: anything but the API's own deferred providers."""


def test_fastapis_telemetry_follows_the_setting_even_with_an_sdk_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trace, "get_tracer_provider", SdkProvider)
    monkeypatch.setattr(metrics, "get_meter_provider", SdkProvider)
    monkeypatch.setattr(_logs, "get_logger_provider", SdkProvider)

    assert not fake_app()._native_telemetry.enabled()
    assert fake_app(telemetry_enabled=True)._native_telemetry.enabled()
