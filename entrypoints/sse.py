"""A hand-framed Server-Sent Events response that follows one run until its terminal event."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from application.resume import EventSource
from entrypoints.chunks import DONE, PING, frames

log = logging.getLogger(__name__)
LOST = b'data: {"event":"error","error":"the stream was lost; resume it with the last event id"}\n\n'

BODY_SEND = "agent.body_send"
"""Scope key of the server's own send, outside every middleware (set by the app, see `EventStream`)."""

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class EventStream(Response):
    """ASGI response: `id:`/`data:` frames as they come, `: ping` when idle, `data: [DONE]` last.

    A client that goes away is noticed through `receive()` (uvicorn drops writes to it silently);
    `on_disconnect` then runs, e.g. to interrupt the run.

    The response start goes through every middleware (they add headers and note that it started); the
    frames after it go straight to the server's send (`BODY_SEND`), since none of them touches a body and
    each layer would cost a coroutine call per event. A middleware that rewrites bodies would not see them.
    """

    def __init__(
        self,
        *,
        source: EventSource,
        after: int = 0,
        keepalive_s: float = 15.0,
        headers: list[tuple[bytes, bytes]] | None = None,
        on_disconnect: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._source = source
        self._after = after
        self._keepalive = keepalive_s
        self.status_code = 200
        self.media_type = "text/event-stream"
        self.background = None
        self.body = b""
        self.raw_headers = SSE_HEADERS + (headers or [])
        self._on_disconnect = on_disconnect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        # the frames are written by this very task; a watcher of `receive()` cancels it if the client goes
        current = asyncio.current_task()
        assert current is not None
        state = {"done": False, "gone": False}

        def client_gone(watcher: asyncio.Task[None]) -> None:
            if state["done"] or watcher.cancelled():
                return
            watcher.exception()  # retrieved: a failing receive() means the client is gone as well
            state["gone"] = True
            current.cancel()

        watcher = asyncio.create_task(_until_disconnect(receive))
        watcher.add_done_callback(client_gone)
        try:
            await self._pump(scope.get(BODY_SEND, send))
        except asyncio.CancelledError:
            if not state["gone"] or current.uncancel() > 0:
                raise
        finally:
            state["done"] = True
            watcher.cancel()
        if state["gone"] and self._on_disconnect is not None:
            await self._on_disconnect()

    async def _pump(self, send: Send) -> None:
        cursor, id_run = self._after, self._source.id_run
        while True:
            try:
                events, ended = await self._source.read(after=cursor, timeout=self._keepalive)
            except Exception:
                log.exception("lost the events of run %s after %d", id_run, cursor)
                await send({"type": "http.response.body", "body": LOST + DONE, "more_body": False})
                return
            if events:
                cursor = events[-1][0]
                body = frames(id_run, events)
            else:
                body = b"" if ended else PING
            if ended:
                await send({"type": "http.response.body", "body": body + DONE, "more_body": False})
                return
            await send({"type": "http.response.body", "body": body, "more_body": True})


async def _until_disconnect(receive: Receive) -> None:
    message: Message = {}
    while message.get("type") != "http.disconnect":
        message = await receive()
