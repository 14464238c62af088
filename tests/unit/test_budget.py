"""The ledger's arithmetic, periods, idempotency and concurrency, on a real SQLite file."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from bot.budget.periods import is_period_key, period_end, period_key
from bot.budget.service import BudgetService
from bot.errors import BudgetExceeded, UserError
from bot.money import format_usd, usd_to_micros
from bot.settings import BudgetPeriod
from tests.both_backends import both_backends  # noqa: F401  (every test here on both backends)

G, ALICE, BOB = 1, 10, 20


class Clock:
    def __init__(self, when: datetime) -> None:
        self.t = when.timestamp()

    def __call__(self) -> float:
        return self.t

    def set(self, when: datetime) -> None:
        self.t = when.timestamp()


@pytest.fixture
async def db(database):
    """The test's database: the SQLite file and, marked `postgres`, a PostgreSQL database (tests/backends.py)."""
    return database


@pytest.fixture
def clock():
    return Clock(datetime(2026, 11, 25, 12, 0, tzinfo=UTC))


@pytest.fixture
def budget(db, clock):
    return BudgetService(
        db,
        default_limit_micros=usd_to_micros(10),
        period=BudgetPeriod.MONTH,
        max_limit_micros=usd_to_micros(1000),
        clock=clock,
    )


def test_money_parsing_and_formatting():
    assert usd_to_micros("12.50") == 12_500_000
    assert usd_to_micros("$3") == 3_000_000
    assert usd_to_micros("0.112") == 112_000
    assert format_usd(560_000) == "$0.56"
    assert format_usd(112_000) == "$0.112"
    assert format_usd(-1_250_000) == "-$1.25"
    for junk in ("abc", "", "nan", "inf", "1e400x"):
        with pytest.raises(ValueError):
            usd_to_micros(junk)


async def test_remaining_is_limit_minus_spent_minus_held(budget):
    await budget.hold(job_key="a", guild_id=G, user_id=ALICE, amount=2_000_000, description="a")
    await budget.hold(job_key="b", guild_id=G, user_id=ALICE, amount=3_000_000, description="b")
    await budget.capture("a")
    view = await budget.view(G, ALICE)
    assert (view.limit, view.spent, view.held, view.remaining) == (
        10_000_000,
        2_000_000,
        3_000_000,
        5_000_000,
    )
    await budget.release("b")
    view = await budget.view(G, ALICE)
    assert (view.spent, view.held, view.remaining) == (2_000_000, 0, 8_000_000)
    assert [r.description for r in view.recent] == ["a"]


async def test_hold_refused_past_limit_writes_nothing(budget):
    await budget.hold(job_key="a", guild_id=G, user_id=ALICE, amount=9_000_000, description="a")
    with pytest.raises(BudgetExceeded) as err:
        await budget.hold(job_key="b", guild_id=G, user_id=ALICE, amount=1_000_001, description="b")
    assert "$1.00 left" in err.value.message
    rows = await budget.store.ledger_rows(G)
    assert [r.job_key for r in rows] == ["a"]


async def test_capture_and_release_are_idempotent(budget):
    await budget.hold(job_key="a", guild_id=G, user_id=ALICE, amount=1_000_000, description="a")
    assert await budget.capture("a") is True
    assert await budget.capture("a") is False
    assert await budget.release("a") is False  # a captured hold cannot be released afterwards
    await budget.hold(job_key="b", guild_id=G, user_id=ALICE, amount=1_000_000, description="b")
    assert await budget.release("b") is True
    assert await budget.release("b") is False
    assert await budget.capture("b") is False
    assert await budget.capture("missing") is False
    view = await budget.view(G, ALICE)
    assert (view.spent, view.held) == (1_000_000, 0)
    kinds = [(r.job_key, r.kind) for r in await budget.store.ledger_rows(G)]
    assert kinds == [("a", "hold"), ("a", "capture"), ("b", "hold"), ("b", "release")]


async def test_same_job_held_twice_is_one_hold(budget):
    await budget.hold(job_key="a", guild_id=G, user_id=ALICE, amount=4_000_000, description="a")
    await budget.hold(job_key="a", guild_id=G, user_id=ALICE, amount=4_000_000, description="a")
    assert (await budget.view(G, ALICE)).held == 4_000_000


async def test_limit_precedence_user_then_guild_then_default(budget):
    assert (await budget.view(G, ALICE)).limit_source == "default"
    await budget.set_guild_default(G, 5_000_000)
    view = await budget.view(G, ALICE)
    assert (view.limit, view.limit_source) == (5_000_000, "guild")
    await budget.set_user_limit(G, ALICE, 7_000_000)
    view = await budget.view(G, ALICE)
    assert (view.limit, view.limit_source) == (7_000_000, "user")
    assert (await budget.view(G, BOB)).limit == 5_000_000


async def test_guild_cap_limits_the_sum_of_all_users(budget):
    await budget.set_guild_cap(G, 3_000_000)
    await budget.hold(job_key="a", guild_id=G, user_id=ALICE, amount=2_000_000, description="a")
    with pytest.raises(BudgetExceeded) as err:
        await budget.hold(job_key="b", guild_id=G, user_id=BOB, amount=2_000_000, description="b")
    assert "server" in err.value.message
    await budget.hold(job_key="c", guild_id=G, user_id=BOB, amount=1_000_000, description="c")
    assert (await budget.view(G, BOB)).remaining == 0


class Counting:
    """The transaction's own Queries, counting the statements sent through it (one round trip each on
    PostgreSQL, all of them inside the write lock)."""

    def __init__(self, tx) -> None:
        self.tx, self.sent = tx, []

    def __getattr__(self, name):
        method = getattr(self.tx, name)

        async def call(sql, params=()):
            self.sent.append(sql.split()[0].upper())
            return await method(sql, params)

        return call


async def _counted_hold(budget, db, key: str, amount: int) -> list[str]:
    async with db.transaction() as tx:
        counting = Counting(tx)
        await budget.tx_hold(counting, job_key=key, guild_id=G, user_id=ALICE, amount=amount, description=key)
    return counting.sent


async def test_a_hold_is_one_read_and_two_writes_with_or_without_a_cap(budget, db):
    await budget.hold(job_key="spent", guild_id=G, user_id=BOB, amount=1_000_000, description="bob's")
    assert await budget.capture("spent")
    assert await _counted_hold(budget, db, "a", 4_000_000) == ["SELECT", "INSERT", "INSERT"]
    assert await _counted_hold(budget, db, "a", 4_000_000) == ["SELECT"]  # the same job again: one hold
    await budget.set_guild_cap(G, 9_500_000)  # Bob's capture counts: 1 + 4 of 9.5 spent or held
    assert await _counted_hold(budget, db, "b", 4_000_000) == ["SELECT", "INSERT", "INSERT"]
    # 9 of 9.5 used: refused after the read, nothing written
    with pytest.raises(BudgetExceeded, match="server"):
        await _counted_hold(budget, db, "over", 1_000_000)
    assert await _counted_hold(budget, db, "fits", 500_000) == ["SELECT", "INSERT", "INSERT"]
    alice = await budget.view(G, ALICE)
    assert (alice.held, alice.spent) == (8_500_000, 0)
    with pytest.raises(BudgetExceeded, match="server"):  # Alice has $1.50 of her own left, the server nothing
        await _counted_hold(budget, db, "more", 100_000)


async def test_hold_in_one_month_captured_in_the_next(budget, clock):
    clock.set(datetime(2026, 11, 30, 23, 59, tzinfo=UTC))
    await budget.hold(job_key="late", guild_id=G, user_id=ALICE, amount=6_000_000, description="late")
    clock.set(datetime(2026, 12, 1, 0, 1, tzinfo=UTC))
    assert await budget.capture("late")
    december = await budget.view(G, ALICE)
    assert (december.period, december.spent, december.held, december.remaining) == (
        "2026-12",
        0,
        0,
        10_000_000,
    )
    _, november = await budget.report(G, "2026-11")
    assert [(r.user_id, r.spent, r.charges) for r in november] == [(ALICE, 6_000_000, 1)]


def test_period_keys_and_resets():
    when = datetime(2026, 12, 31, 23, 0, tzinfo=UTC)
    assert period_key(when, BudgetPeriod.MONTH) == "2026-12"
    assert period_end(when, BudgetPeriod.MONTH) == datetime(2027, 1, 1, tzinfo=UTC)
    assert period_key(when, BudgetPeriod.DAY) == "2026-12-31"
    assert period_end(when, BudgetPeriod.DAY) == datetime(2027, 1, 1, tzinfo=UTC)
    assert period_key(when, BudgetPeriod.WEEK) == "2026-W53"
    assert period_end(when, BudgetPeriod.WEEK) == datetime(2027, 1, 4, tzinfo=UTC)
    assert period_key(when, BudgetPeriod.NEVER) == "all"
    assert period_end(when, BudgetPeriod.NEVER) is None


@pytest.mark.parametrize(
    ("period", "good", "bad"),
    [
        (
            BudgetPeriod.MONTH,
            ["2026-11", "2027-01"],
            ["2026-13", "2026-00", "2026-11-25", "2026-W48", "all", "2026-1"],
        ),
        (BudgetPeriod.DAY, ["2026-11-25", "2024-02-29"], ["2026-02-30", "2026-11", "2026-W48", "2026-11-5"]),
        (
            BudgetPeriod.WEEK,
            ["2026-W48", "2026-W53"],
            ["2026-W54", "2027-W53", "2026-W00", "2026-11", "2026-W5"],
        ),
        (BudgetPeriod.NEVER, ["all"], ["2026-11", "ALL"]),
    ],
)
def test_a_report_period_is_a_real_period_of_the_bots_kind(period, good, bad):
    assert [k for k in good if is_period_key(k, period)] == good
    assert [k for k in bad if is_period_key(k, period)] == []


async def test_day_period_resets_spend(db, clock):
    daily = BudgetService(
        db, default_limit_micros=1_000_000, period=BudgetPeriod.DAY, max_limit_micros=10**9, clock=clock
    )
    await daily.hold(job_key="a", guild_id=G, user_id=ALICE, amount=1_000_000, description="a")
    await daily.capture("a")
    with pytest.raises(BudgetExceeded):
        await daily.hold(job_key="b", guild_id=G, user_id=ALICE, amount=1, description="b")
    clock.set(datetime(2026, 11, 26, 0, 0, 1, tzinfo=UTC))
    await daily.hold(job_key="b", guild_id=G, user_id=ALICE, amount=1_000_000, description="b")


async def test_fifty_concurrent_holds_grant_exactly_what_fits(budget):
    await budget.set_user_limit(G, ALICE, 3 * 560_000 + 100_000)
    results = await asyncio.gather(
        *(
            budget.hold(job_key=f"job-{i}", guild_id=G, user_id=ALICE, amount=560_000, description=f"job {i}")
            for i in range(50)
        ),
        return_exceptions=True,
    )
    granted = [r for r in results if r is None]
    refused = [r for r in results if isinstance(r, BudgetExceeded)]
    assert (len(granted), len(refused)) == (3, 47)
    view = await budget.view(G, ALICE)
    assert view.held == 3 * 560_000
    rows = await budget.store.ledger_rows(G, ALICE)
    assert sum(r.amount for r in rows if r.kind == "hold") == view.held
    assert len(rows) == 3


@pytest.mark.parametrize(
    "text",
    [
        "-5",
        "abc",
        "1e9",
        "999999",
        "",
        "$",
        "NaN",
        "1e30",
        "1e9999",
        "1e999999",
        "1e3",
        "5,00",
        "1,5",
        "-0",
        "-0.0000004",
        "--5",
        "+-5",
        "-+5",
        "1" * 400,
    ],
)
def test_parse_limit_refuses_bad_amounts(budget, text):
    with pytest.raises(UserError):
        budget.parse_limit(text)


def test_parse_limit_accepts_dollars(budget):
    assert budget.parse_limit("$12.50") == 12_500_000
    assert budget.parse_limit("0") == 0
    assert budget.parse_limit("1,000") == budget.parse_limit("1000.00") == budget.parse_limit("+1000 USD")
    assert budget.parse_limit(".5") == 500_000


@pytest.mark.parametrize("text", ["--5", "+-5", "-+5", "1e3", "5,00", "0", "-0", "1e999999"])
def test_an_adjustment_has_one_sign_and_plain_digits(budget, text):
    with pytest.raises(UserError):
        budget.parse_adjustment(text)


def test_an_adjustment_is_a_charge_or_a_credit(budget):
    assert budget.parse_adjustment("-2.50") == -2_500_000
    assert budget.parse_adjustment("- $2.50") == -2_500_000
    assert budget.parse_adjustment("+1,000") == budget.parse_adjustment("1000") == 1_000_000_000
