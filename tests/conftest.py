from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest
from hypothesis import settings

# property tests check behaviour, not speed: a busy CI machine must not fail one on hypothesis's 200 ms deadline
settings.register_profile("no-deadline", deadline=None)
settings.load_profile("no-deadline")

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def reachable(url: str) -> bool:
    parsed = urlparse(url.replace("+asyncpg", ""))
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 5432), timeout=1):
            return True
    except OSError:
        return False


def need(url: str, what: str) -> None:
    """Skip where the service is absent, except in CI (REQUIRE_SERVICES=1), where that is a failure."""
    if reachable(url):
        return
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} at {url} is required (REQUIRE_SERVICES=1) but unreachable")
    pytest.skip(f"{what} unreachable at {url}")
