"""/voice: set, show, clear (Discord glue only; bot/voices does the work), and the voice kind's publisher."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.anchors.service import Upload
from bot.jobs import Job, JobState
from bot.money import format_usd
from bot.voices.models import VOICE_KIND
from bot.voices.ports import NotPosted
from bot.voices.service import VoiceService
from cogs.anchors import cast_choices, manage_messages, parent_of
from cogs.cast import REFUSAL
from cogs.channels import CANNOT_REPLY, channel_of, find_mine, is_gone, nonce, post_reply
from cogs.render import COLOR_OK, safe

if TYPE_CHECKING:
    from bot.client import AnchorshotBot

log = logging.getLogger(__name__)
NO_PINGS = discord.AllowedMentions.none()
HISTORY_SCAN_LIMIT = 500


def voice_marker(job: Job) -> str:
    return f"voice \u00b7 request {job.id}"


class DiscordVoicePublisher:
    """The VoicePublisher port, and the engine's sink for voice jobs (a failed voice says so in the channel)."""

    def __init__(self, bot: AnchorshotBot) -> None:
        self.bot = bot
        self._tasks: set[asyncio.Task[None]] = set()

    def _channel(self, job: Job) -> discord.PartialMessageable:
        return channel_of(self.bot, job.channel_id, job.guild_id)

    async def post_voice(self, job: Job) -> int:
        name = safe(job.args["name"], 40)
        embed = discord.Embed(
            description=f"\U0001f399\ufe0f {name} has a voice now. Shots with audio on that name {name} speak "
            "with it (dialogue in quotes is what is said); /voice show plays the sample.",
            color=COLOR_OK,
        )
        embed.set_footer(text=voice_marker(job))
        try:
            message = await post_reply(
                self.bot,
                job.channel_id,
                job.guild_id,
                job.reply_to_message_id,
                embed=embed,
                allowed_mentions=NO_PINGS,
                nonce=nonce(self.bot, f"v{job.id}"),
            )
        except discord.HTTPException as exc:
            if exc.code != CANNOT_REPLY and (is_gone(exc) or exc.status in (400, 403, 404)):
                raise NotPosted(f"{exc.status} {exc.code}", gone=is_gone(exc)) from exc
            raise
        return message.id

    async def find_voice(self, job: Job) -> int | None:
        after = discord.Object(id=job.progress_message_id or 0)
        marker = voice_marker(job)
        try:
            return await find_mine(
                self.bot, self._channel(job), after, lambda footer: footer == marker, limit=HISTORY_SCAN_LIMIT
            )
        except discord.HTTPException as exc:
            if is_gone(exc):
                raise NotPosted(f"{exc.status} {exc.code}", gone=True) from exc
            raise

    def job_changed(self, job: Job) -> None:
        if job.kind != VOICE_KIND or job.state is not JobState.FAILED or job.progress_message_id is None:
            return
        task = asyncio.create_task(self._say_failed(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _say_failed(self, job: Job) -> None:
        try:
            await post_reply(
                self.bot,
                job.channel_id,
                job.guild_id,
                job.progress_message_id,
                content=f"\u274c {safe(job.args['name'], 40)}'s voice could not be made: "
                f"{safe(job.error or 'it failed', 900)}\nNothing was charged.",
                allowed_mentions=NO_PINGS,
            )
        except discord.HTTPException:
            log.warning("could not say that voice job %d failed", job.id, exc_info=True)


class VoiceCog(commands.Cog):
    voice = app_commands.Group(
        name="voice",
        description="The voices of this channel's cast, carried from shot to shot",
        guild_only=True,
    )

    def __init__(self, bot: AnchorshotBot) -> None:
        self.bot = bot
        self.publisher = DiscordVoicePublisher(bot)
        self._detach: Callable[[], None] | None = None

    async def cog_load(self) -> None:
        self._detach = self.voices.attach(self.publisher, self.publisher)

    async def cog_unload(self) -> None:
        """Detach this cog's chat side only: voices wait for a reload to be delivered."""
        if self._detach is not None:
            self._detach()

    @property
    def voices(self) -> VoiceService:
        return self.bot.services.voices

    @voice.command(
        name="set", description="Give a character a voice from a 5-30 s sample (moderators)", extras=REFUSAL
    )
    @manage_messages
    @app_commands.describe(
        name="The character (a cast name)",
        sample="5-30 s of one person speaking clearly: MP3, WAV, MP4 or MOV, at most 20 MB (longer: first 30 s)",
    )
    async def set_(
        self, interaction: discord.Interaction[AnchorshotBot], name: str, sample: discord.Attachment
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None and interaction.channel_id is not None
        upload = Upload(
            url=sample.url, filename=sample.filename, content_type=sample.content_type, size=sample.size
        )
        job, taken = await self.voices.request(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            parent_id=parent_of(interaction.channel),
            user_id=interaction.user.id,
            name=name,
            upload=upload,
        )
        price = format_usd(job.price_micros) if self.voices.engine.charge else "free (dry run)"
        cut = (
            f" The sample is {taken.seconds_found:.1f} s long: its first {taken.seconds_used:.0f} s are used."
            if taken.was_cut
            else ""
        )
        try:
            channel = channel_of(self.bot, interaction.channel_id, interaction.guild_id)
            message = await channel.send(
                f"\U0001f399\ufe0f Making {safe(job.args['name'], 40)}'s voice for {interaction.user.mention} from "
                f"{taken.seconds_used:.1f} s of sample ({price}, charged only when the voice is ready).",
                allowed_mentions=NO_PINGS,
            )
        except discord.HTTPException:
            await self.voices.engine.abandon(job, error="I could not post in this channel.")
            await interaction.edit_original_response(
                content="I could not post in this channel; give me Send Messages here. Nothing was charged."
            )
            return
        await self.voices.announce(job, message.id)
        await interaction.edit_original_response(content=f"On its way.{cut}")

    @voice.command(name="show", description="Play back a character's voice sample")
    @app_commands.describe(name="The character (a cast name)")
    async def show(self, interaction: discord.Interaction[AnchorshotBot], name: str) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.channel_id is not None
        character, voice, path = await self.voices.sample(
            interaction.channel_id, parent_of(interaction.channel), name
        )
        file = discord.File(
            path, filename=f"voice-{character.id}.wav", description=f"{character.name}'s voice sample"
        )
        await interaction.edit_original_response(
            content=f"{safe(character.name, 40)}'s voice: made from this {voice.seconds:.1f} s sample "
            f"(set by <@{voice.set_by}>).",
            attachments=[file],
        )

    @voice.command(name="clear", description="Take a character's voice away (moderators)", extras=REFUSAL)
    @manage_messages
    @app_commands.describe(name="The character (a cast name)")
    async def clear(self, interaction: discord.Interaction[AnchorshotBot], name: str) -> None:
        assert interaction.channel_id is not None
        character = await self.voices.clear(interaction.channel_id, parent_of(interaction.channel), name)
        await interaction.response.send_message(
            f"{safe(character.name, 40)} has no voice now: shots with sound give the character a new voice each time.",
            ephemeral=True,
        )

    @set_.autocomplete("name")
    @show.autocomplete("name")
    @clear.autocomplete("name")
    async def _names(
        self, interaction: discord.Interaction[AnchorshotBot], current: str
    ) -> list[app_commands.Choice[str]]:
        return await cast_choices(self.bot, interaction, current)


async def setup(bot: AnchorshotBot) -> None:
    await bot.add_cog(VoiceCog(bot))
