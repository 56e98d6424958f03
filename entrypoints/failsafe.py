"""The last line: an exception no handler took becomes a bare 500 that still carries its request id.

Starlette's own catch-all answers outside every middleware (so without `X-Request-ID` or CORS headers) and
re-raises, which makes the server drop the connection. This one sits inside them all and keeps it open.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from entrypoints.errors import error_response

log = logging.getLogger("agent.http")


class InternalErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            request = Request(scope)
            request_id = getattr(request.state, "request_id", "-")
            log.exception("unhandled error on %s %s (request %s)", request.method, request.url.path, request_id)
            if started:
                raise  # too late for a status: the server ends the connection
            await error_response(request, 500, "internal_error", "internal server error")(scope, receive, send)
