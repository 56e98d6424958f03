from __future__ import annotations

import pytest

from entrypoints.forms import clean_filename
from entrypoints.routes.messages import accepts_event_stream


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\photo.png", "photo.png"),
        ("cat\x07\x00.png", "cat.png"),
        ("line\nbreak.txt", "linebreak.txt"),
        ("...", "fallback"),
        ("", "fallback"),
        (".hidden", "hidden"),
        ("é" * 300 + ".jpeg", "é" * 195 + ".jpeg"),
    ],
)
def test_file_names_are_made_safe(raw: str, clean: str) -> None:
    assert clean_filename(raw, "fallback") == clean


@pytest.mark.parametrize(
    ("accept", "ok"),
    [
        (None, True),
        ("", True),
        ("*/*", True),
        ("text/event-stream", True),
        ("text/*;q=0.2", True),
        ("application/json", False),
        ("text/event-stream;q=0, application/json", False),
        ("application/json;q=1, */*;q=0.1", True),
    ],
)
def test_accept_negotiation(accept: str | None, ok: bool) -> None:
    assert accepts_event_stream(accept) is ok
