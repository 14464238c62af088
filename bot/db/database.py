"""One SQLite file in WAL mode, opened with aiosqlite, migrated at start-up.

All SQL of the project lives in `bot/db` and in the `store.py` of each feature. Writes go through one writer
connection guarded by one asyncio lock, so a transaction is never interleaved with another coroutine's statements;
`BEGIN IMMEDIATE` also takes SQLite's write lock at once, so a check and the write it allows happen atomically.
`Database.run(body)` runs a whole transaction in one round trip to the writer's thread (the hot paths: holds, job
moves); `transaction()` is the general form, one thread hop per statement. `Database.fetchone/fetchall` read the last
committed state from a second, read-only connection that takes no lock, so reads never wait behind the writes.

Stores take a `Queries`: the `Database` itself (each statement on its own), the `Tx` that `transaction()` yields, or
the `ThreadTx` that `run()` gives its body. All have the same `fetchone`, `fetchall`, `execute` and `changed`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast
from urllib.parse import quote

import aiosqlite
import asyncpg

log = logging.getLogger(__name__)

_MIGRATION_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

Params = Sequence[Any] | dict[str, Any]
# A constraint refused a write, in either backend (`except IntegrityError:`); the transaction is rolled back.
IntegrityError = (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError)
Row = aiosqlite.Row
T = TypeVar("T")


class Queries(Protocol):
    """What a store needs to run SQL: `Database` (autocommit) and `Tx` (one open transaction) both have it.

    `insert` runs an INSERT into a table with an `id` column and returns the new row's id (SQLite's lastrowid,
    PostgreSQL's `RETURNING id`); `execute`'s own return value is SQLite's lastrowid and 0 on PostgreSQL."""

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...
    async def execute(self, sql: str, params: Params = ()) -> int: ...
    async def changed(self, sql: str, params: Params = ()) -> int: ...
    async def insert(self, sql: str, params: Params = ()) -> int: ...


class Database(Queries, Protocol):
    """A store's database, whichever backend: `SqliteDatabase` (the file, the default) or `PostgresDatabase`
    (`bot/db/postgres.py`, DATABASE_URL). Plain statements autocommit; `run` and `transaction` are one write
    transaction (writes are serialised in both backends); `snapshot` reads several statements from one state."""

    dialect: str

    async def open(self, *, up_to: int | None = None) -> None: ...
    async def close(self) -> None: ...
    async def schema_version(self) -> int: ...
    def transaction(self) -> AbstractAsyncContextManager[Queries]: ...
    def snapshot(self) -> AbstractAsyncContextManager[Queries]: ...
    async def run(self, body: Callable[[Queries], Coroutine[Any, Any, T]]) -> T: ...
    async def size_bytes(self) -> int: ...


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


async def _on_thread(conn: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> T:
    """Run `fn(*args)` on the connection's own thread: one round trip (aiosqlite's queue, untyped)."""
    return cast(T, await conn._execute(fn, *args))  # type: ignore[no-untyped-call]


def _fetchone(conn: sqlite3.Connection, sql: str, params: Params) -> Row | None:
    row: Row | None = conn.execute(sql, params).fetchone()
    return row


def _fetchall(conn: sqlite3.Connection, sql: str, params: Params) -> list[Row]:
    return list(conn.execute(sql, params).fetchall())


def _execute(conn: sqlite3.Connection, sql: str, params: Params) -> int:
    return conn.execute(sql, params).lastrowid or 0


def _changed(conn: sqlite3.Connection, sql: str, params: Params) -> int:
    return conn.execute(sql, params).rowcount


class Tx:
    """Statements inside one open transaction (yielded by `Database.transaction()`): one thread hop each."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """Fetch the first row of a query."""
        row: Row | None = await _on_thread(self._conn, _fetchone, self._conn._conn, sql, params)
        return row

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Fetch all rows of a query."""
        rows: list[Row] = await _on_thread(self._conn, _fetchall, self._conn._conn, sql, params)
        return rows

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return lastrowid."""
        rowid: int = await _on_thread(self._conn, _execute, self._conn._conn, sql, params)
        return rowid

    async def changed(self, sql: str, params: Params = ()) -> int:
        """Run one statement; return how many rows it changed."""
        count: int = await _on_thread(self._conn, _changed, self._conn._conn, sql, params)
        return count

    async def insert(self, sql: str, params: Params = ()) -> int:
        """Run one INSERT; return the new row's id."""
        return await self.execute(sql, params)


class ThreadTx:
    """Statements inside one open transaction, run directly on the writer's thread (see `Database.run`).

    The methods are coroutines only so that the same store code (written against `Queries`) runs here; none of
    them suspends, so `Database.run` drives the whole body to its end inside one call on the writer thread.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        return _fetchone(self._conn, sql, params)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return _fetchall(self._conn, sql, params)

    async def execute(self, sql: str, params: Params = ()) -> int:
        return _execute(self._conn, sql, params)

    async def changed(self, sql: str, params: Params = ()) -> int:
        return _changed(self._conn, sql, params)

    async def insert(self, sql: str, params: Params = ()) -> int:
        return _execute(self._conn, sql, params)


class BodySuspended(RuntimeError):
    """A `Database.run` body awaited something other than its own statements (it must not)."""


def _drive(body: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends to its end, synchronously; return its value."""
    try:
        body.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    body.close()
    raise BodySuspended("a Database.run body may await only its transaction's statements")


def _run_in_writer(conn: sqlite3.Connection, body: Callable[[Queries], Coroutine[Any, Any, T]]) -> T:
    """On the writer thread: BEGIN IMMEDIATE, the whole body, COMMIT (or ROLLBACK on any error)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = _drive(body(ThreadTx(conn)))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def _one_statement(
    conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection, str, Params], T], sql: str, params: Params
) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn, sql, params)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


class SqliteDatabase:
    """The application's SQLite database: one writer connection, one read-only connection (WAL)."""

    dialect = "sqlite"

    def __init__(self, path: Path, *, migrations: Sequence[tuple[int, str, str]] | None = None) -> None:
        self.path = path
        self._migrations = list(migrations) if migrations is not None else None
        self._conn: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()  # a snapshot's open read transaction, and `read`'s own

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
        # Reads that need no lock: a second connection that cannot write, so they never queue behind a transaction
        # (WAL lets it read the last committed state while the writer has one open).
        uri = "file:" + quote(str(self.path.resolve())) + "?mode=ro"
        self._reader = await aiosqlite.connect(uri, uri=True, isolation_level=None)
        self._reader.row_factory = aiosqlite.Row
        await self._reader.execute("PRAGMA query_only=ON")
        await self._reader.execute("PRAGMA foreign_keys=ON")  # as the writer (reads report the same settings)
        await self._reader.execute("PRAGMA busy_timeout=5000")

    async def close(self) -> None:
        """Close the connections (idempotent)."""
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def __aenter__(self) -> SqliteDatabase:
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

    @property
    def reader(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise RuntimeError("database is not open")
        return self._reader

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """Run the body as one write transaction; commit on success, roll back on any error.

        Each statement is a thread hop; a body that awaits only its statements is better passed to `run`.
        """
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

    async def run(self, body: Callable[[Queries], Coroutine[Any, Any, T]]) -> T:
        """Run `body(tx)` as one write transaction in a single round trip to the writer thread.

        `body` is an async function taking a `Queries` (so store code is shared with `transaction()`), but it may
        await only the statements of the `tx` it is given: it is driven to its end on the writer thread, between
        `BEGIN IMMEDIATE` and `COMMIT` (rolled back on any error; `BodySuspended` if it awaits anything else).
        """
        async with self._lock:
            result: T = await _on_thread(self.conn, _run_in_writer, self.conn._conn, body)
            return result

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Tx]:
        """Reads from one snapshot: a read transaction on the read-only connection (one thread hop a statement;
        the hot paths pass one function to `read` instead)."""
        async with self._read_lock:
            reader = self.reader
            await reader.execute("BEGIN")
            try:
                yield Tx(reader)
            finally:
                await reader.execute("COMMIT")

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """Run one query on the read-only connection (the last committed state) and return its first row."""
        row: Row | None = await _on_thread(self.reader, _fetchone, self.reader._conn, sql, params)
        return row

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Run one query on the read-only connection (the last committed state) and return all rows."""
        rows: list[Row] = await _on_thread(self.reader, _fetchall, self.reader._conn, sql, params)
        return rows

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(conn, *args)` on the read-only connection's thread, in one round trip: for a read of several
        statements (begin a transaction in `fn` to read them from one snapshot). `fn` must only read."""
        async with self._read_lock:
            result: T = await _on_thread(self.reader, fn, self.reader._conn, *args)
            return result

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement in its own transaction (one thread round trip); return lastrowid."""
        async with self._lock:
            rowid: int = await _on_thread(self.conn, _one_statement, self.conn._conn, _execute, sql, params)
            return rowid

    async def changed(self, sql: str, params: Params = ()) -> int:
        """Run one statement in its own transaction (one thread round trip); return how many rows it changed."""
        async with self._lock:
            count: int = await _on_thread(self.conn, _one_statement, self.conn._conn, _changed, sql, params)
            return count

    async def insert(self, sql: str, params: Params = ()) -> int:
        """Run one INSERT in its own transaction; return the new row's id."""
        return await self.execute(sql, params)

    async def size_bytes(self) -> int:
        """Return the size of the database file plus its WAL."""
        total = 0
        for suffix in ("", "-wal"):
            p = Path(str(self.path) + suffix)
            if p.exists():
                total += p.stat().st_size
        return total
