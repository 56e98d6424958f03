"""Per-client caps over real HTTP: streams open at once and requests a minute, 429 with Retry-After."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from entrypoints.settings import Settings
from tests.e2e.conftest import serve
from tests.sse import parse

FORM = {"id_team_agent": "agent-1", "id_team": "team-1", "text": " ".join(f"w{i}" for i in range(30))}


async def test_a_client_gets_only_so_many_open_streams(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(rate_limit_streams_per_client=1, ai_echo_delay_ms=20, auth_api_keys="k-one,k-two")
    with serve(settings) as server:
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=30, headers={"X-API-Key": "k-one"}) as one,
            httpx.AsyncClient(base_url=server.url, timeout=30, headers={"X-API-Key": "k-two"}) as two,
        ):
            async with one.stream("POST", "/messages", data={**FORM, "id_task": "a"}) as first:
                chunks = first.aiter_raw()
                assert b"started" in await chunks.__anext__()
                second = await one.post("/api/v1/messages", data={**FORM, "id_task": "b"})
                other_key = await two.post("/messages", data={**FORM, "id_task": "c"})
                reads = await one.get("/tasks/agent-1")
                stream = await parse(chunks)
            after = await one.post("/messages", data={**FORM, "id_task": "d"})

    assert second.status_code == 429
    assert second.headers["retry-after"] == "1"
    assert second.json()["error"] == "too_many_requests"
    assert second.json()["request_id"] == second.headers["x-request-id"]
    assert other_key.status_code == 200, "each key counts alone"
    assert reads.status_code == 200, "other requests go on while streams are open"
    assert stream.frames[-1].data == "[DONE]"
    assert after.status_code == 200


async def test_a_client_gets_only_so_many_requests_a_minute(settings_factory: Callable[..., Settings]) -> None:
    with serve(settings_factory(rate_limit_requests_per_minute=5)) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            statuses = [(await http.get("/tasks/agent-1")).status_code for _ in range(6)]
            refused = await http.post("/messages", data=FORM)
            health = await http.get("/health")

    assert statuses == [200] * 5 + [429]
    assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 12
    assert refused.json()["error"] == "too_many_requests"
    assert health.status_code == 200
