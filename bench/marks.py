"""Marks on a served message's path, per task: when each step was reached (bench.timeline, bench.timeline_loaded).

`install()` wraps, in this process, the functions that mark a step: uvicorn's protocol (the request's arrival,
every write to its connection), the ASGI task, the endpoint, the form parser, `Conversation.start`, the echo
model's stream and the run's end and final save. The request's task id is read from its multipart body
(`name="id_task"`), kept in a context variable (the tasks a request spawns copy it) and on its connection.
Each wrapper costs a few microseconds. Call it before the app is built.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

Marks = dict[str, dict[str, float]]
TASK: ContextVar[str | None] = ContextVar("bench_task", default=None)
ID_TASK = re.compile(rb'name="id_task"\r\n\r\n([^\r]*)\r\n')


def install(marks: Marks) -> None:
    from uvicorn.protocols.http import httptools_impl

    from adapters.echo_llm import EchoLLM
    from application.conversation import Conversation
    from application.run import Runner
    from entrypoints.routes import messages

    now = time.perf_counter

    def mark(label: str, task: str | None = None, *, again: bool = False) -> None:
        task = task or TASK.get()
        if task is not None and task in marks and (again or label not in marks[task]):
            marks[task][label] = now()

    def mark_before(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            mark(label)
            return await original(*args, **kwargs)

        setattr(owner, name, wrapped)

    def mark_after(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            result = await original(*args, **kwargs)
            mark(label)
            return result

        setattr(owner, name, wrapped)

    class Transport:
        def __init__(self, transport: Any) -> None:
            self._transport = transport
            self.task: str | None = None

        def __getattr__(self, name: str) -> Any:
            return getattr(self._transport, name)

        def write(self, data: bytes) -> None:
            if b'"started"' in data:
                mark("started written", self.task)
            if b'"finished"' in data:
                mark("finished written", self.task)
            if b"[DONE]" in data:
                mark("[DONE] written", self.task)
            self._transport.write(data)

    protocol = httptools_impl.HttpToolsProtocol
    made: Callable[..., None] = protocol.connection_made
    received: Callable[..., None] = protocol.data_received
    protocol.connection_made = lambda self, transport: made(self, Transport(transport))  # type: ignore[method-assign]

    def data_received(self: Any, data: bytes) -> None:
        found = ID_TASK.search(data) if data.startswith(b"POST") else None
        if found is None:
            received(self, data)
            return
        task = self.transport.task = found.group(1).decode()
        marks[task] = {"arrived": now()}
        token = TASK.set(task)  # the ASGI task created in there copies it
        try:
            received(self, data)
        finally:
            TASK.reset(token)

    protocol.data_received = data_received  # type: ignore[method-assign]
    mark_before(httptools_impl.RequestResponseCycle, "run_asgi", "ASGI task runs")
    mark_before(messages.PostMessageApp, "__call__", "endpoint reached")
    mark_after(messages, "parse_form", "form parsed")
    mark_before(Conversation, "start", "start called")
    mark_after(Conversation, "start", "stored and claimed")
    original_stream = EchoLLM.stream

    async def stream(self: EchoLLM, **kwargs: Any) -> Any:
        task = kwargs["request"].id_task
        mark("model starts", task)
        async with contextlib.aclosing(original_stream(self, **kwargs)) as events:  # closed with this one
            async for event in events:
                if type(event).__name__ == "TextChunk":
                    mark("last chunk out of the model", task, again=True)
                yield event

    EchoLLM.stream = stream  # type: ignore[method-assign]
    finishing: dict[str, asyncio.Task[Any] | None] = {}
    original_finish, original_save = Runner._finish, Runner._save

    async def finish(self: Runner, run: Any, terminal: Any) -> None:
        mark("run ends", run.key.id_task)
        finishing[run.key.id_task] = asyncio.current_task()  # its final save, not a partial one it waits for
        try:
            await original_finish(self, run, terminal)
        finally:
            del finishing[run.key.id_task]

    async def save(self: Runner, run: Any, *args: Any, **kwargs: Any) -> Any:
        result = await original_save(self, run, *args, **kwargs)
        if finishing.get(run.key.id_task) is asyncio.current_task():
            mark("final save done", run.key.id_task)
        return result

    Runner._finish = finish  # type: ignore[method-assign]
    Runner._save = save  # type: ignore[method-assign]
