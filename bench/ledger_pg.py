"""Where a hold's time goes on PostgreSQL (issue #18): BudgetService on PostgresDatabase against plain asyncpg
variants, one process, each on a fresh database of one server.

    .venv/bin/python bench/ledger_pg.py [--database auto|URL] [--members 50] [--rounds 40] [--repeat 3]

Every variant makes the same holds as bench/scale.py's ledger (`members` members, each allowed `rounds` holds and
asking for a quarter more, so a fifth are refused), takes the same write lock (bot/db/postgres.py's advisory lock)
and runs the same statements; they differ in how the statements reach the server:

  one at a time:
    floor          plain asyncpg, one connection: BEGIN + the lock (one round trip), 1 read, 2 inserts, COMMIT
    floor+pool     the same, one pool acquire per hold (asyncpg's default release runs its reset query)
    floor+pool-reset  the same, the pool's reset a no-op (no reset query)
    one-trip       the whole hold in one round trip (a PL/pgSQL function doing the same reads and inserts)
    bot            BudgetService.hold on PostgresDatabase (its writer's own connection, no pool: bot/db/postgres.py)
  50 at once (asyncio.gather, a pool of 10 connections):
    floor+pool, floor+pool+lock (an asyncio.Lock in the process before a connection is taken: one transaction
    waits on the server's lock at a time, as the bot's writer does), bot.

For each: holds/s (median of --repeat), this process's CPU per hold and the server's (when it runs here), and the
round trips per hold (`round_trips`).
Writes bench/results/ledger-pg-<date>.json and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import asyncpg  # noqa: E402
import scale_pg  # noqa: E402

AMOUNT = 560_000

ONE_TRIP_FN = """
CREATE FUNCTION bench_hold(k text, g bigint, u bigint, p text, amount bigint, lim bigint, now_ double precision)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  ul bigint; spent bigint; held bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(WRITE_LOCK);
  PERFORM 1 FROM holds WHERE job_key = k;
  IF FOUND THEN RETURN true; END IF;
  SELECT (SELECT limit_micros FROM user_limits WHERE guild_id = g AND user_id = u) INTO ul;
  SELECT COALESCE(SUM(l.amount), 0) FROM ledger l WHERE l.guild_id = g AND l.user_id = u AND l.period = p
    AND l.kind IN ('capture', 'adjustment') INTO spent;
  SELECT COALESCE(SUM(h.amount), 0) FROM holds h WHERE h.guild_id = g AND h.user_id = u AND h.period = p
    AND h.state = 'held' INTO held;
  IF amount > COALESCE(ul, lim) - spent - held THEN RETURN false; END IF;
  INSERT INTO holds(job_key, guild_id, user_id, period, amount, description, state, created_at)
    VALUES (k, g, u, p, amount, 'b', 'held', now_);
  INSERT INTO ledger(guild_id, user_id, period, kind, amount, job_key, description, created_at)
    VALUES (g, u, p, 'hold', amount, k, 'b', now_);
  RETURN true;
END $$;
""".replace("WRITE_LOCK", str(scale_pg.WRITE_LOCK))


async def _no_reset(conn: asyncpg.Connection) -> None:
    """A pool reset that sends nothing (asyncpg still drops its own per-connection state)."""


def _period() -> str:
    """BudgetService's period key of now (a month)."""
    from datetime import UTC, datetime

    from bot.budget.periods import period_key
    from bot.settings import BudgetPeriod

    return period_key(datetime.now(UTC), BudgetPeriod.MONTH)


def _keys(members: int, rounds: int) -> list[list[tuple[str, int]]]:
    attempts = rounds + max(1, rounds // 4)
    return [[(f"j{u}-{r}", u) for u in range(members)] for r in range(attempts)]


async def _run(
    hold: Callable[[str, int], Awaitable[bool]], rounds: list[list[tuple[str, int]]], at_once: bool
) -> tuple[float, int]:
    ok = 0
    t0 = time.perf_counter()
    for batch in rounds:
        if at_once:
            ok += sum(await asyncio.gather(*(hold(k, u) for k, u in batch)))
        else:
            for k, u in batch:
                ok += await hold(k, u)
    return time.perf_counter() - t0, ok


@contextlib.asynccontextmanager
async def _variant(server: scale_pg.Server, name: str, limit: int) -> AsyncIterator[Any]:
    """(hold(key, user) -> granted, closer) for the variant `name`, on a fresh database."""
    url = await scale_pg._schema(server)
    period = _period()
    closers: list[Callable[[], Awaitable[None]]] = []
    try:
        if name == "floor":
            conn = await asyncpg.connect(url)
            closers.append(conn.close)

            async def hold(k: str, u: int) -> bool:
                return await scale_pg.floor_hold(conn, k, u, period, AMOUNT, limit)

        elif name.startswith("floor+pool"):
            reset = {"reset": _no_reset} if "reset" in name else {}
            pool = await asyncpg.create_pool(url, min_size=10, max_size=10, **reset)
            closers.append(pool.close)
            lock = asyncio.Lock() if name.endswith("+lock") else None

            async def hold(k: str, u: int) -> bool:
                async with contextlib.AsyncExitStack() as stack:
                    if lock is not None:
                        await stack.enter_async_context(lock)
                    conn = await stack.enter_async_context(pool.acquire())
                    return await scale_pg.floor_hold(conn, k, u, period, AMOUNT, limit)
                raise AssertionError

        elif name == "one-trip":
            conn = await asyncpg.connect(url)
            closers.append(conn.close)
            await conn.execute(ONE_TRIP_FN)
            stmt = await conn.prepare("SELECT bench_hold($1, 1, $2, $3, $4, $5, $6)")

            async def hold(k: str, u: int) -> bool:
                return bool(await stmt.fetchval(k, u, period, AMOUNT, limit, time.time()))

        elif name == "bot":
            from bot.budget.service import BudgetService
            from bot.db import postgres
            from bot.errors import UserError
            from bot.settings import BudgetPeriod

            db = postgres.PostgresDatabase(url)
            await db.open()
            closers.append(db.close)
            budget = BudgetService(
                db, default_limit_micros=limit, period=BudgetPeriod.MONTH, max_limit_micros=10**13
            )

            async def hold(k: str, u: int) -> bool:
                try:
                    await budget.hold(job_key=k, guild_id=1, user_id=u, amount=AMOUNT, description="b")
                    return True
                except UserError:
                    return False

        else:
            raise ValueError(name)
        yield hold, url
    finally:
        for close in reversed(closers):
            await close()
        await server.drop(url)


async def _held_rows(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT COUNT(*) FROM holds"))
    finally:
        await conn.close()


async def measure(server: scale_pg.Server, name: str, at_once: bool, members: int, rounds: int) -> dict:
    limit = AMOUNT * rounds
    keys = _keys(members, rounds)
    async with _variant(server, name, limit) as (hold, url):
        cpu0, srv0 = time.process_time(), server.server_cpu()
        wall, ok = await _run(hold, keys, at_once)
        cpu1, srv1 = time.process_time(), server.server_cpu()
        held = await _held_rows(url)
    total = sum(len(b) for b in keys)
    return {
        "holds_per_s": total / wall,
        "granted": ok,
        "held_rows": held,
        "client_cpu_ms_per_hold": (cpu1 - cpu0) / total * 1000,
        "server_cpu_ms_per_hold": (srv1 - srv0) / total * 1000
        if srv0 is not None and srv1 is not None
        else None,
        "wall_ms_per_hold": wall / total * 1000,
    }


async def round_trips(server: scale_pg.Server) -> dict:
    """Round trips a hold costs: asyncpg's connection calls (fetchrow, fetch, fetchval, execute; each is one round
    trip, a multi-statement execute included), counted by wrapping them, for the bot's hold  and the floor's, on the first hold of a user."""
    from bot.budget.service import BudgetService
    from bot.db.postgres import PostgresDatabase
    from bot.settings import BudgetPeriod

    url = await scale_pg._schema(server)
    counts: dict[str, int] = {}
    try:
        db = PostgresDatabase(url)
        await db.open()
        budget = BudgetService(
            db, default_limit_micros=AMOUNT * 10, period=BudgetPeriod.MONTH, max_limit_micros=10**13
        )
        await budget.hold(job_key="warm", guild_id=1, user_id=99, amount=AMOUNT, description="b")
        calls: list[str] = []
        originals = {}
        for method in ("fetchrow", "fetch", "fetchval", "execute"):  # the pool's reset query is an execute
            originals[method] = getattr(asyncpg.Connection, method)

            def wrap(real: Any, method: str = method) -> Any:
                async def inner(self: Any, *args: Any, **kwargs: Any) -> Any:
                    calls.append(f"{method} {str(args[0])[:40] if args else ''}")
                    return await real(self, *args, **kwargs)

                return inner

            setattr(asyncpg.Connection, method, wrap(originals[method]))
        try:
            await budget.hold(job_key="k1", guild_id=1, user_id=1, amount=AMOUNT, description="b")
        finally:
            for method, real in originals.items():
                setattr(asyncpg.Connection, method, real)
        await db.close()
        counts["bot_hold"] = len(calls)
        counts["bot_hold_calls"] = calls  # type: ignore[assignment]
        counts["floor_hold"] = 5  # BEGIN+lock, 1 read, 2 inserts, COMMIT (scale_pg.floor_hold)
    finally:
        await server.drop(url)
    return counts


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"
    return str(v)


async def main_async(args: argparse.Namespace) -> dict:
    server = scale_pg.Server(args.database)
    await server.start()
    res: dict[str, Any] = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "args": {k: str(v) for k, v in vars(args).items()},
        "database": server.describe(),
        "load_before": os.getloadavg(),
        "variants": {},
    }
    print(f"database: {res['database']}", flush=True)
    plan = [(v, False) for v in ("floor", "floor+pool", "floor+pool-reset", "one-trip", "bot")]
    plan += [(v, True) for v in ("floor+pool", "floor+pool+lock", "bot")]
    try:
        res["round_trips"] = await round_trips(server)
        print(f"round trips per hold: {res['round_trips']}", flush=True)
        samples: dict[str, list[dict]] = {}
        for rep in range(args.repeat):
            for name, at_once in plan:  # interleaved: the machine's load moves
                key = f"{name} ({'50 at once' if at_once else 'one at a time'})"
                out = await measure(server, name, at_once, args.members, args.rounds)
                samples.setdefault(key, []).append(out)
                print(f"run {rep + 1}: {key}: {out}", flush=True)
        for key, runs in samples.items():
            res["variants"][key] = {
                "holds_per_s": statistics.median(r["holds_per_s"] for r in runs),
                "holds_per_s_runs": [round(r["holds_per_s"]) for r in runs],
                "client_cpu_ms_per_hold": statistics.median(r["client_cpu_ms_per_hold"] for r in runs),
                "server_cpu_ms_per_hold": statistics.median(
                    r["server_cpu_ms_per_hold"] for r in runs if r["server_cpu_ms_per_hold"] is not None
                )
                if runs[0]["server_cpu_ms_per_hold"] is not None
                else None,
                "granted": sorted({r["granted"] for r in runs}),
            }
    finally:
        server.stop()
    res["load_after"] = os.getloadavg()
    print(f"\n{'variant':<40} {'holds/s':>8} {'runs':<22} {'client CPU ms':>13} {'server CPU ms':>13}")
    for key, v in res["variants"].items():
        print(
            f"{key:<40} {_fmt(v['holds_per_s']):>8} {str(v['holds_per_s_runs']):<22} "
            f"{_fmt(v['client_cpu_ms_per_hold']):>13} {_fmt(v['server_cpu_ms_per_hold']):>13}"
        )
    print(f"load average {res['load_before'][0]:.1f} before, {res['load_after'][0]:.1f} after")
    return res


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database", default="auto", help="auto (a throwaway cluster) or a postgresql:// URL")
    p.add_argument("--members", type=int, default=50)
    p.add_argument(
        "--rounds", type=int, default=40, help="holds each member may make (asks for a quarter more)"
    )
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    res = asyncio.run(main_async(args))
    out = args.out or ROOT / "bench" / "results" / f"ledger-pg-{dt.date.today().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, default=str) + "\n")
    print(f"written to {out}")
    return res


if __name__ == "__main__":
    main()
