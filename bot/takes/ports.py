"""What the take kind needs from the chat side (the shots cog implements it with discord.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from bot.takes.models import Take


class ClipTooLarge(Exception):
    """The chat refused the clip as too large (413), whatever limit the bot believed."""


class CannotAttach(Exception):
    """The bot may not attach files here (403 Missing Permissions): post a link instead."""


class PostRefused(Exception):
    """The chat refused the post for good (nothing was stored): the take cannot be delivered here."""


class ChannelGone(Exception):
    """The channel (or the server) is gone, or the bot was removed from it: nothing can be posted or found there."""


class AngleSource(Protocol):
    async def angle_shas(self, version_id: int) -> list[str]:
        """The images kept as extra angles of an anchor version (the studio implements it)."""


class TakeSink(Protocol):
    def take_changed(self, take: Take) -> None:
        """A take changed state: update its progress message later (the chat side throttles; never blocks)."""


class TakePublisher(Protocol):
    async def create_progress(self, take: Take) -> int:
        """Post the take's one progress message (looking first for one posted before a crash); return its id."""

    async def post_clip(self, take: Take, clip: Path, note: str | None) -> int:
        """Post the clip in reply to the take's reply target, once (a deterministic nonce); return the message id.

        Raises ClipTooLarge, CannotAttach, PostRefused or ChannelGone; any other error means the outcome is unknown.
        """

    async def post_link(self, take: Take, url: str, reason: str) -> int:
        """Post a link to the clip instead of the file; return the message id."""

    async def post_storyboard(self, take: Take, clip: Path | None, note: str | None = None) -> int:
        """Post a storyboard (in reply to its plan) with its whole clip, or without it (`None`, with `note`
        saying why), once; return the message id. Raises as `post_clip` does."""

    async def find_storyboard(self, take: Take) -> int | None:
        """The storyboard's clip message already posted, if any."""

    async def find_posted_clip(self, take: Take) -> int | None:
        """The clip message already posted for this take, searched forward from its progress message (raises
        ChannelGone when the channel is gone)."""

    async def offer_reroll(self, take: Take) -> None:
        """Add the re-roll reaction to a posted clip (after it is recorded, so a click always finds it)."""

    async def upload_limit(self, guild_id: int) -> int:
        """The guild's upload limit per attachment in bytes."""


class VoiceSource(Protocol):
    async def voice_ids(self, character_ids: list[int]) -> dict[int, str]:
        """The voice id of each of these characters that has one (bot/voices implements it)."""
