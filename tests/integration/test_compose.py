"""docker-compose.yml and the Dockerfile: valid for Compose, scalable, healthy-before-serving (no engine needed)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose_command() -> list[str] | None:
    """`docker compose` (the v2 plugin) if it answers, else the standalone `docker-compose`."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_compose_config_is_valid() -> None:
    command = compose_command()
    if command is None:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("CI must check the compose file: install docker-compose (.ci/run does)")
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    result = subprocess.run(
        [*command, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin"},  # no POSTGRES_PASSWORD etc.: the defaults must do
    )
    assert result.returncode == 0, result.stderr


def test_services_wait_for_healthy_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]

    assert set(services) >= {"app", "postgres", "redis", "proxy"}
    assert services["app"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    assert services["proxy"]["depends_on"] == {"app": {"condition": "service_healthy"}}
    for name in ("postgres", "redis"):
        check = services[name]["healthcheck"]
        assert check["test"] and check["interval"] and check["retries"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert {v.split(":")[0] for s in ("postgres", "redis") for v in services[s]["volumes"]} <= set(compose["volumes"])


def test_the_app_scales_and_shares_its_state(compose: dict[str, Any]) -> None:
    app = compose["services"]["app"]
    env = app["environment"]

    assert "ports" not in app, "a fixed host port breaks `docker compose up --scale app=N`"
    assert app["expose"] == ["8000"]
    assert env["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert env["REDIS_URL"].startswith("redis://redis:")
    assert env["BLOB_STORE"] == "database"
    assert env["MIGRATE_ON_START"] == "true"
    grace = int(re.sub(r"\D", "", app["stop_grace_period"]))
    assert grace > int(env["SHUTDOWN_GRACE_S"])


def test_the_proxy_does_not_buffer_event_streams() -> None:
    conf = (ROOT / "deploy" / "nginx.conf").read_text()

    assert "proxy_buffering off;" in conf
    assert "proxy_pass http://app;" in conf


def test_the_image_is_slim_non_root_and_checks_its_health() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    lines = [line.strip() for line in dockerfile.splitlines()]

    assert next(line for line in lines if line.startswith("FROM")) == "FROM python:3.11-slim"
    assert "RUN pip install -r requirements.lock" in lines
    assert "RUN pip install --no-deps . \\" in lines
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert "HEALTHCHECK" in dockerfile and "urllib.request" in dockerfile and "/health" in dockerfile
    assert lines[-1] == 'CMD ["python", "-m", "entrypoints.main"]'
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {".git", ".venv", ".env", "data", "tests"} <= set(ignored)
