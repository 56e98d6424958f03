"""API key parsing, constant-time matching and the team filter (no HTTP)."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace
from typing import Any

import pytest

from entrypoints import auth
from entrypoints.auth import NO_TEAM, ApiKeys, presented_key, team_filter


def test_keys_parse_with_optional_teams_and_are_kept_only_as_digests() -> None:
    keys = ApiKeys.parse(" admin-key , team-key:team-a,,other:team.b@x ")

    assert keys.match("admin-key") is not None and keys.match("admin-key").team is None  # type: ignore[union-attr]
    assert keys.match("team-key").team == "team-a"  # type: ignore[union-attr]
    assert keys.match("other").team == "team.b@x"  # type: ignore[union-attr]
    assert keys.match("team-key:team-a") is None
    assert keys.match("nope") is None
    assert keys.match("") is None
    stored = repr(keys._keys)
    assert "admin-key" not in stored and "team-key" not in stored
    assert keys.match("admin-key").client == "key:" + hashlib.sha256(b"admin-key").hexdigest()[:16]  # type: ignore[union-attr]


@pytest.mark.parametrize("spec", [":team", "key:bad team", "key:a:b", "key:" + "t" * 200, "key:/etc"])
def test_bad_entries_are_refused_without_echoing_them(spec: str) -> None:
    with pytest.raises(ValueError, match="entry 1") as error:
        ApiKeys.parse(spec)
    assert spec not in str(error.value)


def test_no_keys_means_auth_is_off() -> None:
    assert not ApiKeys.parse("")
    assert not ApiKeys.parse(" , ")


def test_every_digest_is_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[bytes] = []
    real = auth.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append(b)
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    keys = ApiKeys.parse("first,second,third")

    assert keys.match("first") is not None
    assert len(compared) == 3, "no early exit that would time which key matched"


@pytest.mark.parametrize(
    ("headers", "key"),
    [
        ([(b"authorization", b"Bearer abc")], "abc"),
        ([(b"authorization", b"bearer   abc")], "abc"),
        ([(b"authorization", b"Basic abc")], None),
        ([(b"authorization", b"Bearer")], None),
        ([(b"x-api-key", b"xyz")], "xyz"),
        ([(b"authorization", b"Basic abc"), (b"x-api-key", b"xyz")], "xyz"),
        ([(b"authorization", b"Bearer abc"), (b"x-api-key", b"xyz")], "abc"),
        ([], None),
    ],
)
def test_the_key_is_read_from_bearer_or_x_api_key(headers: list[tuple[bytes, bytes]], key: str | None) -> None:
    assert presented_key({"headers": headers}) == key


def request_with(team: str | None) -> Any:
    return SimpleNamespace(state=SimpleNamespace(auth_team=team))


@pytest.mark.parametrize(
    ("key_team", "asked", "used"),
    [
        (None, None, None),
        (None, "team-b", "team-b"),
        ("team-a", None, "team-a"),
        ("team-a", "team-a", "team-a"),
        ("team-a", "team-b", NO_TEAM),
    ],
)
async def test_a_scoped_key_always_filters_by_its_team(
    key_team: str | None, asked: str | None, used: str | None
) -> None:
    assert await team_filter(request_with(key_team), asked) == used
