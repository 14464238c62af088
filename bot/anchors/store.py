"""Anchor storage: content-addressed image rows, per-channel versions and the current pointer."""

from __future__ import annotations

from bot.anchors.models import AnchorVersion, Character, ImageRow, name_key
from bot.db import Database, IntegrityError, Queries, Row


class NameTaken(Exception):
    """Another character of the channel has this name (in any case)."""


def _version(row: Row) -> AnchorVersion:
    return AnchorVersion(**{k: row[k] for k in AnchorVersion.__dataclass_fields__})


def _character(row: Row) -> Character:
    return Character(
        id=int(row["id"]),
        guild_id=int(row["guild_id"]),
        channel_id=int(row["channel_id"]),
        name=row["name"],
        is_main=bool(row["is_main"]),
        version_id=row["version_id"],
        added_by=int(row["added_by"]),
        added_at=float(row["added_at"]),
        removed=row["removed_at"] is not None,
    )


class AnchorStore:
    """SQL for anchors."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_version(
        self,
        *,
        guild_id: int,
        channel_id: int,
        character: int | tuple[str, bool],
        sha256: str,
        width: int,
        height: int,
        size_bytes: int,
        name: str | None,
        set_by: int,
        source_format: str,
        now: float,
    ) -> tuple[AnchorVersion, bool]:
        """Record the image (once per hash) and a new current version of a character (its id, or the (name,
        is_main) of a character added with it); return the version and whether the file was new."""
        async with self.db.transaction() as conn:
            new_file = await self._tx_put_image(conn, sha256, width, height, size_bytes, now)
            if isinstance(character, tuple):
                character_id = await self._tx_add_character(
                    conn, guild_id, channel_id, character[0], character[1], set_by, now
                )
            else:
                character_id = character
            row = await conn.fetchone(
                "SELECT COALESCE(MAX(version), 0) + 1 AS v FROM anchor_versions WHERE channel_id=?",
                (channel_id,),
            )
            version = int(row["v"]) if row else 1
            version_id = await conn.insert(
                "INSERT INTO anchor_versions(guild_id, channel_id, version, sha256, name, set_by, set_at,"
                " width, height, source_format, character_id) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    guild_id,
                    channel_id,
                    version,
                    sha256,
                    name,
                    set_by,
                    now,
                    width,
                    height,
                    source_format,
                    character_id,
                ),
            )
            await conn.execute("UPDATE characters SET version_id=? WHERE id=?", (version_id, character_id))
            got = await conn.fetchone("SELECT * FROM anchor_versions WHERE id=?", (version_id,))
            assert got is not None
            return _version(got), new_file

    @staticmethod
    async def _tx_add_character(
        conn: Queries, guild_id: int, channel_id: int, name: str, is_main: bool, by: int, now: float
    ) -> int:
        try:
            return await conn.insert(
                "INSERT INTO characters(guild_id, channel_id, name, name_key, is_main, added_by, added_at)"
                " VALUES (?,?,?,?,?,?,?)",
                (guild_id, channel_id, name, name_key(name), int(is_main), by, now),
            )
        except IntegrityError as exc:
            raise NameTaken(name) from exc

    async def set_current(self, character_id: int, version_id: int | None) -> None:
        """Point a character at a version, or at nothing."""
        await self.db.execute("UPDATE characters SET version_id=? WHERE id=?", (version_id, character_id))

    async def current(self, channel_id: int) -> AnchorVersion | None:
        """The current anchor of the channel's own main character, if any."""
        row = await self.db.fetchone(
            "SELECT v.* FROM characters c JOIN anchor_versions v ON v.id = c.version_id"
            " WHERE c.channel_id=? AND c.is_main=1 AND c.removed_at IS NULL",
            (channel_id,),
        )
        return _version(row) if row else None

    # The cast ----------------------------------------------------------------------------------------------
    async def cast(self, channel_id: int) -> list[Character]:
        """The channel's own cast: the main character first, then in the order they were added."""
        rows = await self.db.fetchall(
            "SELECT * FROM characters WHERE channel_id=? AND removed_at IS NULL ORDER BY is_main DESC, id",
            (channel_id,),
        )
        return [_character(r) for r in rows]

    async def character(self, character_id: int) -> Character | None:
        row = await self.db.fetchone("SELECT * FROM characters WHERE id=?", (character_id,))
        return _character(row) if row else None

    async def remove_character(self, character_id: int, now: float) -> None:
        await self.db.execute(
            "UPDATE characters SET removed_at=?, is_main=0 WHERE id=? AND removed_at IS NULL",
            (now, character_id),
        )

    async def rename(self, character_id: int, name: str) -> None:
        try:
            await self.db.execute(
                "UPDATE characters SET name=?, name_key=? WHERE id=?", (name, name_key(name), character_id)
            )
        except IntegrityError as exc:
            raise NameTaken(name) from exc

    async def make_main(self, channel_id: int, character_id: int) -> None:
        """Make one character the channel's main one (the others lose it), in one transaction."""
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE characters SET is_main=0 WHERE channel_id=? AND removed_at IS NULL", (channel_id,)
            )
            await conn.execute("UPDATE characters SET is_main=1 WHERE id=?", (character_id,))

    async def by_number(self, channel_id: int, version: int) -> AnchorVersion | None:
        row = await self.db.fetchone(
            "SELECT * FROM anchor_versions WHERE channel_id=? AND version=?", (channel_id, version)
        )
        return _version(row) if row else None

    async def by_id(self, version_id: int) -> AnchorVersion | None:
        row = await self.db.fetchone("SELECT * FROM anchor_versions WHERE id=?", (version_id,))
        return _version(row) if row else None

    async def history(
        self, channel_id: int, *, character_id: int | None = None, limit: int, offset: int
    ) -> tuple[list[AnchorVersion], int]:
        """Return one page of versions (of the channel, or of one character), newest first, and the total count."""
        rows = await self.db.fetchall(
            "SELECT * FROM anchor_versions WHERE channel_id=? AND (CAST(? AS BIGINT) IS NULL OR character_id=?)"
            " ORDER BY version DESC LIMIT ? OFFSET ?",
            (channel_id, character_id, character_id, limit, offset),
        )
        total = await self.db.fetchone(
            "SELECT COUNT(*) AS n FROM anchor_versions WHERE channel_id=? AND (CAST(? AS BIGINT) IS NULL OR character_id=?)",
            (channel_id, character_id, character_id),
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
            "INSERT INTO images(sha256, width, height, size_bytes, created_at) VALUES (?,?,?,?,?)"
            " ON CONFLICT (sha256) DO NOTHING",
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
            "INSERT INTO derived_images(source_sha256, ratio, derived_sha256) VALUES (?,?,?)"
            " ON CONFLICT (source_sha256, ratio) DO UPDATE SET derived_sha256 = excluded.derived_sha256",
            (source_sha256, ratio, derived_sha256),
        )
