"""PostgreSQL for bench/scale.py (issue #18): the server, a fresh database per run, its CPU, the ledger's floor.

`Server("auto")` starts a throwaway cluster (tests/pg.py's `PgCluster`: initdb and pg_ctl as the postgres user when
run as root, 127.0.0.1 on a free port, durability off: fsync, synchronous_commit and full_page_writes, which is
what SQLite's WAL with synchronous=NORMAL gives the SQLite run: no flush at commit) and removes it at the end;
`Server(url)` uses that server as it is (its user must be allowed to CREATE DATABASE). Either way every run gets a
database of its own (`fresh_database`), dropped after it.

`server_cpu()`: utime + stime of the server's processes, when the server runs on this machine (found through
`pg_backend_pid()` and /proc): the postmaster's own and its reaped children's (a backend that exited is counted in
its parent's cutime/cstime), and every live child's (backends, checkpointer, WAL writer, autovacuum). On another
machine, or in another PID namespace, it is None.

`bench_ledger`: holds per second through `BudgetService` on a `PostgresDatabase`, against plain asyncpg doing
what one hold does with the same statements (one transaction: the write lock, the hold looked up, the limits, the
user's sums, the hold and its ledger row inserted), 50 members at once and one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from tests.pg import PgCluster, create_database, drop_database

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def _comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


class Server:
    """The PostgreSQL server of a bench: `spec` "auto" (a throwaway cluster) or a postgresql:// URL."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.cluster: PgCluster | None = None
        self.dsn = "" if spec == "auto" else spec
        self.postmaster: int | None = None
        self.version = ""
        self.settings: dict[str, str] = {}

    async def start(self) -> None:
        if self.spec == "auto":
            self.cluster = PgCluster()
            base = Path(tempfile.mkdtemp(prefix="scale-bench-pg-"))
            self.dsn = await asyncio.to_thread(self.cluster.start, base)
        conn = await asyncpg.connect(self.dsn)
        try:
            backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
            self.version = str(await conn.fetchval("SHOW server_version"))
            self.settings = {
                name: str(await conn.fetchval(f"SHOW {name}"))
                for name in ("fsync", "synchronous_commit", "shared_buffers", "max_connections")
            }
            self.postmaster = self._local_postmaster(backend)
        finally:
            await conn.close()

    @staticmethod
    def _local_postmaster(backend: int) -> int | None:
        """The postmaster's pid when the backend `backend` is a process of this machine's /proc."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            if _comm(backend) == "postgres":
                parent = int(_stat(backend)[1])
                if _comm(parent) == "postgres":
                    return parent
        return None

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None

    def describe(self) -> str:
        where = "a throwaway cluster (tests/pg.py)" if self.spec == "auto" else "the given server"
        return f"PostgreSQL {self.version}, {where}, {self.settings}"

    async def fresh_database(self) -> str:
        return await create_database(self.dsn)

    async def drop(self, url: str) -> None:
        with contextlib.suppress(Exception):
            await drop_database(self.dsn, url)

    def server_cpu(self) -> float | None:
        """CPU seconds the server's processes have used (see the module's text); None when not on this machine."""
        if self.postmaster is None:
            return None
        try:
            f = _stat(self.postmaster)
        except OSError:
            return None
        total = sum(int(v) for v in f[11:15])  # utime, stime, cutime, cstime
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                g = _stat(int(entry))
                if int(g[1]) == self.postmaster:
                    total += sum(int(v) for v in g[11:15])
        return total / CLK_TCK


# ------------------------------------------------------------------------------------------- the bot's rows


async def bot_scores(url: str) -> dict:
    """bench/scale.py's bot_scores, read from the PostgreSQL database."""
    conn = await asyncpg.connect(url)
    try:
        jobs = {
            r[0]: r[1]
            for r in await conn.fetch(
                "SELECT state, COUNT(*) FROM jobs WHERE kind='face_score' GROUP BY state"
            )
        }
        verdicts = {
            r[0]: r[1] for r in await conn.fetch("SELECT verdict, COUNT(*) FROM take_scores GROUP BY verdict")
        }
        unscored = await conn.fetchval(
            "SELECT COUNT(*) FROM jobs t WHERE t.kind='take' AND t.state='posted'"
            " AND NOT EXISTS (SELECT 1 FROM take_scores s WHERE s.take_id=t.id)"
        )
        takes_posted = await conn.fetchval("SELECT COUNT(*) FROM jobs WHERE kind='take' AND state='posted'")
        leases = {
            r[0]: r[1]
            for r in await conn.fetch(
                "SELECT split_part(lease_owner, ':', 2), COUNT(*) FROM jobs WHERE kind='take' GROUP BY 1"
            )
        }
    finally:
        await conn.close()
    return {
        "face_score_jobs": jobs,
        "take_scores": verdicts,
        "takes_posted": int(takes_posted),
        "posted_takes_without_score_row": int(unscored),
        "take_lease_owner_pids": leases,  # which process last held each take (None: released at a clean stop)
    }


# ------------------------------------------------------------------------------------------- ledger

WRITE_LOCK = 0x616E6368  # bot/db/postgres.py's WRITE_LOCK: the same lock, so the floor pays what the bot pays


@functools.cache
def hold_pg() -> tuple[str, ...]:
    """bot/budget/store.py's statements for a hold (bench/scale.py's floor runs them on SQLite) in PostgreSQL's $n
    placeholders: the one read (its :names numbered k, g, u, p), the two inserts."""
    from bot.budget.store import LedgerStore
    from bot.db.postgres import to_postgres

    read, names = to_postgres(LedgerStore._HOLD_FACTS)
    assert names == ("k", "g", "u", "p"), names
    return (read, to_postgres(LedgerStore._INSERT_HOLD)[0], to_postgres(LedgerStore._JOURNAL_HOLD)[0])


async def floor_hold(
    conn: asyncpg.Connection, key: str, user: int, period: str, amount: int, limit: int
) -> bool:
    """One hold in plain asyncpg: the write lock taken with BEGIN (one round trip), the one read, the two inserts
    when it fits, COMMIT; 5 round trips, as many as the bot's hold."""
    statements = hold_pg()
    await conn.execute(f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})")
    try:
        facts = await conn.fetchrow(statements[0], key, 1, user, period)
        user_limit = facts["user_limit"] if facts["user_limit"] is not None else limit
        ok = amount <= user_limit - facts["spent"] - facts["held"]
        if ok:
            now = time.time()
            await conn.execute(statements[1], key, 1, user, period, amount, "b", now)
            await conn.execute(statements[2], 1, user, period, amount, key, "b", now)
    except BaseException:
        await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")
    return ok


async def _schema(server: Server) -> str:
    """A fresh database with the bot's schema (made by PostgresDatabase.open, as the SQLite floor's file is)."""
    from bot.db.postgres import PostgresDatabase

    url = await server.fresh_database()
    db = PostgresDatabase(url)
    await db.open()
    await db.close()
    return url


async def bench_ledger(server: Server, members: int, per_member_limit: int) -> dict:
    """Holds per second, 50 members at once and one at a time: BudgetService on PostgresDatabase (its pool: 10
    connections) against plain asyncpg (at once: a pool of 10 connections, one transaction each; one at a time:
    one connection). Each member may make `per_member_limit` holds and asks for a quarter more (zero overspend is
    checked). Each of the four measurements runs on a fresh database."""
    from bot.budget.service import BudgetService
    from bot.db.postgres import PostgresDatabase
    from bot.errors import UserError
    from bot.settings import BudgetPeriod

    amount = 560_000
    limit = amount * per_member_limit
    attempts = per_member_limit + max(1, per_member_limit // 4)
    total = attempts * members
    out: dict[str, Any] = {"members": members, "attempts": total}
    urls: list[str] = []
    try:
        period = ""
        for mode in ("at_once", "one_at_a_time"):
            url = await _schema(server)
            urls.append(url)
            db = PostgresDatabase(url)
            await db.open()
            budget = BudgetService(
                db, default_limit_micros=limit, period=BudgetPeriod.MONTH, max_limit_micros=10**13
            )
            period = budget.current_period()

            async def one(u: int, r: int, budget: BudgetService = budget) -> bool:
                try:
                    await budget.hold(
                        job_key=f"j{u}-{r}", guild_id=1, user_id=u, amount=amount, description="b"
                    )
                    return True
                except UserError:
                    return False

            ok = 0
            t0 = time.perf_counter()
            for r in range(attempts):
                if mode == "at_once":
                    ok += sum(await asyncio.gather(*(one(u, r) for u in range(members))))
                else:
                    for u in range(members):
                        ok += await one(u, r)
            elapsed = time.perf_counter() - t0
            await db.close()
            held = await _held(url)
            key = "" if mode == "at_once" else "seq_"
            out[f"{key}holds_per_s"] = total / elapsed
            out[f"{key}granted"] = ok
            out[f"{key}overspent_members"] = sum(1 for v in held.values() if v > limit)
        out["refused"] = total - out["granted"]

        # floor, one at a time: one connection
        url = await _schema(server)
        urls.append(url)
        conn = await asyncpg.connect(url)
        try:
            fok = 0
            t1 = time.perf_counter()
            for r in range(attempts):
                for u in range(members):
                    fok += await floor_hold(conn, f"j{u}-{r}", u, period, amount, limit)
            out["floor_seq_holds_per_s"] = total / (time.perf_counter() - t1)
            out["floor_seq_granted"] = fok
        finally:
            await conn.close()

        # floor, 50 at once: a pool of 10 connections, as the bot's
        url = await _schema(server)
        urls.append(url)
        pool = await asyncpg.create_pool(url, min_size=10, max_size=10)
        try:

            async def floor_one(u: int, r: int) -> bool:
                async with pool.acquire() as conn:
                    return await floor_hold(conn, f"j{u}-{r}", u, period, amount, limit)

            fok = 0
            t2 = time.perf_counter()
            for r in range(attempts):
                fok += sum(await asyncio.gather(*(floor_one(u, r) for u in range(members))))
            out["floor_holds_per_s"] = total / (time.perf_counter() - t2)
            out["floor_granted"] = fok
        finally:
            await pool.close()
        # the round trip itself: an empty statement on one connection (what 7 of them per hold cost at least)
        conn = await asyncpg.connect(url)
        try:
            stmt = await conn.prepare("SELECT 1")
            t3 = time.perf_counter()
            for _ in range(2000):
                await stmt.fetchval()
            out["round_trip_ms"] = (time.perf_counter() - t3) / 2000 * 1000
        finally:
            await conn.close()
    finally:
        for url in urls:
            await server.drop(url)
    return out


async def _held(url: str) -> dict[int, int]:
    conn = await asyncpg.connect(url)
    try:
        return {
            r[0]: int(r[1])
            for r in await conn.fetch("SELECT user_id, SUM(amount) FROM holds GROUP BY user_id")
        }
    finally:
        await conn.close()
