"""The channel a job posts in, for every publisher: a partial messageable (no cache, no fetch), message references,
nonces that differ between databases, and the search for a message the bot posted before a crash."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import discord

from bot.errors import UserError

if TYPE_CHECKING:
    from bot.client import AnchorshotBot

# Discord's answers that say the channel is gone for the bot: Unknown Channel, Unknown Guild, Missing Access.
GONE_CODES = frozenset({10003, 10004, 50001})
# "Cannot reply without permission to read message history" (403): a reply needs Read Message History.
CANNOT_REPLY = 160002


def channel_of(
    bot: AnchorshotBot, channel_id: int, guild_id: int | None = None
) -> discord.PartialMessageable:
    """The channel (or thread) by id, for sending, editing and reading history with the bot token."""
    return bot.get_partial_messageable(channel_id, guild_id=guild_id)


def replying(
    bot: AnchorshotBot, channel_id: int, guild_id: int | None, message_id: int | None
) -> dict[str, Any]:
    """send() keywords for a reply to `message_id` that still posts if that message was deleted; none (a plain
    post) without a message or where the bot may not reply: Discord refuses a reply without Read Message History."""
    if message_id is None or not can_reply(bot, channel_id, guild_id):
        return {}
    reference = discord.MessageReference(
        message_id=message_id, channel_id=channel_id, guild_id=guild_id, fail_if_not_exists=False
    )
    return {"reference": reference, "mention_author": False}


def can_reply(bot: AnchorshotBot, channel_id: int, guild_id: int | None) -> bool:
    """Whether the bot may reply in the channel: its cached permissions there (the guilds intent keeps them
    current), unless Discord refused a reply there since; a channel the cache does not hold gets a reply."""
    if channel_id in bot.no_reply_channels:
        return False
    guild = bot.get_guild(guild_id) if guild_id is not None else None
    channel = guild.get_channel_or_thread(channel_id) if guild is not None else None
    if guild is None or channel is None:
        return True
    return channel.permissions_for(guild.me).read_message_history


def refused_reply(bot: AnchorshotBot, exc: discord.HTTPException, channel_id: int) -> bool:
    """Whether Discord refused a post for being a reply; the channel's posts are plain from now on, so the step
    that posts can simply be tried again."""
    if exc.code != CANNOT_REPLY:
        return False
    bot.no_reply_channels.add(channel_id)
    return True


async def post_reply(
    bot: AnchorshotBot, channel_id: int, guild_id: int | None, reply_to: int | None, **send: Any
) -> discord.Message:
    """`send` in the channel, in reply to `reply_to` where the bot may reply (see `replying`). A reply Discord
    refuses is posted plain at once, unless it carries files (the refused send closed them): then the caller's step
    is tried again and posts plain."""
    channel = channel_of(bot, channel_id, guild_id)
    try:
        return await channel.send(**send, **replying(bot, channel_id, guild_id, reply_to))
    except discord.HTTPException as exc:
        if not refused_reply(bot, exc, channel_id) or "file" in send or "files" in send:
            raise
    return await channel.send(**send)


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


def refuse_unless_can_post(interaction: discord.Interaction[Any]) -> None:
    """A job's answer needs no channel permission, but its progress edits and its outputs do: refuse (UserError)
    before anyone pays.
    (Discord always sends app_permissions; a payload without them reads as 0 here: then do not guess.)"""
    perms = interaction.app_permissions
    can_send = (
        perms.send_messages_in_threads
        if isinstance(interaction.channel, discord.Thread)
        else perms.send_messages
    )
    if perms.value and not (can_send and perms.embed_links and perms.view_channel):
        raise UserError(
            "I can't post the clip in this channel: give me View Channel, Send Messages and Embed Links here, "
            "then try again. Nothing was charged."
        )
