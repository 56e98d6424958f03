"""A hand-framed Server-Sent Events response that follows one run until its terminal event."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Generator
from typing import Any

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from application.resume import EventSource
from entrypoints.chunks import DONE, FRAME, PING, frames

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

    A follower that has read everything so far is pushed each new event by the source, if it can: the frame
    is written from inside the run's `publish`, in the run's task. A push lasts `keepalive_s` at most, so
    `: ping` comes every `keepalive_s` then, events or not.
    """

    def __init__(
        self,
        *,
        source: EventSource,
        after: int = 0,
        keepalive_s: float = 15.0,
        headers: list[tuple[bytes, bytes]] | None = None,
        on_disconnect: Callable[[], Awaitable[None]] | None = None,
        pushable: Callable[[Send], bool] | None = None,
    ) -> None:
        self._source = source
        self._pushable = pushable or splittable_send
        self._after = after
        self._keepalive = keepalive_s
        self.status_code = 200
        self.media_type = "text/event-stream"
        self.background = None
        self.body = b""
        self.raw_headers = SSE_HEADERS + (headers or [])
        self._on_disconnect = on_disconnect
        self._complete = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        body_send = scope.get(BODY_SEND, send)
        if not await self._catch_up(body_send):
            return
        # The frames are written by a task of their own (or, pushed, by the run's), so each event resumes two
        # coroutine frames, not the two dozen of the ASGI stack this task runs under; this task waits on
        # `receive()`, which ends when the client goes or once the response is complete.
        current = asyncio.current_task()
        assert current is not None
        pump = asyncio.create_task(self._pump(body_send))
        waiting, woken, gone = True, False, False

        def pumped(task: asyncio.Task[None]) -> None:
            nonlocal woken
            if waiting and (task.cancelled() or task.exception() is not None):
                woken = True  # the response is not complete: stop waiting for the client
                current.cancel()

        pump.add_done_callback(pumped)
        try:
            await _until_disconnect(receive)
        except asyncio.CancelledError:
            if not woken or current.uncancel() > 0:  # (also) cancelled from outside
                raise
        finally:
            waiting = False
            if not pump.done():
                if not self._complete:  # (complete: `[DONE]` went out from the run's close, the pump ends next)
                    gone = True
                    pump.cancel()
                await asyncio.wait([pump])
            if not pump.cancelled():
                pump.exception()  # retrieved: raised below, or dropped with this task's own cancellation
        if gone or pump.cancelled():
            if self._on_disconnect is not None:
                await self._on_disconnect()
            return
        if (error := pump.exception()) is not None:
            raise error

    async def _catch_up(self, send: Send) -> bool:
        """Write what the run has published so far (`started`, at least, for a new run) right away, not a loop
        iteration later from the pump's task; False if that was the whole stream."""
        try:
            events, ended = await self._source.read(after=self._after, timeout=0)
        except Exception:
            await _lost(send, self._source.id_run, self._after)
            return False
        if ended:
            await send({"type": "http.response.body", "body": frames(self._source.id_run, events) + DONE})
            return False
        if events:
            self._after = events[-1][0]
            await send({"type": "http.response.body", "body": frames(self._source.id_run, events), "more_body": True})
        return True

    async def _pump(self, send: Send) -> None:
        cursor, id_run = self._after, self._source.id_run
        head = id_run.encode()
        waiting: tuple[Generator[Any, None, None], Any] | None = None
        failure: BaseException | None = None
        over = False

        def push(seq: int, data: bytes) -> bool:
            # Called by the run as it publishes: the frame is written in its task, with no wake-up of this one;
            # `[DONE]` too, as the run closes. A send that has to wait (a slow client) is left for this task to
            # finish before it writes more.
            nonlocal cursor, waiting, failure, over
            if data:
                cursor = seq
                message = {"type": "http.response.body", "body": FRAME % (head, seq, data), "more_body": True}
            else:
                over = True
                message = {"type": "http.response.body", "body": DONE, "more_body": False}
            try:
                write = send(message).__await__()
                waiting = (write, write.send(None))
            except StopIteration:
                self._complete = over
                return not over
            except BaseException as error:
                failure = error
            return False

        pushes = self._pushable(send)
        while True:
            try:
                pushed = pushes and await self._source.push(after=cursor, timeout=self._keepalive, sink=push)
                if failure is None and waiting is None and not over:
                    events, ended = await self._source.read(after=cursor, timeout=0 if pushed else self._keepalive)
            except Exception:
                await _lost(send, id_run, cursor)
                return
            if failure is not None:
                raise failure
            if waiting is not None:
                await _finish(*waiting)
                waiting = None
                if over:
                    return
                continue
            if over:
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


def splittable_send(send: Send) -> bool:
    """Whether a write may start in the run's task and end in the stream's: only uvicorn's own send, which
    writes at once unless the client is slow, and then waits on a plain future. Another server's send, or a
    middleware's, may hold something tied to its task (a timeout, a cancel scope): its streams read instead."""
    owner = type(getattr(send, "__self__", None))
    return owner.__name__ == "RequestResponseCycle" and owner.__module__.startswith("uvicorn.protocols.http.")


async def _lost(send: Send, id_run: str, after: int) -> None:
    """The source failed: say so in the stream (the client can resume from its last event id), and end it."""
    log.exception("lost the events of run %s after %d", id_run, after)
    await send({"type": "http.response.body", "body": LOST + DONE, "more_body": False})


async def _finish(write: Generator[Any, None, None], waiting_on: Any) -> None:
    """Drive uvicorn's send that stopped to wait (on a future, or a bare yield) to its end."""
    try:
        while True:
            if waiting_on is None:
                await asyncio.sleep(0)
            else:
                await asyncio.wait([waiting_on])
            waiting_on = write.send(None)
    except StopIteration:
        return
    except BaseException:
        write.close()
        raise


async def _until_disconnect(receive: Receive) -> None:
    """Return once the client is gone or the response complete; a failing `receive()` means gone as well."""
    message: Message = {}
    with contextlib.suppress(Exception):
        while message.get("type") != "http.disconnect":
            message = await receive()
