"""Anchor storage: content-addressed image rows, per-channel versions and the current pointer."""

from __future__ import annotations

from bot.anchors.models import AnchorVersion, ImageRow
from bot.db import Database, Queries, Row


def _version(row: Row) -> AnchorVersion:
    return AnchorVersion(**{k: row[k] for k in AnchorVersion.__dataclass_fields__})


class AnchorStore:
    """SQL for anchors."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_version(
        self,
        *,
        guild_id: int,
        channel_id: int,
        sha256: str,
        width: int,
        height: int,
        size_bytes: int,
        name: str | None,
        set_by: int,
        source_format: str,
        now: float,
    ) -> tuple[AnchorVersion, bool]:
        """Record the image (once per hash) and a new current version; return it and whether the file was new."""
        async with self.db.transaction() as conn:
            new_file = await self._tx_put_image(conn, sha256, width, height, size_bytes, now)
            row = await conn.fetchone(
                "SELECT COALESCE(MAX(version), 0) + 1 AS v FROM anchor_versions WHERE channel_id=?",
                (channel_id,),
            )
            version = int(row["v"]) if row else 1
            version_id = await conn.execute(
                "INSERT INTO anchor_versions(guild_id, channel_id, version, sha256, name, set_by, set_at,"
                " width, height, source_format) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (guild_id, channel_id, version, sha256, name, set_by, now, width, height, source_format),
            )
            await self._tx_point(conn, guild_id, channel_id, version_id, now)
            got = await conn.fetchone("SELECT * FROM anchor_versions WHERE id=?", (version_id,))
            assert got is not None
            return _version(got), new_file

    @staticmethod
    async def _tx_point(
        conn: Queries, guild_id: int, channel_id: int, version_id: int | None, now: float
    ) -> None:
        await conn.execute(
            "INSERT INTO channel_anchors(channel_id, guild_id, version_id, updated_at) VALUES (?,?,?,?)"
            " ON CONFLICT(channel_id) DO UPDATE SET version_id=excluded.version_id, updated_at=excluded.updated_at",
            (channel_id, guild_id, version_id, now),
        )

    async def set_current(self, guild_id: int, channel_id: int, version_id: int | None, now: float) -> None:
        """Point the channel at a version, or at nothing."""
        async with self.db.transaction() as conn:
            await self._tx_point(conn, guild_id, channel_id, version_id, now)

    async def current(self, channel_id: int) -> AnchorVersion | None:
        """The channel's own current anchor, if any."""
        row = await self.db.fetchone(
            "SELECT v.* FROM channel_anchors c JOIN anchor_versions v ON v.id = c.version_id WHERE c.channel_id=?",
            (channel_id,),
        )
        return _version(row) if row else None

    async def by_number(self, channel_id: int, version: int) -> AnchorVersion | None:
        row = await self.db.fetchone(
            "SELECT * FROM anchor_versions WHERE channel_id=? AND version=?", (channel_id, version)
        )
        return _version(row) if row else None

    async def by_id(self, version_id: int) -> AnchorVersion | None:
        row = await self.db.fetchone("SELECT * FROM anchor_versions WHERE id=?", (version_id,))
        return _version(row) if row else None

    async def history(self, channel_id: int, *, limit: int, offset: int) -> tuple[list[AnchorVersion], int]:
        """Return one page of versions, newest first, and the total count."""
        rows = await self.db.fetchall(
            "SELECT * FROM anchor_versions WHERE channel_id=? ORDER BY version DESC LIMIT ? OFFSET ?",
            (channel_id, limit, offset),
        )
        total = await self.db.fetchone(
            "SELECT COUNT(*) AS n FROM anchor_versions WHERE channel_id=?", (channel_id,)
        )
        return [_version(r) for r in rows], int(total["n"]) if total else 0

    async def image(self, sha256: str) -> ImageRow | None:
        row = await self.db.fetchone(
            "SELECT sha256, width, height, size_bytes, fal_url, fal_uploaded_at FROM images WHERE sha256=?",
            (sha256,),
        )
        return ImageRow(**dict(row)) if row else None

    @staticmethod
    async def _tx_put_image(
        conn: Queries, sha256: str, width: int, height: int, size_bytes: int, now: float
    ) -> bool:
        """Record a content-addressed image once; True if it was not known before."""
        inserted = await conn.changed(
            "INSERT OR IGNORE INTO images(sha256, width, height, size_bytes, created_at) VALUES (?,?,?,?,?)",
            (sha256, width, height, size_bytes, now),
        )
        return inserted == 1

    async def put_image(self, sha256: str, width: int, height: int, size_bytes: int, now: float) -> None:
        async with self.db.transaction() as conn:
            await self._tx_put_image(conn, sha256, width, height, size_bytes, now)

    async def set_fal_url(self, sha256: str, url: str | None, now: float | None) -> None:
        await self.db.execute(
            "UPDATE images SET fal_url=?, fal_uploaded_at=? WHERE sha256=?", (url, now, sha256)
        )

    async def derived(self, source_sha256: str, ratio: str) -> str | None:
        row = await self.db.fetchone(
            "SELECT derived_sha256 FROM derived_images WHERE source_sha256=? AND ratio=?",
            (source_sha256, ratio),
        )
        return row["derived_sha256"] if row else None

    async def put_derived(self, source_sha256: str, ratio: str, derived_sha256: str) -> None:
        await self.db.execute(
            "INSERT OR REPLACE INTO derived_images(source_sha256, ratio, derived_sha256) VALUES (?,?,?)",
            (source_sha256, ratio, derived_sha256),
        )
