"""A fake Gemini REST API for tests: scripted `streamGenerateContent?alt=sse` replies, `generateContent` titles
and the Files API (resumable upload, `files.get`), served by a real uvicorn on 127.0.0.1 in a thread.

Point `AI_GOOGLE_GEMINI_BASE_URL` at `FakeGemini.url`. Queue replies with `script(...)`; every request is
recorded in `received` (see `Received.kind`), and a streamed reply notices when its client goes away.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
HANG_CAP_S = 20.0
_MODEL = re.compile(r"^/(?:.*/)?(v\w+)/models/([^/:]+):(streamGenerateContent|generateContent)$")
_FILE = re.compile(r"^/(?:.*/)?v\w+/(files/[\w-]+)$")


def error_body(code: int, message: str = "fake failure", status: str | None = None) -> dict[str, Any]:
    """Google's error envelope, as sent for a failed call or inside a stream."""
    return {"error": {"code": code, "message": message, "status": status or STATUS_NAMES.get(code, "UNKNOWN")}}


def candidate(*parts: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    """One streamed chunk holding `parts` of the model's turn (plus e.g. usageMetadata, groundingMetadata)."""
    body: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}}
    if finish:
        body["finishReason"] = finish
    grounding = extra.pop("groundingMetadata", None)
    if grounding is not None:
        body["groundingMetadata"] = grounding
    return {"candidates": [body], **extra}


@dataclass
class Script:
    """One scripted answer to `streamGenerateContent`.

    A non-200 `status` answers with `error` (default: Google's envelope for that status) as JSON. Otherwise
    each of `chunks` goes out as an SSE frame after `delay_s`; then `error`, if set, as a mid-stream frame;
    with `hang` the response then stays open (sending nothing) until the client goes away.
    """

    chunks: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    delay_s: float = 0.0
    error: dict[str, Any] | None = None
    hang: bool = False
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    kind: str
    disconnected: bool = False

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _File:
    name: str
    mime_type: str
    display_name: str
    data: bytes = b""
    polls: int = 0


class FakeGemini:
    """The ASGI app and its scripts. `title` answers every generateContent call (None: a 500)."""

    def __init__(self, *, api_key: str = "test-key") -> None:
        self.api_key = api_key
        self.url = ""
        self.title: str | None = "A fake title"
        self.file_states: list[str] = ["ACTIVE"]
        self.received: list[Received] = []
        self.files: dict[str, _File] = {}
        self.disconnected = threading.Event()
        self._scripts: deque[Script] = deque()
        self._sessions: dict[str, _File] = {}
        self._lock = threading.Lock()

    def script(self, *scripts: Script) -> None:
        """Queue the answers of the next `streamGenerateContent` calls, in order."""
        self._scripts.extend(scripts)

    @property
    def unused_scripts(self) -> int:
        return len(self._scripts)

    def calls(self, kind: str) -> list[Received]:
        """Recorded requests of one kind: stream, generate, upload-start, upload, file-get, unknown."""
        return [item for item in list(self.received) if item.kind == kind]

    def file_json(self, file: _File) -> dict[str, Any]:
        states = self.file_states or ["ACTIVE"]
        return {
            "name": file.name,
            "displayName": file.display_name,
            "mimeType": file.mime_type,
            "sizeBytes": str(len(file.data)),
            "uri": f"{self.url}/v1beta/{file.name}",
            "state": states[min(file.polls, len(states) - 1)],
            "expirationTime": "2099-01-01T00:00:00Z",
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        path, query = scope["path"], scope["query_string"].decode()
        item = Received(scope["method"], path, query, headers, body, _kind(scope["method"], path, query))
        with self._lock:
            self.received.append(item)
        if item.kind not in ("upload", "unknown") and headers.get("x-goog-api-key") != self.api_key:
            await _json(send, 403, error_body(403, "API key not valid"))
            return
        handler = {
            "stream": self._stream,
            "generate": self._generate,
            "upload-start": self._upload_start,
            "upload": self._upload,
            "file-get": self._file_get,
        }.get(item.kind)
        if handler is None:
            await _json(send, 404, error_body(404, f"no fake route for {scope['method']} {path}"))
            return
        await handler(item, receive, send)

    async def _stream(self, item: Received, receive: Receive, send: Send) -> None:
        if not self._scripts:
            await _json(send, 400, error_body(400, "the test scripted no reply for this call"))
            return
        script = self._scripts.popleft()
        if script.status != 200:
            await _json(send, script.status, script.error or error_body(script.status), script.headers)
            return
        gone = asyncio.create_task(_disconnect(receive))
        try:
            if await self._send_script(script, gone, send):
                item.disconnected = True
                self.disconnected.set()
        finally:
            gone.cancel()

    async def _send_script(self, script: Script, gone: asyncio.Task[None], send: Send) -> bool:
        """Send the frames of `script`; True if the client went away before the end."""
        await send(_start(200, "text/event-stream", script.headers))
        for chunk in [*script.chunks, *([script.error] if script.error else [])]:
            if script.delay_s and await _gone_within(gone, script.delay_s):
                return True
            frame = f"data: {json.dumps(chunk)}\r\n\r\n".encode()
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        if script.hang and await _gone_within(gone, HANG_CAP_S):
            return True
        await send({"type": "http.response.body", "body": b""})
        return False

    async def _generate(self, item: Received, receive: Receive, send: Send) -> None:
        if self.title is None:
            await _json(send, 500, error_body(500))
            return
        await _json(send, 200, candidate({"text": self.title}, finish="STOP"))

    async def _upload_start(self, item: Received, receive: Receive, send: Send) -> None:
        meta = item.json.get("file", {}) if item.body else {}
        with self._lock:
            number = len(self.files) + 1
            file = _File(
                name=f"files/fake{number}",
                mime_type=item.headers.get("x-goog-upload-header-content-type", meta.get("mimeType", "")),
                display_name=meta.get("displayName") or meta.get("display_name") or "",
            )
            self.files[file.name] = file
            self._sessions[str(number)] = file
        headers = {"x-goog-upload-url": f"{self.url}/upload-session/{number}", "x-goog-upload-status": "active"}
        await _json(send, 200, {}, headers)

    async def _upload(self, item: Received, receive: Receive, send: Send) -> None:
        file = self._sessions.get(item.path.rsplit("/", 1)[-1])
        if file is None:
            await _json(send, 404, error_body(404, "no such upload session"))
            return
        file.data += item.body
        command = item.headers.get("x-goog-upload-command", "")
        if "finalize" not in command:
            await _json(send, 200, {}, {"x-goog-upload-status": "active"})
            return
        await _json(send, 200, {"file": self.file_json(file)}, {"x-goog-upload-status": "final"})

    async def _file_get(self, item: Received, receive: Receive, send: Send) -> None:
        match = _FILE.match(item.path)
        file = self.files.get(match.group(1)) if match else None
        if file is None:
            await _json(send, 404, error_body(404, "no such file"))
            return
        file.polls += 1
        await _json(send, 200, self.file_json(file))


def _kind(method: str, path: str, query: str) -> str:
    if method == "POST" and (match := _MODEL.match(path)):
        return "stream" if match.group(3) == "streamGenerateContent" and "alt=sse" in query else "generate"
    if method == "POST" and path.endswith("/files") and "/upload/" in f"{path}/":
        return "upload-start"
    if method == "POST" and path.startswith("/upload-session/"):
        return "upload"
    if method == "GET" and _FILE.match(path):
        return "file-get"
    return "unknown"


def _start(status: int, content_type: str, headers: dict[str, str]) -> Message:
    pairs = [(b"content-type", content_type.encode())]
    pairs += [(key.lower().encode(), value.encode()) for key, value in headers.items()]
    return {"type": "http.response.start", "status": status, "headers": pairs}


async def _json(send: Send, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    await send(_start(status, "application/json", headers or {}))
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _gone_within(gone: asyncio.Task[None], seconds: float) -> bool:
    """Wait up to `seconds`; True if the client went away meanwhile."""
    await asyncio.wait({gone}, timeout=seconds)
    return gone.done()


@contextmanager
def running_fake_gemini(*, api_key: str = "test-key") -> Iterator[FakeGemini]:
    """A FakeGemini served by uvicorn on 127.0.0.1 (free port) in a daemon thread, like tests/e2e LiveServer."""
    fake = FakeGemini(api_key=api_key)
    config = uvicorn.Config(
        fake, host="127.0.0.1", port=0, log_level="warning", lifespan="off", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        threading.Event().wait(0.01)
    assert server.started, "fake Gemini did not start"
    fake.url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        assert not thread.is_alive(), "fake Gemini did not stop"
