"""Rebuild the exact events of a stored reply from its outline (for resuming after the buffer is gone)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from domain.events import (
    Error,
    Finished,
    Interrupted,
    Loading,
    MediaChunk,
    MessageChunk,
    ReasoningChunk,
    Started,
    Step,
    TextChunk,
)
from domain.model import MessageResponse
from domain.ports import BlobStore

GONE = "the reply is no longer available live; reload the task"


async def replay(response: MessageResponse, blobs: BlobStore) -> list[tuple[int, MessageChunk]]:
    """The events of the run that produced `response`, numbered as they were streamed (started = 1)."""
    events: list[MessageChunk] = [
        Started(response.id_team_agent, response.id_team, response.id_task, response.created_at)
    ]
    text = reasoning = 0
    for item in response.outline:
        if isinstance(item, int):
            events.append(TextChunk(response.text[text : text + item]))
            text += item
        elif item[0] == "r":
            events.append(ReasoningChunk(response.reasoning[reasoning : reasoning + item[1]]))
            reasoning += item[1]
        else:
            events.append(await _other(item, response, blobs))
    if response.is_finished:
        events.append(Finished(response.reason))
    elif response.is_error:
        events.append(Error(response.error or "error"))
    elif response.is_interrupted:
        events.append(Interrupted(response.reason or "interrupted"))
    else:
        events.append(Error(GONE))
    return list(enumerate(events, start=1))


async def _other(item: list[Any], response: MessageResponse, blobs: BlobStore) -> MessageChunk:
    kind = item[0]
    if kind == "s":
        return Step(step=item[1], content=item[2])
    if kind == "l":
        return Loading(progress=item[1])
    if kind == "u":
        return MediaChunk(
            kind=item[1], name=item[2], mime_type=item[3], content=item[4], is_base64=item[5], is_url=not item[5]
        )
    attachment = response.attachments[item[1]]
    data = b"".join(
        [c async for c in blobs.read(id_team_agent=response.id_team_agent, id_file=attachment.id_file or "")]
    )
    content = await asyncio.to_thread(base64.b64encode, data) if len(data) > 65536 else base64.b64encode(data)
    return MediaChunk(
        kind=attachment.type, name=attachment.name, mime_type=attachment.mime_type, content=content.decode("ascii")
    )
