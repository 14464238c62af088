"""Budgets: per-user spending limits that cannot be overspent, however many commands arrive at once.

remaining = limit - spent - held, per guild, user and period. A hold is checked and written in one transaction;
capture and release are idempotent (a restart may repeat them). A capture is booked in the hold's period: a shot
started on the 31st and delivered on the 1st counts against the month it was started in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.budget.periods import is_period_key, period_end, period_key, period_words
from bot.budget.store import LedgerRow, LedgerStore
from bot.db import Database, Queries
from bot.errors import BudgetExceeded, UserError
from bot.money import format_usd, usd_to_micros
from bot.settings import BudgetPeriod


@dataclass(frozen=True)
class BudgetView:
    """What `/budget` shows for one user."""

    guild_id: int
    user_id: int
    period: str
    limit: int
    limit_source: str  # "user", "guild" or "default"
    spent: int
    held: int
    resets_at: datetime | None
    cap: int | None
    guild_spent: int
    guild_held: int
    recent: list[LedgerRow]
    per: str = "per month (UTC)"  # the period in words, after an amount

    @property
    def remaining(self) -> int:
        own = self.limit - self.spent - self.held
        if self.cap is not None:
            own = min(own, self.cap - self.guild_spent - self.guild_held)
        return max(0, own)


@dataclass(frozen=True)
class ReportRow:
    user_id: int
    spent: int
    held: int
    charges: int


class BudgetService:
    """The ledger's rules."""

    def __init__(
        self,
        db: Database,
        *,
        default_limit_micros: int,
        period: BudgetPeriod,
        max_limit_micros: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.store = LedgerStore(db)
        self.default_limit = default_limit_micros
        self.period = period
        self.max_limit = max_limit_micros
        self.clock = clock

    def current_period(self) -> str:
        """The period key of now."""
        return period_key(datetime.fromtimestamp(self.clock(), UTC), self.period)

    def period_words(self) -> str:
        """The period limits are counted in, after an amount: "per month (UTC)"."""
        return period_words(self.period)

    @staticmethod
    def _pick_limit(user_limit: int | None, guild_default: int | None, fallback: int) -> tuple[int, str]:
        if user_limit is not None:
            return user_limit, "user"
        if guild_default is not None:
            return guild_default, "guild"
        return fallback, "default"

    async def view(self, guild_id: int, user_id: int) -> BudgetView:
        """Return spend, holds, limit and what is left for a user this period."""
        period = self.current_period()
        user_limit, guild_default, cap = await self.store.limits(guild_id, user_id)
        limit, source = self._pick_limit(user_limit, guild_default, self.default_limit)
        mine = await self.store.user_totals(guild_id, user_id, period)
        guild = await self.store.guild_totals(guild_id, period)
        recent = await self.store.recent_charges(guild_id, user_id)
        return BudgetView(
            guild_id=guild_id,
            user_id=user_id,
            period=period,
            limit=limit,
            limit_source=source,
            spent=mine.spent,
            held=mine.held,
            resets_at=period_end(datetime.fromtimestamp(self.clock(), UTC), self.period),
            per=self.period_words(),
            cap=cap,
            guild_spent=guild.spent,
            guild_held=guild.held,
            recent=recent,
        )

    # Holds -----------------------------------------------------------------------------------------------
    async def tx_hold(
        self,
        conn: Queries,
        *,
        job_key: str,
        guild_id: int,
        user_id: int,
        amount: int,
        description: str,
    ) -> None:
        """Reserve `amount` inside the caller's transaction, or raise BudgetExceeded and write nothing.

        Runs inside `Database.run` (the engine's enqueue, `hold`): it awaits only `conn`'s statements.
        """
        if amount < 0:
            raise ValueError("a hold cannot be negative")
        period = self.current_period()
        facts = await LedgerStore.tx_hold_facts(conn, job_key, guild_id, user_id, period)
        if facts.existing is not None:
            return  # the same job asked twice: one hold is enough
        limit, _ = self._pick_limit(facts.user_limit, facts.guild_default, self.default_limit)
        left = limit - facts.mine.spent - facts.mine.held
        if amount > left:
            raise BudgetExceeded(
                f"That would cost {format_usd(amount)} but you have {format_usd(max(0, left))} left of your "
                f"{format_usd(limit)} budget this period; ask an admin to raise it with /budget-admin set."
            )
        if facts.cap is not None:
            guild_left = facts.cap - facts.guild.spent - facts.guild.held
            if amount > guild_left:
                raise BudgetExceeded(
                    f"That would cost {format_usd(amount)} but the server has {format_usd(max(0, guild_left))} left "
                    f"of its {format_usd(facts.cap)} cap this period; ask an admin to raise it with /budget-admin cap."
                )
        await LedgerStore.tx_insert_hold(
            conn,
            job_key=job_key,
            guild_id=guild_id,
            user_id=user_id,
            period=period,
            amount=amount,
            description=description,
            now=self.clock(),
        )

    async def hold(self, *, job_key: str, guild_id: int, user_id: int, amount: int, description: str) -> None:
        """Reserve `amount` for a job in its own transaction (see tx_hold)."""

        async def body(conn: Queries) -> None:
            await self.tx_hold(
                conn,
                job_key=job_key,
                guild_id=guild_id,
                user_id=user_id,
                amount=amount,
                description=description,
            )

        await self.db.run(body)

    async def tx_settle(self, conn: Queries, job_key: str, kind: str) -> bool:
        """Capture or release a job's hold; False (and no change) when there is none or it is already settled."""
        hold = await LedgerStore.tx_hold_state(conn, job_key)
        if hold is None or hold["state"] != "held":
            return False
        await LedgerStore.tx_settle_hold(conn, hold, kind, self.clock())
        return True

    async def reduce_hold(self, job_key: str, amount: int) -> bool:
        """Lower a held hold to `amount` (part of a job was not delivered); the difference is released now."""
        async with self.db.transaction() as conn:
            hold = await LedgerStore.tx_hold_state(conn, job_key)
            if hold is None or hold["state"] != "held" or not 0 <= amount < hold["amount"]:
                return False
            await LedgerStore.tx_reduce_hold(conn, hold, amount, self.clock())
            return True

    async def capture(self, job_key: str) -> bool:
        """Turn the job's hold into a charge (idempotent)."""
        return await self.db.run(lambda conn: self.tx_settle(conn, job_key, "capture"))

    async def release(self, job_key: str) -> bool:
        """Return the job's hold (idempotent)."""
        return await self.db.run(lambda conn: self.tx_settle(conn, job_key, "release"))

    # Admin -----------------------------------------------------------------------------------------------
    def parse_limit(self, text: str) -> int:
        """Parse a dollar limit typed by an admin; raise a UserError for junk, negative or absurd amounts."""
        micros = self._parse_amount(text)
        if micros < 0 or text.strip().startswith("-"):  # "-0" too: a sign says what was meant
            raise UserError("A limit cannot be negative; type 0 to stop someone spending.")
        return micros

    def parse_adjustment(self, text: str) -> int:
        """Parse a signed dollar amount for an adjustment (not zero, not beyond the largest limit either way)."""
        micros = self._parse_amount(text)
        if micros == 0:
            raise UserError("An adjustment of $0.00 changes nothing; type an amount like 2.50 or -2.50.")
        return micros

    def _parse_amount(self, text: str) -> int:
        """A dollar amount (one sign at most) within the largest limit either way; UserError otherwise."""
        largest = f"the largest limit this bot allows ({format_usd(self.max_limit)}); type a smaller amount."
        try:
            micros = usd_to_micros(text)
        except ValueError as exc:
            if "out of range" in str(exc):
                raise UserError(f"That is more than {largest}") from None
            raise UserError(
                f"'{text[:40]}' is not an amount in dollars; type something like 25 or 12.50."
            ) from None
        if abs(micros) > self.max_limit:
            raise UserError(f"{format_usd(abs(micros))} is more than {largest}")
        return micros

    async def set_user_limit(self, guild_id: int, user_id: int, micros: int) -> None:
        await self.store.set_user_limit(guild_id, user_id, micros)

    async def set_guild_default(self, guild_id: int, micros: int) -> None:
        await self.store.set_guild_default(guild_id, micros)

    async def set_guild_cap(self, guild_id: int, micros: int | None) -> None:
        await self.store.set_guild_cap(guild_id, micros)

    async def adjust(self, guild_id: int, user_id: int, micros: int, description: str, actor_id: int) -> None:
        """Book an admin adjustment (positive charges, negative credits) in the current period."""
        await self.store.insert_adjustment(
            guild_id=guild_id,
            user_id=user_id,
            period=self.current_period(),
            amount=micros,
            description=description,
            actor_id=actor_id,
            now=self.clock(),
        )

    async def report(self, guild_id: int, period: str | None = None) -> tuple[str, list[ReportRow]]:
        """Return the period and each user's spend in it."""
        period = (period or self.current_period()).strip()
        if not is_period_key(period, self.period):
            raise UserError(
                f"'{period[:20]}' is not a period; use the form {self.current_period()} (or leave it empty for now)."
            )
        rows = await self.store.report(guild_id, period)
        return period, [ReportRow(*r) for r in rows]
