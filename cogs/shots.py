"""/shot, the progress message, Cancel and Re-roll buttons, and re-roll by reaction (Discord glue only)."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import handle_interaction_error
from bot.errors import UserError
from bot.money import format_usd
from bot.takes.models import Shot
from bot.takes.service import ClipTooLarge, DuplicateReroll, ShotRequest, ShotService
from cogs.anchors import parent_of
from cogs.render import clip_embed, clip_marker, progress_embed, safe

if TYPE_CHECKING:
    from bot.client import AnchorshotBot

log = logging.getLogger(__name__)

NO_PINGS = discord.AllowedMentions.none()
NOTICE_TTL_S = 12.0


def _bot(interaction: discord.Interaction[Any]) -> AnchorshotBot:
    return interaction.client  # type: ignore[return-value]


class CancelButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"shot:cancel:(?P<id>[0-9]+)"):
    """Cancel on a progress message; survives restarts (the shot id is in the custom id)."""

    def __init__(self, shot_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Cancel", style=discord.ButtonStyle.danger, custom_id=f"shot:cancel:{shot_id}"
            )
        )
        self.shot_id = shot_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Button[Any], match: re.Match[str], /
    ) -> CancelButton:
        return cls(int(match["id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
            shot = await _bot(interaction).services.shots.cancel(
                self.shot_id, user_id=interaction.user.id, can_manage=interaction.permissions.manage_messages
            )
            await interaction.followup.send(
                f"Shot #{shot.root_id} take {shot.take} is cancelled; nothing was charged.", ephemeral=True
            )
        except Exception as exc:
            await handle_interaction_error(interaction, exc)


class RerollButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"shot:reroll:(?P<id>[0-9]+)"):
    """Re-roll on a clip message: a new take charged to whoever pressed it."""

    def __init__(self, shot_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Re-roll",
                emoji="\U0001f501",
                style=discord.ButtonStyle.primary,
                custom_id=f"shot:reroll:{shot_id}",
            )
        )
        self.shot_id = shot_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Button[Any], match: re.Match[str], /
    ) -> RerollButton:
        return cls(int(match["id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
            shot = await _bot(interaction).services.shots.reroll(
                self.shot_id, user_id=interaction.user.id, upload_limit_bytes=interaction.filesize_limit
            )
            await interaction.followup.send(
                f"Take {shot.take} of shot #{shot.root_id} is queued; it is charged to you.", ephemeral=True
            )
        except Exception as exc:
            await handle_interaction_error(interaction, exc)


def _view(*items: discord.ui.Item[Any]) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for item in items:
        view.add_item(item)
    return view


class DiscordShotPublisher:
    """The ShotPublisher port, with the bot token (never the 15-minute interaction webhook)."""

    def __init__(self, bot: AnchorshotBot) -> None:
        self.bot = bot

    @property
    def model_label(self) -> str:
        return self.bot.services.shots.spec.label

    async def _channel(self, channel_id: int) -> discord.abc.Messageable:
        await self.bot.wait_until_ready()
        channel = self.bot.get_channel(channel_id)
        if channel is None:
            channel = await self.bot.fetch_channel(channel_id)
        assert isinstance(channel, discord.abc.Messageable)
        return channel

    def _reference(self, shot: Shot, message_id: int | None) -> discord.MessageReference | None:
        if message_id is None:
            return None
        return discord.MessageReference(
            message_id=message_id,
            channel_id=shot.channel_id,
            guild_id=shot.guild_id,
            fail_if_not_exists=False,
        )

    async def show_progress(self, shot: Shot) -> int | None:
        channel = await self._channel(shot.channel_id)
        position = shot.queue_position if shot.state == "waiting" else None
        embed = progress_embed(shot, self.model_label, position=position)
        view = _view(CancelButton(shot.id)) if shot.state in ("waiting", "submitted", "running") else None
        if shot.progress_message_id is None:
            message = await channel.send(
                embed=embed,
                view=view,
                allowed_mentions=NO_PINGS,
                reference=self._reference(shot, shot.reply_to_message_id),
                mention_author=False,
            )
            return message.id
        partial = channel.get_partial_message(shot.progress_message_id)  # type: ignore[attr-defined]
        await partial.edit(embed=embed, view=view, allowed_mentions=NO_PINGS)
        return shot.progress_message_id

    async def post_clip(self, shot: Shot, clip: Path, note: str | None) -> int:
        channel = await self._channel(shot.channel_id)
        anchor = await self.bot.services.anchors.version_by_id(shot.anchor_version_id)
        try:
            message = await channel.send(
                embed=clip_embed(shot, self.model_label, anchor.version, note),
                file=discord.File(clip, filename=f"shot-{shot.root_id}-take-{shot.take}.mp4"),
                view=_view(RerollButton(shot.id)),
                allowed_mentions=NO_PINGS,
                reference=self._reference(shot, shot.reply_to_message_id),
                mention_author=False,
            )
        except discord.HTTPException as exc:
            if exc.status == 413 or exc.code == 40005:
                raise ClipTooLarge(str(exc)) from exc
            raise
        return message.id

    async def post_link(self, shot: Shot, url: str, reason: str) -> int:
        channel = await self._channel(shot.channel_id)
        anchor = await self.bot.services.anchors.version_by_id(shot.anchor_version_id)
        link = (
            f"\nDownload it here while fal keeps it (about an hour): <{url}>"
            if url.startswith("http")
            else ""
        )
        message = await channel.send(
            content=f"{reason}{link}",
            embed=clip_embed(shot, self.model_label, anchor.version, None),
            view=_view(RerollButton(shot.id)),
            allowed_mentions=NO_PINGS,
            reference=self._reference(shot, shot.reply_to_message_id),
            mention_author=False,
        )
        return message.id

    async def offer_reroll(self, shot: Shot) -> None:
        if shot.clip_message_id is None:
            return
        channel = await self._channel(shot.channel_id)
        try:
            await channel.get_partial_message(shot.clip_message_id).add_reaction(  # type: ignore[attr-defined]
                self.bot.services.settings.reroll_emojis[0]
            )
        except discord.HTTPException:
            log.info("could not add the re-roll reaction to %s", shot.clip_message_id)

    async def find_posted_clip(self, shot: Shot) -> int | None:
        channel = await self._channel(shot.channel_id)
        marker = clip_marker(shot)
        after = discord.Object(id=shot.progress_message_id) if shot.progress_message_id else None
        assert self.bot.user is not None
        # Newest first: the clip sits right after the crash, however busy the channel was before it.
        history = channel.history(limit=200, after=after, oldest_first=False)  # type: ignore[attr-defined]
        async for message in history:
            if message.author.id != self.bot.user.id:
                continue
            if any((e.footer.text or "").startswith(marker) for e in message.embeds):
                return message.id
        return None

    async def upload_limit(self, guild_id: int) -> int:
        guild = self.bot.get_guild(guild_id)
        return guild.filesize_limit if guild else 10 * 1024 * 1024


class ShotCog(commands.Cog):
    def __init__(self, bot: AnchorshotBot) -> None:
        self.bot = bot
        self.publisher = DiscordShotPublisher(bot)

    @property
    def shots(self) -> ShotService:
        return self.bot.services.shots

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(CancelButton, RerollButton)
        self.shots.start(self.publisher)

    async def cog_unload(self) -> None:
        await self.shots.stop()

    @app_commands.command(name="shot", description="Make a video clip that starts from this channel's anchor")
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="What happens in the shot (up to 2,500 characters)",
        duration="Length in seconds (default 5)",
        aspect_ratio="Shape of the clip (default: the anchor's)",
        audio="Generate sound too (costs more; off by default)",
        negative_prompt="What to avoid",
    )
    async def shot(
        self,
        interaction: discord.Interaction[AnchorshotBot],
        prompt: str,
        duration: int | None = None,
        aspect_ratio: Literal["anchor", "16:9", "9:16", "1:1"] = "anchor",
        audio: bool = False,
        negative_prompt: str | None = None,
    ) -> None:
        """Queue a shot and point at its progress message."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None and interaction.channel_id is not None
        shot = await self.shots.request(
            ShotRequest(
                guild_id=interaction.guild_id,
                channel_id=interaction.channel_id,
                parent_channel_id=parent_of(interaction.channel),
                user_id=interaction.user.id,
                prompt=prompt,
                duration_s=duration,
                aspect_ratio=aspect_ratio,
                audio=audio,
                negative_prompt=negative_prompt,
                upload_limit_bytes=interaction.filesize_limit,
            )
        )
        where = ""
        if shot.progress_message_id:
            where = f" Progress: https://discord.com/channels/{shot.guild_id}/{shot.channel_id}/{shot.progress_message_id}"
        price = "free (dry run)" if shot.backend == "dry-run" else f"{format_usd(shot.price_micros)} on hold"
        await interaction.followup.send(f"Shot #{shot.id} is queued ({price}).{where}", ephemeral=True)

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        """🔁 on a clip re-rolls it, charged to whoever reacted."""
        if payload.guild_id is None or self.bot.user is None or payload.user_id == self.bot.user.id:
            return
        if payload.member is not None and payload.member.bot:
            return
        if str(payload.emoji) not in self.bot.services.settings.reroll_emojis:
            return
        shot = await self.shots.by_clip_message(payload.message_id)
        if shot is None and payload.message_author_id == self.bot.user.id:
            # A very quick reaction can land between posting a clip and recording it: look once more.
            await asyncio.sleep(1.5)
            shot = await self.shots.by_clip_message(payload.message_id)
        if shot is None:
            return
        channel = self.bot.get_channel(payload.channel_id)
        try:
            await self.shots.reroll(shot.id, user_id=payload.user_id)
        except DuplicateReroll:
            return  # the same member reacted again within a few seconds: it counts once
        except UserError as exc:
            if isinstance(channel, discord.abc.Messageable):
                who = payload.member.display_name if payload.member else "Re-roll"
                await channel.send(
                    f"{safe(who, 60)}: {exc.message}", delete_after=NOTICE_TTL_S, allowed_mentions=NO_PINGS
                )
            return
        except Exception:
            log.exception("re-roll by reaction on %s failed", payload.message_id)
            return
        await self._remove_reaction(channel, payload)

    async def _remove_reaction(self, channel: object, payload: discord.RawReactionActionEvent) -> None:
        """Take the member's 🔁 back off so they can re-roll again, when allowed to."""
        if not isinstance(channel, discord.abc.GuildChannel | discord.Thread):
            return
        me = channel.guild.me
        if me is None or not channel.permissions_for(me).manage_messages:
            return
        try:
            await channel.get_partial_message(payload.message_id).remove_reaction(  # type: ignore[union-attr]
                payload.emoji, discord.Object(id=payload.user_id)
            )
        except discord.HTTPException:
            log.info("could not remove a re-roll reaction on %s", payload.message_id)


async def setup(bot: AnchorshotBot) -> None:
    await bot.add_cog(ShotCog(bot))
