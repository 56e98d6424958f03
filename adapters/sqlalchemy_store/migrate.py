"""Run the alembic migrations programmatically (startup, tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logging"] = False
    return config


def _isolated(action: Callable[[], None]) -> None:
    """migrations/env.py drives its own event loop, so it runs in a thread with none."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(action).result()


def upgrade(url: str, revision: str = "head") -> None:
    _isolated(lambda: command.upgrade(alembic_config(url), revision))


def downgrade(url: str, revision: str) -> None:
    _isolated(lambda: command.downgrade(alembic_config(url), revision))


async def upgrade_async(url: str) -> None:
    await asyncio.to_thread(upgrade, url)
