"""What the voice kind needs from the chat side (cogs/voice.py implements it with discord.py)."""

from __future__ import annotations

from typing import Protocol

from bot.jobs import Job


class NotPosted(Exception):
    """The chat refused the announcement for good (`gone`: the channel or server is gone, or the bot left it)."""

    def __init__(self, reason: str, *, gone: bool) -> None:
        super().__init__(reason)
        self.gone = gone


class VoicePublisher(Protocol):
    async def post_voice(self, job: Job) -> int:
        """Say in the channel, once, that the character's voice is ready; return the message id. Raises
        NotPosted when the chat refuses it for good; any other error means the outcome is unknown."""

    async def find_voice(self, job: Job) -> int | None:
        """The message already posted for this voice (after a crash or an unanswered post), if any; raises
        NotPosted(gone=True) when the channel is gone."""
