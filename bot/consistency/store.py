"""SQL for consistency: anchor faces, take scores, the per-channel auto re-roll default, and the lookups on
`jobs` that keep score jobs and automatic re-rolls to one per take."""

from __future__ import annotations

import json
import statistics

from bot.consistency.models import SCORE_KIND, StoredFace, StoredScore, VersionRecord
from bot.db import Database, Queries
from bot.takes.models import KIND as TAKE_KIND
from bot.takes.models import TAKE_KINDS


class ConsistencyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # Anchor faces ----------------------------------------------------------------------------------------
    async def put_face(
        self,
        version_id: int,
        angle_id: int | None,
        *,
        face_count: int,
        embedding: bytes | None,
        checks: list[dict[str, str]],
        now: float,
    ) -> None:
        await self.db.execute(
            "INSERT INTO anchor_faces(version_id, angle_id, face_count, embedding, checks, created_at)"
            " VALUES (?,?,?,?,?,?) ON CONFLICT (version_id, COALESCE(angle_id, 0)) DO UPDATE SET"
            " face_count=excluded.face_count, embedding=excluded.embedding, checks=excluded.checks,"
            " created_at=excluded.created_at",
            (version_id, angle_id, face_count, embedding, json.dumps(checks), now),
        )

    async def faces(self, version_id: int) -> list[StoredFace]:
        """The version's own face first, then its angles'."""
        rows = await self.db.fetchall(
            "SELECT * FROM anchor_faces WHERE version_id=? ORDER BY COALESCE(angle_id, 0), id", (version_id,)
        )
        return [
            StoredFace(
                version_id=int(r["version_id"]),
                angle_id=r["angle_id"],
                face_count=int(r["face_count"]),
                embedding=bytes(r["embedding"]) if r["embedding"] is not None else None,
                checks=json.loads(r["checks"] or "[]"),
            )
            for r in rows
        ]

    # Scores ----------------------------------------------------------------------------------------------
    async def put_score(self, s: StoredScore, now: float) -> None:
        await self.db.execute(
            "INSERT OR REPLACE INTO take_scores(take_id, anchor_version_id, verdict, score, median_distance,"
            " frames_sampled, frames_with_face, frames_matching, threshold, scored_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                s.take_id,
                s.anchor_version_id,
                s.verdict,
                s.score,
                s.median_distance,
                s.frames_sampled,
                s.frames_with_face,
                s.frames_matching,
                s.threshold,
                now,
            ),
        )

    async def score(self, take_id: int) -> StoredScore | None:
        row = await self.db.fetchone("SELECT * FROM take_scores WHERE take_id=?", (take_id,))
        if row is None:
            return None
        return StoredScore(**{k: row[k] for k in StoredScore.__dataclass_fields__})

    async def record(self, version_id: int) -> VersionRecord:
        rows = await self.db.fetchall(
            "SELECT verdict, score FROM take_scores WHERE anchor_version_id=?", (version_id,)
        )
        scores = [int(r["score"]) for r in rows if r["score"] is not None]
        return VersionRecord(
            takes_scored=len(rows),
            median_score=float(statistics.median(scores)) if scores else None,
            drifted=sum(1 for r in rows if r["verdict"] == "drift"),
            no_face=sum(1 for r in rows if r["verdict"] == "no_face"),
        )

    # Channel settings ------------------------------------------------------------------------------------
    async def auto_reroll(self, channel_id: int) -> bool | None:
        row = await self.db.fetchone(
            "SELECT auto_reroll FROM channel_consistency WHERE channel_id=?", (channel_id,)
        )
        return bool(row["auto_reroll"]) if row else None

    async def set_auto_reroll(self, guild_id: int, channel_id: int, on: bool, now: float) -> None:
        await self.db.execute(
            "INSERT INTO channel_consistency(channel_id, guild_id, auto_reroll, updated_at) VALUES (?,?,?,?)"
            " ON CONFLICT(channel_id) DO UPDATE SET auto_reroll=excluded.auto_reroll,"
            " updated_at=excluded.updated_at",
            (channel_id, guild_id, int(on), now),
        )

    # Lookups on jobs -------------------------------------------------------------------------------------
    @staticmethod
    async def score_job_of(q: Queries, take_id: int) -> int | None:
        row = await q.fetchone("SELECT id FROM jobs WHERE kind=? AND parent_id=?", (SCORE_KIND, take_id))
        return int(row["id"]) if row else None

    @staticmethod
    async def auto_reroll_of(q: Queries, take_id: int) -> int | None:
        """The automatic re-roll already queued for this take, if any."""
        row = await q.fetchone(
            "SELECT id FROM jobs WHERE kind=? AND json_extract(args, '$.auto_reroll_of')=?",
            (TAKE_KIND, take_id),
        )
        return int(row["id"]) if row else None

    async def unscored_takes(self, since: float, posted: str) -> list[int]:
        """Posted takes since `since` with no score job (the bot stopped between posting and queueing it)."""
        rows = await self.db.fetchall(
            "SELECT t.id FROM jobs t WHERE t.kind IN (?, ?) AND t.state=? AND t.finished_at >= ?"
            " AND NOT EXISTS (SELECT 1 FROM jobs s WHERE s.kind=? AND s.parent_id=t.id) ORDER BY t.id",
            (*TAKE_KINDS, posted, since, SCORE_KIND),
        )
        return [int(r["id"]) for r in rows]
