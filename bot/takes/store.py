"""Shot storage: one row per take; every state change is a row update."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields

from bot.db import Database, Queries, Row
from bot.takes.models import IN_FLIGHT_STATES, Shot

_COLUMNS = [f.name for f in fields(Shot)]


def _shot(row: Row) -> Shot:
    return Shot(**{k: row[k] for k in _COLUMNS})


class ShotStore:
    """SQL for shots."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    async def tx_insert(conn: Queries, values: dict[str, object]) -> int:
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        return await conn.execute(f"INSERT INTO shots({cols}) VALUES ({marks})", tuple(values.values()))  # noqa: S608

    @staticmethod
    async def tx_get(conn: Queries, shot_id: int) -> Shot | None:
        row = await conn.fetchone("SELECT * FROM shots WHERE id=?", (shot_id,))
        return _shot(row) if row else None

    @staticmethod
    async def tx_update(conn: Queries, shot_id: int, values: dict[str, object]) -> None:
        unknown = set(values) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"unknown shot columns {unknown}")
        sets = ", ".join(f"{k}=?" for k in values)
        await conn.execute(f"UPDATE shots SET {sets} WHERE id=?", (*values.values(), shot_id))  # noqa: S608

    async def get(self, shot_id: int) -> Shot | None:
        row = await self.db.fetchone("SELECT * FROM shots WHERE id=?", (shot_id,))
        return _shot(row) if row else None

    async def by_clip_message(self, message_id: int) -> Shot | None:
        row = await self.db.fetchone("SELECT * FROM shots WHERE clip_message_id=?", (message_id,))
        return _shot(row) if row else None

    async def by_states(self, states: Iterable[str]) -> list[Shot]:
        states = tuple(states)
        marks = ", ".join("?" for _ in states)
        rows = await self.db.fetchall(f"SELECT * FROM shots WHERE state IN ({marks}) ORDER BY id", states)  # noqa: S608
        return [_shot(r) for r in rows]

    async def in_flight_counts(self) -> tuple[int, dict[int, int]]:
        """Return (global count, per-user counts) of shots at the backend or being delivered."""
        marks = ", ".join("?" for _ in IN_FLIGHT_STATES)
        rows = await self.db.fetchall(
            f"SELECT user_id, COUNT(*) AS n FROM shots WHERE state IN ({marks}) GROUP BY user_id",  # noqa: S608
            IN_FLIGHT_STATES,
        )
        per_user = {r["user_id"]: r["n"] for r in rows}
        return sum(per_user.values()), per_user

    async def state_counts(self) -> dict[str, int]:
        rows = await self.db.fetchall("SELECT state, COUNT(*) AS n FROM shots GROUP BY state")
        return {r["state"]: r["n"] for r in rows}

    @staticmethod
    async def tx_next_take(conn: Queries, root_id: int) -> int:
        row = await conn.fetchone(
            "SELECT COALESCE(MAX(take), 0) + 1 AS t FROM shots WHERE id=? OR root_shot_id=?",
            (root_id, root_id),
        )
        return int(row["t"]) if row else 2
