"""`anchorshot migrate-to-postgres` (issue #18) piece by piece: where a URL points without its password, the copy
order over the foreign keys, the refusals (no file, a damaged file, no URL, a target at another schema version, a
database that is not empty), a check that differs rolling everything back, an old SQLite file migrated first, a
synthetic database of 10,000 jobs timed; and the SQLite-only maintenance commands refusing with DATABASE_URL set."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import asyncpg
import pytest

import bot.__main__ as entry
import bot.db.migrate as migrate
from bot.db import SqliteDatabase
from bot.db.migrate import ForeignKey, MigrationRefused, Table, plan
from bot.db.postgres import postgres_place, scrub
from tests.pg import table_counts

PASSWORD = "pw-Sekr1t-9f2c"
TOKEN = "MTAwMDAwMDAwMDAwMDAwMDAwMQ.GfakeX.fake-token-for-tests-only_abcdefghij"


# ---------------------------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("url", "place"),
    [
        (f"postgresql://bot:{PASSWORD}@db.example:5433/anchorshot", "db.example:5433/anchorshot"),
        (f"postgres://bot:{PASSWORD}@db.example/anchorshot?sslmode=require", "db.example:5432/anchorshot"),
        (
            f"postgresql:///anchorshot?host=/run/postgresql&password={PASSWORD}",
            "/run/postgresql:5432/anchorshot",
        ),
        ("postgresql://bot:p%40ss%3Aword@[::1]:5432/x", "::1:5432/x"),
        ("postgresql://localhost", "localhost:5432/(default database)"),
    ],
)
def test_the_place_names_host_port_and_database_only(url, place):
    assert postgres_place(url) == place
    assert PASSWORD not in postgres_place(url) and "p%40ss" not in postgres_place(url)


def test_scrub_hides_the_url_and_its_password_however_written():
    url = f"postgresql://bot:{PASSWORD}@db.example/anchorshot"
    text = f"could not connect to {url}: password {PASSWORD} refused for bot:{PASSWORD}"
    assert PASSWORD not in scrub(text, url) and url not in scrub(text, url)
    encoded = "postgresql://bot:p%40ss%3Aword@h/x"
    assert "p@ss:word" not in scrub("auth p@ss:word failed", encoded)
    assert PASSWORD not in scrub(f"x {PASSWORD}", f"postgresql:///d?password={PASSWORD}")


# ---------------------------------------------------------------------------------------------- order


def _table(name: str, *foreign: ForeignKey) -> Table:
    return Table(name, [], {"id": "bigint"}, ["id"], list(foreign))


def test_the_copy_order_meets_every_foreign_key_and_breaks_the_cast_cycle_on_a_nullable_column():
    tables = {
        "images": _table("images"),
        "jobs": _table("jobs", ForeignKey(("parent_id",), "jobs", True)),  # itself: COPY checks at its end
        "anchor_versions": _table(
            "anchor_versions",
            ForeignKey(("sha256",), "images", False),
            ForeignKey(("character_id",), "characters", True),
        ),
        "characters": _table("characters", ForeignKey(("version_id",), "anchor_versions", True)),
        "anchor_angles": _table("anchor_angles", ForeignKey(("version_id",), "anchor_versions", False)),
        "voices": _table("voices", ForeignKey(("character_id",), "characters", False)),
    }
    order = plan({n: ["id"] for n in tables}, tables)
    names = [t.name for t in order]
    assert names.index("images") < names.index("anchor_versions") < names.index("characters")
    assert names.index("anchor_versions") < names.index("anchor_angles")
    assert names.index("characters") < names.index("voices")
    assert tables["anchor_versions"].deferred == ["character_id"] and tables["characters"].deferred == []


def test_a_cycle_where_nothing_may_be_null_is_refused():
    tables = {
        "a": _table("a", ForeignKey(("b_id",), "b", False)),
        "b": _table("b", ForeignKey(("a_id",), "a", False)),
    }
    with pytest.raises(MigrationRefused, match="wait for each other"):
        plan({"a": ["id"], "b": ["id"]}, tables)


def test_schemas_that_differ_are_refused():
    with pytest.raises(MigrationRefused, match="tables extra"):
        plan({"kv": ["id"], "extra": ["id"]}, {"kv": _table("kv")})
    with pytest.raises(MigrationRefused, match="kv's columns value"):
        plan({"kv": ["id", "value"]}, {"kv": _table("kv")})


# ---------------------------------------------------------------------------------------------- the command


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """DATA_DIR for the command run in this process; no DATABASE_URL, no token, no .env."""
    folder = tmp_path / "data"
    monkeypatch.chdir(tmp_path)
    for name in ("DATABASE_URL", "DISCORD_TOKEN", "FAL_KEY", "SHARD_COUNT", "SHARD_IDS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(folder))
    return folder


def _sqlite(data_dir: Path, *, up_to: int | None = None) -> Path:
    async def make() -> None:
        db = SqliteDatabase(data_dir / "anchorshot.sqlite3")
        await db.open(up_to=up_to)
        await db.execute("INSERT INTO kv(key, value) VALUES ('instance_id', 'abcd1234')")
        await db.close()

    asyncio.run(make())
    return data_dir / "anchorshot.sqlite3"


def _run(args: list[str], capsys) -> tuple[int, list[str], list[str]]:
    code = entry._maintenance(args)
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def test_without_a_sqlite_file_or_a_url_nothing_starts(data_dir, capsys):
    code, out, err = _run(["migrate-to-postgres", "postgresql://u@127.0.0.1:1/x"], capsys)
    assert code == 2 and out == [] and len(err) == 1 and "there is no SQLite database" in err[0]
    _sqlite(data_dir)
    code, out, err = _run(["migrate-to-postgres"], capsys)
    assert code == 2 and len(err) == 1 and "needs a postgresql:// URL" in err[0]
    code, out, err = _run(["migrate-to-postgres", "mysql://u@h/x"], capsys)
    assert code == 2 and len(err) == 1 and "needs a postgresql:// URL" in err[0]
    code, out, err = _run(["migrate-to-postgres", "a", "b"], capsys)
    assert code == 2 and "usage:" in err[0]


def test_a_damaged_sqlite_file_is_refused(data_dir, capsys):
    data_dir.mkdir()
    (data_dir / "anchorshot.sqlite3").write_bytes(b"not a database at all" * 200)
    code, out, err = _run(["migrate-to-postgres", "postgresql://u@127.0.0.1:1/x"], capsys)
    assert code == 2 and len(err) == 1 and "is damaged" in err[0] and "anchorshot restore" in err[0]


def test_a_postgres_that_cannot_be_reached_is_named_without_its_password(data_dir, capsys):
    _sqlite(data_dir)
    url = f"postgresql://bot:{PASSWORD}@127.0.0.1:1/anchorshot"
    code, out, err = _run(["migrate-to-postgres", url], capsys)
    assert code == 2 and out == [] and len(err) == 1, err
    assert err[0].startswith("anchorshot: cannot open the PostgreSQL database at 127.0.0.1:1/anchorshot (")
    assert PASSWORD not in err[0] and "bot:" not in err[0]


@pytest.mark.parametrize("command", [["backup", "x.sqlite3"], ["restore", "x.sqlite3"], ["check"]])
def test_sqlite_maintenance_refuses_when_database_url_is_set(data_dir, capsys, monkeypatch, command):
    _sqlite(data_dir)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://bot:{PASSWORD}@db.example/anchorshot")
    code, out, err = _run(command, capsys)
    assert code == 2 and out == [] and len(err) == 1
    assert "pg_dump" in err[0] and "pg_restore" in err[0] and PASSWORD not in err[0]
    assert not (data_dir.parent / "x.sqlite3").exists()
    monkeypatch.delenv("DATABASE_URL")
    assert _run(["check"], capsys)[0] == 0  # the SQLite file itself is fine


def test_the_start_up_integrity_check_is_sqlites_only(data_dir, capsys, monkeypatch):
    data_dir.mkdir()
    (data_dir / "anchorshot.sqlite3").write_bytes(b"not a database at all" * 200)  # stale and damaged
    monkeypatch.setenv("DISCORD_TOKEN", TOKEN)
    ran = []

    async def fake_run(settings, token) -> None:
        ran.append(settings.postgres_url)

    monkeypatch.setattr(entry, "run", fake_run)
    monkeypatch.setattr(entry, "setup_logging", lambda level: None)  # leave this process's loggers alone
    with pytest.raises(SystemExit) as stopped:
        entry.main([])
    assert stopped.value.code == 2 and "is damaged" in capsys.readouterr().err and ran == []
    monkeypatch.setenv("DATABASE_URL", "postgresql://bot@db.example/anchorshot")
    entry.main([])
    assert ran == ["postgresql://bot@db.example/anchorshot"]


def test_usage_names_the_command():
    assert "anchorshot migrate-to-postgres [DATABASE_URL]" in entry.USAGE and "pg_dump" in entry.USAGE


# ---------------------------------------------------------------------------------------------- on PostgreSQL


async def _pg(url: str, sql: str) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def _rows_in(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return sum((await table_counts(conn)).values())
    finally:
        await conn.close()


@pytest.mark.postgres
async def test_a_password_in_the_url_never_appears_in_the_output(data_dir, capsys, pg_url):
    await asyncio.to_thread(
        _sqlite, data_dir, up_to=10
    )  # an old file: migrated to the newest schema before the copy
    url = pg_url.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@", 1)
    assert PASSWORD in url
    code, out, err = await asyncio.to_thread(_run, ["migrate-to-postgres", url], capsys)
    assert code == 0, out + err
    assert not any(PASSWORD in line or "postgres:" in line for line in out + err)
    assert out[0].endswith(postgres_place(pg_url)) and "(schema 12)" in out[0], out
    assert await _pg(pg_url, "SELECT value FROM kv") == "abcd1234"
    # the database does not exist: the driver's complaint is shown, the password is not
    missing = url.rsplit("/", 1)[0] + "/no_such_database"
    code, out, err = await asyncio.to_thread(_run, ["migrate-to-postgres", missing], capsys)
    assert code == 2 and len(err) == 1 and "no_such_database" in err[0] and PASSWORD not in err[0], err


@pytest.mark.postgres
async def test_a_target_at_another_schema_version_is_refused(data_dir, capsys, pg_url):
    await asyncio.to_thread(_sqlite, data_dir)
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(
            "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        await conn.execute("INSERT INTO schema_migrations VALUES (99, '0099_future.sql')")
    finally:
        await conn.close()
    code, out, err = await asyncio.to_thread(_run, ["migrate-to-postgres", pg_url], capsys)
    assert code == 2 and out == [] and len(err) == 1 and "the schemas differ" in err[0], err
    assert "migration 12" in err[0] and "at 99" in err[0]
    assert await _rows_in(pg_url) == 0


@pytest.mark.postgres
async def test_a_check_that_differs_rolls_the_whole_copy_back(data_dir, capsys, pg_url, monkeypatch):
    path = await asyncio.to_thread(_sqlite, data_dir)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO ledger(guild_id, user_id, period, kind, amount, job_key, description, created_at)"
            " VALUES (1, 2, '2026-01', 'adjustment', 5000000, NULL, 'gift', 1.5)"
        )
    conn.close()
    real_copy = migrate.copy_table

    async def lose_the_ledger(src, dst, table):
        if table.name != "ledger":
            await real_copy(src, dst, table)

    monkeypatch.setattr(migrate, "copy_table", lose_the_ledger)
    code, out, err = await asyncio.to_thread(_run, ["migrate-to-postgres", pg_url], capsys)
    assert code == 1, out + err
    assert any("check row counts: DIFFERENT: ledger 1 in SQLite, 0 in PostgreSQL" in line for line in out), (
        out
    )
    assert any(
        "check ledger totals: DIFFERENT: SQLite adjustment $5.00 (1 row); PostgreSQL none" in o for o in out
    )
    assert "rolled back" in out[-1]
    assert await _rows_in(pg_url) == 0  # kv's row too: nothing was kept
    monkeypatch.setattr(migrate, "copy_table", real_copy)
    code, out, err = await asyncio.to_thread(_run, ["migrate-to-postgres", pg_url], capsys)
    assert code == 0 and await _rows_in(pg_url) == 2


def _synthetic(path: Path, jobs: int) -> None:
    """`jobs` posted takes with their hold and two ledger rows each, and 1,000 anchors each with a character."""
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO jobs(id, kind, ledger_key, guild_id, channel_id, user_id, args, state, backend,"
            " price_micros, created_at, updated_at, number, result_message_id)"
            " VALUES (?, 'take', ?, 1, 2, ?, '{\"prompt\": \"x\"}', 'posted', 'fal', 560000, ?, ?, ?, ?)",
            [(i, f"take:{i}", 100 + i % 7, i * 1.5, i * 1.5 + 1, i, 10**6 + i) for i in range(1, jobs + 1)],
        )
        conn.executemany(
            "INSERT INTO holds(job_key, guild_id, user_id, period, amount, description, state, created_at,"
            " settled_at) VALUES (?, 1, ?, '2026-01', 560000, 'take', 'captured', ?, ?)",
            [(f"take:{i}", 100 + i % 7, i * 1.5, i * 1.5 + 1) for i in range(1, jobs + 1)],
        )
        conn.executemany(
            "INSERT INTO ledger(guild_id, user_id, period, kind, amount, job_key, description, created_at)"
            " VALUES (1, ?, '2026-01', ?, ?, ?, 'take', ?)",
            [
                (100 + i % 7, kind, amount, f"take:{i}", i * 1.5)
                for i in range(1, jobs + 1)
                for kind, amount in (("hold", 560000), ("capture", 560000))
            ],
        )
        conn.execute(
            "INSERT INTO images(sha256, width, height, size_bytes, created_at) VALUES ('s', 1, 1, 1, 0)"
        )
        conn.executemany(
            "INSERT INTO anchor_versions(id, guild_id, channel_id, version, sha256, set_by, set_at, width, height,"
            " source_format, character_id) VALUES (?, 1, ?, 1, 's', 5, 0, 1, 1, 'PNG', ?)",
            [(i, 1000 + i, i) for i in range(1, 1001)],
        )
        conn.executemany(
            "INSERT INTO characters(id, guild_id, channel_id, name, name_key, is_main, version_id, added_by,"
            " added_at) VALUES (?, 1, ?, 'Mara', 'mara', 1, ?, 5, 0)",
            [(i, 1000 + i, i) for i in range(1, 1001)],
        )
    conn.close()


@pytest.mark.postgres
async def test_ten_thousand_jobs_are_copied_and_checked_in_seconds(data_dir, capsys, pg_url):
    path = await asyncio.to_thread(_sqlite, data_dir)
    _synthetic(path, 10_000)
    started = time.perf_counter()
    code, out, err = await asyncio.to_thread(_run, ["migrate-to-postgres", pg_url], capsys)
    took = time.perf_counter() - started
    assert code == 0, out + err
    assert "anchorshot: check row counts: equal in all 20 tables (42,002 rows)" in out, out
    assert (
        "anchorshot: check ledger totals: equal: capture $5,600.00 (10,000 rows), hold $5,600.00 (10,000 rows)"
        in out
    )
    print(
        f"\n10,000 jobs, 20,000 ledger rows, 10,000 holds, 1,000 anchors + characters: {took:.2f} s\n"
        + "\n".join(out)
    )
    assert took < 60
    assert await _pg(pg_url, "SELECT COUNT(*) FROM anchor_versions WHERE character_id IS NOT NULL") == 1000
    assert await _pg(pg_url, "SELECT nextval(pg_get_serial_sequence('jobs', 'id'))") == 10_001
    assert (
        await _pg(pg_url, "SELECT nextval(pg_get_serial_sequence('scenes', 'id'))") == 1
    )  # empty: starts at 1
