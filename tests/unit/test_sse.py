"""EventStream against a fake ASGI server: how a stream ends, and who hears of it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from entrypoints.chunks import frames
from entrypoints.sse import EventStream


class Source:
    """`end`: one event, then the run is over; `forever`: nothing ever; `tears`: fails when cancelled."""

    id_run = "r1"

    def __init__(self, mode: str) -> None:
        self.mode = mode

    async def read(self, *, after: int, timeout: float) -> tuple[list[tuple[int, bytes]], bool]:
        if self.mode == "end":
            return [(1, b'{"event":"finished"}')], True
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if self.mode == "tears":
                raise RuntimeError("connection torn down") from None
            raise
        raise AssertionError


class Server:
    """Like uvicorn: `receive()` answers http.disconnect once the client goes or the response is complete."""

    def __init__(self, *, fail_on_body: bool = False) -> None:
        self.sent: list[dict[str, Any]] = []
        self.done = asyncio.Event()
        self.fail_on_body = fail_on_body

    async def receive(self) -> dict[str, Any]:
        await self.done.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if self.fail_on_body and message["type"] == "http.response.body":
            raise OSError("broken pipe")
        self.sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            self.done.set()


def stream(source: str, server: Server, gone: list[int]) -> asyncio.Task[None]:
    async def on_disconnect() -> None:
        gone.append(1)

    response = EventStream(source=Source(source), on_disconnect=on_disconnect)
    return asyncio.create_task(response({"type": "http"}, server.receive, server.send))


async def test_a_complete_stream_ends_without_calling_on_disconnect() -> None:
    server, gone = Server(), []
    await asyncio.wait_for(stream("end", server, gone), 2)
    assert server.sent[-1]["body"].endswith(b"data: [DONE]\n\n") and gone == []


@pytest.mark.parametrize("source", ["forever", "tears"])
async def test_a_client_that_goes_stops_the_frames_and_is_told(source: str, caplog: pytest.LogCaptureFixture) -> None:
    server, gone = Server(), []
    task = stream(source, server, gone)
    await asyncio.sleep(0.02)
    with caplog.at_level(logging.CRITICAL, logger="entrypoints.sse"):
        server.done.set()
        await asyncio.wait_for(task, 2)
    assert gone == [1]
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_a_failing_send_is_raised_in_the_response_task() -> None:
    task = stream("end", Server(fail_on_body=True), [])
    with pytest.raises(OSError, match="broken pipe"):
        await asyncio.wait_for(task, 2)
    assert task.cancelling() == 0


async def test_a_cancellation_from_outside_is_never_swallowed() -> None:
    server, gone = Server(), []
    task = stream("forever", server, gone)
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancellation_as_the_response_completes_is_not_swallowed() -> None:
    server, gone = Server(), []
    complete = server.send

    async def send_then_shutdown(message: dict[str, Any]) -> None:
        await complete(message)
        if server.done.is_set():
            task.cancel()  # e.g. the server's graceful-shutdown timeout, in the same pass of the loop

    server.send = send_then_shutdown  # type: ignore[method-assign]
    task = stream("end", server, gone)
    with pytest.raises(asyncio.CancelledError):
        await task


def test_one_event_is_framed_as_a_batch_of_one_would_be() -> None:
    events = [(7, b'{"event":"text-chunk","content":" a"}'), (8, b'{"event":"finished"}')]
    batch = frames("3f9c0a1b22de", events)
    one_by_one = b"".join(frames("3f9c0a1b22de", [event]) for event in events)
    assert batch == one_by_one
    assert batch.startswith(b'id: 3f9c0a1b22de:7\ndata: {"event":"text-chunk","content":" a"}\n\nid: 3f9c0a1b22de:8\n')
