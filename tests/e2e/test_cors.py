"""CORS exactly as WEB_SERVER_CORS_* say: never `*` together with credentials; errors readable cross-origin."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from entrypoints.settings import Settings
from tests.e2e.conftest import serve

PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}


@pytest.mark.parametrize("credentials", [True, False])
async def test_a_wildcard_origin_never_comes_with_credentials(
    settings_factory: Callable[..., Settings], credentials: bool
) -> None:
    settings = settings_factory(web_server_cors_origins="*", web_server_cors_credentials=credentials)
    with serve(settings) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            simple = await http.get("/tasks/agent", headers={"Origin": "https://anywhere.example"})
            preflight = await http.options("/messages", headers={"Origin": "https://anywhere.example", **PREFLIGHT})

    for response in (simple, preflight):
        assert response.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in response.headers
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()


async def test_listed_origins_only_and_credentials_when_asked(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(
        web_server_cors_origins="https://app.example, https://admin.example",
        web_server_cors_credentials=True,
        web_server_cors_methods="GET,POST",
        web_server_cors_headers="Authorization,Content-Type",
        auth_api_keys="k-123456789",
    )
    with serve(settings) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            allowed = await http.options("/messages", headers={"Origin": "https://app.example", **PREFLIGHT})
            other = await http.options("/messages", headers={"Origin": "https://evil.example", **PREFLIGHT})
            delete = await http.options(
                "/tasks/a/b", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "DELETE"}
            )
            unauthorized = await http.get("/tasks/agent", headers={"Origin": "https://admin.example"})
            foreign = await http.get("/tasks/agent", headers={"Origin": "https://evil.example"})

    assert allowed.status_code == 200, "a preflight carries no key and must not be refused for it"
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert set(allowed.headers["access-control-allow-methods"].replace(" ", "").split(",")) == {"GET", "POST"}
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
    assert delete.status_code == 400
    assert unauthorized.status_code == 401
    assert unauthorized.headers["access-control-allow-origin"] == "https://admin.example", "errors readable too"
    assert "access-control-allow-origin" not in foreign.headers
