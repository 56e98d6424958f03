"""The outermost layer: a request id on every request and response (`X-Request-ID`), for matching responses
to logs, and the server's own send in the scope for event streams (`BODY_SEND`)."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from application.clock import random_bytes
from entrypoints.sse import BODY_SEND

_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Wraps the whole stack, Starlette's last-resort 500 included, so every answer carries the id.

    Event streams write their frames to the send it was given, past every other layer: only the response
    start passes through them (FastAPI's own send wrappers, such as its telemetry's, sit outside the user
    middlewares and see it too).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app  # what walks the stack (FastAPI's telemetry) follows `.app`

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[BODY_SEND] = send
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = given if _SAFE.fullmatch(given) else random_bytes(16).hex()
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await self.app(scope, receive, send_with_id)
