"""EventStream against a fake ASGI server: how a stream ends, and who hears of it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import pytest

from adapters.memory_runs import InMemoryRunRegistry
from application.resume import LiveSource
from domain.events import Finished, TextChunk
from domain.model import TaskKey
from entrypoints.chunks import PING, frames
from entrypoints.sse import EventStream, splittable_send


class Source:
    """`end`: one event, then the run is over; `forever`: nothing ever; `tears`: fails when cancelled."""

    id_run = "r1"

    def __init__(self, mode: str) -> None:
        self.mode = mode

    async def push(self, *, after: int, timeout: float, sink: Any) -> bool:
        return False

    async def read(self, *, after: int, timeout: float) -> tuple[list[tuple[int, bytes]], bool]:
        if self.mode == "end":
            return [(1, b'{"event":"finished"}')], True
        if timeout <= 0:
            return [], False
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


def PUSH(send: Any) -> bool:
    return True


class PushingSource:
    """Like the in-memory registry: a follower that keeps up is handed each event as it is published."""

    id_run = "r1"

    def __init__(self) -> None:
        self.events: list[tuple[int, bytes]] = []
        self.ended = False
        self.sink: Any = None
        self.attached = asyncio.Event()
        self.stop: asyncio.Future[None] | None = None
        self.reads = 0
        self.changed = asyncio.Event()

    async def push(self, *, after: int, timeout: float, sink: Any) -> bool:
        if self.ended or any(seq > after for seq, _ in self.events):
            return False
        self.sink, self.stop = sink, asyncio.get_running_loop().create_future()
        self.attached.set()
        try:
            await self.stop
        finally:
            self.sink = None
            self.attached.clear()
        return True

    async def read(self, *, after: int, timeout: float) -> tuple[list[tuple[int, bytes]], bool]:
        self.reads += 1
        if timeout > 0 and not self.ended and all(seq <= after for seq, _ in self.events):
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), timeout)
        return [(seq, data) for seq, data in self.events if seq > after], self.ended

    def publish(self, seq: int) -> None:
        self.events.append((seq, b'{"n":%d}' % seq))
        self.changed.set()
        if self.sink is not None and not self.sink(seq, self.events[-1][1]):
            self._detach()

    def end(self) -> None:
        self.ended = True
        self.changed.set()
        self._detach()

    def _detach(self) -> None:
        self.sink = None
        if self.stop is not None and not self.stop.done():
            self.stop.set_result(None)


def bodies(server: Server) -> bytes:
    return b"".join(m["body"] for m in server.sent if m["type"] == "http.response.body")


async def test_pushed_events_are_written_as_they_are_published_and_the_end_read() -> None:
    source, server = PushingSource(), Server()
    task = asyncio.create_task(EventStream(source=source, pushable=PUSH)({"type": "http"}, server.receive, server.send))
    for seq in (1, 2, 3):
        await asyncio.wait_for(source.attached.wait(), 2)
        source.publish(seq)
        assert bodies(server).endswith(b'id: r1:%d\ndata: {"n":%d}\n\n' % (seq, seq))  # written in publish
    source.end()
    await asyncio.wait_for(task, 2)
    assert bodies(server) == frames("r1", source.events) + b"data: [DONE]\n\n"
    assert source.reads == 2  # once as the stream starts (nothing yet), once for the end


async def test_what_was_published_before_the_stream_began_is_written_before_its_follower_starts() -> None:
    source, server = PushingSource(), Server()
    source.publish(1)  # `started`, published as the run was claimed
    first_push: list[bytes] = []
    push = source.push

    async def noting(**kwargs: Any) -> bool:
        first_push.append(bodies(server))
        source.push = push  # type: ignore[method-assign]
        return await push(**kwargs)

    source.push = noting  # type: ignore[method-assign]
    task = asyncio.create_task(EventStream(source=source, pushable=PUSH)({"type": "http"}, server.receive, server.send))
    await asyncio.wait_for(source.attached.wait(), 2)
    assert first_push == [frames("r1", source.events)]  # by the response's own task, not a loop pass later
    source.end()
    await asyncio.wait_for(task, 2)
    assert bodies(server) == frames("r1", source.events) + b"data: [DONE]\n\n"


async def test_a_write_that_waits_for_a_slow_client_is_finished_in_order_before_anything_after_it() -> None:
    source, server, writable = PushingSource(), Server(), asyncio.Event()
    fast = server.send

    async def send(message: dict[str, Any]) -> None:
        if message.get("body", b"").startswith(b"id: r1:2\n"):
            await writable.wait()  # as uvicorn's send does while the transport is paused
        await fast(message)

    server.send = send  # type: ignore[method-assign]
    task = asyncio.create_task(EventStream(source=source, pushable=PUSH)({"type": "http"}, server.receive, server.send))
    await asyncio.wait_for(source.attached.wait(), 2)
    source.publish(1)
    source.publish(2)  # its write waits: the push stops
    source.publish(3)  # buffered: the follower reads it once 2 is written
    assert source.sink is None and bodies(server) == frames("r1", source.events[:1])
    await asyncio.sleep(0.01)
    writable.set()
    await asyncio.wait_for(source.attached.wait(), 2)
    source.publish(4)
    source.end()
    await asyncio.wait_for(task, 2)
    assert bodies(server) == frames("r1", source.events) + b"data: [DONE]\n\n"


async def test_a_write_failing_in_a_push_is_raised_in_the_response_task() -> None:
    source, server = PushingSource(), Server(fail_on_body=True)
    task = asyncio.create_task(EventStream(source=source, pushable=PUSH)({"type": "http"}, server.receive, server.send))
    await asyncio.wait_for(source.attached.wait(), 2)
    source.publish(1)  # the run goes on: the failure is the stream's
    with pytest.raises(OSError, match="broken pipe"):
        await asyncio.wait_for(task, 2)


async def test_a_send_that_fails_before_it_is_awaited_is_raised_in_the_response_task() -> None:
    source, server = PushingSource(), Server()

    def send(message: dict[str, Any]) -> Any:
        if message["type"] == "http.response.body":
            raise OSError("broken pipe")
        return server.send(message)

    task = asyncio.create_task(EventStream(source=source, pushable=PUSH)({"type": "http"}, server.receive, send))
    await asyncio.wait_for(source.attached.wait(), 2)
    source.publish(1)
    with pytest.raises(OSError, match="broken pipe"):
        await asyncio.wait_for(task, 2)


async def test_a_client_that_goes_while_pushed_to_is_told_and_detached() -> None:
    source, server, gone = PushingSource(), Server(), []

    async def on_disconnect() -> None:
        gone.append(1)

    response = EventStream(source=source, on_disconnect=on_disconnect, pushable=PUSH)
    task = asyncio.create_task(response({"type": "http"}, server.receive, server.send))
    await asyncio.wait_for(source.attached.wait(), 2)
    source.publish(1)
    server.done.set()
    await asyncio.wait_for(task, 2)
    assert gone == [1] and source.sink is None


async def test_a_follower_pushed_to_by_the_registry_gets_pings_while_the_run_is_quiet() -> None:
    registry, key, server = InMemoryRunRegistry(), TaskKey("agent", "task"), Server()
    await registry.open(key=key, id_run="r1", on_interrupt=lambda reason: None)
    response = EventStream(source=LiveSource(registry, key, "r1"), keepalive_s=0.05, pushable=PUSH)
    task = asyncio.create_task(response({"type": "http"}, server.receive, server.send))
    await registry.publish(key=key, id_run="r1", seq=1, event=TextChunk("a"))
    await asyncio.sleep(0.6)  # deadlines are swept every 0.25 s
    await registry.publish(key=key, id_run="r1", seq=2, event=Finished())
    await registry.close(key=key, id_run="r1")
    await asyncio.wait_for(task, 2)
    sent = bodies(server)
    assert sent.count(PING) >= 1
    assert sent.replace(PING, b"") == (
        b'id: r1:1\ndata: {"event":"text-chunk","content":"a"}\n\nid: r1:2\ndata: {"event":"finished"}\n\n'
        + b"data: [DONE]\n\n"
    )


async def test_a_follower_pushed_to_by_the_registry_is_ended_by_the_runs_close() -> None:
    registry, key, server, gone = InMemoryRunRegistry(), TaskKey("agent", "task"), Server(), []

    async def on_disconnect() -> None:
        gone.append(1)

    await registry.open(key=key, id_run="r1", on_interrupt=lambda reason: None)
    source = LiveSource(registry, key, "r1")
    stream = EventStream(source=source, pushable=PUSH, on_disconnect=on_disconnect)
    task = asyncio.create_task(stream({"type": "http"}, server.receive, server.send))
    await registry.publish(key=key, id_run="r1", seq=1, event=TextChunk("a"))
    await asyncio.sleep(0.01)
    await registry.publish(key=key, id_run="r1", seq=2, event=Finished())
    await registry.close(key=key, id_run="r1")
    assert bodies(server).endswith(b'data: {"event":"finished"}\n\ndata: [DONE]\n\n')  # written in `close`
    await asyncio.wait_for(task, 2)
    assert bodies(server).count(b"[DONE]") == 1
    assert gone == []  # complete: the client did not go


def test_only_uvicorns_own_send_is_written_to_from_the_runs_task() -> None:
    from uvicorn.protocols.http.h11_impl import RequestResponseCycle as H11Cycle
    from uvicorn.protocols.http.httptools_impl import RequestResponseCycle as HttptoolsCycle

    assert splittable_send(HttptoolsCycle.send.__get__(object.__new__(HttptoolsCycle)))
    assert splittable_send(H11Cycle.send.__get__(object.__new__(H11Cycle)))
    assert not splittable_send(Server().send)  # another server's, or a middleware's


async def test_a_stream_through_another_send_reads_and_is_never_pushed_to() -> None:
    source, server = PushingSource(), Server()
    source.publish(1)
    task = asyncio.create_task(EventStream(source=source)({"type": "http"}, server.receive, server.send))
    await asyncio.sleep(0.05)
    assert not source.attached.is_set()
    source.end()
    await asyncio.wait_for(task, 2)
    assert bodies(server) == frames("r1", source.events) + b"data: [DONE]\n\n"
