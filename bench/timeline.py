"""`python -m bench.timeline [N] [DATABASE_URL]`: where one message's time goes, on an idle server.

Serves the real app in this process (`entrypoints.main.build_server`: uvloop, httptools, echo model with
50 ms between chunks, SQLite in a temporary directory unless a DATABASE_URL is given), sends N one-word
messages one after another from a client thread, and notes the moment each step is reached, by wrapping
the functions that mark it. Prints the median time from the request's arrival to each mark, and between
the marks after the model's last chunk. The wrappers cost a few microseconds each; the server is idle, so
this is the latency of the path itself, what no load adds to.
"""

from __future__ import annotations

import http.client
import itertools
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from bench.servers import free_port

BODY = '--b\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'  # one part per field


def form(task: str) -> bytes:
    fields = {"id_team_agent": "agent", "id_team": "team", "id_task": task, "text": "hello"}
    return ("".join(BODY.format(name=k, value=v) for k, v in fields.items()) + "--b--\r\n").encode()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    port = free_port()
    os.environ.update(
        AI_PROVIDER="echo",
        AI_ECHO_DELAY_MS="50",
        DATA_DIR=tempfile.mkdtemp(prefix="bench-timeline-"),
        LOG_LEVEL="warning",
        WEB_SERVER_HOST="127.0.0.1",
        WEB_SERVER_PORT=str(port),
    )
    if len(sys.argv) > 2:
        os.environ["DATABASE_URL"] = sys.argv[2]

    from uvicorn.protocols.http import httptools_impl

    from adapters.echo_llm import EchoLLM
    from application.conversation import Conversation
    from application.run import Runner
    from entrypoints import main as entry
    from entrypoints.routes import messages

    now, marks, rows = time.perf_counter, dict[str, float](), list[dict[str, float]]()

    def mark_after(owner: Any, name: str, label: str, *, only_if: str | None = None) -> None:
        original = getattr(owner, name)

        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            result = await original(*args, **kwargs)
            if only_if is None or only_if in marks:
                marks[label] = now()
            return result

        setattr(owner, name, wrapped)

    def mark_before(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            marks.setdefault(label, now())
            return await original(*args, **kwargs)

        setattr(owner, name, wrapped)

    class Transport:
        def __init__(self, transport: Any) -> None:
            self._transport = transport

        def __getattr__(self, name: str) -> Any:
            return getattr(self._transport, name)

        def write(self, data: bytes) -> None:
            for needle, label in ((b'"started"', "started written"), (b'" hello"', "last chunk written")):
                if needle in data:
                    marks.setdefault(label, now())
            if b'"finished"' in data:
                marks["finished written"] = now()
            if b"[DONE]" in data:
                marks["[DONE] written"] = now()
                rows.append(dict(marks))
            self._transport.write(data)

    protocol = httptools_impl.HttpToolsProtocol
    made: Callable[..., None] = protocol.connection_made
    received: Callable[..., None] = protocol.data_received
    protocol.connection_made = lambda self, transport: made(self, Transport(transport))  # type: ignore[method-assign]

    def data_received(self: Any, data: bytes) -> None:
        if data.startswith(b"POST"):
            marks.clear()
            marks["arrived"] = now()
        received(self, data)

    protocol.data_received = data_received  # type: ignore[method-assign]
    mark_before(httptools_impl.RequestResponseCycle, "run_asgi", "ASGI task runs")
    mark_before(messages.PostMessageApp, "__call__", "endpoint reached")
    mark_after(messages, "parse_form", "form parsed")
    mark_after(Conversation, "start", "stored and claimed")
    original_stream = EchoLLM.stream

    async def stream(self: EchoLLM, **kwargs: Any) -> Any:
        marks["model starts"] = now()
        async for event in original_stream(self, **kwargs):
            yield event

    EchoLLM.stream = stream  # type: ignore[method-assign]
    mark_before(Runner, "_finish", "run ends")
    mark_after(Runner, "_save", "final save done", only_if="run ends")
    server = entry.build_server()

    def client() -> None:
        time.sleep(2)
        try:
            for i in range(n):
                conn = http.client.HTTPConnection("127.0.0.1", port)
                headers = {"content-type": "multipart/form-data; boundary=b", "accept": "text/event-stream"}
                conn.request("POST", "/messages", form(f"timeline-{i}"), headers)
                conn.getresponse().read()
                conn.close()
                time.sleep(0.02)
        finally:
            server.should_exit = True

    threading.Thread(target=client, daemon=True).start()
    server.run()
    kept = rows[n // 5 :]  # the first ones warm up
    print(f"median ms from the request's arrival ({len(kept)} messages):")
    first = ["ASGI task runs", "endpoint reached", "form parsed", "stored and claimed", "started written"]
    for label in [*first, "model starts"]:
        print(f"  {label:22} {statistics.median(r[label] - r['arrived'] for r in kept) * 1000:8.3f}")
    print("after the model's last chunk, ms between marks:")
    last = ["last chunk written", "run ends", "final save done", "finished written", "[DONE] written"]
    for a, b in itertools.pairwise(last):
        print(f"  {a} -> {b:18} {statistics.median(r[b] - r[a] for r in kept) * 1000:8.3f}")


if __name__ == "__main__":
    main()
