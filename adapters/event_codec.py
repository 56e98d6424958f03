"""MessageChunk events to and from the contract's JSON bytes (run buffers, in memory and in Redis)."""

from __future__ import annotations

import orjson

from domain.event_dicts import from_dict, to_dict
from domain.events import MessageChunk, ReasoningChunk, TextChunk

_TEXT = b'{"event":"text-chunk","content":'
_REASONING = b'{"event":"reasoning-chunk","content":'


def dumps(event: MessageChunk) -> bytes:
    """Compact JSON, exactly sized: orjson's own result keeps a 4 KiB buffer, too much to hold per event."""
    kind = type(event)
    if kind is TextChunk or kind is ReasoningChunk:
        head = _TEXT if kind is TextChunk else _REASONING
        return head + orjson.dumps(event.content) + b"}"  # type: ignore[union-attr]
    return bytes(memoryview(orjson.dumps(to_dict(event))))


def loads(raw: bytes | str) -> MessageChunk:
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("not an encoded MessageChunk: expected a JSON object")
    return from_dict(data)
