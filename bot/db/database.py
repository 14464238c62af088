"""One SQLite file in WAL mode, opened with aiosqlite, migrated at start-up.

All SQL of the project lives in `bot/db` and in the `store.py` of each feature. Every statement goes through one
connection guarded by one asyncio lock, so a `transaction()` is never interleaved with another coroutine's
statements; `BEGIN IMMEDIATE` also takes SQLite's write lock at once, so a check and the write it allows happen
atomically.

Stores take a `Queries`: either the `Database` itself (each statement on its own) or the `Tx` that `transaction()`
yields (statements inside one transaction). Both have the same `fetchone`, `fetchall`, `execute` and `changed`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

log = logging.getLogger(__name__)

_MIGRATION_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

Params = Sequence[Any] | dict[str, Any]
Row = aiosqlite.Row


class Queries(Protocol):
    """What a store needs to run SQL: `Database` (autocommit) and `Tx` (one open transaction) both have it."""

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...
    async def execute(self, sql: str, params: Params = ()) -> int: ...
    async def changed(self, sql: str, params: Params = ()) -> int: ...


def migration_files() -> list[tuple[int, str, str]]:
    """Return (number, name, sql) for every bundled migration, in order."""
    folder = resources.files("bot.db") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_RE.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [n for n, _, _ in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise RuntimeError(f"migration numbers must run 1..n without gaps, found {numbers}")
    return found


class Tx:
    """Statements inside one open transaction (yielded by `Database.transaction()`)."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """Fetch the first row of a query."""
        async with self._conn.execute(sql, params) as cur:
            return await cur.fetchone()

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Fetch all rows of a query."""
        async with self._conn.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return lastrowid."""
        async with self._conn.execute(sql, params) as cur:
            return cur.lastrowid or 0

    async def changed(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return how many rows it changed."""
        async with self._conn.execute(sql, params) as cur:
            return cur.rowcount


class Database:
    """The application's SQLite database."""

    def __init__(self, path: Path, *, migrations: Sequence[tuple[int, str, str]] | None = None) -> None:
        self.path = path
        self._migrations = list(migrations) if migrations is not None else None
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self, *, up_to: int | None = None) -> None:
        """Open (creating if needed) and migrate to the newest schema, or to `up_to` (tests build old files)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = await aiosqlite.connect(self.path, isolation_level=None)
        self._conn.row_factory = aiosqlite.Row
        await self._conn.execute("PRAGMA journal_mode=WAL")
        await self._conn.execute("PRAGMA foreign_keys=ON")
        await self._conn.execute("PRAGMA busy_timeout=5000")
        await self._conn.execute("PRAGMA synchronous=NORMAL")
        await self._migrate(up_to)

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def __aenter__(self) -> Database:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("database is not open")
        return self._conn

    async def _migrate(self, up_to: int | None) -> None:
        """Apply every newer migration, each with its bookkeeping in one transaction.

        Foreign keys are switched off around each migration (SQLite ignores the pragma inside a transaction), so a
        migration may rebuild a table (create new, copy, drop old, rename); `PRAGMA foreign_key_check` must come back
        empty before the commit, or the migration is rolled back.
        """
        conn = self.conn
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"
        )
        async with conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations") as cur:
            row = await cur.fetchone()
        current = int(row[0]) if row else 0
        for number, name, sql in self._migrations if self._migrations is not None else migration_files():
            if number <= current or (up_to is not None and number > up_to):
                continue
            log.info("applying migration %s", name)
            await conn.execute("PRAGMA foreign_keys=OFF")
            try:
                # executescript commits whatever is open first; the file runs inside our own BEGIN ... COMMIT.
                await conn.executescript("BEGIN IMMEDIATE;\n" + sql)
                async with conn.execute("PRAGMA foreign_key_check") as cur:
                    broken = list(await cur.fetchall())
                if broken:
                    raise RuntimeError(
                        f"migration {name} leaves {len(broken)} rows with broken foreign keys, e.g. {tuple(broken[0])}"
                    )
                await conn.execute(
                    "INSERT INTO schema_migrations(version, name) VALUES (?, ?)", (number, name)
                )
                await conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    await conn.execute("ROLLBACK")
                raise
            finally:
                await conn.execute("PRAGMA foreign_keys=ON")

    async def schema_version(self) -> int:
        """Return the newest applied migration number."""
        row = await self.fetchone("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
        return int(row["v"]) if row else 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """Run the body as one write transaction; commit on success, roll back on any error."""
        async with self._lock:
            conn = self.conn
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(conn)
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            else:
                await conn.execute("COMMIT")

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """Run one query and return its first row."""
        async with self._lock, self.conn.execute(sql, params) as cur:
            return await cur.fetchone()

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Run one query and return all rows."""
        async with self._lock, self.conn.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement in its own transaction; return lastrowid."""
        async with self.transaction() as tx:
            return await tx.execute(sql, params)

    async def changed(self, sql: str, params: Params = ()) -> int:
        """Run one statement in its own transaction; return how many rows it changed."""
        async with self.transaction() as tx:
            return await tx.changed(sql, params)

    def size_bytes(self) -> int:
        """Return the size of the database file plus its WAL."""
        total = 0
        for suffix in ("", "-wal"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                total += p.stat().st_size
        return total
