from __future__ import annotations

from typing import Any

import pytest

from entrypoints.bootstrap import asyncpg_connect_args

BASE = {"host": "db", "database": "app", "user": "u", "statement_cache_size": 100}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+asyncpg://u:p%40ss@db:5432/app", {**BASE, "password": "p@ss", "port": 5432}),
        ("postgresql+asyncpg://u@db/app?prepared_statement_cache_size=0", {**BASE, "statement_cache_size": 0}),
        ("postgresql+asyncpg://u@db/app?ssl=require", {**BASE, "ssl": "require"}),
        (
            "postgresql+asyncpg://u@/app?host=db1:5432&host=db2:5433",
            {**BASE, "host": ["db1", "db2"], "port": [5432, 5433]},
        ),
    ],
)
def test_database_url_becomes_what_asyncpg_connect_takes(url: str, expected: dict[str, Any]) -> None:
    assert asyncpg_connect_args(url) == expected
