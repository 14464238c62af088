"""SQL for consistency: anchor faces, take scores, the per-channel auto re-roll default, and the lookups on
`jobs` that keep score jobs and automatic re-rolls to one per take."""

from __future__ import annotations

import json
import statistics

from bot.consistency.models import SCORE_KIND, CastRecord, CastScore, StoredFace, StoredScore, VersionRecord
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
        box: tuple[int, int, int, int] | None = None,
    ) -> None:
        await self.db.execute(
            "INSERT INTO anchor_faces(version_id, angle_id, face_count, embedding, checks, created_at, box)"
            " VALUES (?,?,?,?,?,?,?) ON CONFLICT (version_id, COALESCE(angle_id, 0)) DO UPDATE SET"
            " face_count=excluded.face_count, embedding=excluded.embedding, checks=excluded.checks,"
            " created_at=excluded.created_at, box=excluded.box",
            (
                version_id,
                angle_id,
                face_count,
                embedding,
                json.dumps(checks),
                now,
                json.dumps(list(box)) if box else None,
            ),
        )

    async def face_box(self, version_id: int) -> tuple[bool, tuple[int, int, int, int] | None]:
        """(whether the version's own face was looked for, the box found at intake if any)."""
        row = await self.db.fetchone(
            "SELECT box FROM anchor_faces WHERE version_id=? AND angle_id IS NULL", (version_id,)
        )
        if row is None:
            return False, None
        box = json.loads(row["box"]) if row["box"] else None
        return True, (int(box[0]), int(box[1]), int(box[2]), int(box[3])) if box else None

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
            "INSERT INTO take_scores(take_id, anchor_version_id, verdict, score, median_distance,"
            " frames_sampled, frames_with_face, frames_matching, threshold, scored_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT (take_id) DO UPDATE SET"
            " anchor_version_id = excluded.anchor_version_id, verdict = excluded.verdict, score = excluded.score,"
            " median_distance = excluded.median_distance, frames_sampled = excluded.frames_sampled,"
            " frames_with_face = excluded.frames_with_face, frames_matching = excluded.frames_matching,"
            " threshold = excluded.threshold, scored_at = excluded.scored_at",
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

    async def put_cast_scores(self, take_id: int, scores: list[CastScore], now: float) -> None:
        async with self.db.transaction() as conn:
            for c in scores:
                await conn.execute(
                    "INSERT INTO take_cast_scores(take_id, character_id, position, verdict, score,"
                    " frames_sampled, frames_matching, scored_at) VALUES (?,?,?,?,?,?,?,?)"
                    " ON CONFLICT (take_id, character_id) DO UPDATE SET position = excluded.position,"
                    " verdict = excluded.verdict, score = excluded.score, frames_sampled = excluded.frames_sampled,"
                    " frames_matching = excluded.frames_matching, scored_at = excluded.scored_at",
                    (
                        take_id,
                        c.character_id,
                        c.position,
                        c.verdict,
                        c.score,
                        c.frames_sampled,
                        c.frames_matching,
                        now,
                    ),
                )

    async def score(self, take_id: int) -> StoredScore | None:
        row = await self.db.fetchone("SELECT * FROM take_scores WHERE take_id=?", (take_id,))
        if row is None:
            return None
        rows = await self.db.fetchall(
            "SELECT s.*, c.name FROM take_cast_scores s JOIN characters c ON c.id = s.character_id"
            " WHERE s.take_id=? ORDER BY s.position",
            (take_id,),
        )
        cast = tuple(
            CastScore(
                character_id=int(r["character_id"]),
                name=r["name"],
                position=int(r["position"]),
                verdict=r["verdict"],
                score=r["score"],
                frames_matching=int(r["frames_matching"]),
                frames_sampled=int(r["frames_sampled"]),
            )
            for r in rows
        )
        fields = {k: row[k] for k in StoredScore.__dataclass_fields__ if k != "cast"}
        return StoredScore(**fields, cast=cast)

    async def cast_record(self, character_id: int) -> CastRecord:
        rows = await self.db.fetchall(
            "SELECT score FROM take_cast_scores WHERE character_id=?", (character_id,)
        )
        scores = [int(r["score"]) for r in rows if r["score"] is not None]
        return CastRecord(len(rows), float(statistics.median(scores)) if scores else None)

    async def version_character(self, version_id: int) -> tuple[int, str] | None:
        """The character an anchor version shows: (id, name)."""
        row = await self.db.fetchone(
            "SELECT c.id, c.name FROM anchor_versions v JOIN characters c ON c.id = v.character_id WHERE v.id=?",
            (version_id,),
        )
        return (int(row["id"]), row["name"]) if row else None

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
