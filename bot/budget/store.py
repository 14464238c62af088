"""Budget storage: limits, holds and the ledger journal. Amounts are micro-dollars."""

from __future__ import annotations

from dataclasses import dataclass

from bot.db import Database, Queries, Row


@dataclass(frozen=True)
class Totals:
    """One user's (or a guild's) sums for a period."""

    spent: int
    held: int


@dataclass(frozen=True)
class HoldFacts:
    """What a new hold is checked against: an earlier hold of the same job (its state), the limits, the sums."""

    existing: str | None
    user_limit: int | None
    guild_default: int | None
    cap: int | None
    mine: Totals
    guild: Totals  # zero when the guild has no cap (not summed then)


@dataclass(frozen=True)
class LedgerRow:
    """One journal entry."""

    id: int
    user_id: int
    kind: str
    amount: int
    job_key: str | None
    description: str
    created_at: float


class LedgerStore:
    """SQL for budgets; callers compose these inside `db.transaction()` where a check must be atomic."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # Limits -----------------------------------------------------------------------------------------------
    _USER_LIMIT = "(SELECT limit_micros FROM user_limits WHERE guild_id=:g AND user_id=:u)"
    _GUILD_DEFAULT = "(SELECT default_limit_micros FROM guild_budgets WHERE guild_id=:g)"
    _CAP = "(SELECT cap_micros FROM guild_budgets WHERE guild_id=:g)"
    _LIMITS = f"SELECT {_USER_LIMIT} AS user_limit, {_GUILD_DEFAULT} AS guild_default, {_CAP} AS cap"

    async def limits(self, guild_id: int, user_id: int) -> tuple[int | None, int | None, int | None]:
        """Return (user override, guild default, guild cap)."""
        row = await self.db.fetchone(self._LIMITS, {"g": guild_id, "u": user_id})
        assert row is not None
        return row["user_limit"], row["guild_default"], row["cap"]

    async def set_user_limit(self, guild_id: int, user_id: int, micros: int | None) -> None:
        """Set (or with None, remove) a user's own limit."""
        if micros is None:
            await self.db.execute(
                "DELETE FROM user_limits WHERE guild_id=? AND user_id=?", (guild_id, user_id)
            )
        else:
            await self.db.execute(
                "INSERT INTO user_limits(guild_id, user_id, limit_micros) VALUES (?,?,?)"
                " ON CONFLICT(guild_id, user_id) DO UPDATE SET limit_micros=excluded.limit_micros",
                (guild_id, user_id, micros),
            )

    async def set_guild_default(self, guild_id: int, micros: int | None) -> None:
        """Set the guild's default per-user limit."""
        await self.db.execute(
            "INSERT INTO guild_budgets(guild_id, default_limit_micros) VALUES (?,?)"
            " ON CONFLICT(guild_id) DO UPDATE SET default_limit_micros=excluded.default_limit_micros",
            (guild_id, micros),
        )

    async def set_guild_cap(self, guild_id: int, micros: int | None) -> None:
        """Set (or with None, remove) the guild-wide cap per period."""
        await self.db.execute(
            "INSERT INTO guild_budgets(guild_id, cap_micros) VALUES (?,?)"
            " ON CONFLICT(guild_id) DO UPDATE SET cap_micros=excluded.cap_micros",
            (guild_id, micros),
        )

    # Sums -------------------------------------------------------------------------------------------------
    _SPENT = (
        "(SELECT COALESCE(SUM(amount),0) FROM ledger WHERE guild_id=:g{who} AND period=:p"
        " AND kind IN ('capture','adjustment'))"
    )
    _HELD = (
        "(SELECT COALESCE(SUM(amount),0) FROM holds WHERE guild_id=:g{who} AND period=:p AND state='held')"
    )
    _USER_SPENT, _USER_HELD = (_SPENT.format(who=" AND user_id=:u"), _HELD.format(who=" AND user_id=:u"))
    _GUILD_SPENT, _GUILD_HELD = (_SPENT.format(who=""), _HELD.format(who=""))
    _USER_TOTALS = f"SELECT {_USER_SPENT} AS spent, {_USER_HELD} AS held"
    _GUILD_TOTALS = f"SELECT {_GUILD_SPENT} AS spent, {_GUILD_HELD} AS held"

    async def user_totals(self, guild_id: int, user_id: int, period: str) -> Totals:
        row = await self.db.fetchone(self._USER_TOTALS, {"g": guild_id, "u": user_id, "p": period})
        assert row is not None
        return Totals(spent=row["spent"], held=row["held"])

    async def guild_totals(self, guild_id: int, period: str) -> Totals:
        row = await self.db.fetchone(self._GUILD_TOTALS, {"g": guild_id, "p": period})
        assert row is not None
        return Totals(spent=row["spent"], held=row["held"])

    async def report(self, guild_id: int, period: str) -> list[tuple[int, int, int, int]]:
        """Return (user_id, spent, held, shots charged) per user for the period, biggest spender first."""
        rows = await self.db.fetchall(
            "SELECT user_id,"
            " SUM(CASE WHEN src='l' THEN amount ELSE 0 END) AS spent,"
            " SUM(CASE WHEN src='h' THEN amount ELSE 0 END) AS held,"
            " SUM(CASE WHEN src='l' AND kind='capture' THEN 1 ELSE 0 END) AS charges"
            " FROM ("
            "   SELECT user_id, amount, kind, 'l' AS src FROM ledger"
            "     WHERE guild_id=:g AND period=:p AND kind IN ('capture','adjustment')"
            "   UNION ALL"
            "   SELECT user_id, amount, 'hold' AS kind, 'h' AS src FROM holds"
            "     WHERE guild_id=:g AND period=:p AND state='held'"
            " ) AS spend GROUP BY user_id ORDER BY spent DESC, user_id",
            {"g": guild_id, "p": period},
        )
        return [(r["user_id"], r["spent"], r["held"], r["charges"]) for r in rows]

    async def recent_charges(self, guild_id: int, user_id: int, limit: int = 5) -> list[LedgerRow]:
        """Return the user's last charges and adjustments, newest first."""
        rows = await self.db.fetchall(
            "SELECT id, user_id, kind, amount, job_key, description, created_at FROM ledger"
            " WHERE guild_id=? AND user_id=? AND kind IN ('capture','adjustment')"
            " ORDER BY id DESC LIMIT ?",
            (guild_id, user_id, limit),
        )
        return [LedgerRow(**dict(r)) for r in rows]

    async def ledger_rows(self, guild_id: int, user_id: int | None = None) -> list[LedgerRow]:
        """Return every journal row of a guild (optionally one user), oldest first."""
        sql = (
            "SELECT id, user_id, kind, amount, job_key, description, created_at FROM ledger WHERE guild_id=?"
        )
        params: list[object] = [guild_id]
        if user_id is not None:
            sql += " AND user_id=?"
            params.append(user_id)
        rows = await self.db.fetchall(sql + " ORDER BY id", params)
        return [LedgerRow(**dict(r)) for r in rows]

    # Holds ------------------------------------------------------------------------------------------------
    # made of the constant fragments above; every value is a parameter
    _HOLD_FACTS = (
        "SELECT (SELECT state FROM holds WHERE job_key=:k) AS existing,"  # noqa: S608
        f" {_USER_LIMIT} AS user_limit, {_GUILD_DEFAULT} AS guild_default, {_CAP} AS cap,"
        f" {_USER_SPENT} AS spent, {_USER_HELD} AS held,"
        f" CASE WHEN {_CAP} IS NULL THEN 0 ELSE {_GUILD_SPENT} END AS guild_spent,"
        f" CASE WHEN {_CAP} IS NULL THEN 0 ELSE {_GUILD_HELD} END AS guild_held"
    )

    @classmethod
    async def tx_hold_facts(
        cls, conn: Queries, job_key: str, guild_id: int, user_id: int, period: str
    ) -> HoldFacts:
        """Everything a new hold is checked against, in one read (a round trip each counts on PostgreSQL, where
        the hold's transaction holds the write lock): the guild's sums only when it has a cap."""
        row = await conn.fetchone(cls._HOLD_FACTS, {"k": job_key, "g": guild_id, "u": user_id, "p": period})
        assert row is not None
        return HoldFacts(
            existing=row["existing"],
            user_limit=row["user_limit"],
            guild_default=row["guild_default"],
            cap=row["cap"],
            mine=Totals(spent=row["spent"], held=row["held"]),
            guild=Totals(spent=row["guild_spent"], held=row["guild_held"]),
        )

    @staticmethod
    async def tx_hold_state(conn: Queries, job_key: str) -> Row | None:
        return await conn.fetchone("SELECT * FROM holds WHERE job_key=?", (job_key,))

    _INSERT_HOLD = (
        "INSERT INTO holds(job_key, guild_id, user_id, period, amount, description, state, created_at)"
        " VALUES (?,?,?,?,?,?,'held',?)"
    )
    _JOURNAL_HOLD = (
        "INSERT INTO ledger(guild_id, user_id, period, kind, amount, job_key, description, created_at)"
        " VALUES (?,?,?,'hold',?,?,?,?)"
    )

    @staticmethod
    async def tx_insert_hold(
        conn: Queries,
        *,
        job_key: str,
        guild_id: int,
        user_id: int,
        period: str,
        amount: int,
        description: str,
        now: float,
    ) -> None:
        await conn.execute(
            LedgerStore._INSERT_HOLD, (job_key, guild_id, user_id, period, amount, description, now)
        )
        await conn.execute(
            LedgerStore._JOURNAL_HOLD, (guild_id, user_id, period, amount, job_key, description, now)
        )

    @staticmethod
    async def tx_settle_hold(conn: Queries, hold: Row, kind: str, now: float) -> None:
        """Turn a held hold into a capture or release (the caller checked it is still held)."""
        state = "captured" if kind == "capture" else "released"
        await conn.execute(
            "UPDATE holds SET state=?, settled_at=? WHERE job_key=? AND state='held'",
            (state, now, hold["job_key"]),
        )
        await conn.execute(
            "INSERT INTO ledger(guild_id, user_id, period, kind, amount, job_key, description, created_at)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (
                hold["guild_id"],
                hold["user_id"],
                hold["period"],
                kind,
                hold["amount"],
                hold["job_key"],
                hold["description"],
                now,
            ),
        )

    @staticmethod
    async def tx_reduce_hold(conn: Queries, hold: Row, amount: int, now: float) -> None:
        """Lower a held hold to `amount`, with a release row for the part given back."""
        await conn.execute(
            "UPDATE holds SET amount=? WHERE job_key=? AND state='held'", (amount, hold["job_key"])
        )
        await conn.execute(
            "INSERT INTO ledger(guild_id, user_id, period, kind, amount, job_key, description, created_at)"
            " VALUES (?,?,?,'release',?,?,?,?)",
            (
                hold["guild_id"],
                hold["user_id"],
                hold["period"],
                hold["amount"] - amount,
                hold["job_key"],
                hold["description"] + " (not delivered)",
                now,
            ),
        )

    async def insert_adjustment(
        self,
        *,
        guild_id: int,
        user_id: int,
        period: str,
        amount: int,
        description: str,
        actor_id: int,
        now: float,
    ) -> None:
        await self.db.execute(
            "INSERT INTO ledger(guild_id, user_id, period, kind, amount, description, actor_id, created_at)"
            " VALUES (?,?,?,'adjustment',?,?,?,?)",
            (guild_id, user_id, period, amount, description, actor_id, now),
        )
