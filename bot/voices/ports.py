"""What the voice kind needs from the chat side (cogs/voice.py implements it with discord.py)."""

from __future__ import annotations

from typing import Protocol

from bot.jobs import Job


class VoicePublisher(Protocol):
    async def post_voice(self, job: Job) -> int:
        """Say in the channel, once, that the character's voice is ready; return the message id."""

    async def find_voice(self, job: Job) -> int | None:
        """The message already posted for this voice (after a crash or an unanswered post), if any."""
