from __future__ import annotations

import pytest

from entrypoints.bootstrap import asyncpg_dsn


@pytest.mark.parametrize(
    ("url", "dsn", "cache"),
    [
        ("postgresql+asyncpg://u:p%40ss@db:5432/app", "postgresql://u:p%40ss@db:5432/app", 100),
        (
            "postgresql+asyncpg://u@db/app?prepared_statement_cache_size=0",
            "postgresql://u@db/app",
            0,
        ),
        ("postgresql+asyncpg://u@db/app?ssl=require", "postgresql://u@db/app?sslmode=require", 100),
        ("postgresql+asyncpg://u@db/app?ssl=true", "postgresql://u@db/app?sslmode=require", 100),
        ("postgresql+asyncpg://u@db/app?sslmode=verify-full", "postgresql://u@db/app?sslmode=verify-full", 100),
    ],
)
def test_database_url_becomes_what_asyncpg_takes(url: str, dsn: str, cache: int) -> None:
    assert asyncpg_dsn(url) == (dsn, cache)
