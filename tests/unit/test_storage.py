"""The SQLite file: WAL, foreign keys, numbered migrations from fresh and from an old schema."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from bot.db.database import BodySuspended, Queries, SqliteDatabase, migration_files
from bot.db.kv import KeyValueStore
from tests.both_backends import both_backends  # noqa: F401  (the tests that take `database`: both backends)


async def test_fresh_file_ends_at_newest_schema_with_wal_and_foreign_keys(tmp_path):
    db = SqliteDatabase(tmp_path / "a.sqlite3")
    await db.open()
    try:
        assert await db.schema_version() == len(migration_files())
        assert (await db.fetchone("PRAGMA journal_mode"))[0] == "wal"
        assert (await db.fetchone("PRAGMA foreign_keys"))[0] == 1
    finally:
        await db.close()


async def test_old_schema_migrates_and_keeps_its_data(tmp_path):
    path = tmp_path / "old.sqlite3"
    old = SqliteDatabase(path)
    await old.open(up_to=1)
    await KeyValueStore(old).set("command_sync_hash", "abc")
    assert await old.schema_version() == 1
    await old.close()
    tables = {
        r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type='table'")
    }
    assert "shots" not in tables

    new = SqliteDatabase(path)
    await new.open()
    try:
        assert await new.schema_version() == len(migration_files())
        assert await KeyValueStore(new).get("command_sync_hash") == "abc"
        await new.execute("INSERT INTO guild_budgets(guild_id, cap_micros) VALUES (1, 5)")
    finally:
        await new.close()
    # Opening again applies nothing and loses nothing.
    again = SqliteDatabase(path)
    await again.open()
    try:
        row = await again.fetchone("SELECT cap_micros FROM guild_budgets WHERE guild_id=1")
        assert row[0] == 5
        applied = await again.fetchall("SELECT version FROM schema_migrations ORDER BY version")
        assert [r[0] for r in applied] == list(range(1, len(migration_files()) + 1))
    finally:
        await again.close()


async def test_failed_transaction_rolls_back(database):
    db = database
    try:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO kv(key, value) VALUES ('x', '1')")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert await KeyValueStore(db).get("x") is None


async def test_reads_are_served_while_a_write_transaction_is_open(database, backend):
    """`/status` and friends never wait behind an open transaction: SQLite reads from its read-only connection,
    PostgreSQL from another pooled connection (MVCC)."""
    db = database
    await KeyValueStore(db).set("x", "old")
    inside = asyncio.Event()
    finish = asyncio.Event()

    async def writer() -> None:
        async with db.transaction() as tx:
            await tx.execute("UPDATE kv SET value='new' WHERE key='x'")
            inside.set()
            await finish.wait()

    task = asyncio.create_task(writer())
    await inside.wait()
    # The write lock is held and the change is not committed: the read answers at once, with the committed value.
    assert await asyncio.wait_for(KeyValueStore(db).get("x"), timeout=5) == "old"
    if backend == "sqlite":
        assert db._lock.locked()
    finish.set()
    await task
    assert await KeyValueStore(db).get("x") == "new"
    if backend == "sqlite":
        with pytest.raises(sqlite3.OperationalError):  # the reader cannot write, whatever it is asked
            await db.fetchone("INSERT INTO kv(key, value) VALUES ('y', '1') RETURNING key")


async def test_run_is_one_transaction_that_rolls_back_and_refuses_other_awaits(tmp_path):
    db = SqliteDatabase(tmp_path / "w.sqlite3")
    await db.open()
    try:

        async def both(tx: Queries) -> int:
            await tx.execute("INSERT INTO kv(key, value) VALUES ('a', '1')")
            row = await tx.fetchone("SELECT COUNT(*) AS n FROM kv WHERE key IN ('a', 'b')")
            await tx.execute("INSERT INTO kv(key, value) VALUES ('b', '2')")
            return int(row["n"]) if row else -1

        assert await db.run(both) == 1
        assert await KeyValueStore(db).get("b") == "2"

        async def fails(tx: Queries) -> None:
            await tx.execute("INSERT INTO kv(key, value) VALUES ('c', '3')")
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            await db.run(fails)
        assert await KeyValueStore(db).get("c") is None

        async def suspends(tx: Queries) -> None:
            await tx.execute("INSERT INTO kv(key, value) VALUES ('d', '4')")
            await asyncio.sleep(
                0
            )  # not a statement: the body would give the writer thread back mid-transaction

        with pytest.raises(BodySuspended):
            await db.run(suspends)
        assert await KeyValueStore(db).get("d") is None
        await KeyValueStore(db).set("e", "5")  # the writer is usable afterwards
        assert await KeyValueStore(db).get("e") == "5"
    finally:
        await db.close()


_PARENT_CHILD = [
    (1, "0001_parent.sql", "CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"),
    (
        2,
        "0002_child.sql",
        "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent(id));",
    ),
]
_REBUILD_PARENT = (
    3,
    "0003_rebuild_parent.sql",
    """
    CREATE TABLE parent_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL, note TEXT);
    INSERT INTO parent_new(id, name) SELECT id, name FROM parent;
    DROP TABLE parent;
    ALTER TABLE parent_new RENAME TO parent;
    """,
)


async def test_a_migration_can_rebuild_a_table_that_others_reference(tmp_path):
    path = tmp_path / "rebuild.sqlite3"
    old = SqliteDatabase(path, migrations=_PARENT_CHILD)
    await old.open()
    await old.execute("INSERT INTO parent(id, name) VALUES (1, 'a')")
    await old.execute("INSERT INTO child(id, parent_id) VALUES (10, 1)")
    await old.close()

    new = SqliteDatabase(path, migrations=[*_PARENT_CHILD, _REBUILD_PARENT])
    await new.open()
    try:
        assert await new.schema_version() == 3
        row = await new.fetchone("SELECT name, note FROM parent WHERE id=1")
        assert tuple(row) == ("a", None)
        assert (await new.fetchone("PRAGMA foreign_keys"))[0] == 1, (
            "foreign keys are on again after migrating"
        )
        assert await new.fetchall("PRAGMA foreign_key_check") == []
    finally:
        await new.close()


async def test_a_migration_that_breaks_a_foreign_key_is_rolled_back(tmp_path):
    path = tmp_path / "broken.sqlite3"
    old = SqliteDatabase(path, migrations=_PARENT_CHILD)
    await old.open()
    await old.execute("INSERT INTO parent(id, name) VALUES (1, 'a')")
    await old.execute("INSERT INTO child(id, parent_id) VALUES (10, 1)")
    await old.close()

    drops_the_parent_row = (3, "0003_lose_rows.sql", "DELETE FROM parent;")
    new = SqliteDatabase(path, migrations=[*_PARENT_CHILD, drops_the_parent_row])
    try:
        await new.open()
        raise AssertionError("the migration should have been refused")
    except RuntimeError as exc:
        assert "broken foreign keys" in str(exc)
    finally:
        await new.close()
    check = sqlite3.connect(path)
    assert check.execute("SELECT COUNT(*) FROM parent").fetchone()[0] == 1, "the delete was rolled back"
    assert check.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] == 2
    check.close()


async def test_a_jobs_row_decodes_to_the_job_its_columns_make(database):
    """#15: bot/jobs/store.py builds Jobs without the dataclass's __init__; the result is the same Job."""
    import json
    from dataclasses import fields

    from bot.jobs.models import Job
    from bot.jobs.states import JobState
    from bot.jobs.store import JobStore, _job

    db = database
    await db.execute(
        "INSERT INTO jobs(kind, parent_id, seq, ledger_key, guild_id, channel_id, user_id, args, outputs, state,"
        " attempts, next_attempt_at, request_id, backend, price_micros, progress_message_id, created_at,"
        " updated_at) VALUES ('echo', NULL, 1, 'echo:1', 5, 6, 7, ?, '', 'running', 2, 1.5, 'req', 'test', 9,"
        " 11, 100.0, 101.0)",
        (json.dumps({"text": "hi", "n": [1, 2]}),),
    )
    row = await db.fetchone("SELECT * FROM jobs WHERE id=1")
    values = {f.name: row[f.name] for f in fields(Job)}
    values.update(args={"text": "hi", "n": [1, 2]}, outputs={}, state=JobState.RUNNING)
    expected = Job(**values)
    job = _job(row)
    assert job == expected and repr(job) == repr(expected) and type(job.state) is JobState
    assert vars(job) == vars(expected)
    with pytest.raises(AttributeError):
        job.state = JobState.FAILED  # type: ignore[misc]  # still frozen
    # A row with its columns in another order (or more of them) decodes the same.
    other = await db.fetchone("SELECT state, 'x' AS extra, * FROM jobs WHERE id=1")
    assert _job(other) == expected
    assert await JobStore.get(db, 1) == expected
    [due] = await JobStore.due(db, (JobState.RUNNING,), due_by=2.0)
    assert (due.id, due.kind, due.state) == (1, "echo", JobState.RUNNING) and due.job() == expected
    assert await JobStore.due(db, (JobState.RUNNING,), due_by=1.0) == []  # not due yet
    [busy] = await JobStore.due(db, (JobState.RUNNING,), due_by=2.0, busy=[1])  # its row is not read
    assert (busy.id, busy.kind, busy.state, busy.row) == (1, "echo", JobState.RUNNING, None)
    assert await JobStore.state_of(db, 1) == (JobState.RUNNING, "echo:1")
    # The scheduler's one read: the in-flight counts and the waiting jobs, as the two separate reads give them.
    assert await JobStore.queue_view(db, ["echo"]) == (1, {7: 1}, [])
    assert await JobStore.queue_view(db, ["other"]) == (0, {}, [])
    await db.execute("UPDATE jobs SET state='waiting' WHERE id=1")
    waiting = await JobStore.in_states(db, (JobState.WAITING,))
    assert await JobStore.queue_view(db, ["echo"]) == (0, {}, waiting) and len(waiting) == 1
    await db.execute("UPDATE jobs SET state='running' WHERE id=1")
    # A column named twice: the first one counts (as sqlite3.Row's lookup by name); an unknown state is refused.
    with pytest.raises(ValueError):
        _job(await db.fetchone("SELECT 'no such state' AS state, * FROM jobs WHERE id=1"))


async def test_read_runs_several_statements_on_the_reader_in_one_round_trip(tmp_path):
    db = SqliteDatabase(tmp_path / "r.sqlite3")
    await db.open()
    try:
        await db.execute("CREATE TABLE t(x INTEGER)")
        await db.execute("INSERT INTO t VALUES (1), (2)")

        def both(conn: sqlite3.Connection, extra: int) -> tuple[int, int]:
            conn.execute("BEGIN")
            try:
                n = conn.execute("SELECT COUNT(*) FROM t").fetchone()[0]
                total = conn.execute("SELECT SUM(x) FROM t").fetchone()[0]
            finally:
                conn.execute("COMMIT")
            return n, total + extra

        assert await db.read(both, 10) == (2, 13)

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO t VALUES (3)")

        with pytest.raises(sqlite3.OperationalError):  # the reader cannot write
            await db.read(write)
        assert (await db.fetchone("SELECT COUNT(*) FROM t"))[0] == 2
    finally:
        await db.close()
