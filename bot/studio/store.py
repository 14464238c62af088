"""SQL for the angles kept per anchor version."""

from __future__ import annotations

from bot.db import Database


class AlreadyAngle(Exception):
    """An image offered as an angle is already one of the version's angles."""


class AngleStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def angles(self, version_id: int) -> list[str]:
        rows = await self.db.fetchall(
            "SELECT sha256 FROM anchor_angles WHERE version_id=? ORDER BY id", (version_id,)
        )
        return [str(r["sha256"]) for r in rows]

    async def add(
        self, version_id: int, shas: list[str], *, user_id: int, now: float, limit: int
    ) -> list[int] | None:
        """Add all of `shas` and return their angle ids (in order) or, past `limit` angles, add none (None). An
        image the version already has as an angle adds none either (AlreadyAngle): a view is kept once."""
        ids: list[int] = []
        async with self.db.transaction() as tx:
            rows = await tx.fetchall("SELECT sha256 FROM anchor_angles WHERE version_id=?", (version_id,))
            if len(rows) + len(shas) > limit:
                return None
            if {str(r["sha256"]) for r in rows} & set(shas):
                raise AlreadyAngle(version_id)
            for sha in shas:
                ids.append(
                    await tx.insert(
                        "INSERT INTO anchor_angles(version_id, sha256, added_by, added_at) VALUES (?,?,?,?)",
                        (version_id, sha, user_id, now),
                    )
                )
        return ids

    async def clear(self, version_id: int) -> int:
        async with self.db.transaction() as tx:
            return await tx.changed("DELETE FROM anchor_angles WHERE version_id=?", (version_id,))
