"""The ledger's guarantee across processes (issue #18): 50 holds from five bot-like processes at once on one
PostgreSQL database grant exactly what the budget allows, and the journal equals the holds."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

from bot.budget.service import BudgetService
from bot.db.postgres import PostgresDatabase
from bot.settings import BudgetPeriod

pytestmark = pytest.mark.postgres

G, ALICE, PRICE = 1, 10, 560_000
LIMIT = 3 * PRICE + 100_000
PROCESSES, EACH = 5, 10

# Each process: its own pool, ten holds at once, prints which were granted.
WORKER = """
import asyncio, json, sys
from bot.budget.service import BudgetService
from bot.db.postgres import PostgresDatabase
from bot.errors import BudgetExceeded
from bot.settings import BudgetPeriod

async def main(url, me, each):
    db = PostgresDatabase(url)
    await db.open()
    budget = BudgetService(db, default_limit_micros=0, period=BudgetPeriod.NEVER, max_limit_micros=10**12)
    results = await asyncio.gather(*(
        budget.hold(job_key=f"p{me}-{i}", guild_id=1, user_id=10, amount=560_000, description="take")
        for i in range(each)), return_exceptions=True)
    await db.close()
    bad = [repr(r) for r in results if r is not None and not isinstance(r, BudgetExceeded)]
    print(json.dumps({"granted": [f"p{me}-{i}" for i, r in enumerate(results) if r is None], "bad": bad}))

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""


def _budget(db: PostgresDatabase) -> BudgetService:
    return BudgetService(db, default_limit_micros=0, period=BudgetPeriod.NEVER, max_limit_micros=10**12)


async def test_fifty_holds_from_five_processes_grant_exactly_what_fits(pg_url):
    db = PostgresDatabase(pg_url)
    await db.open()  # migrated once here, so the workers start together on a ready schema
    try:
        budget = _budget(db)
        await budget.set_user_limit(G, ALICE, LIMIT)
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-c", WORKER, pg_url, str(p), str(EACH), stdout=asyncio.subprocess.PIPE
            )
            for p in range(PROCESSES)
        ]
        outs = [json.loads((await p.communicate())[0]) for p in procs]
        assert all(p.returncode == 0 for p in procs)
        assert [o["bad"] for o in outs] == [[]] * PROCESSES  # every refusal was the budget's own
        granted = [key for o in outs for key in o["granted"]]
        assert len(granted) == 3, granted
        view = await budget.view(G, ALICE)
        assert view.held == 3 * PRICE
        rows = await budget.store.ledger_rows(G, ALICE)
        assert sorted(r.job_key for r in rows if r.kind == "hold") == sorted(granted)
        assert sum(r.amount for r in rows) == view.held
    finally:
        await db.close()
