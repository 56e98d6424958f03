from __future__ import annotations

import base64

from application.replay import GONE, replay
from domain.errors import LLMError
from domain.events import (
    Error,
    Loading,
    MediaChunk,
    MessageChunk,
    ReasoningChunk,
    Step,
    TextChunk,
)
from domain.model import TaskKey
from tests.registry_reads import read
from tests.unit.conftest import World, request

PNG = base64.b64encode(b"\x89PNG" + bytes(range(256))).decode()


async def streamed(world: World, key: TaskKey, id_run: str) -> list[tuple[int, MessageChunk]]:
    events, ended = await read(world.registry, key=key, id_run=id_run, after=0, timeout=1)
    assert ended
    return events


async def test_a_stored_reply_replays_exactly_what_was_streamed(world: World) -> None:
    world.llm.script = [
        Loading(),
        ReasoningChunk("Let me "),
        ReasoningChunk("think ✓"),
        Step(1, "search: weather"),
        TextChunk("Héllo\n"),
        MediaChunk(kind="image", name="image-1.png", mime_type="image/png", content=PNG),
        MediaChunk(
            kind="video", name="clip", mime_type="video/mp4", content="https://x/v.mp4", is_base64=False, is_url=True
        ),
        TextChunk(" data: [DONE]\r\n"),
        Loading(0.5),
    ]
    run, _ = await world.conversation.start(request())
    await run.done.wait()

    response = world.store.tasks[run.key].threads[0].response
    assert response is not None

    assert await replay(response, world.blobs) == await streamed(world, run.key, run.id_run)


async def test_failed_and_running_replies_replay_with_a_terminal_event(world: World) -> None:
    world.llm.script = [TextChunk("part"), LLMError("The model is overloaded, try again")]
    run, _ = await world.conversation.start(request())
    await run.done.wait()
    response = world.store.tasks[run.key].threads[0].response
    assert response is not None

    assert await replay(response, world.blobs) == await streamed(world, run.key, run.id_run)

    response.is_error = False
    events = await replay(response, world.blobs)
    assert events[-1] == (3, Error(GONE))
