"""Stairway: every revision upgrades, downgrades and upgrades again; head matches the tables module."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine

from adapters.sqlalchemy_store.migrate import alembic_config, downgrade, upgrade, upgrade_async
from adapters.sqlalchemy_store.tables import metadata

URL_KINDS = ["sqlite", "postgres"]


def revisions() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


@pytest.fixture(params=URL_KINDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    from tests.conftest import POSTGRES_URL, need

    need(POSTGRES_URL, "PostgreSQL")
    downgrade(POSTGRES_URL, "base")
    return POSTGRES_URL


def test_every_revision_goes_up_and_down(url: str) -> None:
    previous = "base"
    for revision in revisions():
        upgrade(url, revision)
        downgrade(url, previous)
        upgrade(url, revision)
        previous = revision
    downgrade(url, "base")
    upgrade(url, "head")


async def test_head_matches_the_tables_the_code_uses(url: str) -> None:
    await upgrade_async(url)
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        diff = await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync), metadata))
    await engine.dispose()
    assert diff == []


def test_migrating_a_fresh_data_dir_creates_it(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'not' / 'yet' / 'there.db'}"

    upgrade(url, "head")

    assert (tmp_path / "not" / "yet" / "there.db").is_file()
