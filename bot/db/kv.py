"""Small facts the bot keeps about itself."""

from __future__ import annotations

import secrets

from bot.db.database import Database

# A random id made once per database (a restore makes a new one): message nonces carry it, so two databases that
# reuse job ids in one channel never send the same nonce (Discord would answer with the other's message).
INSTANCE_KEY = "instance_id"


class KeyValueStore:
    """SQL for the kv table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, key: str) -> str | None:
        row = await self.db.fetchone("SELECT value FROM kv WHERE key=?", (key,))
        return row["value"] if row else None

    async def set(self, key: str, value: str) -> None:
        await self.db.execute(
            "INSERT INTO kv(key, value) VALUES (?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    async def instance_id(self) -> str:
        """This database's random id, made at its first start."""
        found = await self.get(INSTANCE_KEY)
        if found:
            return found
        made = secrets.token_hex(4)
        await self.set(INSTANCE_KEY, made)
        return made
