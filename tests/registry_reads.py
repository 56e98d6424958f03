"""Registry reads decoded back to events, so tests compare what was published with what is read."""

from __future__ import annotations

from typing import Any

from adapters import event_codec
from domain.events import MessageChunk
from domain.ports import RunRegistry


async def read(registry: RunRegistry, **kwargs: Any) -> tuple[list[tuple[int, MessageChunk]], bool]:
    events, ended = await registry.read_encoded(**kwargs)
    return [(seq, event_codec.loads(raw)) for seq, raw in events], ended
