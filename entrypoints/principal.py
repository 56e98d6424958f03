"""Who is calling, as the auth middleware found out: kept in the ASGI scope's state for routes and limits."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import Scope


def set_principal(scope: Scope, *, team: str | None, client: str) -> None:
    state = scope.setdefault("state", {})
    state["auth_team"], state["auth_client"] = team, client


def key_team(request: Request) -> str | None:
    """The team the request's API key is scoped to; None without keys or for an unscoped key."""
    team: str | None = getattr(request.state, "auth_team", None)
    return team


def client_id(scope: Scope) -> str:
    """What per-client limits count by: the API key (a digest prefix, never the key), else the peer address."""
    client: str | None = scope.get("state", {}).get("auth_client")
    if client:
        return client
    peer = scope.get("client")
    return "ip:" + (peer[0] if peer else "unknown")
