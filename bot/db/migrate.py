"""`anchorshot migrate-to-postgres URL` (issue #18): move the SQLite file in DATA_DIR into an empty PostgreSQL
database, and check the copy.

The SQLite file must exist and be intact (the integrity check of `bot/db/backup.py`); opening it with
`SqliteDatabase` first brings it to the newest schema, and opening the PostgreSQL database creates its schema (a
database with no tables is fine), so both stand at one migration number, or nothing is copied. Every table the SQLite
file holds (found in `sqlite_master`; `schema_migrations` is each side's own) is copied in ONE PostgreSQL transaction,
under the write lock every bot process takes, with binary COPY (`copy_records_to_table`), in an order that meets the
foreign keys: a table waits for the tables it points at; where two tables point at each other
(`anchor_versions.character_id` and `characters.version_id`: not deferrable), the first table whose waiting columns
may be NULL is copied with them NULL and they are set once their targets are in. Every identity column's sequence
then continues after the copied ids. The checks (row counts of every table, the ledger's totals per kind, the holds'
totals per state) run inside that transaction against the same SQLite snapshot the copy read: anything different
rolls the whole copy back, so the target is either a checked copy or still empty.

The media folder is not copied: it is shared storage every bot process mounts as DATA_DIR/media.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from bot.db.backup import integrity_problem
from bot.db.database import SqliteDatabase
from bot.db.postgres import WRITE_LOCK, DatabaseUnavailable, PostgresDatabase, postgres_place
from bot.errors import ConfigError
from bot.money import format_usd

SKIPPED = ("schema_migrations",)  # each backend's own bookkeeping
Out = Callable[[str], None]


class MigrationRefused(ConfigError):
    """Nothing was copied, for the one-line reason given (no file, a damaged file, a target that is not empty, two
    schema versions, no connection)."""


class CopyDiffers(Exception):
    """A check found the copy different from the SQLite file: the transaction is rolled back."""


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    target: str
    nullable: bool


@dataclass
class Table:
    """One table to copy: its columns (as SQLite lists them), their PostgreSQL types, the foreign keys it has."""

    name: str
    columns: list[str]
    types: dict[str, str]
    key: list[str]
    foreign: list[ForeignKey] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)  # copied NULL, set once their targets are copied


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ------------------------------------------------------------------------------------------------ the SQLite side


async def prepare_sqlite(path: Path) -> int:
    """Refuse a missing or damaged file; bring it to the newest schema; return its schema version."""
    if not path.exists():
        raise MigrationRefused(f"there is no SQLite database at {path} (check DATA_DIR)")
    problem = await asyncio.to_thread(integrity_problem, path, full=True)
    if problem is not None:
        raise MigrationRefused(
            f"the SQLite database {path} is damaged ({problem}): restore a backup with `anchorshot restore` first"
        )
    database = SqliteDatabase(path)
    await database.open()  # migrates an older file to the newest schema
    try:
        return await database.schema_version()
    finally:
        await database.close()


def sqlite_snapshot(path: Path) -> sqlite3.Connection:
    """A read-only connection holding one read transaction: every read below sees one state of the file."""
    conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, isolation_level=None, timeout=10)
    conn.execute("BEGIN")
    conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # the snapshot starts at the first read
    return conn


def sqlite_tables(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """Each table's columns, in their order, found in sqlite_master (not SQLite's own, not schema_migrations)."""
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
            " ORDER BY name"
        )
    ]
    return {
        n: [c[1] for c in conn.execute(f"PRAGMA table_info({_ident(n)})")] for n in names if n not in SKIPPED
    }


# ------------------------------------------------------------------------------------------------ the plan


async def postgres_tables(conn: asyncpg.Connection) -> dict[str, Table]:
    """The tables of the target's schema with their column types, primary keys and foreign keys."""
    tables: dict[str, Table] = {}
    for row in await conn.fetch(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
    ):
        if row["table_name"] not in SKIPPED:
            table = tables.setdefault(row["table_name"], Table(row["table_name"], [], {}, []))
            table.types[row["column_name"]] = row["data_type"]
    for row in await conn.fetch(
        "SELECT src.relname AS tbl, dst.relname AS target, c.contype::text AS kind,"
        " array_agg(a.attname::text ORDER BY k.n) AS cols, bool_and(NOT a.attnotnull) AS nullable"
        " FROM pg_constraint c JOIN pg_class src ON src.oid = c.conrelid"
        " LEFT JOIN pg_class dst ON dst.oid = c.confrelid"
        " CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, n)"
        " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum"
        " WHERE c.contype IN ('f', 'p') AND src.relnamespace = current_schema()::regnamespace"
        " GROUP BY c.oid, src.relname, dst.relname, c.contype"
    ):
        owner = tables.get(row["tbl"])
        if owner is None:
            continue
        if row["kind"] == "p":
            owner.key = list(row["cols"])
        else:
            owner.foreign.append(ForeignKey(tuple(row["cols"]), row["target"], bool(row["nullable"])))
    return tables


def plan(source: dict[str, list[str]], target: dict[str, Table]) -> list[Table]:
    """The tables to copy, in an order that meets every foreign key (see the module's note on cycles); refuse
    when the two schemas differ in a table or a column."""
    if set(source) != set(target):
        extra = sorted(set(source) ^ set(target))
        raise MigrationRefused(f"the two schemas differ in tables {', '.join(extra)}")
    for name, columns in source.items():
        if set(columns) != set(target[name].types):
            extra = sorted(set(columns) ^ set(target[name].types))
            raise MigrationRefused(f"the two schemas differ in {name}'s columns {', '.join(extra)}")
        target[name].columns = list(columns)
    order: list[Table] = []
    done: set[str] = set()
    while len(done) < len(target):
        waiting = {n: _unmet(target[n], done) for n in sorted(target) if n not in done}
        ready = [n for n, unmet in waiting.items() if not unmet]
        if not ready:
            ready = [_break_cycle(target, waiting)]
        order += [target[n] for n in ready]
        done.update(ready)
    return order


def _unmet(table: Table, done: set[str]) -> list[ForeignKey]:
    """The foreign keys of `table` whose target is not copied yet (itself excepted: COPY checks at its end)."""
    return [
        fk
        for fk in table.foreign
        if fk.target != table.name and fk.target not in done and not set(fk.columns) <= set(table.deferred)
    ]


def _break_cycle(tables: dict[str, Table], waiting: dict[str, list[ForeignKey]]) -> str:
    """Every table left waits for another: copy the first whose waiting columns may be NULL with them NULL."""
    for name, unmet in waiting.items():
        if all(fk.nullable for fk in unmet) and tables[name].key:
            tables[name].deferred += [c for fk in unmet for c in fk.columns]
            return name
    raise MigrationRefused(
        f"the foreign keys of {', '.join(waiting)} wait for each other and none may be NULL"
    )


# ------------------------------------------------------------------------------------------------ the copy


def _as_int(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return value  # an int, or something PostgreSQL refuses with the column named (see copy_table)


def _as_float(value: Any) -> Any:
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _as_text(value: Any) -> Any:
    return str(value) if isinstance(value, int | float) else value


def _as_bytes(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8")
    return bytes(value) if isinstance(value, memoryview) else value


# SQLite keeps any value in any column; PostgreSQL's binary COPY wants the column's own type.
CONVERT: dict[str, Callable[[Any], Any]] = {
    "bigint": _as_int,
    "integer": _as_int,
    "smallint": _as_int,
    "double precision": _as_float,
    "real": _as_float,
    "text": _as_text,
    "bytea": _as_bytes,
}


def _records(cursor: Iterable[tuple[Any, ...]], table: Table) -> Iterator[tuple[Any, ...]]:
    """The rows as PostgreSQL takes them: each value converted to its column's type, deferred columns NULL."""
    converters = [
        None if c in table.deferred else CONVERT.get(table.types[c], lambda v: v) for c in table.columns
    ]
    for row in cursor:
        yield tuple(None if f is None or v is None else f(v) for f, v in zip(converters, row, strict=True))


async def copy_table(src: sqlite3.Connection, dst: asyncpg.Connection, table: Table) -> None:
    """COPY one table's rows from the snapshot into PostgreSQL, then set its deferred columns."""
    columns = ", ".join(_ident(c) for c in table.columns)
    cursor = src.execute(f"SELECT {columns} FROM {_ident(table.name)}")  # noqa: S608 (quoted identifiers)
    try:
        await dst.copy_records_to_table(table.name, records=_records(cursor, table), columns=table.columns)
    except (asyncpg.DataError, asyncpg.PostgresError, TypeError, ValueError) as exc:
        raise MigrationRefused(f"PostgreSQL refused a row of {table.name}: {exc}") from None


async def set_deferred(src: sqlite3.Connection, dst: asyncpg.Connection, table: Table) -> int:
    """Set the columns `table` was copied without, now that the rows they point at are in."""
    if not table.deferred:
        return 0
    keys, cols = table.key, table.deferred
    present = " OR ".join(f"{_ident(c)} IS NOT NULL" for c in cols)
    rows = src.execute(
        f"SELECT {', '.join(_ident(c) for c in keys + cols)} FROM {_ident(table.name)} WHERE {present}"  # noqa: S608
    ).fetchall()
    assign = ", ".join(f"{_ident(c)} = ${len(keys) + i + 1}" for i, c in enumerate(cols))
    match = " AND ".join(f"{_ident(c)} = ${i + 1}" for i, c in enumerate(keys))
    converters = [CONVERT.get(table.types[c], lambda v: v) for c in keys + cols]
    await dst.executemany(
        f"UPDATE {_ident(table.name)} SET {assign} WHERE {match}",  # noqa: S608
        [tuple(None if v is None else f(v) for f, v in zip(converters, r, strict=True)) for r in rows],
    )
    return len(rows)


async def reset_sequences(conn: asyncpg.Connection) -> int:
    """Let every identity (or serial) column continue after the largest copied id; return how many there are."""
    found = await conn.fetch(
        "SELECT table_name, column_name,"
        " pg_get_serial_sequence(format('%I.%I', table_schema, table_name), column_name) AS seq"
        " FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND pg_get_serial_sequence(format('%I.%I', table_schema, table_name), column_name) IS NOT NULL"
    )
    for row in found:
        column, table = _ident(row["column_name"]), _ident(row["table_name"])
        await conn.execute(
            f"SELECT setval($1, COALESCE(MAX({column}), 1), MAX({column}) IS NOT NULL) FROM {table}",  # noqa: S608
            row["seq"],
        )
    return len(found)


# ------------------------------------------------------------------------------------------------ the checks


@dataclass(frozen=True)
class Check:
    line: str
    equal: bool


LEDGER_TOTALS = "SELECT kind, COUNT(*), COALESCE(SUM(amount), 0) FROM ledger GROUP BY kind ORDER BY kind"
HOLD_TOTALS = "SELECT state, COUNT(*), COALESCE(SUM(amount), 0) FROM holds GROUP BY state ORDER BY state"


def _rows(count: int) -> str:
    return f"{count:,} row" + ("" if count == 1 else "s")


def _count_sql(table: str) -> str:
    return f"SELECT COUNT(*) FROM {_ident(table)}"  # noqa: S608 (a quoted identifier)


async def count_check(src: sqlite3.Connection, dst: asyncpg.Connection, tables: list[Table]) -> Check:
    """Every table holds as many rows in PostgreSQL as in the SQLite snapshot."""
    differ, total = [], 0
    for table in tables:
        before = int(src.execute(_count_sql(table.name)).fetchone()[0])
        after = int(await dst.fetchval(_count_sql(table.name)))
        total += before
        if before != after:
            differ.append(f"{table.name} {before:,} in SQLite, {after:,} in PostgreSQL")
    if differ:
        return Check("check row counts: DIFFERENT: " + "; ".join(differ), False)
    return Check(f"check row counts: equal in all {len(tables)} tables ({_rows(total)})", True)


async def totals_check(src: sqlite3.Connection, dst: asyncpg.Connection, what: str, sql: str) -> Check:
    """The money of one table summed per kind (or state) is equal on both sides, row counts too."""
    before = [(str(k), int(n), int(s)) for k, n, s in src.execute(sql).fetchall()]
    after = [(str(r[0]), int(r[1]), int(r[2])) for r in await dst.fetch(sql)]

    def show(rows: list[tuple[str, int, int]]) -> str:
        return ", ".join(f"{k} {format_usd(s)} ({_rows(n)})" for k, n, s in rows) or "none"

    if before != after:
        return Check(f"check {what}: DIFFERENT: SQLite {show(before)}; PostgreSQL {show(after)}", False)
    return Check(f"check {what}: equal: {show(before)}", True)


async def refuse_unless_empty(conn: asyncpg.Connection, tables: Iterable[str], place: str) -> None:
    """The target holds no row in any table (schema_migrations excepted)."""
    full = []
    for name in sorted(tables):
        if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {_ident(name)})"):  # noqa: S608
            full.append(f"{name} has {_rows(int(await conn.fetchval(_count_sql(name))))}")
    if full:
        shown = ", ".join(full[:3]) + (f" and {len(full) - 3} more tables" if len(full) > 3 else "")
        raise MigrationRefused(
            f"the PostgreSQL database at {place} is not empty ({shown}): migrate into an empty database only"
        )


# ------------------------------------------------------------------------------------------------ the command


async def copy_and_check(src: sqlite3.Connection, target: PostgresDatabase, place: str, out: Out) -> bool:
    """Copy every table in one transaction under the write lock, check it, commit only when every check is
    equal. Returns whether it committed."""
    try:
        async with target.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", WRITE_LOCK)
            found = await postgres_tables(conn)
            await refuse_unless_empty(conn, found, place)
            tables = plan(sqlite_tables(src), found)
            started = time.perf_counter()
            for table in tables:
                await copy_table(src, conn, table)
            for table in tables:
                await set_deferred(src, conn, table)
            sequences = await reset_sequences(conn)
            out(
                f"copied {len(tables)} tables in {time.perf_counter() - started:.2f} s; {sequences} id sequences"
                " continue after the copied ids"
            )
            checks = [
                await count_check(src, conn, tables),
                await totals_check(src, conn, "ledger totals", LEDGER_TOTALS),
                await totals_check(src, conn, "hold totals", HOLD_TOTALS),
            ]
            for check in checks:
                out(check.line)
            if not all(c.equal for c in checks):
                raise CopyDiffers
    except CopyDiffers:
        return False
    return True


async def migrate_to_postgres(sqlite_path: Path, url: str, media_dir: Path, out: Out = print) -> bool:
    """Move the SQLite file at `sqlite_path` into the empty PostgreSQL database at `url` and check the copy,
    saying each step in one line through `out`. True when the copy is committed and checked; False when a
    check differed (nothing is kept); `MigrationRefused` when nothing was copied for a reason given."""
    place = postgres_place(url)
    version = await prepare_sqlite(sqlite_path)
    target = PostgresDatabase(url, min_size=1, max_size=1)
    try:
        try:
            await target.open()  # creates the schema in a database with no tables
        except DatabaseUnavailable as exc:
            raise MigrationRefused(str(exc)) from None
        pg_version = await target.schema_version()
        if pg_version != version:
            raise MigrationRefused(
                f"the schemas differ: {sqlite_path} is at migration {version}, PostgreSQL at {place} at"
                f" {pg_version}: run the same version of Anchorshot on both"
            )
        out(f"copying {sqlite_path} (schema {version}) into PostgreSQL at {place}")
        src = sqlite_snapshot(sqlite_path)
        try:
            copied = await copy_and_check(src, target, place, out)
        finally:
            src.close()
    finally:
        await target.close()
    if not copied:
        out(f"the copy differs from {sqlite_path}: it was rolled back, PostgreSQL at {place} is empty again")
        return False
    out(
        f"media: {media_dir} is not copied: it must be the shared folder every bot process mounts as its"
        " DATA_DIR/media"
    )
    out(f"done: start every bot process with DATABASE_URL set to PostgreSQL at {place}")
    return True
