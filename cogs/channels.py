"""The channel a job posts in, for every publisher: a partial messageable (no cache, no fetch), message references,
nonces that differ between databases, and the search for a message the bot posted before a crash."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import discord

if TYPE_CHECKING:
    from bot.client import AnchorshotBot

# Discord's answers that say the channel is gone for the bot: Unknown Channel, Unknown Guild, Missing Access.
GONE_CODES = frozenset({10003, 10004, 50001})


def channel_of(
    bot: AnchorshotBot, channel_id: int, guild_id: int | None = None
) -> discord.PartialMessageable:
    """The channel (or thread) by id, for sending, editing and reading history with the bot token."""
    return bot.get_partial_messageable(channel_id, guild_id=guild_id)


def replying(channel_id: int, guild_id: int | None, message_id: int | None) -> dict[str, Any]:
    """send() keywords for a reply to `message_id` that still posts if that message was deleted (none: no reply)."""
    if message_id is None:
        return {}
    reference = discord.MessageReference(
        message_id=message_id, channel_id=channel_id, guild_id=guild_id, fail_if_not_exists=False
    )
    return {"reference": reference, "mention_author": False}


def nonce(bot: AnchorshotBot, tag: str) -> str:
    """A message nonce for `tag` (e.g. "c42": job 42's clip), unique to this database: Discord answers a repeated
    nonce with the earlier message, so a second database reusing job ids must never reuse nonces (max 25)."""
    return f"{bot.services.instance_id}{tag}"[:25]


def is_gone(exc: discord.HTTPException) -> bool:
    """The channel or server is gone, or the bot was removed from it."""
    return exc.code in GONE_CODES


async def find_mine(
    bot: AnchorshotBot,
    channel: discord.abc.Messageable,
    after: discord.abc.Snowflake,
    match: Callable[[str], bool],
    *,
    limit: int,
) -> int | None:
    """The first message of the bot's after `after` (oldest first) with an embed footer that `match`es."""
    assert bot.user is not None
    async for message in channel.history(limit=limit, after=after, oldest_first=True):
        if message.author.id == bot.user.id and any(match(e.footer.text or "") for e in message.embeds):
            return message.id
    return None
