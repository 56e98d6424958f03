"""Token buckets and the concurrent-stream cap, with a fake clock and a bare ASGI app."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from entrypoints import ratelimit
from entrypoints.ratelimit import RateLimitMiddleware, TokenBuckets, is_stream


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_a_burst_then_refills_at_its_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(6, clock)  # 6 a minute: one token every 10 s

    assert [buckets.take("a") for _ in range(6)] == [0.0] * 6
    assert buckets.take("a") == pytest.approx(10.0)
    assert buckets.take("b") == 0.0, "clients have their own buckets"
    clock.now += 4
    assert buckets.take("a") == pytest.approx(6.0)
    clock.now += 6
    assert buckets.take("a") == 0.0
    assert buckets.take("a") == pytest.approx(10.0)
    clock.now += 3600
    assert [buckets.take("a") for _ in range(7)].count(0.0) == 6, "never more than the burst"


def test_clients_whose_bucket_is_full_again_are_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "MAX_CLIENTS", 3)
    clock = Clock()
    buckets = TokenBuckets(60, clock)
    for client in "abc":
        buckets.take(client)
    clock.now += 61
    buckets.take("d")

    assert set(buckets._buckets) == {"d"}


@pytest.mark.parametrize(
    ("method", "path", "stream"),
    [
        ("POST", "/messages", True),
        ("POST", "/api/v1/messages", True),
        ("GET", "/tasks/a/t/stream", True),
        ("GET", "/api/v1/tasks/a/t/stream/", True),
        ("GET", "/messages", False),
        ("GET", "/tasks/a/t", False),
        ("POST", "/tasks/a", False),
        ("POST", "/tasks/a/t/interrupt", False),
    ],
)
def test_what_counts_as_a_stream(method: str, path: str, stream: bool) -> None:
    assert is_stream({"type": "http", "method": method, "path": path}) is stream


def scope(path: str = "/messages", method: str = "POST", peer: str = "10.0.0.1") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "headers": [], "client": (peer, 5000), "query_string": b""}


async def call(app: Any, scope: dict[str, Any]) -> tuple[int, dict[bytes, bytes]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    return start["status"], dict(start["headers"])


async def test_the_stream_cap_counts_open_streams_per_client_and_releases_them() -> None:
    release = asyncio.Event()

    async def slow_stream(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await release.wait()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    limiter = RateLimitMiddleware(slow_stream, streams_per_client=2)
    open_two = [asyncio.create_task(call(limiter, scope())) for _ in range(2)]
    await asyncio.sleep(0.01)

    status, headers = await call(limiter, scope())
    assert (status, headers[b"retry-after"]) == (429, b"1")
    other_client = asyncio.create_task(call(limiter, scope(peer="10.0.0.2")))
    not_a_stream = asyncio.create_task(call(limiter, scope("/tasks/a", "GET")))
    await asyncio.sleep(0.01)
    release.set()
    assert [(await t)[0] for t in (*open_two, other_client, not_a_stream)] == [200] * 4
    assert limiter._open == {}
    assert (await call(limiter, scope()))[0] == 200


async def test_the_request_rate_answers_429_with_retry_after_and_spares_health() -> None:
    async def ok(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    clock = Clock()
    limiter = RateLimitMiddleware(ok, requests_per_minute=2, clock=clock)

    statuses = [(await call(limiter, scope("/tasks/a", "GET")))[0] for _ in range(3)]
    refused = await call(limiter, scope("/tasks/a", "GET"))
    health = [(await call(limiter, scope("/health", "GET")))[0] for _ in range(5)]

    assert statuses == [200, 200, 429]
    assert refused[0] == 429 and refused[1][b"retry-after"] == b"30"
    assert health == [200] * 5
    clock.now += 30
    assert (await call(limiter, scope("/tasks/a", "GET")))[0] == 200
