"""Budget periods in UTC: the key a ledger row belongs to and when the period resets."""

from __future__ import annotations

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


_KEY_FORMATS = {BudgetPeriod.MONTH: "%Y-%m", BudgetPeriod.DAY: "%Y-%m-%d", BudgetPeriod.WEEK: "%G-W%V-%u"}


def is_period_key(text: str, period: BudgetPeriod) -> bool:
    """True when `text` is the key of a real period of this kind ("2026-11" for months; not "2026-13", not a day's
    or a week's key): read as a date, it must give back the same key."""
    fmt = _KEY_FORMATS.get(period)
    if fmt is None:
        return text == "all"
    try:
        when = datetime.strptime(text + "-1" if period is BudgetPeriod.WEEK else text, fmt).replace(
            tzinfo=UTC
        )
    except ValueError:
        return False
    return period_key(when, period) == text


PERIOD_WORDS = {
    BudgetPeriod.MONTH: "per month (UTC)",
    BudgetPeriod.WEEK: "per week (UTC, from Monday)",
    BudgetPeriod.DAY: "per day (UTC)",
    BudgetPeriod.NEVER: "in all (it never resets)",
}


def period_words(period: BudgetPeriod) -> str:
    """How a limit's period reads after an amount: "$10.00 per month (UTC)"."""
    return PERIOD_WORDS[period]
