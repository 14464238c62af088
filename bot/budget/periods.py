"""Budget periods in UTC: the key a ledger row belongs to and when the period resets."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from bot.settings import BudgetPeriod


def period_key(when: datetime, period: BudgetPeriod) -> str:
    """Return the period a moment falls in, e.g. '2026-11', '2026-11-25', '2026-W48' or 'all'."""
    when = when.astimezone(UTC)
    if period is BudgetPeriod.MONTH:
        return f"{when.year:04d}-{when.month:02d}"
    if period is BudgetPeriod.DAY:
        return when.strftime("%Y-%m-%d")
    if period is BudgetPeriod.WEEK:
        year, week, _ = when.isocalendar()
        return f"{year:04d}-W{week:02d}"
    return "all"


def period_end(when: datetime, period: BudgetPeriod) -> datetime | None:
    """Return the first moment of the next period (None when budgets never reset)."""
    when = when.astimezone(UTC)
    day = when.replace(hour=0, minute=0, second=0, microsecond=0)
    if period is BudgetPeriod.DAY:
        return day + timedelta(days=1)
    if period is BudgetPeriod.WEEK:
        return day + timedelta(days=7 - day.weekday())
    if period is BudgetPeriod.MONTH:
        first = day.replace(day=1)
        return (
            first.replace(year=first.year + 1, month=1)
            if first.month == 12
            else first.replace(month=first.month + 1)
        )
    return None


def is_period_key(text: str) -> bool:
    """True for a string shaped like a period key of any kind."""
    return bool(re.fullmatch(r"\d{4}-\d{2}|\d{4}-\d{2}-\d{2}|\d{4}-W\d{2}|all", text))


PERIOD_WORDS = {
    BudgetPeriod.MONTH: "per month (UTC)",
    BudgetPeriod.WEEK: "per week (UTC, from Monday)",
    BudgetPeriod.DAY: "per day (UTC)",
    BudgetPeriod.NEVER: "in all (it never resets)",
}


def period_words(period: BudgetPeriod) -> str:
    """How a limit's period reads after an amount: "$10.00 per month (UTC)"."""
    return PERIOD_WORDS[period]
