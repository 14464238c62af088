"""/shot and re-roll by reaction; loading the cog attaches the takes' and face verdicts' chat side."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.anchors.service import Upload
from bot.errors import BudgetExceeded, UserError
from bot.money import format_usd
from bot.takes.service import DuplicateReroll, NeedsConsent, TakeRequest, TakeService
from cogs.anchors import cast_choices, parent_of
from cogs.channels import refuse_unless_can_post
from cogs.render import safe
from cogs.shots.answer import ProgressAnswer
from cogs.shots.buttons import CancelButton, ConsentView, RerollButton, TryAgainButton, queued_answer
from cogs.shots.publisher import NO_PINGS, DiscordTakePublisher

if TYPE_CHECKING:
    from bot.client import AnchorshotBot

log = logging.getLogger(__name__)


class ShotCog(commands.Cog):
    def __init__(self, bot: AnchorshotBot) -> None:
        self.bot = bot
        self.publisher = DiscordTakePublisher(bot)
        self._detach: list[Callable[[], None]] = []

    @property
    def shots(self) -> TakeService:
        return self.bot.services.takes

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(CancelButton, RerollButton, TryAgainButton)
        services = self.bot.services
        self._detach = [
            services.takes.attach(self.publisher, self.publisher.edits),
            services.consistency.attach(self.publisher),
        ]

    async def cog_unload(self) -> None:
        """Detach this cog's chat side only: the engine goes on, and deliveries of takes wait for a reload."""
        for detach in self._detach:
            detach()
        self.bot.remove_dynamic_items(CancelButton, RerollButton, TryAgainButton)
        await self.publisher.edits.close()

    @app_commands.command(name="shot", description="Make a video clip that starts from this channel's anchor")
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="What happens in the shot (up to 2,500 characters)",
        duration="Length in seconds; the suggestions show each length's price",
        aspect_ratio="Shape of the clip (default: the anchor's)",
        audio="Generate sound too (costs more; off by default)",
        negative_prompt="What to avoid",
        auto_reroll="Re-roll once automatically if the face drifts from the anchor (default: the channel's)",
        continue_="In a scene: start from the last frame of the previous shot's kept take",
        end="A picture the shot must end on (PNG, JPEG or WebP)",
        start="Start from this cast member's anchor (default: the main character)",
    )
    @app_commands.rename(continue_="continue")
    async def shot(
        self,
        interaction: discord.Interaction[AnchorshotBot],
        prompt: str,
        duration: int | None = None,
        aspect_ratio: Literal["anchor", "16:9", "9:16", "1:1"] = "anchor",
        audio: bool = False,
        negative_prompt: str | None = None,
        auto_reroll: bool | None = None,
        continue_: bool = False,
        end: discord.Attachment | None = None,
        start: str | None = None,
    ) -> None:
        """Queue a shot; its progress message is the answer (or, when queueing is slow, a post the answer links)."""
        assert interaction.guild_id is not None and interaction.channel_id is not None
        refuse_unless_can_post(interaction)
        request = TakeRequest(
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
            auto_reroll=auto_reroll,
            start=start,
        )
        end_upload = (
            Upload(url=end.url, filename=end.filename, content_type=end.content_type, size=end.size)
            if end
            else None
        )
        try:
            await self.shots.preflight(request)
        except NeedsConsent as exc:
            view = ConsentView(self, request, continue_, end_upload)
            await interaction.response.send_message(
                f"{exc.message}\nGo on without? Nothing is held until you press it.",
                view=view,
                ephemeral=True,
            )
            return
        await self.shoot(interaction, request, continue_, end_upload)

    async def shoot(
        self,
        interaction: discord.Interaction[AnchorshotBot],
        request: TakeRequest,
        continue_: bool,
        end_upload: Upload | None,
    ) -> None:
        """Queue the shot, answering with its progress message (or a deferral and a link, when slow)."""
        answer = ProgressAnswer(interaction, self.publisher)
        work = asyncio.ensure_future(
            self.bot.services.scenes.shoot(
                request, continue_=continue_, end_upload=end_upload, announce=answer.announce
            )
        )
        await answer.in_time(work)
        shot, _notes = await work  # the notes are on the progress message
        if answer.deferred:
            where = f" Progress: https://discord.com/channels/{shot.guild_id}/{shot.channel_id}/{shot.progress_message_id}"
            try:
                await interaction.edit_original_response(content=f"{queued_answer(shot)}{where}")
            except discord.HTTPException:  # the deferral itself came too late: the progress post says it all
                log.info("could not answer /shot for take %d; its progress message is posted", shot.id)

    @shot.autocomplete("start")
    async def _starts(
        self, interaction: discord.Interaction[AnchorshotBot], current: str
    ) -> list[app_commands.Choice[str]]:
        return await cast_choices(self.bot, interaction, current)

    @shot.autocomplete("duration")
    async def _durations(
        self, interaction: discord.Interaction[AnchorshotBot], current: int | str | None
    ) -> list[app_commands.Choice[int]]:
        """Every length the model makes, with its price here and now ("5 s · $0.56"), sound as chosen so far."""
        audio = bool(getattr(interaction.namespace, "audio", False))
        default = self.bot.services.settings.default_duration_s
        dry = self.bot.services.gateway.dry_run
        choices = []
        for seconds in self.shots.spec.durations_s:
            price = "free (dry run)" if dry else format_usd(self.shots.quote(seconds, audio))
            words = f"{seconds} s \u00b7 {price}" + (" \u00b7 sound on" if audio else "")
            if seconds == default:
                words += " (default)"
            if not str(current or "").strip() or str(current).strip() in str(seconds):
                choices.append(app_commands.Choice(name=words, value=seconds))
        return choices[:25]

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
        channel = self.bot.get_partial_messageable(payload.channel_id, guild_id=payload.guild_id)
        try:
            await self.shots.reroll(shot.id, user_id=payload.user_id)
        except DuplicateReroll:
            return  # the same member reacted again within a few seconds: it counts once
        except UserError as exc:
            who = payload.member.display_name if payload.member else "Re-roll"
            # Public: never a budget figure (amounts are only ever shown to their owner, ephemerally).
            words = "not enough budget for a re-roll." if isinstance(exc, BudgetExceeded) else exc.message
            await channel.send(
                f"{safe(who, 60)}: {words}",
                delete_after=self.bot.services.settings.notice_ttl_s,
                allowed_mentions=NO_PINGS,
            )
            return
        except Exception:
            log.exception("re-roll by reaction on %s failed", payload.message_id)
            return
        await self._remove_reaction(payload)

    async def _remove_reaction(self, payload: discord.RawReactionActionEvent) -> None:
        """Take the member's 🔁 back off so they can re-roll again, when allowed to."""
        channel = self.bot.get_channel(payload.channel_id)
        if not isinstance(channel, discord.abc.GuildChannel | discord.Thread):
            return
        me = channel.guild.me
        if me is None or not channel.permissions_for(me).manage_messages:
            return
        message = self.bot.get_partial_messageable(payload.channel_id).get_partial_message(payload.message_id)
        try:
            await message.remove_reaction(payload.emoji, discord.Object(id=payload.user_id))
        except discord.HTTPException:
            log.info("could not remove a re-roll reaction on %s", payload.message_id)
