"""NotConfiguredLLM: stands in when the chosen model cannot run, so each message ends with a clear error."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from domain.errors import LLMNotConfigured
from domain.events import LLMEvent
from domain.model import MessageRequest, Thread


class NotConfiguredLLM:
    def __init__(self, message: str) -> None:
        self._message = message

    async def stream(self, *, history: Sequence[Thread], request: MessageRequest) -> AsyncIterator[LLMEvent]:
        raise LLMNotConfigured(self._message)
        yield  # pragma: no cover

    async def title(self, *, text: str) -> str | None:
        return None
