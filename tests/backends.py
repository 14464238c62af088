"""Both storage backends as one fixture parameter (issue #18): in a module that imports `both_backends`, a test that
takes `database` (or the bot `runner`, or anything built on `backend`) runs on the SQLite file and, marked
`postgres`, on a fresh PostgreSQL database of its own.

The PostgreSQL variants are left out of the README's test run (`-m "not postgres"` in pyproject's addopts) and run
by `.ci/run` as its second command (`pytest -m postgres`), on a throwaway cluster (tests/pg.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot.db import Database, SqliteDatabase
from bot.db.postgres import PostgresDatabase

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def url_for(request: pytest.FixtureRequest, backend: str) -> str | None:
    """DATABASE_URL for a bot on this backend: a fresh PostgreSQL database, or None (the SQLite file)."""
    if backend == "postgresql":
        url: str = request.getfixturevalue("pg_url")
        return url
    return None


def database_for(url: str | None, path: Path) -> Database:
    return PostgresDatabase(url) if url else SqliteDatabase(path)


@pytest.fixture
def backend() -> str:
    """The storage backend of the test's database and bot: the SQLite file unless the test's module takes
    `both_backends`."""
    return "sqlite"


@pytest.fixture
def database_url(request: pytest.FixtureRequest, backend: str) -> str | None:
    """DATABASE_URL for this test's backend (None: the SQLite file). A plain fixture: `pg_url` is set up from
    here, outside any running event loop."""
    return url_for(request, backend)


@pytest_asyncio.fixture
async def database(database_url: str | None, tmp_path: Path) -> AsyncIterator[Database]:
    """An open, migrated database of this test's own, on each backend."""
    db = database_for(database_url, tmp_path / "test.sqlite3")
    await db.open()
    try:
        yield db
    finally:
        await db.close()
