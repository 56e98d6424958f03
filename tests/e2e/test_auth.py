"""API keys: 401 without one (but for health and docs), team-scoped keys see and touch only their team."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.e2e.conftest import LiveServer, post_stream
from tests.e2e.shared import files_of, module_server, new_agent

ADMIN = "admin-4f1c9e2a77d0b3"
KEY_A = "team-a-9b8c7d6e5f4a3b"
KEY_B = "team-b-1a2b3c4d5e6f70"
server = module_server("auth", auth_api_keys=f"{ADMIN}, {KEY_A}:team-a,{KEY_B}:team-b")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def anon(server: LiveServer) -> httpx.AsyncClient:  # type: ignore[misc]
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        yield http


def as_key(server: LiveServer, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, timeout=30, headers=bearer(key))


@pytest.mark.parametrize("mount", ["", "/api/v1"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/messages"),
        ("GET", "/tasks/agent"),
        ("GET", "/tasks/agent/task"),
        ("POST", "/tasks/agent"),
        ("PATCH", "/tasks/agent/task"),
        ("DELETE", "/tasks/agent/task"),
        ("POST", "/tasks/agent/task/interrupt"),
        ("GET", "/tasks/agent/task/stream"),
        ("GET", "/files/agent/file"),
        ("GET", "/no/such/route"),
    ],
)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-key"},
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {ADMIN}"},
        {"Authorization": ADMIN},
        {"X-API-Key": "wrong-key"},
        {"X-API-Key": ADMIN[:-1]},
    ],
)
async def test_without_a_valid_key_every_route_answers_401(
    anon: httpx.AsyncClient, mount: str, method: str, path: str, headers: dict[str, str]
) -> None:
    response = await anon.request(method, mount + path, headers=headers, data={"id_team": "team-a", "text": "x"})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["error"] == "unauthorized"
    assert body["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    "path", ["/health", "/api/v1/health", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"]
)
async def test_health_and_docs_need_no_key(anon: httpx.AsyncClient, path: str) -> None:
    assert (await anon.get(path)).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [bearer(ADMIN), {"Authorization": f"bearer   {ADMIN}"}, {"X-API-Key": ADMIN}, {"x-api-key": KEY_A}],
)
async def test_a_valid_key_in_either_header_is_let_in(anon: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await anon.get("/api/v1/tasks/agent", headers=headers)

    assert response.status_code == 200 and response.json() == []


async def test_a_team_key_cannot_create_or_send_as_another_team(server: LiveServer) -> None:
    agent = new_agent()
    async with as_key(server, KEY_A) as http:
        sent = await http.post(
            "/messages",
            data={"id_team_agent": agent, "id_team": "team-b", "id_task": "t", "text": "hi"},
            files=[("images", ("a.png", PNG, "image/png"))],
        )
        encoded = await http.post("/messages", data={"id_team_agent": agent, "id_team": "team-b", "text": "hi"})
        created = await http.post(f"/api/v1/tasks/{agent}", data={"id_team": "team-b", "text": "hi"})
        own, stream = await post_stream(http, data={"id_team_agent": agent, "id_team": "team-a", "text": "hi"})

    for refused in (sent, encoded, created):
        assert refused.status_code == 403
        assert (refused.json()["error"], refused.json()["field"]) == ("forbidden", "id_team")
    assert own.status_code == 200 and stream.text == "You said: hi"
    assert [f.name for f in files_of(server.settings, agent)] == []


async def test_a_team_key_sees_only_its_teams_tasks_and_files(server: LiveServer) -> None:
    agent = new_agent()
    async with as_key(server, KEY_B) as b:
        _, stream = await post_stream(
            b,
            data={"id_team_agent": agent, "id_team": "team-b", "id_task": "tb", "text": "secret plans"},
            files=[("images", ("plan.png", PNG, "image/png"))],
        )
        url = (await b.get(f"/tasks/{agent}/tb")).json()["content"][0]["request"]["images"][0]["url"]
        assert (await b.get(url)).status_code == 200
    async with as_key(server, KEY_A) as a:
        await a.post(f"/tasks/{agent}", data={"id_team": "team-a", "text": "mine", "id_task": "ta"})
        answers = {
            "read": await a.get(f"/tasks/{agent}/tb"),
            "read as b": await a.get(f"/tasks/{agent}/tb", params={"id_team": "team-b"}),
            "rename": await a.patch(f"/tasks/{agent}/tb", json={"title": "mine now"}),
            "delete": await a.delete(f"/api/v1/tasks/{agent}/tb"),
            "interrupt": await a.post(f"/tasks/{agent}/tb/interrupt"),
            "resume": await a.get(f"/tasks/{agent}/tb/stream", headers={"Accept": "text/event-stream"}),
            "file": await a.get(url),
            "file on v1": await a.get("/api/v1" + url),
            "answer in it": await a.post(
                "/messages", data={"id_team_agent": agent, "id_team": "team-a", "id_task": "tb", "text": "hi"}
            ),
        }
        listed = await a.get(f"/tasks/{agent}")
        listed_as_b = await a.get(f"/tasks/{agent}", params={"id_team": "team-b"})
    async with as_key(server, ADMIN) as admin:
        intact = (await admin.get(f"/tasks/{agent}/tb")).json()
        everything = (await admin.get(f"/tasks/{agent}")).json()
        file_for_admin = await admin.get(url)

    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 404)
    assert [t["id_task"] for t in listed.json()] == ["ta"]
    assert listed_as_b.json() == []
    assert intact["title"] != "mine now" and len(intact["content"]) == 1
    assert sorted(t["id_task"] for t in everything) == ["ta", "tb"]
    assert file_for_admin.status_code == 200 and stream.text.startswith("You said: secret plans")


async def test_keys_are_never_logged(anon: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        await anon.get("/tasks/agent", headers=bearer(ADMIN))
        await anon.get("/tasks/agent", headers=bearer("guess-" + KEY_A))
        await anon.post("/messages", headers={"X-API-Key": KEY_B}, data={"id_team": "x"})

    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (ADMIN, KEY_A, KEY_B):
        assert secret not in logged
