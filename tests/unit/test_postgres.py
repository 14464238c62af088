"""The PostgreSQL backend's own mechanics (issue #18): the placeholder translation (no server needed), and on a
real PostgreSQL the parts SQLite does differently: new ids, whole numbers from SUM, constraint errors caught as
the stores catch them, a cancelled transaction left clean."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.db import IntegrityError
from bot.db.postgres import PostgresDatabase, to_postgres


def test_placeholders_are_numbered_outside_quotes_comments_and_casts():
    assert to_postgres("SELECT * FROM t WHERE a=? AND b=?") == ("SELECT * FROM t WHERE a=$1 AND b=$2", ())
    assert to_postgres("SELECT '?', \"x?\" -- ?\n FROM t WHERE c = ?") == (
        "SELECT '?', \"x?\" -- ?\n FROM t WHERE c = $1",
        (),
    )
    assert to_postgres("SELECT a::text FROM t WHERE g=:g AND u=:u OR g=:g") == (
        "SELECT a::text FROM t WHERE g=$1 AND u=$2 OR g=$1",
        ("g", "u"),
    )
    assert to_postgres("SELECT 'it''s ?' WHERE x=?") == ("SELECT 'it''s ?' WHERE x=$1", ())
    with pytest.raises(ValueError):
        to_postgres("SELECT ? WHERE a=:a")


@pytest.fixture
async def pg(pg_url):
    db = PostgresDatabase(pg_url)
    await db.open()
    yield db
    await db.close()


@pytest.mark.postgres
async def test_ids_sums_and_constraint_errors_read_as_on_sqlite(pg):
    first = await pg.insert(
        "INSERT INTO scenes(guild_id, channel_id, name, started_by, started_at) VALUES (?,?,?,?,?)",
        (1, 2, "a", 3, 1.5),
    )
    second = await pg.insert(
        "INSERT INTO scenes(guild_id, channel_id, name, started_by, started_at, ended_at) VALUES (?,?,?,?,?,?)",
        (1, 2, "b", 3, 2.5, 3.0),
    )
    assert second == first + 1
    with pytest.raises(IntegrityError):  # one open scene per channel: the stores catch this
        await pg.insert(
            "INSERT INTO scenes(guild_id, channel_id, name, started_by, started_at) VALUES (?,?,?,?,?)",
            (1, 2, "c", 3, 4.0),
        )
    row = await pg.fetchone(
        "SELECT SUM(guild_id) AS s, AVG(started_at) AS a FROM scenes WHERE channel_id=:c", {"c": 2}
    )
    assert row is not None and (row["s"], row["a"]) == (2, 2.0) and type(row["s"]) is int
    assert await pg.changed("UPDATE scenes SET name=? WHERE channel_id=?", ("z", 2)) == 2


@pytest.mark.postgres
async def test_transactions_cancelled_mid_statement_or_waiting_for_the_lock_write_nothing_and_leave_the_pool_clean(
    pg, caplog
):
    async def body(tx) -> None:
        await tx.execute("INSERT INTO kv(key, value) VALUES (?, ?)", ("k", "v"))
        await tx.fetchone("SELECT pg_sleep(5)")

    holder = asyncio.create_task(pg.run(body))  # holds the write lock, sleeping in a statement
    await asyncio.sleep(0.3)
    waiter = asyncio.create_task(pg.execute("INSERT INTO kv(key, value) VALUES (?, ?)", ("w", "v")))
    await asyncio.sleep(0.3)  # waiting for the lock
    with caplog.at_level(logging.ERROR):
        for task in (waiter, holder):
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        await asyncio.sleep(0.1)
    assert await pg.fetchall("SELECT key FROM kv") == []
    await pg.execute("INSERT INTO kv(key, value) VALUES (?, ?)", ("k", "w"))  # the pool goes on
    assert (await pg.fetchone("SELECT value FROM kv WHERE key=?", ("k",)))["value"] == "w"
    assert not [r for r in caplog.records if "active transaction" in r.getMessage()]


@pytest.mark.postgres
async def test_a_write_finds_a_new_connection_when_the_server_closed_the_writers(pg):
    """Terminated just before a write, the writer's connection is found closed either by the driver (it read the
    server's notice) or by BEGIN (it had not yet: without a second attempt that write failed, every time in three
    runs); either way the write lands, once."""
    keys = []
    for key in "abc":
        writer = await pg.fetchone(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND query LIKE 'COMMIT%'"
        )
        if writer is not None:
            await pg.fetchone(
                "SELECT pg_terminate_backend(?)", (writer["pid"],)
            )  # a restart, an idle timeout
        await pg.execute("INSERT INTO kv(key, value) VALUES (?, ?)", (key, "v"))
        keys.append(key)
        assert [r["key"] for r in await pg.fetchall("SELECT key FROM kv ORDER BY key")] == keys
