"""The floor: the least an ASGI app on the same uvicorn stack can do to stream the same SSE bytes.

POST /messages drains the request body without parsing it, then streams exactly what the echo model
streams through the real service: `started`, "You", " said:", one " w<i>" text chunk per word (the load
generator's texts are "w0 w1 w2 ..."), `finished` and `data: [DONE]`, every frame with an
`id: <run>:<seq>` line, with one text chunk due every FLOOR_DELAY_MS (like AI_ECHO_DELAY_MS) on a clock
of its own, as the echo model does. No form parsing, no storage, no run registry, no model.

The load generator tells the floor what to stream in headers the real service ignores:
`x-bench-words` (words in the text) and `x-bench-ids` (`agent,team,task`, so the `started` frame has the
same size). Served by `python -m bench.floor` with the same uvicorn settings as `entrypoints.main`.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from typing import Any

import orjson

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
    (b"x-request-id", b"0" * 32),  # the real service adds one per request (same size here)
]
JSON_HEADERS = [(b"content-type", b"application/json")]
DONE = b"data: [DONE]\n\n"
DELAY_S = int(os.environ.get("FLOOR_DELAY_MS", "0")) / 1000


def frame(run: bytes, seq: int, data: bytes) -> bytes:
    return b"id: " + run + b":" + str(seq).encode() + b"\ndata: " + data + b"\n\n"


def text_frame(run: bytes, seq: int, content: str) -> bytes:
    return frame(run, seq, b'{"event":"text-chunk","content":' + orjson.dumps(content) + b"}")


def _header(scope: dict[str, Any], name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return b""


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:  # drain the body, parse nothing
        message = await receive()
        more = message.get("more_body", False)
    if scope["path"] == "/health":
        await send({"type": "http.response.start", "status": 200, "headers": JSON_HEADERS})
        await send({"type": "http.response.body", "body": b'{"status":"ok"}'})
        return
    if scope["method"] != "POST" or scope["path"] != "/messages":
        await send({"type": "http.response.start", "status": 404, "headers": JSON_HEADERS})
        await send({"type": "http.response.body", "body": b'{"detail":"not found"}'})
        return
    words = int(_header(scope, b"x-bench-words") or b"0")
    agent, team, task = (_header(scope, b"x-bench-ids").decode() or "a,t,x").split(",")
    run = os.urandom(6).hex().encode()
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
    started = {
        "event": "started",
        "id_team_agent": agent,
        "id_team": team,
        "id_task": task,
        "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    await send({"type": "http.response.body", "body": frame(run, 1, orjson.dumps(started)), "more_body": True})
    seq = 1
    loop = asyncio.get_running_loop()
    due = loop.time()
    for content in ["You", " said:"] + [f" w{i}" for i in range(words)]:
        due += DELAY_S
        await asyncio.sleep(due - loop.time())
        seq += 1
        await send({"type": "http.response.body", "body": text_frame(run, seq, content), "more_body": True})
    last = frame(run, seq + 1, b'{"event":"finished"}') + DONE
    await send({"type": "http.response.body", "body": last, "more_body": False})


def main() -> None:
    import uvicorn

    from bench.instrumented_server import uvicorn_config

    uvicorn.Server(uvicorn_config("bench.floor:app", factory=False)).run()


if __name__ == "__main__":
    main()
