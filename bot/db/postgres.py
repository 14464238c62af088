"""The PostgreSQL backend (issue #18): the same `Queries`/`Database` interface over an asyncpg pool.

Why asyncpg: it speaks PostgreSQL's binary protocol natively (the fastest Python driver, no libpq), has its own pool
and LISTEN/NOTIFY on a connection; psycopg 3 would have served too, but needs libpq or its binary wheel and is
slower on the ledger loop the issue measures.

The stores' SQL is written once, for both dialects: `?` placeholders are rewritten to `$1, $2, ...` here (outside
string literals; cached per statement), and the schema supplies what SQLite has built in (`json_extract` for the
numeric paths the stores read). PostgreSQL's `numeric` (what `SUM` of a BIGINT gives) comes back as `int` when it is
whole, so money stays an integer.

Every write transaction first takes one transaction-scoped advisory lock (`pg_advisory_xact_lock`), so writes are
serialised across every process exactly as SQLite's `BEGIN IMMEDIATE` serialises them in one: a store's check and
the write it allows (a hold within the budget, a move out of a state) stay atomic without each store knowing about
isolation levels. Reads take no lock and see the last committed state.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from importlib import resources
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg

from bot.db.database import Params, Row, migration_files
from bot.errors import ConfigError

log = logging.getLogger(__name__)
T = TypeVar("T")

WRITE_LOCK = 0x616E6368  # the advisory lock every write transaction holds ("anch")
BASELINE = (
    11  # the SQLite migration the PostgreSQL baseline schema equals (migrations/postgres/0011_baseline.sql)
)
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|::|\?|:[A-Za-z_][A-Za-z0-9_]*")
_PG_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def to_postgres(sql: str) -> tuple[str, tuple[str, ...]]:
    """The statement with SQLite's placeholders as PostgreSQL's `$n` (quoted text, comments and `::` casts left
    alone): `?` numbered in order, each `:name` one number wherever it recurs. Returns the text and the names in
    number order (empty for `?` placeholders)."""
    count = 0
    names: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        nonlocal count
        part = match.group(0)
        if part == "?":
            count += 1
            return f"${count}"
        if part.startswith(":") and part != "::":
            if part[1:] not in names:
                count += 1
                names[part[1:]] = count
            return f"${names[part[1:]]}"
        return part

    text = _TOKENS.sub(number, sql)
    if names and len(names) != count:
        raise ValueError("a statement mixes ? and :name parameters")
    return text, tuple(names)


class DatabaseUnavailable(ConfigError):
    """The database could not be opened (no server there, refused credentials, no such database): one line that
    names where, never the URL's user or password."""


def postgres_place(url: str) -> str:
    """Where `url` points, as host:port/database: never its user or password (DATABASE_URL may hold one)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    try:
        host = parts.hostname or query.get("host", [""])[0] or "localhost"
        port = parts.port or query.get("port", [""])[0] or 5432
    except ValueError:  # a malformed port
        host, port = parts.netloc.rpartition("@")[2] or "localhost", "?"
    database = unquote(parts.path.lstrip("/")) or query.get("dbname", [""])[0] or "(default database)"
    return f"{host}:{port}/{database}"


def scrub(text: str, url: str) -> str:
    """`text` without the URL or its password, should a driver's message quote either."""
    parts = urlsplit(url)
    secrets = [url, parts.netloc.rpartition("@")[0]]
    if parts.password:
        secrets += [parts.password, unquote(parts.password)]
    secrets += parse_qs(parts.query).get("password", [])
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return " ".join(text.split())


_translated: dict[str, tuple[str, tuple[str, ...]]] = {}


def _statement(sql: str, params: Params) -> tuple[str, Sequence[Any]]:
    """The PostgreSQL text of `sql` (cached) and its arguments in `$n` order."""
    found = _translated.get(sql)
    if found is None:
        found = _translated[sql] = to_postgres(sql)
    text, names = found
    if isinstance(params, dict):
        return text, [params[n] for n in names]
    return text, params


def _flat(sql: str, params: Params) -> list[Any]:
    """[text, arg1, arg2, ...]: what asyncpg's calls take, spread."""
    text, args = _statement(sql, params)
    return [text, *args]


def _numeric(text: str) -> int | float:
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() else float(value)


async def _reset(conn: asyncpg.Connection) -> None:
    """What a connection needs before it goes back to the pool: nothing but ending a transaction left open. The
    stores change no session state (no SET, LISTEN or cursors; the write lock ends with its transaction), so
    asyncpg's default reset (four statements, one more round trip on every read) is not needed."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def _setup(conn: asyncpg.Connection) -> None:
    """Each pooled connection: numeric decoded as int (whole) or float, as SQLite's integers and reals."""
    await conn.set_type_codec("numeric", encoder=str, decoder=_numeric, schema="pg_catalog", format="text")


class PgQueries:
    """Statements on one connection (a transaction's, or a snapshot's)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        row: Row | None = await self._conn.fetchrow(*_flat(sql, params))
        return row

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        rows: list[Row] = await self._conn.fetch(*_flat(sql, params))
        return rows

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement. There is no `lastrowid` in PostgreSQL: an INSERT that needs its id says
        `RETURNING id` and is fetched (the same text runs on SQLite)."""
        await self._conn.execute(*_flat(sql, params))
        return 0

    async def changed(self, sql: str, params: Params = ()) -> int:
        status = await self._conn.execute(*_flat(sql, params))
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def insert(self, sql: str, params: Params = ()) -> int:
        new_id = await self._conn.fetchval(*_flat(sql + " RETURNING id", params))
        return int(new_id)


class PostgresDatabase:
    """The application's PostgreSQL database: a pool, migrations, the `Queries` interface."""

    dialect = "postgresql"

    def __init__(self, url: str, *, min_size: int = 2, max_size: int = 10) -> None:
        self.url = url
        self._min_size = min_size
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None
        # One write transaction of this process at a time, as SQLite's writer thread, on a connection of its own
        # (taken from no pool: nothing to acquire, reset or release per transaction, its prepared statements
        # stay warm): the other writers wait here rather than at the database's write lock holding a pooled
        # connection each, and reads always find a pooled one free.
        self._writing = asyncio.Lock()
        self._writer: asyncpg.Connection | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database is not open")
        return self._pool

    async def open(self, *, up_to: int | None = None) -> None:
        """Connect the pool and migrate to the newest schema (`up_to` is for SQLite's old-file tests only)."""
        if up_to is not None:
            raise ValueError("a PostgreSQL database starts at the baseline schema; up_to is SQLite's")
        try:
            self._pool = await asyncpg.create_pool(
                self.url, min_size=self._min_size, max_size=self._max_size, init=_setup, reset=_reset
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
            problem = scrub(f"{type(exc).__name__}: {exc}", self.url)
            raise DatabaseUnavailable(
                f"cannot open the PostgreSQL database at {postgres_place(self.url)} ({problem}); check DATABASE_URL"
                " and that the server is running"
            ) from None
        await self._migrate()

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.close()
            self._writer = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def __aenter__(self) -> PostgresDatabase:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _migrate(self) -> None:
        """Create the baseline on an empty database, then apply every newer migration, each in one transaction
        under the write lock (two processes starting at once migrate once)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", WRITE_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            current = int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))
            shared = migration_files()
            if current == 0:
                log.info("creating the PostgreSQL schema (baseline of migration %04d)", BASELINE)
                await conn.execute(_postgres_file(f"{BASELINE:04d}_baseline.sql"))
                await conn.executemany(
                    "INSERT INTO schema_migrations(version, name) VALUES ($1, $2)",
                    [(n, name) for n, name, _ in shared if n <= BASELINE],
                )
                current = BASELINE
            for number, name, sql in shared:
                if number <= current:
                    continue
                log.info("applying migration %s", name)
                await conn.execute(_postgres_variant(name) or sql)
                await conn.execute(
                    "INSERT INTO schema_migrations(version, name) VALUES ($1, $2)", number, name
                )

    async def schema_version(self) -> int:
        row = await self.fetchone("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
        return int(row["v"]) if row else 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgQueries]:
        """One write transaction (under the write lock): commit on success, roll back on any error."""
        async with self._writing:
            conn = await self._begin()
            try:
                yield PgQueries(conn)
            except BaseException:
                await _roll_back(conn)
                raise
            try:
                await conn.execute("COMMIT")
            except BaseException:
                conn.terminate()  # cancelled in the middle of COMMIT: whether it landed, the server decides
                raise

    async def _begin(self) -> asyncpg.Connection:
        """BEGIN and the write lock, in one round trip on the writer's connection. A connection the server closed
        since the last transaction (a restart, a terminated backend, an idle timeout) shows here, before anything
        of this transaction was sent: it is replaced once. Waiting for the lock is where a cancel usually lands:
        the transaction is rolled back then too."""
        for replace in (True, False):
            conn = await self._write_connection()
            try:
                await conn.execute(f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})")
                return conn
            except Exception as exc:
                if replace and conn.is_closed():
                    log.warning(
                        "the database closed the write connection (%s); connecting again", type(exc).__name__
                    )
                    continue
                await _roll_back(conn)
                raise
            except BaseException:
                await _roll_back(conn)
                raise
        raise AssertionError("unreachable: the second attempt returns or raises")

    async def _write_connection(self) -> asyncpg.Connection:
        """The writer's connection, connected again when the last one was closed (a transaction that could not
        be rolled back closes it; so does a server restart, which the next transaction finds)."""
        if self._writer is None or self._writer.is_closed():
            if self._pool is None:
                raise RuntimeError("database is not open")
            conn = await asyncpg.connect(self.url)
            await _setup(conn)
            self._writer = conn
        return self._writer

    async def run(self, body: Callable[[PgQueries], Coroutine[Any, Any, T]]) -> T:
        """`body(tx)` as one write transaction (SQLite runs it on its writer thread; here it is awaited)."""
        async with self.transaction() as tx:
            return await body(tx)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[PgQueries]:
        """Reads from one snapshot (REPEATABLE READ, read only), taking no lock."""
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            yield PgQueries(conn)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        row: Row | None = await self.pool.fetchrow(*_flat(sql, params))
        return row

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        rows: list[Row] = await self.pool.fetch(*_flat(sql, params))
        return rows

    async def execute(self, sql: str, params: Params = ()) -> int:
        """One statement in its own write transaction."""
        async with self.transaction() as tx:
            return await tx.execute(sql, params)

    async def changed(self, sql: str, params: Params = ()) -> int:
        async with self.transaction() as tx:
            return await tx.changed(sql, params)

    async def insert(self, sql: str, params: Params = ()) -> int:
        async with self.transaction() as tx:
            return await tx.insert(sql, params)

    async def size_bytes(self) -> int:
        row = await self.fetchone("SELECT pg_database_size(current_database()) AS n")
        return int(row["n"]) if row else 0


async def _roll_back(conn: asyncpg.Connection) -> None:
    """Roll back; a connection that cannot (a task cancelled in the middle of a statement) is closed instead, so
    the pool replaces it and nothing is left half done. The caller re-raises what made it roll back."""
    try:
        await conn.execute("ROLLBACK")
    except BaseException:  # noqa: BLE001 - the original error is the one that matters, and it is re-raised
        conn.terminate()


def _postgres_file(name: str) -> str:
    return (resources.files("bot.db") / "migrations" / "postgres" / name).read_text(encoding="utf-8")


def _postgres_variant(name: str) -> str | None:
    """migrations/postgres/NAME when the dialects differ for that migration, else None (the shared file runs)."""
    entry = resources.files("bot.db") / "migrations" / "postgres" / name
    return entry.read_text(encoding="utf-8") if _PG_FILE.match(name) and entry.is_file() else None
