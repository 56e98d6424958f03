"""Parse an SSE byte stream the way a browser's EventSource does (WHATWG rules)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Frame:
    id: str | None
    data: str

    @property
    def json(self) -> dict[str, Any]:
        value = json.loads(self.data)
        assert isinstance(value, dict)
        return value


@dataclass
class Stream:
    frames: list[Frame] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    fields_seen: set[str] = field(default_factory=set)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [f.json for f in self.frames if f.data != "[DONE]"]

    @property
    def text(self) -> str:
        return "".join(e["content"] for e in self.events if e["event"] == "text-chunk")


async def parse(chunks: AsyncIterator[bytes], into: Stream | None = None) -> Stream:
    stream = into or Stream()
    buffer = b""
    data: list[str] = []
    event_id: str | None = None
    async for chunk in chunks:
        buffer += chunk
        while True:
            cut = min((i for i in (buffer.find(b"\r\n"), buffer.find(b"\n"), buffer.find(b"\r")) if i >= 0), default=-1)
            if cut < 0:
                break
            width = 2 if buffer[cut : cut + 2] == b"\r\n" else 1
            line, buffer = buffer[:cut].decode("utf-8"), buffer[cut + width :]
            if line == "":
                if data:
                    stream.frames.append(Frame(event_id, "\n".join(data)))
                    event_id, data = None, []
                continue
            if line.startswith(":"):
                stream.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            stream.fields_seen.add(name)
            if name == "data":
                data.append(value)
            elif name == "id":
                event_id = value
    return stream
