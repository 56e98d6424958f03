"""POST /messages over real HTTP: framing, headers, persistence, negotiation, errors."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from tests.e2e.conftest import LiveServer, post_stream, serve

FORM = {"id_team_agent": "agent-1", "id_team": "team-1", "text": "hello streaming world"}


async def test_a_reply_streams_as_the_contract_says(client: httpx.AsyncClient) -> None:
    response, stream = await post_stream(
        client, data={**FORM, "id_task": "task-1"}, headers={"Accept": "text/event-stream", "Accept-Encoding": "gzip"}
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert "content-encoding" not in response.headers
    assert stream.fields_seen <= {"id", "data"}, "no `event:` lines, or EventSource.onmessage misses frames"
    assert stream.frames[-1].data == "[DONE]"
    events = stream.events
    assert events[0] == {
        "event": "started",
        "id_team_agent": "agent-1",
        "id_team": "team-1",
        "id_task": "task-1",
        "created_at": events[0]["created_at"],
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", events[0]["created_at"])
    assert [e["event"] for e in events[1:-1]] == ["text-chunk"] * (len(events) - 2)
    assert events[-1] == {"event": "finished"}
    assert stream.text == "You said: hello streaming world"
    ids = [f.id for f in stream.frames if f.data != "[DONE]"]
    runs = {i.split(":")[0] for i in ids if i}
    assert len(runs) == 1 and all(ids)
    assert [int(i.split(":")[1]) for i in ids if i] == list(range(1, len(ids) + 1))


async def test_the_reply_is_stored_and_survives_a_restart(live: LiveServer, client: httpx.AsyncClient) -> None:
    _, stream = await post_stream(client, data={**FORM, "id_task": "kept"})
    live.stop()

    with serve(live.settings) as again:
        async with httpx.AsyncClient(base_url=again.url) as http:
            task = (await http.get("/tasks/agent-1/kept")).json()
            listed = (await http.get("/tasks/agent-1")).json()

    assert [t["id_task"] for t in listed] == ["kept"]
    [thread] = task["content"]
    assert thread["request"]["text"] == FORM["text"]
    assert thread["response"]["text"] == stream.text
    assert thread["response"]["is_finished"] is True
    assert thread["response"]["event"] == "finished"
    assert task["title"] == "hello streaming world"
    assert task["driver"] == "auto"


async def test_a_missing_id_task_makes_one(client: httpx.AsyncClient) -> None:
    _, stream = await post_stream(client, data=FORM)
    id_task = stream.events[0]["id_task"]

    assert id_task
    assert (await client.get(f"/tasks/agent-1/{id_task}")).status_code == 200


async def test_the_api_v1_prefix_serves_the_same_routes(client: httpx.AsyncClient) -> None:
    _, stream = await post_stream(client, "/api/v1/messages", data={**FORM, "id_task": "v1"})

    assert stream.text == "You said: hello streaming world"
    assert (await client.get("/api/v1/tasks/agent-1/v1")).json()["id_task"] == "v1"


@pytest.mark.parametrize(
    "accept", [None, "*/*", "text/event-stream", "text/*", "application/json, text/event-stream;q=0.5"]
)
async def test_accept_headers_that_allow_sse_stream(client: httpx.AsyncClient, accept: str | None) -> None:
    headers = {"Accept": accept} if accept else {}
    response, stream = await post_stream(client, data=FORM, headers=headers)

    assert response.status_code == 200 and stream.frames[-1].data == "[DONE]"


@pytest.mark.parametrize("accept", ["application/json", "text/html", "text/event-stream;q=0"])
async def test_accept_headers_that_rule_sse_out_get_406(client: httpx.AsyncClient, accept: str) -> None:
    response = await client.post("/messages", data=FORM, headers={"Accept": accept})

    assert response.status_code == 406
    assert response.json()["error"] == "not_acceptable"


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"id_team": "t", "text": "x"}, "id_team_agent"),
        ({"id_team_agent": "a", "text": "x"}, "id_team"),
        ({"id_team_agent": "a", "id_team": "t"}, "text"),
        ({"id_team_agent": "a", "id_team": "t", "text": "   "}, "text"),
        ({"id_team_agent": "a/b", "id_team": "t", "text": "x"}, "id_team_agent"),
        ({"id_team_agent": "a", "id_team": "t", "text": "x", "id_task": "../x"}, "id_task"),
        ({"id_team_agent": "a", "id_team": "t", "text": "x", "surprise": "1"}, "surprise"),
    ],
)
async def test_bad_forms_get_400_naming_the_field(client: httpx.AsyncClient, form: dict[str, str], field: str) -> None:
    response = await client.post("/messages", data=form)

    assert response.status_code == 400
    body = response.json()
    assert body["field"] == field
    assert body["error"] == "invalid_input" or body["error"] == "bad_request"
    assert response.headers["x-request-id"] == body["request_id"]


async def test_invalid_utf8_is_rejected(client: httpx.AsyncClient) -> None:
    body = b"id_team_agent=a&id_team=t&text=%FF%FE"
    response = await client.post(
        "/messages", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    multipart = await client.post(
        "/messages",
        content=b'--b\r\nContent-Disposition: form-data; name="text"\r\n\r\n\xff\xfe\r\n--b--\r\n',
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )

    assert response.status_code == 400 and "UTF-8" in response.json()["detail"]
    assert multipart.status_code == 400 and multipart.json()["field"] == "text"


async def test_wrong_content_type_and_truncated_multipart_get_400(client: httpx.AsyncClient) -> None:
    as_json = await client.post("/messages", json=FORM)
    truncated = await client.post(
        "/messages",
        content=b'--b\r\nContent-Disposition: form-data; name="text"\r\n\r\nhello',
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )

    assert as_json.status_code == 400
    assert truncated.status_code == 400


async def test_a_task_of_another_team_is_not_found(client: httpx.AsyncClient) -> None:
    await post_stream(client, data={**FORM, "id_task": "mine"})

    response = await client.post("/messages", data={**FORM, "id_task": "mine", "id_team": "other-team"})
    same_id_other_agent = await client.get("/tasks/agent-2/mine")
    wrong_team = await client.get("/tasks/agent-1/mine", params={"id_team": "other-team"})

    assert response.status_code == 404
    assert same_id_other_agent.status_code == 404
    assert wrong_team.status_code == 404
    [thread] = (await client.get("/tasks/agent-1/mine")).json()["content"]
    assert thread["request"]["id_team"] == "team-1"


async def test_without_a_gemini_key_the_stream_says_so_and_the_request_is_kept(settings_factory) -> None:  # type: ignore[no-untyped-def]
    with serve(settings_factory(ai_provider="gemini", ai_google_gemini_api_key=None)) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            _, stream = await post_stream(http, data={**FORM, "id_task": "nokey"})
            task = (await http.get("/tasks/agent-1/nokey")).json()

    assert [e["event"] for e in stream.events] == ["started", "error"]
    assert "AI_GOOGLE_GEMINI_API_KEY" in stream.events[-1]["error"]
    assert stream.frames[-1].data == "[DONE]"
    response = task["content"][0]["response"]
    assert task["content"][0]["request"]["text"] == FORM["text"]
    assert response["is_error"] is True and response["event"] == "error"


async def test_keepalive_comments_go_out_while_the_model_is_quiet(settings_factory) -> None:  # type: ignore[no-untyped-def]
    with serve(settings_factory(ai_echo_delay_ms=150, stream_keepalive_s=0.05)) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            _, stream = await post_stream(http, data={**FORM, "text": "slow"})

    assert "ping" in stream.comments
    assert stream.text == "You said: slow"


async def test_many_concurrent_streams_are_all_stored(client: httpx.AsyncClient) -> None:
    async def one(i: int) -> str:
        _, stream = await post_stream(client, data={**FORM, "id_task": f"c{i}", "text": f"message number {i}"})
        return stream.text

    texts = await asyncio.gather(*(one(i) for i in range(30)))

    assert texts == [f"You said: message number {i}" for i in range(30)]
    listed = (await client.get("/tasks/agent-1", params={"limit": 100})).json()
    stored = {t["id_task"]: t["content"][0]["response"]["text"] for t in listed}
    assert stored == {f"c{i}": f"You said: message number {i}" for i in range(30)}
