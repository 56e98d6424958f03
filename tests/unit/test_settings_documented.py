"""Every setting is listed in .env.default, and the security ones in the README and docs/security.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from entrypoints.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_in_env_default(name: str) -> None:
    assert f"\n{name.upper()}=" in (ROOT / ".env.default").read_text()


@pytest.mark.parametrize(
    "name",
    [
        "AUTH_API_KEYS",
        "RATE_LIMIT_STREAMS_PER_CLIENT",
        "RATE_LIMIT_REQUESTS_PER_MINUTE",
        "MAX_UPLOAD_BYTES",
        "MAX_REQUEST_BYTES",
        "MAX_FILES",
        "MAX_TEXT_BYTES",
    ],
)
def test_security_settings_are_documented(name: str) -> None:
    assert name in (ROOT / "README.md").read_text()
    assert name in (ROOT / "docs" / "security.md").read_text()
