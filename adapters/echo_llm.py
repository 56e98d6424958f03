"""EchoLLM: an offline, deterministic model for frontend work, demos and tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from domain.events import Finished, LLMEvent, TextChunk, UsageReport
from domain.model import MessageRequest, Thread, Usage


def echo_words(request: MessageRequest) -> list[str]:
    """The reply as the chunks it streams: "You said: <text>" word by word, then the attachments."""
    reply = ["You", " said:"] + [" " + word for word in request.text.split()]
    if request.attachments:
        listed = ", ".join(f"{a.name} ({a.type})" for a in request.attachments)
        reply += [" Attachments:"] + [" " + word for word in listed.split()]
    return reply


class EchoLLM:
    """Streams the user's words back, one chunk every `delay_s`.

    Like a real model's stream, it keeps its own clock: chunk i is due `i * delay_s` after the first call,
    however late the service takes each one, so a consumer that falls behind catches up instead of pushing
    every later chunk back.
    """

    def __init__(self, *, delay_s: float = 0.0) -> None:
        self._delay = delay_s

    async def stream(self, *, history: Sequence[Thread], request: MessageRequest) -> AsyncIterator[LLMEvent]:
        words = echo_words(request)
        loop = asyncio.get_running_loop()
        due = loop.time()
        for word in words:
            due += self._delay
            await asyncio.sleep(due - loop.time())
            yield TextChunk(content=word)
        yield UsageReport(
            Usage(
                prompt_tokens=len(request.text.split()),
                output_tokens=len(words),
                total_tokens=len(request.text.split()) + len(words),
            )
        )
        yield Finished()

    async def title(self, *, text: str) -> str | None:
        return None
