"""SQL for voices: one voice per character, written once per create-voice job."""

from __future__ import annotations

from bot.db import Database, Row
from bot.voices.models import Voice


def _voice(row: Row) -> Voice:
    return Voice(**{k: row[k] for k in Voice.__dataclass_fields__})


class VoiceStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, character_id: int) -> Voice | None:
        row = await self.db.fetchone("SELECT * FROM voices WHERE character_id=?", (character_id,))
        return _voice(row) if row else None

    async def put(self, voice: Voice, job_id: int) -> bool:
        """Store a character's voice made by `job_id`, replacing one made by an earlier request (never a later
        one); False when this job's voice is stored already (a delivery repeated after a crash writes nothing
        twice)."""
        async with self.db.transaction() as conn:
            done = await conn.fetchone("SELECT 1 FROM voices WHERE job_id=?", (job_id,))
            if done is not None:
                return False
            await conn.execute(
                "INSERT INTO voices(character_id, voice_id, sample_sha256, seconds, job_id, set_by, set_at)"
                " VALUES (?,?,?,?,?,?,?) ON CONFLICT(character_id) DO UPDATE SET voice_id=excluded.voice_id,"
                " sample_sha256=excluded.sample_sha256, seconds=excluded.seconds, job_id=excluded.job_id,"
                " set_by=excluded.set_by, set_at=excluded.set_at"
                " WHERE voices.job_id IS NULL OR excluded.job_id > voices.job_id",
                (
                    voice.character_id,
                    voice.voice_id,
                    voice.sample_sha256,
                    voice.seconds,
                    job_id,
                    voice.set_by,
                    voice.set_at,
                ),
            )
            return True

    async def clear(self, character_id: int) -> bool:
        return await self.db.changed("DELETE FROM voices WHERE character_id=?", (character_id,)) == 1
