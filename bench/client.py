"""A lean HTTP/1.1 client on raw asyncio protocols, so that the load generator costs little per event.

A stream is one connection (`Connection: close`): the request is written at once, the response bytes are
counted as they arrive (an SSE frame ends with a blank line, "\\n\\n", which neither HTTP chunk framing nor
the compact JSON of a frame contains), and the times of the first frame and of `data: [DONE]` are kept.
Only when asked does it keep the whole body to check it frame by frame afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

BOUNDARY = "benchBoundary7MA4YWxkTrZu0gW"
DONE_MARK = b"data: [DONE]"


def multipart(fields: dict[str, str], boundary: str = BOUNDARY) -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


def words_text(words: int) -> str:
    """The text of a message whose echo reply is `words + 2` text chunks: "w0 w1 w2 ..."."""
    return " ".join(f"w{i}" for i in range(words))


def expected_reply(words: int) -> str:
    return "You said: " + words_text(words)


def message_request(host: str, port: int, *, agent: str, team: str, task: str, words: int) -> bytes:
    body = multipart({"id_team_agent": agent, "id_team": team, "id_task": task, "text": words_text(words)})
    head = (
        f"POST /messages HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n"
        f"Connection: close\r\nx-bench-words: {words}\r\nx-bench-ids: {agent},{team},{task}\r\n\r\n"
    )
    return head.encode() + body


@dataclass(slots=True)
class StreamResult:
    t_sent: float = 0.0
    t_head: float = 0.0
    t_first: float = 0.0
    t_done: float = 0.0
    t_closed: float = 0.0
    status: int = 0
    frames: int = 0
    nbytes: int = 0
    error: str | None = None
    body: bytearray | None = None

    def as_row(self) -> list[Any]:
        return [self.t_sent, self.t_first, self.t_done, self.status, self.frames, self.error]


class StreamProtocol(asyncio.Protocol):
    """Counts SSE frames of one response; resolves `done` when the connection ends."""

    def __init__(self, request: bytes, done: asyncio.Future[StreamResult], *, close_after_first: bool, keep: bool):
        self.request = request
        self.done = done
        self.close_after_first = close_after_first
        self.result = StreamResult(body=bytearray() if keep else None)
        self.head = b""
        self.in_body = False
        self.tail = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)  # type: ignore[union-attr]
        self.result.t_sent = time.monotonic()

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        result = self.result
        if not self.in_body:
            self.head += data
            cut = self.head.find(b"\r\n\r\n")
            if cut < 0:
                return
            result.t_head = now
            line = self.head[: self.head.find(b"\r\n")]
            result.status = int(line.split(b" ", 2)[1])
            data = self.head[cut + 4 :]
            self.in_body = True
            self.head = b""
            if result.status != 200:
                result.error = f"HTTP {result.status}"
        result.nbytes += len(data)
        if result.body is not None:
            result.body += data
        joined = self.tail + data
        new = joined.count(b"\n\n") - self.tail.count(b"\n\n")
        if new:
            if not result.frames:
                result.t_first = now
                if self.close_after_first and self.transport is not None:
                    result.frames += new
                    self.transport.close()
                    return
            result.frames += new
            if not result.t_done and DONE_MARK in joined:
                result.t_done = now
        self.tail = joined[-16:]

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.result.t_closed = time.monotonic()
        if exc is not None and self.result.error is None and not self.close_after_first:
            self.result.error = f"{type(exc).__name__}: {exc}"
        if not self.done.done():
            self.done.set_result(self.result)


async def stream_once(
    host: str,
    port: int,
    request: bytes,
    *,
    timeout: float,
    close_after_first: bool = False,
    keep: bool = False,
) -> StreamResult:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[StreamResult] = loop.create_future()
    transport = None
    try:
        async with asyncio.timeout(timeout):
            transport, proto = await loop.create_connection(
                lambda: StreamProtocol(request, done, close_after_first=close_after_first, keep=keep), host, port
            )
            result = await done
    except TimeoutError:
        if transport is not None:
            transport.abort()
        result = proto.result if transport is not None else StreamResult()
        result.error = "timeout"
    except OSError as error:
        result = StreamResult(error=f"{type(error).__name__}: {error}")
    if result.error is None and not close_after_first and not result.t_done:
        result.error = "ended without [DONE]"
    return result


def dechunk(raw: bytes) -> bytes:
    """Undo HTTP/1.1 chunked transfer coding."""
    out = bytearray()
    pos = 0
    while True:
        eol = raw.index(b"\r\n", pos)
        size = int(raw[pos:eol].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += raw[eol + 2 : eol + 2 + size]
        pos = eol + 2 + size + 2


def sse_frames(body: bytes) -> list[tuple[str | None, str]]:
    """(id, data) of every frame of a chunked SSE body."""
    frames = []
    for block in dechunk(body).decode().split("\n\n"):
        if not block:
            continue
        ident, data = None, []
        for line in block.split("\n"):
            if line.startswith("id: "):
                ident = line[4:]
            elif line.startswith("data: "):
                data.append(line[6:])
        frames.append((ident, "\n".join(data)))
    return frames


def check_stream(body: bytes, words: int) -> str | None:
    """None when the body is the exact event sequence of an echo reply of `words` words, else why not."""
    frames = sse_frames(body)
    if not frames or frames[-1] != (None, "[DONE]"):
        return "no [DONE] last"
    events = [json.loads(data) for _, data in frames[:-1]]
    if events[0]["event"] != "started" or events[-1] != {"event": "finished"}:
        return "not started ... finished"
    text = "".join(e["content"] for e in events[1:-1] if e["event"] == "text-chunk")
    if text != expected_reply(words):
        return "text differs"
    if len(events) != words + 4:
        return f"{len(events)} events, expected {words + 4}"
    seqs = [int(ident.rsplit(":", 1)[1]) for ident, _ in frames[:-1] if ident]
    if seqs != list(range(1, len(events) + 1)):
        return "ids not 1..n"
    return None


@dataclass
class KeepAlive:
    """One keep-alive connection for sequential requests with a Content-Length response."""

    host: str
    port: int
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    headers: dict[str, str] = field(default_factory=dict)

    async def request(self, method: str, path: str, body: bytes = b"", content_type: str = "") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 24)
        assert self.reader is not None
        extra = f"Content-Type: {content_type}\r\n" if content_type else ""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        self.headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        if "content-length" in self.headers:
            payload = await self.reader.readexactly(int(self.headers["content-length"]))
        else:  # chunked
            payload = bytearray()
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                payload += chunk[:-2]
            payload = bytes(payload)
        if self.headers.get("connection", "").lower() == "close":
            await self.close()
        return status, payload

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
            self.writer = self.reader = None
