"""What the scenes feature needs from the chat side (cogs/scenes.py implements it with discord.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from bot.jobs import Job


class ExportPublisher(Protocol):
    async def post_export(self, job: Job, video: Path, note: str | None) -> int:
        """Post a scene's exported video (with its totals), once; return the message id. Raises ClipTooLarge
        (bot.takes.ports) when the chat refuses it as too large for the channel."""

    async def find_export(self, job: Job) -> int | None:
        """The export already posted for this job (after a crash or an unanswered post), if any."""

    async def upload_limit(self, guild_id: int) -> int:
        """The server's upload limit per attachment in bytes."""
