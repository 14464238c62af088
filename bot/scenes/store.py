"""SQL for scenes: scenes, their shots in order (and which take each keeps), plans, and the lookups on `jobs`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from bot.db import ROW_ID_MAX, Database, Queries, Row
from bot.jobs import JobState
from bot.scenes.models import Plan, PlannedShot, Scene, SceneShot


class AlreadyDone(Exception):
    """A write that must happen once found it done (a plan confirmed, a storyboard part already cut)."""


@dataclass(frozen=True)
class TakeStats:
    """A shot's takes: how many were tried and what they cost (captured spend)."""

    tried: int
    spent: int
    seconds: int


def _scene(row: Row) -> Scene:
    return Scene(**{k: row[k] for k in Scene.__dataclass_fields__})


def _shot(row: Row) -> SceneShot:
    return SceneShot(**{k: row[k] for k in SceneShot.__dataclass_fields__})


def _plan(row: Row) -> Plan:
    values = {k: row[k] for k in Plan.__dataclass_fields__ if k != "shots"}
    shots = tuple(PlannedShot(s["prompt"], int(s["duration_s"])) for s in json.loads(row["shots"]))
    return Plan(
        shots=shots, **{**values, "one_call": bool(values["one_call"]), "audio": bool(values["audio"])}
    )


class SceneStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # Scenes ----------------------------------------------------------------------------------------------
    async def open_scene(self, channel_id: int) -> Scene | None:
        row = await self.db.fetchone(
            "SELECT * FROM scenes WHERE channel_id=? AND ended_at IS NULL", (channel_id,)
        )
        return _scene(row) if row else None

    async def scene(self, scene_id: int) -> Scene | None:
        row = await self.db.fetchone("SELECT * FROM scenes WHERE id=?", (scene_id,))
        return _scene(row) if row else None

    async def by_name(self, channel_id: int, name: str) -> Scene | None:
        """The newest scene of the channel with this name (case-insensitive)."""
        row = await self.db.fetchone(
            "SELECT * FROM scenes WHERE channel_id=? AND lower(name)=lower(?) ORDER BY id DESC LIMIT 1",
            (channel_id, name),
        )
        return _scene(row) if row else None

    async def newest(self, channel_id: int) -> Scene | None:
        row = await self.db.fetchone(
            "SELECT * FROM scenes WHERE channel_id=? ORDER BY id DESC LIMIT 1", (channel_id,)
        )
        return _scene(row) if row else None

    async def in_channel(self, channel_id: int, limit: int = 25) -> list[Scene]:
        rows = await self.db.fetchall(
            "SELECT * FROM scenes WHERE channel_id=? ORDER BY id DESC LIMIT ?", (channel_id, limit)
        )
        return [_scene(r) for r in rows]

    async def start(self, *, guild_id: int, channel_id: int, name: str, user_id: int, now: float) -> int:
        """A new open scene (the unique index refuses a second open one in the channel)."""
        return await self.db.insert(
            "INSERT INTO scenes(guild_id, channel_id, name, started_by, started_at) VALUES (?,?,?,?,?)",
            (guild_id, channel_id, name, user_id, now),
        )

    async def end(self, scene_id: int, *, user_id: int, now: float) -> bool:
        return (
            await self.db.changed(
                "UPDATE scenes SET ended_at=?, ended_by=? WHERE id=? AND ended_at IS NULL",
                (now, user_id, scene_id),
            )
            == 1
        )

    # Shots -----------------------------------------------------------------------------------------------
    async def shots(self, scene_id: int) -> list[SceneShot]:
        rows = await self.db.fetchall(
            "SELECT * FROM scene_shots WHERE scene_id=? ORDER BY position", (scene_id,)
        )
        return [_shot(r) for r in rows]

    async def kept_take_ids(self) -> list[int]:
        """Every take kept for a shot of any scene (open or ended: a scene can be exported for good)."""
        rows = await self.db.fetchall("SELECT kept_take_id FROM scene_shots WHERE kept_take_id IS NOT NULL")
        return [int(r[0]) for r in rows]

    async def shot_of_take(self, q: Queries, root_id: int) -> SceneShot | None:
        row = await q.fetchone("SELECT * FROM scene_shots WHERE take_id=?", (root_id,))
        return _shot(row) if row else None

    async def storyboard_shots(self, storyboard_id: int) -> list[SceneShot]:
        rows = await self.db.fetchall(
            "SELECT * FROM scene_shots WHERE storyboard_id=? ORDER BY position", (storyboard_id,)
        )
        return [_shot(r) for r in rows]

    async def drop_reserved(self, storyboard_id: int) -> int:
        """Remove a storyboard's shots that were never cut (it failed or was cancelled); returns how many."""
        return await self.db.changed(
            "DELETE FROM scene_shots WHERE storyboard_id=? AND take_id IS NULL AND kept_take_id IS NULL",
            (storyboard_id,),
        )

    async def drop_reserved_of_ended(self) -> int:
        """`drop_reserved` for every storyboard that failed or was cancelled (one statement, at start-up)."""
        return await self.db.changed(
            "DELETE FROM scene_shots WHERE take_id IS NULL AND kept_take_id IS NULL AND storyboard_id IN"
            " (SELECT id FROM jobs WHERE state IN (?, ?))",
            (str(JobState.FAILED), str(JobState.CANCELLED)),
        )

    async def shot(self, shot_id: int) -> SceneShot | None:
        row = await self.db.fetchone("SELECT * FROM scene_shots WHERE id=?", (shot_id,))
        return _shot(row) if row else None

    @staticmethod
    async def add_shots(
        q: Queries,
        scene_id: int,
        shots: Sequence[tuple[int | None, str, int]],
        now: float,
        *,
        storyboard_id: int | None = None,
    ) -> list[int]:
        """Append shots (take id or None, prompt, seconds) at the end of the scene, in order (a storyboard's with
        no take yet: its parts are cut later); returns their ids."""
        row = await q.fetchone(
            "SELECT COALESCE(MAX(position), 0) AS n FROM scene_shots WHERE scene_id=?", (scene_id,)
        )
        start = int(row["n"]) if row else 0
        ids = []
        for k, (take_id, prompt, seconds) in enumerate(shots, 1):
            ids.append(
                await q.execute(
                    "INSERT INTO scene_shots(scene_id, position, take_id, storyboard_id, prompt, duration_s,"
                    " created_at) VALUES (?,?,?,?,?,?,?)",
                    (scene_id, start + k, take_id, storyboard_id, prompt, seconds, now),
                )
            )
        return ids

    @staticmethod
    async def fill_shot(q: Queries, shot_id: int, take_id: int) -> None:
        """A reserved shot (a storyboard's part) gets its take, once; raises AlreadyDone when it has one."""
        if (
            await q.changed(
                "UPDATE scene_shots SET take_id=? WHERE id=? AND take_id IS NULL", (take_id, shot_id)
            )
            != 1
        ):
            raise AlreadyDone(f"scene shot {shot_id} has its take already")

    async def keep(self, shot_id: int, take_id: int, *, user_id: int, now: float) -> int | None:
        """Keep `take_id` for the shot; return the take it replaces (None if none was kept)."""
        async with self.db.transaction() as tx:
            row = await tx.fetchone("SELECT kept_take_id FROM scene_shots WHERE id=?", (shot_id,))
            previous = row["kept_take_id"] if row else None
            await tx.execute(
                "UPDATE scene_shots SET kept_take_id=?, kept_by=?, kept_at=? WHERE id=?",
                (take_id, user_id, now, shot_id),
            )
        return int(previous) if previous is not None and previous != take_id else None

    async def take_stats(self, root_ids: list[int]) -> dict[int, TakeStats]:
        """Per shot (by its first take's id): takes tried, seconds and spend captured, re-rolls included."""
        if not root_ids:
            return {}
        marks = ",".join("?" for _ in root_ids)
        rows = await self.db.fetchall(
            f"SELECT COALESCE(j.parent_id, j.id) AS root, COUNT(*) AS tried,"  # noqa: S608
            " COALESCE(SUM(l.amount), 0) AS spent, COALESCE(SUM(json_extract(j.args, '$.duration_s')), 0) AS secs"
            " FROM jobs j LEFT JOIN ledger l ON l.job_key = j.ledger_key AND l.kind = 'capture'"
            f" WHERE j.kind IN ('take', 'part') AND COALESCE(j.parent_id, j.id) IN ({marks})"
            " GROUP BY COALESCE(j.parent_id, j.id)",
            tuple(root_ids),
        )
        return {int(r["root"]): TakeStats(int(r["tried"]), int(r["spent"]), int(r["secs"])) for r in rows}

    async def storyboard_spend(self, scene_id: int) -> int:
        """What the scene's storyboards cost (their parts are free takes)."""
        row = await self.db.fetchone(
            "SELECT COALESCE(SUM(l.amount), 0) AS n FROM jobs j JOIN ledger l ON l.job_key = j.ledger_key"
            " AND l.kind = 'capture' WHERE j.kind = 'storyboard' AND json_extract(j.args, '$.scene_id') = ?",
            (scene_id,),
        )
        return int(row["n"]) if row else 0

    # Plans -----------------------------------------------------------------------------------------------
    async def add_plan(self, plan: Plan) -> int:
        return await self.db.insert(
            "INSERT INTO scene_plans(scene_id, guild_id, channel_id, user_id, shots, one_call, audio, price_micros,"
            " created_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                plan.scene_id,
                plan.guild_id,
                plan.channel_id,
                plan.user_id,
                json.dumps([{"prompt": s.prompt, "duration_s": s.duration_s} for s in plan.shots]),
                int(plan.one_call),
                int(plan.audio),
                plan.price_micros,
                plan.created_at,
                plan.expires_at,
            ),
        )

    async def plan(self, plan_id: int) -> Plan | None:
        if not 0 < plan_id <= ROW_ID_MAX:
            return None
        row = await self.db.fetchone("SELECT * FROM scene_plans WHERE id=?", (plan_id,))
        return _plan(row) if row else None

    @staticmethod
    async def confirm(q: Queries, plan_id: int, now: float) -> None:
        """Mark the plan confirmed, once (raises AlreadyDone): in the transaction that queues its jobs."""
        if (
            await q.changed(
                "UPDATE scene_plans SET confirmed_at=? WHERE id=? AND confirmed_at IS NULL", (now, plan_id)
            )
            != 1
        ):
            raise AlreadyDone(f"plan {plan_id} is confirmed already")
