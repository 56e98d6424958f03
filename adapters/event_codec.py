"""MessageChunk events to and from JSON bytes, for buffers shared between replicas (Redis streams)."""

from __future__ import annotations

import orjson

from domain.event_dicts import from_dict, to_dict
from domain.events import MessageChunk


def dumps(event: MessageChunk) -> bytes:
    return orjson.dumps(to_dict(event))


def loads(raw: bytes | str) -> MessageChunk:
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("not an encoded MessageChunk: expected a JSON object")
    return from_dict(data)
