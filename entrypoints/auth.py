"""Optional API keys (AUTH_API_KEYS): each `key` or `key:id_team`, kept and compared as SHA-256 digests.

When keys are set, every route but health and the docs needs `Authorization: Bearer <key>` or `X-API-Key: <key>`
(else 401). A team-scoped key acts only for its team: the routes read its team from `request.state.auth_team`.
Keys are never logged; a key is known to the rest of the app only by a digest prefix (`request.state.auth_client`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Query, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from application.tasks import Tasks
from domain.errors import FileNotFound, TaskNotFound
from domain.model import ID_PATTERN, BlobInfo, TaskKey, is_valid_id
from entrypoints.errors import error_response
from entrypoints.principal import key_team, set_principal

EXEMPT = frozenset({"/health", "/api/v1/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
NO_TEAM = ""
"""The team filter of a scoped key asking for another team: no task has it, so nothing is found."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    digest: bytes
    team: str | None

    @property
    def client(self) -> str:
        """A name for this key that is safe to log and to count requests by."""
        return "key:" + self.digest.hex()[:16]


class ApiKeys:
    def __init__(self, keys: Sequence[ApiKey] = ()) -> None:
        self._keys = tuple(keys)

    @classmethod
    def parse(cls, spec: str) -> ApiKeys:
        """`key1,key2:team-a`: a key never holds `,` or `:`; a team follows the id pattern."""
        keys = []
        for number, item in enumerate((i.strip() for i in spec.split(",") if i.strip()), start=1):
            secret, _, team = item.partition(":")
            if not secret.strip() or (team and not is_valid_id(team)) or ":" in team:
                raise ValueError(f"AUTH_API_KEYS: entry {number} is not `key` or `key:id_team`")
            keys.append(ApiKey(hashlib.sha256(secret.strip().encode()).digest(), team or None))
        return cls(keys)

    def __bool__(self) -> bool:
        return bool(self._keys)

    def match(self, presented: str) -> ApiKey | None:
        """The key whose digest equals the presented one's; every digest is compared, in constant time."""
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        found = None
        for key in self._keys:
            if hmac.compare_digest(digest, key.digest):
                found = key
        return found


def presented_key(scope: Scope) -> str | None:
    headers: dict[bytes, bytes] = {k: v for k, v in scope["headers"] if k in (b"authorization", b"x-api-key")}
    scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    given = headers.get(b"x-api-key", b"").decode("latin-1").strip()
    return given or None


class AuthMiddleware:
    """401 (JSON, `WWW-Authenticate: Bearer`) without a valid key; the key's team into the request state."""

    def __init__(self, app: ASGIApp, keys: ApiKeys) -> None:
        self.app, self.keys = app, keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys or route_path(scope) in EXEMPT:
            await self.app(scope, receive, send)
            return
        presented = presented_key(scope)
        key = self.keys.match(presented) if presented else None
        if key is None:
            detail = "the API key is not valid" if presented else "an API key is required (Authorization: Bearer)"
            challenge = {"WWW-Authenticate": "Bearer"}
            response = error_response(Request(scope), 401, "unauthorized", detail, headers=challenge)
            await response(scope, receive, send)
            return
        set_principal(scope, team=key.team, client=key.client)
        await self.app(scope, receive, send)


def route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def team_filter(
    request: Request,
    id_team: Annotated[
        str | None, Query(pattern=ID_PATTERN, description="If given, the task must belong to this team")
    ] = None,
) -> str | None:
    """The `id_team` a task route filters by: a scoped key's own team, whatever the query says."""
    team = key_team(request)
    if team is None:
        return id_team
    return team if id_team in (None, team) else NO_TEAM


async def check_file_team(request: Request, tasks: Tasks, info: BlobInfo) -> None:
    """A scoped key reads only files of its team's tasks; any other file is not found."""
    team = key_team(request)
    if team is None:
        return
    if info.id_task is None:
        raise FileNotFound()
    try:
        await tasks.get(key=TaskKey(info.id_team_agent, info.id_task), id_team=team, include_content=False)
    except TaskNotFound:
        raise FileNotFound() from None
