from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st
from python_multipart.multipart import MultipartParser, parse_options_header

from entrypoints.form_rules import FormError, FormLimits
from entrypoints.multipart import MultipartForm
from entrypoints.plain_parts import plain_fields
from entrypoints.routes.messages import MESSAGE_FIELDS
from tests.fakes import FakeBlobStore

Event = tuple[str, Any]

BOUNDARY = b"b0undary-X7"


def parser_events(body: bytes, boundary: bytes = BOUNDARY) -> list[Event]:
    """What python-multipart reports for `body`, as MultipartForm records it (headers joined, data merged)."""
    events: list[Event] = []
    header = [b"", b""]

    def add(kind: str) -> Any:
        return lambda *_: events.append((kind, ()))

    def data(buffer: bytes, start: int, end: int) -> None:
        if end > start and events and events[-1][0] == "data":
            events[-1] = ("data", events[-1][1] + buffer[start:end])
        elif end > start:
            events.append(("data", buffer[start:end]))

    def header_end() -> None:
        events.append(("header", (header[0].lower(), header[1])))
        header[:] = [b"", b""]

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": add("begin"),
            "on_part_data": data,
            "on_part_end": add("end"),
            "on_header_field": lambda b, s, e: header.__setitem__(0, header[0] + b[s:e]),
            "on_header_value": lambda b, s, e: header.__setitem__(1, header[1] + b[s:e]),
            "on_header_end": header_end,
            "on_headers_finished": add("headers"),
            "on_end": add("done"),
        },
    )
    parser.write(body)
    parser.finalize()
    return events


def parser_fields(body: bytes, boundary: bytes = BOUNDARY) -> list[tuple[bytes, bytes]]:
    """Each part's name, as MultipartForm reads it from its Content-Disposition, and its value."""
    fields: list[tuple[bytes, bytes]] = []
    for kind, args in parser_events(body, boundary):
        if kind == "header" and args[0] == b"content-disposition":
            fields.append((parse_options_header(args[1])[1].get(b"name", b""), b""))
        elif kind == "data":
            fields[-1] = (fields[-1][0], args)
    return fields


def canonical(
    fields: list[tuple[str, bytes]], *, end: bytes = b"\r\n", disposition: str = "Content-Disposition"
) -> bytes:
    parts = [
        b"--" + BOUNDARY + b"\r\n" + f'{disposition}: form-data; name="{name}"'.encode() + b"\r\n\r\n" + value + b"\r\n"
        for name, value in fields
    ]
    return b"".join(parts) + b"--" + BOUNDARY + b"--" + end


values = st.binary(max_size=300).filter(lambda v: b"--" + BOUNDARY not in v)
names = st.sampled_from(["id_team_agent", "id_team", "id_task", "text", "x"])


@given(st.lists(st.tuples(names, values), min_size=1, max_size=6), st.sampled_from([b"", b"\r\n"]))
def test_a_canonical_body_gives_the_fields_the_parser_reads(fields: list[tuple[str, bytes]], end: bytes) -> None:
    body = canonical(fields, end=end)
    assert plain_fields(body, BOUNDARY) == parser_fields(body) == [(n.encode(), v) for n, v in fields]


@pytest.mark.parametrize(
    "body",
    [
        canonical([("text", b"hi")], disposition="content-DISPOSITION").replace(b": form", b":   form"),
        canonical([("text", b"hi")]).replace(b"Content-Disposition: ", b"Content-Disposition:"),
        canonical([("t\xc3\xa9xt", b"hi")]),
    ],
)
def test_header_case_and_spaces_are_read_as_the_parser_reads_them(body: bytes) -> None:
    assert plain_fields(body, BOUNDARY) == parser_fields(body)


@pytest.mark.parametrize(
    "body",
    [
        b"preamble\r\n" + canonical([("text", b"hi")]),  # text before the first boundary
        canonical([("text", b"hi")]) + b"epilogue",
        canonical([("text", b"hi")]).replace(b'name="text"', b'name="f"; filename="a.txt"'),
        canonical([("text", b"hi")]).replace(b"\r\n\r\nhi", b"\r\nContent-Type: text/plain\r\n\r\nhi"),
        canonical([("text", b"hi"), ("id_team", b"t")]).replace(  # transport padding after a boundary
            b"\r\n--" + BOUNDARY + b"\r\n", b"\r\n--" + BOUNDARY + b" \r\n"
        ),
        canonical([("text", b"hi")]).replace(b"--" + BOUNDARY + b"--", b"--" + BOUNDARY),  # no closing boundary
        canonical([("text", b"hi")]) + b"\r\n",
        canonical([("text", b"hi")]).replace(b'name="text"', b'name="text"; pad="' + b"a" * 4300 + b'"'),
        canonical([("text", b"hi")]).replace(b'name="text"', b'name="text"; x="y"'),
        canonical([("text", b"hi")]).replace(b'name="text"', b'name="te\\"xt"'),  # an escaped quote
        canonical([("text", b"hi")]).replace(b'name="text"', b'NAME="text"'),
        canonical([("text", b"hi")]).replace(b'name="text"', b"name=text"),
        canonical([("text", b"hi")]).replace(b'; name="text"', b""),  # no name
        canonical([("text", b"hi")]).replace(b'name="text"', b'name="text" '),
        b"",
    ],
)
def test_anything_else_is_left_to_the_parser(body: bytes) -> None:
    assert plain_fields(body, BOUNDARY) is None


def test_a_boundary_longer_than_the_parser_takes_is_left_to_it() -> None:
    boundary = b"b" * 300
    body = b"--" + boundary + b'\r\nContent-Disposition: form-data; name="text"\r\n\r\nhi\r\n--' + boundary + b"--\r\n"
    assert plain_fields(body, boundary) is None


class Body:
    def __init__(self, body: bytes) -> None:
        self.body = body

    async def stream(self) -> AsyncIterator[bytes]:
        yield self.body


LIMITS = FormLimits(max_upload_bytes=1000, max_request_bytes=100_000, max_files=2, max_text_bytes=12)


def form_of(body: bytes, team: str | None, *, shortcut: bool) -> object:
    """The fields MultipartForm reads from `body`, or the error it answers with."""
    form = MultipartForm(MESSAGE_FIELDS, True, LIMITS, FakeBlobStore(), team)
    with contextlib.ExitStack() as stack:
        if not shortcut:
            stack.enter_context(mock.patch("entrypoints.multipart.plain_fields", return_value=None))
        try:
            asyncio.run(form.run(Body(body), BOUNDARY))  # type: ignore[arg-type]
        except FormError as error:
            return (error.status, error.field, error.message)
    return form.fields


raw_names = st.one_of(
    st.sampled_from([b"id_team_agent", b"id_team", b"id_task", b"text", b"text[]", b"images"]),
    st.binary(max_size=12).filter(lambda n: not set(n) & set(b'"\\\r\n')),
)


@given(
    st.lists(st.tuples(raw_names, values.filter(lambda v: len(v) < 40)), min_size=1, max_size=5),
    st.sampled_from([None, "T1"]),
)
def test_the_shortcut_reads_a_form_as_the_parser_does(fields: list[tuple[bytes, bytes]], team: str | None) -> None:
    parts = [
        b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="' + name + b'"\r\n\r\n' + value + b"\r\n"
        for name, value in fields
    ]
    body = b"".join(parts) + b"--" + BOUNDARY + b"--\r\n"
    assert plain_fields(body, BOUNDARY) is not None
    assert form_of(body, team, shortcut=True) == form_of(body, team, shortcut=False)
