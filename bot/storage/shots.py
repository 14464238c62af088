"""Shot storage: one row per take; every state change is a row update."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

import aiosqlite

from bot.storage.database import Database, tx_execute, tx_fetchone

FINAL_STATES = ("posted", "failed", "cancelled")
IN_FLIGHT_STATES = ("submitted", "running", "completed", "downloaded")


def shot_job_key(shot_id: int) -> str:
    """The ledger key of a take's hold."""
    return f"shot:{shot_id}"


@dataclass(frozen=True)
class Shot:
    """One take of a shot, as stored."""

    id: int
    guild_id: int
    channel_id: int
    user_id: int
    root_shot_id: int | None
    take: int
    prompt: str
    negative_prompt: str | None
    duration_s: int
    aspect_ratio: str
    audio: int
    anchor_version_id: int
    endpoint: str
    backend: str
    price_micros: int
    state: str
    request_id: str | None
    queue_position: int | None
    progress_message_id: int | None
    reply_to_message_id: int | None
    clip_message_id: int | None
    upload_limit_bytes: int | None
    output_url: str | None
    clip_path: str | None
    error: str | None
    created_at: float
    submitted_at: float | None
    started_at: float | None
    completed_at: float | None
    finished_at: float | None
    updated_at: float

    @property
    def job_key(self) -> str:
        """The ledger key of this take's hold."""
        return shot_job_key(self.id)

    @property
    def root_id(self) -> int:
        return self.root_shot_id or self.id

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES


_COLUMNS = [f.name for f in fields(Shot)]


def _shot(row: aiosqlite.Row) -> Shot:
    return Shot(**{k: row[k] for k in _COLUMNS})


class ShotStore:
    """SQL for shots."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    async def tx_insert(conn: aiosqlite.Connection, values: dict[str, object]) -> int:
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        return await tx_execute(conn, f"INSERT INTO shots({cols}) VALUES ({marks})", tuple(values.values()))  # noqa: S608

    @staticmethod
    async def tx_get(conn: aiosqlite.Connection, shot_id: int) -> Shot | None:
        row = await tx_fetchone(conn, "SELECT * FROM shots WHERE id=?", (shot_id,))
        return _shot(row) if row else None

    @staticmethod
    async def tx_update(conn: aiosqlite.Connection, shot_id: int, values: dict[str, object]) -> None:
        unknown = set(values) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"unknown shot columns {unknown}")
        sets = ", ".join(f"{k}=?" for k in values)
        await tx_execute(conn, f"UPDATE shots SET {sets} WHERE id=?", (*values.values(), shot_id))  # noqa: S608

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
    async def tx_next_take(conn: aiosqlite.Connection, root_id: int) -> int:
        row = await tx_fetchone(
            conn,
            "SELECT COALESCE(MAX(take), 0) + 1 AS t FROM shots WHERE id=? OR root_shot_id=?",
            (root_id, root_id),
        )
        return int(row["t"]) if row else 2
