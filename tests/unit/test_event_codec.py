"""The JSON codec of MessageChunk events shared between replicas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import event_codec
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
from domain.model import KINDS

EVENTS: list[MessageChunk] = [
    Started("agent", "team", "task", datetime(2026, 11, 25, 12, 0, 0, 1, tzinfo=UTC)),
    Started("agent", "team", "task", datetime(2026, 11, 25, 12, 0, tzinfo=timezone(timedelta(hours=-5)))),
    TextChunk("a"),
    ReasoningChunk("b"),
    *(MediaChunk(kind, f"f.{kind}", "x/y", "Zm9v") for kind in KINDS),
    MediaChunk("image", "u.png", "image/png", "https://x/u.png", is_base64=False, is_url=True),
    Step(3, "c"),
    Loading(),
    Loading(0.25),
    Finished(),
    Finished("stop"),
    Error("e"),
    Interrupted("r"),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.event)
def test_every_event_round_trips(event: MessageChunk) -> None:
    decoded = event_codec.loads(event_codec.dumps(event))

    assert decoded == event
    assert type(decoded) is type(event)


@given(st.text())
def test_any_text_round_trips(text: str) -> None:
    for event in (TextChunk(text), ReasoningChunk(text), Error(text), Interrupted(text)):
        assert event_codec.loads(event_codec.dumps(event)) == event


@pytest.mark.parametrize("raw", [b"[]", b'{"event": "nope"}', b'{"event": "text-chunk"}', b'{"content": "x"}'])
def test_what_it_did_not_make_is_refused(raw: bytes) -> None:
    with pytest.raises(ValueError, match="MessageChunk"):
        event_codec.loads(raw)
