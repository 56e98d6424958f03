"""Junk input gets 400 with a JSON error naming the problem, on both form routes and both mounts; nothing is kept."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.conftest import LiveServer
from tests.e2e.shared import files_of, module_client, module_server, new_agent

server = module_server("bad-input")
client = module_client()
MOUNTS = ["", "/api/v1"]
ROUTES = ["messages", "tasks"]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def multipart(*parts: bytes, boundary: bytes = b"B", close: bool = True) -> bytes:
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    return body + (b"--" + boundary + b"--\r\n" if close else b"")


def field(name: bytes, value: bytes) -> bytes:
    return b'Content-Disposition: form-data; name="' + name + b'"\r\n\r\n' + value


def valid_fields(route: str, agent: str) -> dict[str, str]:
    fields = {"id_team": "team-1", "text": "hello"}
    return {"id_team_agent": agent, **fields} if route == "messages" else fields


def raw_fields(route: str, agent: str, **override: bytes) -> list[bytes]:
    values = {k: v.encode() for k, v in valid_fields(route, agent).items()} | override
    return [field(k.encode(), v) for k, v in values.items()]


MULTIPART = {"Content-Type": "multipart/form-data; boundary=B"}
JSON = {"Content-Type": "application/json"}
# name -> (how to build the request from (route, agent), the field named, words the detail holds)
CASES: dict[str, tuple[Any, str | None, str]] = {
    "json body": (lambda r, a: {"json": valid_fields(r, a)}, None, "multipart/form-data"),
    "text/plain body": (
        lambda r, a: {"content": b"hello", "headers": {"Content-Type": "text/plain"}},
        None,
        "multipart/form-data",
    ),
    "no content type": (lambda r, a: {"content": b"hello"}, None, "multipart/form-data"),
    "multipart without boundary": (
        lambda r, a: {"content": b"x", "headers": {"Content-Type": "multipart/form-data"}},
        None,
        "multipart/form-data",
    ),
    "not multipart at all": (
        lambda r, a: {"content": b"this is not a multipart body", "headers": MULTIPART},
        None,
        "multipart",
    ),
    "truncated multipart": (
        lambda r, a: {"content": multipart(*raw_fields(r, a), close=False), "headers": MULTIPART},
        None,
        "closing boundary",
    ),
    "garbage part headers": (
        lambda r, a: {"content": multipart(b"no-colon-here\r\n\r\nvalue", *raw_fields(r, a)), "headers": MULTIPART},
        None,
        "",
    ),
    "a part header longer than the parser takes": (
        lambda r, a: {
            "content": multipart(
                b'Content-Disposition: form-data; name="text"; pad="' + b"a" * 5000 + b'"\r\n\r\nhi', *raw_fields(r, a)
            ),
            "headers": MULTIPART,
        },
        None,
        "malformed",
    ),
    "a part header longer than the parser takes, in a large body": (
        lambda r, a: {
            "content": multipart(
                b'Content-Disposition: form-data; name="text"; pad="' + b"a" * 5000 + b'"\r\n\r\nhi',
                *raw_fields(r, a, id_team=b"team-1"),
                field(b"id_task", b"x" * 70_000),
            ),
            "headers": MULTIPART,
        },
        None,
        "malformed",
    ),
    "invalid utf-8 value": (
        lambda r, a: {"content": multipart(*raw_fields(r, a, text=b"caf\xe9")), "headers": MULTIPART},
        "text",
        "UTF-8",
    ),
    "invalid utf-8 part name": (
        lambda r, a: {"content": multipart(field(b"te\xffxt", b"x"), *raw_fields(r, a)), "headers": MULTIPART},
        None,
        "UTF-8",
    ),
    "invalid utf-8 urlencoded": (
        lambda r, a: {
            "content": b"id_team=team-1&text=%FF%FE&id_team_agent=" + a.encode(),
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
        },
        None,
        "UTF-8",
    ),
    "overlong id": (lambda r, a: {"data": {**valid_fields(r, a), "id_team": "t" * 129}}, "id_team", "1-128"),
    "id with a slash": (lambda r, a: {"data": {**valid_fields(r, a), "id_team": "team/1"}}, "id_team", "id_team"),
    "id with a NUL": (
        lambda r, a: {"content": multipart(*raw_fields(r, a, id_team=b"team\x001")), "headers": MULTIPART},
        "id_team",
        "id_team",
    ),
    "id with a newline": (lambda r, a: {"data": {**valid_fields(r, a), "id_team": "team\n1"}}, "id_team", "id_team"),
    "id with a space": (lambda r, a: {"data": {**valid_fields(r, a), "id_team": "team 1"}}, "id_team", "id_team"),
    "id with non-ascii": (lambda r, a: {"data": {**valid_fields(r, a), "id_team": "téam"}}, "id_team", "id_team"),
    "id starting with a dot": (lambda r, a: {"data": {**valid_fields(r, a), "id_task": ".."}}, "id_task", "id_task"),
    "id_task with a path": (lambda r, a: {"data": {**valid_fields(r, a), "id_task": "../x"}}, "id_task", "id_task"),
    "missing id_team": (
        lambda r, a: {"data": {k: v for k, v in valid_fields(r, a).items() if k != "id_team"}},
        "id_team",
        "required",
    ),
    "empty text": (lambda r, a: {"data": {**valid_fields(r, a), "text": ""}}, "text", "text"),
    "blank text": (lambda r, a: {"data": {**valid_fields(r, a), "text": " \n\t\u2028 "}}, "text", "blank"),
    "no text": (
        lambda r, a: {"data": {k: v for k, v in valid_fields(r, a).items() if k != "text"}},
        "text",
        "required",
    ),
    "unknown field": (lambda r, a: {"data": {**valid_fields(r, a), "surprise": "1"}}, "surprise", "unknown field"),
    "unknown file field": (
        lambda r, a: {"data": valid_fields(r, a), "files": [("pictures", ("a.png", PNG, "image/png"))]},
        "pictures",
        "unknown file field",
    ),
    "field given twice": (
        lambda r, a: {"content": multipart(*raw_fields(r, a), field(b"text", b"again")), "headers": MULTIPART},
        "text",
        "more than once",
    ),
}


@pytest.mark.parametrize("mount", MOUNTS)
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("case", sorted(CASES))
async def test_bad_forms_get_400_naming_the_problem(
    client: httpx.AsyncClient, server: LiveServer, mount: str, route: str, case: str
) -> None:
    build, named, words = CASES[case]
    agent = new_agent()
    url = f"{mount}/messages" if route == "messages" else f"{mount}/tasks/{agent}"

    response = await client.post(url, **build(route, agent))

    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] in ("invalid_input", "bad_request")
    assert body.get("field") == named
    assert words in body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    assert (await client.get(f"/tasks/{agent}")).json() == []
    assert files_of(server.settings, agent) == []


async def test_a_file_on_task_creation_is_an_unknown_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/tasks/agent-x", data={"id_team": "t", "text": "x"}, files=[("images", ("a.png", PNG, "image/png"))]
    )

    assert response.status_code == 400 and response.json()["field"] == "images"


@pytest.mark.parametrize("mount", MOUNTS)
@pytest.mark.parametrize(
    ("method", "path", "kwargs", "named"),
    [
        ("GET", "/tasks/" + "a" * 129, {}, "id_team_agent"),
        ("GET", "/tasks/a%00b", {}, "id_team_agent"),
        ("GET", "/tasks/a%0Ab/task", {}, "id_team_agent"),
        ("GET", "/tasks/agent/t%20k", {}, "id_task"),
        ("GET", "/tasks/agent/-task", {}, "id_task"),
        ("DELETE", "/tasks/agent/" + "t" * 129, {}, "id_task"),
        ("POST", "/tasks/agent/t%09k/interrupt", {}, "id_task"),
        ("GET", "/files/agent/f%C3%A9", {}, "id_file"),
        ("GET", "/tasks/agent", {"params": {"id_team": "a/b"}}, "id_team"),
        ("GET", "/tasks/agent", {"params": {"limit": "0"}}, "limit"),
        ("GET", "/tasks/agent", {"params": {"limit": "many"}}, "limit"),
        ("GET", "/tasks/agent", {"params": {"cursor": "not-a-cursor"}}, "cursor"),
        ("GET", "/tasks/agent", {"params": {"updated_since": "yesterday"}}, "updated_since"),
        ("GET", "/tasks/agent", {"params": {"include_content": "maybe"}}, "include_content"),
        ("GET", "/tasks/agent", {"params": {"driver": "robot"}}, "driver"),
        ("PATCH", "/tasks/agent/task", {"content": b"{not json", "headers": JSON}, None),
        ("PATCH", "/tasks/agent/task", {"json": {"title": "x", "owner": "me"}}, "owner"),
        ("PATCH", "/tasks/agent/task", {"json": {"driver": "robot"}}, "driver"),
        ("PATCH", "/tasks/agent/task", {"json": ["title"]}, None),
    ],
)
async def test_bad_paths_queries_and_json_get_400(
    client: httpx.AsyncClient, mount: str, method: str, path: str, kwargs: dict[str, Any], named: str | None
) -> None:
    response = await client.request(method, mount + path, **kwargs)

    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_input"
    assert body.get("field") == named
    assert body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
