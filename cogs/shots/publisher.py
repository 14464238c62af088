"""The TakePublisher and ScorePublisher ports, with the bot token (never the 15-minute interaction webhook)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import discord

from bot.consistency.models import VerdictView
from bot.jobs import IN_FLIGHT, JobState
from bot.takes.models import Take
from bot.takes.ports import CannotAttach, ChannelGone, ClipTooLarge, PostRefused
from cogs.channels import CANNOT_REPLY, channel_of, find_mine, is_gone, nonce, post_reply
from cogs.render import COLOR_OK, safe
from cogs.scene_buttons import clip_view_for
from cogs.shots.buttons import CancelButton, TryAgainButton, view_of
from cogs.shots.edits import ProgressEdits
from cogs.shots.render import (
    clip_content,
    clip_embed,
    clip_marker,
    posted_line,
    price_text,
    progress_embed,
    progress_marker,
    scene_text,
    storyboard_marker,
)

if TYPE_CHECKING:
    from bot.client import AnchorshotBot

log = logging.getLogger(__name__)
# sent, not yet posted (in flight but for the send itself): the progress message shows one "Making the clip" text
AT_SERVICE = frozenset(IN_FLIGHT) - {JobState.SUBMITTING}

NO_PINGS = discord.AllowedMentions.none()
HISTORY_SCAN_LIMIT = 5000  # messages read forward from a take's progress message when looking for its clip
MISSING_PERMISSIONS = 50013


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def requester_only(take: Take) -> discord.AllowedMentions:
    """The clip pings the member who asked for it, and nobody else (not a role, @everyone or a name in the prompt)."""
    return discord.AllowedMentions(
        everyone=False, roles=False, users=[discord.Object(id=take.user_id)], replied_user=False
    )


def shows_its_look_already(take: Take) -> bool:
    """Whether the progress message of a take this process has not edited yet already shows what an edit would.
    A take at the video service left a bot's queue showing the one "Making the clip" text (this process before a
    restart, or another process that took it there), the look of every state in AT_SERVICE: no edit says it again
    (after a restart with 500 takes at fal, 500 edits saved; a take moving to another process, one). Anything else
    is unknown, and the edit is sent."""
    return take.state in AT_SERVICE and take.progress_message_id is not None


class DiscordTakePublisher:
    """Posts a take's progress message and its clip, shows the face verdict; its `edits` show the progress."""

    def __init__(self, bot: AnchorshotBot) -> None:
        self.bot = bot
        self.edits = ProgressEdits(
            self._show,
            self._looks,
            lambda: bot.services.settings.progress_edit_interval_s,
            shows_its_look_already,
        )

    @property
    def model_label(self) -> str:
        return self.bot.services.takes.spec.label

    def _channel(self, take: Take) -> discord.PartialMessageable:
        return channel_of(self.bot, take.channel_id, take.guild_id)

    # Progress --------------------------------------------------------------------------------------------
    def _embed(self, take: Take) -> discord.Embed:
        """A take's progress embed; a waiting take shows its place in the bot's queue."""
        position = take.queue_position if take.state is JobState.WAITING else None
        again = take.price_micros if take.auto_reroll and take.auto_reroll_of is None else None
        return progress_embed(take, self.model_label, position=position, auto_reroll_price=again)

    def _progress_view(self, take: Take) -> discord.ui.View:
        """Cancel until the take is over (through the short steps too: a button that comes and goes is an edit);
        Try again once it failed or was cancelled; nothing once it is posted."""
        if take.state in (JobState.FAILED, JobState.CANCELLED):
            return view_of(TryAgainButton(take.id, price_micros=self._price(take)))
        if take.is_final:
            return discord.ui.View()
        return view_of(CancelButton(take.id))

    def _price(self, take: Take) -> int | None:
        return None if take.backend == "dry-run" else take.price_micros

    def _looks(self, take: Take) -> Any:
        """What the progress message shows: equal looks are not edited again."""
        if take.state is JobState.POSTED:
            return (JobState.POSTED, take.clip_message_id)
        return (self._embed(take).to_dict(), take.is_final)

    def _unseen(self, take: Take) -> Any:
        """What the progress message of a take this process has not shown yet shows. A take already at the video
        service left a bot's queue showing the one "Making the clip" text (this process before a restart, or
        another process that took it there): the same look it has now, so no edit says it again (after a restart
        with 500 takes at fal, 500 edits saved; a take moving to another process, one). Otherwise None: unknown,
        the edit is sent."""
        if take.state in AT_SERVICE and take.progress_message_id is not None:
            return self._looks(take)
        return None

    async def create_progress(self, take: Take, *, look_first: bool = False) -> int:
        channel = self._channel(take)
        if look_first:  # after a crash: the message may be there already, posted after the take was queued
            found = await find_mine(
                self.bot,
                channel,
                discord.Object(id=discord.utils.time_snowflake(_utc(take.created_at - 5))),
                lambda footer: footer == progress_marker(take, self.model_label),
                limit=HISTORY_SCAN_LIMIT,
            )
            if found is not None:
                return found
        message = await post_reply(
            self.bot,
            take.channel_id,
            take.guild_id,
            take.reply_to_message_id,
            embed=self._embed(take),
            view=self._progress_view(take),
            allowed_mentions=NO_PINGS,
            # with enforce_nonce: a re-send within minutes is one message
            nonce=nonce(self.bot, f"p{take.id}"),
        )
        self.edits.shown[take.id] = self._looks(take)
        return message.id

    async def answer_with_progress(self, interaction: discord.Interaction[Any], take: Take) -> int:
        """Answer a command with the take's progress message: one callback instead of a deferral, its answer and
        a post. Later edits go through the channel with the bot token (an interaction token lasts 15 minutes).

        An answer whose reply was lost (a 5xx, whose re-send is then "already acknowledged"; a dropped connection)
        may still have been kept by Discord: the progress message is then the one it kept. Raises NotFound when
        there is none (the caller posts the progress message instead)."""
        try:
            response = await interaction.response.send_message(
                embed=self._embed(take), view=self._progress_view(take), allowed_mentions=NO_PINGS
            )
        except discord.NotFound:
            raise  # 10062: the interaction expired before the answer; nothing was kept
        except (discord.HTTPException, aiohttp.ClientError) as exc:
            log.warning(
                "/shot's answer for take %d got no reply (%r); asking Discord what it kept", take.id, exc
            )
            answered = None
        else:  # Discord returns the message it made; if an answer ever lacks it, ask for it
            answered = response.message_id
            if answered is None and isinstance(response.resource, discord.InteractionMessage):
                answered = response.resource.id
        message_id = answered if answered is not None else (await interaction.original_response()).id
        self.edits.shown[take.id] = self._looks(take)
        return message_id

    async def _show(self, take: Take) -> None:
        """Edit the take's progress message to its newest state (post it first if a crash lost it); once the clip
        is posted, the message shrinks to one line pointing at it."""
        if take.progress_message_id is None:
            fresh = await self.bot.services.takes.get(take.id)
            if fresh is None or fresh.progress_message_id is None:
                message_id = await self.create_progress(fresh or take, look_first=True)
                await self.bot.services.takes.record_progress_message(take, message_id)
                return
            take = fresh
        assert take.progress_message_id is not None
        message = self._channel(take).get_partial_message(take.progress_message_id)
        if take.state is JobState.POSTED and take.clip_message_id is not None:
            url = f"https://discord.com/channels/{take.guild_id}/{take.channel_id}/{take.clip_message_id}"
            await message.edit(
                content=posted_line(take, url), embeds=[], view=None, allowed_mentions=NO_PINGS
            )
            return
        await message.edit(embed=self._embed(take), view=self._progress_view(take), allowed_mentions=NO_PINGS)

    # Clips -----------------------------------------------------------------------------------------------
    async def _send_result(self, take: Take, *, note: str | None = None, **kwargs: Any) -> int:
        face = await self.bot.services.consistency.no_score_reason(take)
        verdict = VerdictView("unchecked", (face,)) if face else None
        try:
            message = await post_reply(
                self.bot,
                take.channel_id,
                take.guild_id,
                take.reply_to_message_id,
                content=clip_content(take, note),
                embed=clip_embed(take, self.model_label, verdict=verdict),
                view=clip_view_for(take, kept=False),
                allowed_mentions=requester_only(take),
                nonce=nonce(self.bot, f"c{take.id}"),
                **kwargs,
            )
        except discord.HTTPException as exc:
            refused = _refusal(exc, with_file="file" in kwargs)
            if refused is None:
                raise  # 5xx or anything else: the post may have been stored; the engine looks before posting again
            raise refused from exc
        return message.id

    async def post_clip(self, take: Take, clip: Path, note: str | None) -> int:
        file = discord.File(
            clip,
            filename=f"shot-{take.number}-take-{take.take}.mp4",
            description=f"{take.label}: {take.prompt}"[:1024],
        )
        return await self._send_result(take, file=file, note=note)

    async def post_link(self, take: Take, url: str, reason: str) -> int:
        link = (
            f"\nDownload it here within the hour (the link expires): <{url}>"
            if url.startswith("http")
            else ""
        )
        return await self._send_result(take, note=f"{reason}{link}")

    async def offer_reroll(self, take: Take) -> None:
        """With REROLL_REACTION_HINT, react to the clip with the re-roll emoji so members re-roll in one click."""
        if take.clip_message_id is None or not self.bot.services.settings.reroll_reaction_hint:
            return
        try:
            await (
                self._channel(take)
                .get_partial_message(take.clip_message_id)
                .add_reaction(self.bot.services.settings.reroll_emojis[0])
            )
        except discord.HTTPException:
            log.info("could not add the re-roll reaction to %s", take.clip_message_id)

    async def post_storyboard(self, take: Take, clip: Path | None, note: str | None = None) -> int:
        """A storyboard (its whole clip when given), in reply to its plan; each shot follows as its own take."""
        embed = discord.Embed(
            title=f"Storyboard: {len(take.multi_prompt)} shots in one call",
            description=safe(
                "\n".join(f"{n}. {p} ({s} s)" for n, (p, s) in enumerate(take.multi_prompt, 1)), 3000
            ),
            color=COLOR_OK,
        )
        embed.add_field(name="Price", value=price_text(take))
        embed.add_field(name="Scene", value=scene_text(take))
        embed.add_field(
            name="Its shots",
            value="Each shot is posted below as its own take, cut at the planned lengths (the video model marks no "
            "cut points of its own): keep, re-roll or export them one by one.",
            inline=False,
        )
        if note:
            embed.add_field(name="The whole clip", value=safe(note, 1000), inline=False)
        embed.set_footer(text=f"{storyboard_marker(take)} {self.model_label}")
        attached: dict[str, Any] = {}
        if clip is not None:
            attached["file"] = discord.File(
                clip, filename=f"storyboard-{take.id}.mp4", description="The storyboard, in one clip"
            )
        try:
            message = await post_reply(
                self.bot,
                take.channel_id,
                take.guild_id,
                take.reply_to_message_id,
                embed=embed,
                **attached,
                allowed_mentions=NO_PINGS,
                nonce=nonce(self.bot, f"b{take.id}"),
            )
        except discord.HTTPException as exc:
            refused = _refusal(exc, with_file=clip is not None)
            if refused is None:
                raise
            raise refused from exc
        return message.id

    async def find_storyboard(self, take: Take) -> int | None:
        return await self._find_after(take, take.reply_to_message_id, storyboard_marker(take))

    async def find_posted_clip(self, take: Take) -> int | None:
        """Read forward (oldest first) from the progress message: found however busy the channel was after it."""
        return await self._find_after(take, take.progress_message_id, clip_marker(take))

    async def _find_after(self, take: Take, after: int | None, marker: str) -> int | None:
        """The bot's message whose footer starts with `marker`, read forward from `after` (else from just before
        the take was queued); ChannelGone when the channel is."""
        start = after or discord.utils.time_snowflake(_utc(take.created_at - 5))
        try:
            return await find_mine(
                self.bot,
                self._channel(take),
                discord.Object(id=start),
                lambda footer: footer.startswith(marker),
                limit=HISTORY_SCAN_LIMIT,
            )
        except discord.HTTPException as exc:
            if is_gone(exc):
                raise ChannelGone(f"{exc.status} {exc.code}") from exc
            raise

    async def upload_limit(self, guild_id: int) -> int:
        guild = self.bot.get_guild(guild_id)
        return guild.filesize_limit if guild else 10 * 1024 * 1024

    # Face scores (the ScorePublisher port of bot/consistency) --------------------------------------------
    async def show_verdict(self, take: Take, verdict: VerdictView) -> None:
        """Show the verdict on the clip message: one edit of its embed (the text with the ping is left as is)."""
        if take.clip_message_id is None:
            return
        await (
            self._channel(take)
            .get_partial_message(take.clip_message_id)
            .edit(embed=clip_embed(take, self.model_label, verdict=verdict), allowed_mentions=NO_PINGS)
        )


def _refusal(exc: discord.HTTPException, *, with_file: bool) -> Exception | None:
    """What a refused post means for the take kind; None: not a refusal (the outcome is unknown), or a refused
    reply (`post_reply` made the channel's posts plain: the engine tries the post again)."""
    if exc.code == CANNOT_REPLY:
        return None
    if exc.status == 413 or exc.code == 40005:
        return ClipTooLarge(str(exc))
    if is_gone(exc):
        return ChannelGone(f"{exc.status} {exc.code}")
    if exc.status == 403 and exc.code == MISSING_PERMISSIONS and with_file:
        return CannotAttach(str(exc))
    if exc.status in (400, 403, 404):
        return PostRefused(str(exc))
    return None
