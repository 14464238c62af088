"""Storage: the database (SQLite by default, PostgreSQL with DATABASE_URL), its migrations, and the query
interface every store uses."""

from pathlib import Path

from bot.db.database import (
    BodySuspended,
    Database,
    IntegrityError,
    Params,
    Queries,
    Row,
    SqliteDatabase,
    ThreadTx,
    Tx,
)

# The largest row id both databases store (SQLite's INTEGER, PostgreSQL's bigint): an id past it (say, read from a
# forged button) names no row, and is not sent to the database at all.
ROW_ID_MAX = 2**63 - 1

__all__ = [
    "ROW_ID_MAX",
    "BodySuspended",
    "Database",
    "IntegrityError",
    "Params",
    "Queries",
    "Row",
    "SqliteDatabase",
    "ThreadTx",
    "Tx",
    "open_database",
]


def open_database(url: str | None, path: Path) -> Database:
    """The database to open: PostgreSQL at `url` when one is given, else the SQLite file at `path`."""
    if url:
        from bot.db.postgres import PostgresDatabase

        return PostgresDatabase(url)
    return SqliteDatabase(path)
