"""Iterate an async stream in a child task so that cancelling the consumer closes the HTTP response."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class _End:
    pass


_END = _End()


class Pump(Generic[T]):
    """Runs `open_stream()` and its iteration in a task feeding a small queue.

    The SDK closes its HTTP response only when the task iterating it is cancelled (breaking out of
    `async for` or `aclose()` leaves it open until garbage collection), hence the child task. Use it as
    an async context manager: leaving it (normally, by error or by cancellation) cancels the child.
    """

    def __init__(self, open_stream: Callable[[], Awaitable[AsyncIterator[T]]], *, buffer: int = 8) -> None:
        self._open = open_stream
        self._queue: asyncio.Queue[T | BaseException | _End] = asyncio.Queue(maxsize=buffer)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Pump[T]:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})

    async def _run(self) -> None:
        try:
            stream = await self._open()
            async for item in stream:
                await self._queue.put(item)
        except Exception as error:
            await self._queue.put(error)
            return
        await self._queue.put(_END)

    async def next(self) -> T | None:
        """The next item, None at the end; re-raises what the stream raised."""
        item = await self._queue.get()
        if isinstance(item, _End):
            return None
        if isinstance(item, BaseException):
            raise item
        return item
