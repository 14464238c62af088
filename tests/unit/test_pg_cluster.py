"""The throwaway PostgreSQL of tests/pg.py: the cluster answers, and every test gets an empty database of its own."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from tests import pg
from tests.pg import PgCluster, create_database, database_name, drop_database

pytestmark = pytest.mark.postgres


async def test_pg_url_is_a_fresh_database_that_keeps_what_is_written(
    pg_cluster: PgCluster, pg_url: str
) -> None:
    name = database_name(pg_url)
    assert name.startswith(pg.DB_PREFIX)
    assert name != database_name(pg_cluster.dsn)
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT current_database()") == name
        assert await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
        await conn.execute("CREATE TABLE shots (id BIGINT PRIMARY KEY, prompt TEXT NOT NULL)")
        await conn.executemany(
            "INSERT INTO shots VALUES ($1, $2)", [(1, "a lighthouse"), (2, "gulls, ünïcode")]
        )
        rows = await conn.fetch("SELECT id, prompt FROM shots ORDER BY id")
        assert [tuple(r) for r in rows] == [(1, "a lighthouse"), (2, "gulls, ünïcode")]
        assert await conn.fetchval("SHOW server_encoding") == "UTF8"
    finally:
        await conn.close()


async def test_databases_are_separate_and_dropped(pg_cluster: PgCluster, pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute("CREATE TABLE only_here (x INT)")
        assert await conn.fetchval("SELECT to_regclass('only_here') IS NOT NULL")
    finally:
        await conn.close()

    other = await create_database(pg_cluster.dsn)
    assert database_name(other) != database_name(pg_url)
    conn = await asyncpg.connect(other)  # left open: drop_database ends it
    assert await conn.fetchval("SELECT to_regclass('only_here') IS NULL")
    await drop_database(pg_cluster.dsn, other)
    assert conn.is_closed() or not await _alive(conn)

    admin = await asyncpg.connect(pg_cluster.dsn)
    try:
        names = {r[0] for r in await admin.fetch("SELECT datname FROM pg_database")}
    finally:
        await admin.close()
    assert database_name(pg_url) in names
    assert database_name(other) not in names


async def _alive(conn: asyncpg.Connection) -> bool:
    try:
        await conn.fetchval("SELECT 1")
    except (asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError):
        return False
    return True


def test_local_cluster_settings(pg_cluster: PgCluster) -> None:
    if pg_cluster.base_dir is None:
        pytest.skip("a server from ANCHORSHOT_TEST_DATABASE_URL: not ours to check")
    assert pg_cluster.dsn == f"postgresql://postgres@127.0.0.1:{pg_cluster.port}/postgres"
    conf = (pg_cluster.data_dir / "postgresql.conf").read_text()
    assert "fsync = 'off'" in conf
    assert f"unix_socket_directories = '{pg_cluster.base_dir}'" in conf


def test_skipped_without_initdb_or_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(pg.ENV_URL, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert pg.unavailable_reason() == pg.SKIP_REASON
    monkeypatch.setenv(pg.ENV_URL, "postgresql://u@127.0.0.1:1/db")
    assert pg.unavailable_reason() is None
