"""Hypothesis throws SSE-breaking text and random multipart bodies at /messages.

Every answer is a JSON error (never a 500) or a stream whose every frame parses the way a browser parses it,
whose events are the contract's, whose text is what the echo model says, and which is stored as streamed.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from entrypoints.chunks import CHUNK_MODELS
from tests.e2e.conftest import LiveServer
from tests.e2e.shared import module_server
from tests.sse import Stream, parse

server = module_server("fuzz-sse", max_upload_bytes=64 * 1024, max_request_bytes=2 * 1024 * 1024, max_files=4)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

NASTY = ["\n", "\r", "\r\n", "\n\n", "\r\r", "\x00", "data:", "data: [DONE]\n\n", "id: 1\n", ": ping", "event: x\n"]
NASTY += ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\ufeff", "\U0010ffff", "🐱‍👤", "e\u0301", '"}', "\\"]
TEXTS = st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=8)), min_size=1, max_size=30).map("".join)
HUGE = st.tuples(TEXTS, st.integers(500, 4000)).map(lambda pair: (pair[0] + " ") * pair[1])
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
PDF = b"%PDF-1.4\n" + b"0" * 40


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def read(response: httpx.Response) -> Stream:
    chunks = list(response.iter_raw())

    async def feed() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return asyncio.run(parse(feed()))


def post(http: httpx.Client, headers: dict[str, str] | None = None, **kwargs: object) -> tuple[httpx.Response, Stream]:
    headers = {"Accept": "text/event-stream", **(headers or {})}
    with http.stream("POST", "/messages", headers=headers, **kwargs) as response:  # type: ignore[arg-type]
        if response.status_code != 200:
            response.read()
            return response, Stream()
        return response, read(response)


def chunk_valid(data: dict[str, object]) -> bool:
    for model in CHUNK_MODELS:
        try:
            parsed: BaseModel = model.model_validate(data)
        except ValidationError:
            continue
        return parsed.model_dump(exclude_unset=True) == data
    return False


def assert_well_formed(stream: Stream) -> None:
    assert stream.fields_seen <= {"id", "data"}
    assert stream.frames and stream.frames[-1].data == "[DONE]"
    assert all(f.id for f in stream.frames[:-1]), "every event has an id"
    events = stream.events
    assert all(chunk_valid(e) for e in events), events
    assert events[0]["event"] == "started" and events[-1]["event"] == "finished"
    assert {e["event"] for e in events[1:-1]} <= {"text-chunk"}


def echoed(text: str, files: list[tuple[str, str]] = ()) -> str:  # type: ignore[assignment]
    words = text.split()
    if files:
        words += ["Attachments:", *", ".join(f"{name} ({kind})" for name, kind in files).split()]
    return "You said:" + "".join(" " + w for w in words)


def stored(http: httpx.Client, agent: str, id_task: str) -> dict[str, object]:
    task = http.get(f"/tasks/{agent}/{id_task}").json()
    [thread] = task["content"]
    return thread  # type: ignore[no-any-return]


@FUZZ
@given(text=st.one_of(TEXTS, HUGE), multipart=st.booleans(), with_files=st.booleans())
def test_sse_breaking_text_streams_and_is_stored_as_sent(
    http: httpx.Client, text: str, multipart: bool, with_files: bool
) -> None:
    assume(text.strip())
    agent, id_task = "fuzz", uuid.uuid4().hex
    form = {"id_team_agent": agent, "id_team": "team", "id_task": id_task, "text": text}
    files = [("images", ("a.png", PNG, "image/png")), ("documents", ("b.pdf", PDF, "application/pdf"))]
    kwargs: dict[str, object] = {"data": form}
    if multipart or with_files:
        kwargs["files"] = files if with_files else {}
        if not with_files:  # multipart without files: httpx needs a file to choose multipart
            kwargs = {"files": {k: (None, v.encode()) for k, v in form.items()}}

    response, stream = post(http, **kwargs)

    assert response.status_code == 200, response.text
    assert_well_formed(stream)
    assert stream.text == echoed(text, [("a.png", "image"), ("b.pdf", "document")] if with_files else [])
    thread = stored(http, agent, id_task)
    assert thread["request"]["text"] == text  # type: ignore[index]
    assert thread["response"]["text"] == stream.text  # type: ignore[index]
    assert thread["response"]["is_finished"] is True  # type: ignore[index]


FILE_FIELDS = st.sampled_from(["images", "documents", "videos", "audios"])
FIELD_NAMES = st.one_of(
    FILE_FIELDS, FILE_FIELDS, FILE_FIELDS, st.sampled_from(["id_task", "text", "x"]), st.text(max_size=10)
)
SAMPLES = st.sampled_from([PNG, PDF, b"%PDF-\x00", b"\x00\x00\x00\x18ftypisom\x00", b"ID3\x04", b"fLaC", b"GIF89a"])
VALUES = st.one_of(SAMPLES, SAMPLES, TEXTS.map(str.encode), st.binary(max_size=64))


MATCHED = st.sampled_from(
    [("images", PNG), ("documents", PDF), ("videos", b"\x00\x00\x00\x18ftypisom\x00"), ("audios", b"fLaC")]
)
SAFE_NAMES = st.text(st.characters(codec="utf-8", exclude_characters='"\r\n\\'), min_size=1, max_size=20)


@st.composite
def multipart_bodies(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """Half well-formed (random files and text, which should stream), half junk (which must not 500)."""
    junk = draw(st.booleans())
    boundary = draw(st.text("abcXYZ0123-_'()+,./:=?", min_size=1, max_size=40)).encode()
    parts = [
        (b"id_team_agent", None, b"fuzz-raw"),
        (b"id_team", None, b"team"),
        (b"text", None, draw(st.one_of(TEXTS, st.just("hello"), st.just("a\r\nb"))).encode()),
    ]
    for _ in range(draw(st.integers(0, 4))):
        if junk:
            name, value = draw(FIELD_NAMES), draw(VALUES)
            filename = draw(st.one_of(st.text(max_size=20), st.none()))
        else:
            name, value = draw(st.one_of(MATCHED, MATCHED, st.tuples(FILE_FIELDS, SAMPLES)))
            filename = draw(SAFE_NAMES)
        parts.insert(
            draw(st.integers(0, len(parts))), (name.encode(), None if filename is None else filename.encode(), value)
        )
    body = draw(st.binary(max_size=20)) if junk else b""
    for name, filename, value in parts:
        disposition = b'form-data; name="' + name + b'"'
        if filename is not None:
            disposition += b'; filename="' + filename + b'"'
        body += b"--" + boundary + b"\r\nContent-Disposition: " + disposition + b"\r\n"
        body += draw(st.sampled_from([b"", b"Content-Type: image/png\r\n", b"Content-Type: \xff\r\n"]))
        body += b"\r\n" + value + b"\r\n"
    body += b"--" + boundary + b"--\r\n" + (draw(st.binary(max_size=20)) if junk else b"")
    if junk and draw(st.booleans()):
        cut = draw(st.integers(0, len(body)))
        body = body[:cut] + draw(st.binary(max_size=8)) + body[cut + draw(st.integers(0, 8)) :]
    return boundary, body


@FUZZ
@given(case=multipart_bodies())
def test_random_multipart_bodies_get_an_error_or_a_well_formed_stored_stream(
    http: httpx.Client, case: tuple[bytes, bytes]
) -> None:
    boundary, body = case
    headers = {"Content-Type": f'multipart/form-data; boundary="{boundary.decode()}"'}

    response, stream = post(http, content=body, headers=headers)
    event(f"status {response.status_code}")

    assert response.status_code in (200, 400, 413, 415), response.text
    if response.status_code != 200:
        error = response.json()
        assert error["error"] != "internal_error" and error["detail"]
        assert error["request_id"] == response.headers["x-request-id"]
        return
    assert_well_formed(stream)
    started = stream.events[0]
    thread = stored(http, started["id_team_agent"], started["id_task"])
    text = thread["request"]["text"]  # type: ignore[index]
    assert stream.text.startswith(echoed(text))
    assert thread["response"]["text"] == stream.text  # type: ignore[index]
    assert json.dumps(thread)  # stored as valid JSON, whatever came in
