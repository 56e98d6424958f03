"""Per-client limits, counted in this process: streams open at once and requests per minute (429 + Retry-After).

A client is its API key when keys are set, else its peer address (behind a proxy, let uvicorn's
`--proxy-headers`/`--forwarded-allow-ips` set that address). With several replicas each one counts alone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from entrypoints.auth import EXEMPT, route_path
from entrypoints.errors import error_response
from entrypoints.principal import client_id

MAX_CLIENTS = 10_000
"""Past this many tracked clients, those whose bucket is full again are forgotten."""
STREAM_RETRY_AFTER_S = 1


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """`per_minute` requests a minute per client, in bursts of up to `per_minute`."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._capacity, self._rate, self._clock = float(per_minute), per_minute / 60.0, clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, client: str) -> float:
        """0 if the request may go ahead (a token is spent), else the seconds until the next token."""
        now = self._clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= MAX_CLIENTS:
                self._forget_full(now)
            bucket = self._buckets[client] = _Bucket(self._capacity, now)
        bucket.tokens = min(self._capacity, bucket.tokens + (now - bucket.at) * self._rate)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self._rate

    def _forget_full(self, now: float) -> None:
        for client, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.at) * self._rate >= self._capacity:
                del self._buckets[client]


def is_stream(scope: Scope) -> bool:
    """Requests that hold a Server-Sent Events response open: POST .../messages and GET .../stream."""
    last = route_path(scope).rstrip("/").rsplit("/", 1)[-1]
    return (scope["method"], last) in (("POST", "messages"), ("GET", "stream"))


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        streams_per_client: int = 0,
        requests_per_minute: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self._streams_cap = streams_per_client
        self._buckets = TokenBuckets(requests_per_minute, clock) if requests_per_minute > 0 else None
        self._open: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or route_path(scope) in EXEMPT:
            await self.app(scope, receive, send)
            return
        client = client_id(scope)
        wait = self._buckets.take(client) if self._buckets is not None else 0.0
        if wait > 0:
            detail = "too many requests; retry after the time in Retry-After"
            await self._refuse(scope, receive, send, detail, math.ceil(wait))
            return
        if self._streams_cap <= 0 or not is_stream(scope):
            await self.app(scope, receive, send)
            return
        if self._open.get(client, 0) >= self._streams_cap:
            detail = f"at most {self._streams_cap} streams may be open at once per client"
            await self._refuse(scope, receive, send, detail, STREAM_RETRY_AFTER_S)
            return
        self._open[client] = self._open.get(client, 0) + 1
        try:
            await self.app(scope, receive, send)
        finally:
            self._open[client] -= 1
            if not self._open[client]:
                del self._open[client]

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, detail: str, retry_after: int) -> None:
        headers = {"Retry-After": str(max(1, retry_after))}
        response = error_response(Request(scope), 429, "too_many_requests", detail, headers=headers)
        await response(scope, receive, send)
