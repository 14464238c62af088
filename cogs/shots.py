"""/shot, the progress message, Cancel and Re-roll buttons, and re-roll by reaction (Discord glue only)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import BudgetExceeded, UserError
from bot.jobs import JobState
from bot.jobs.states import CANCELLABLE
from bot.money import format_usd
from bot.takes.models import Take
from bot.takes.ports import CannotAttach, ClipTooLarge, PostRefused
from bot.takes.service import DuplicateReroll, TakeRequest, TakeService
from cogs.anchors import parent_of
from cogs.components import GuardedButton, bot_of
from cogs.render import clip_embed, clip_marker, progress_embed, progress_marker, safe

if TYPE_CHECKING:
    from bot.client import AnchorshotBot

log = logging.getLogger(__name__)

NO_PINGS = discord.AllowedMentions.none()
VERDICT_MARK = "\U0001f9d1 Face:"  # the first line of a scored clip's text
HISTORY_SCAN_LIMIT = 5000  # messages read forward from a take's progress message when looking for its clip
MISSING_PERMISSIONS = 50013


class CancelButton(GuardedButton, template=r"shot:cancel:(?P<id>[0-9]+)"):
    """Cancel on a progress message; survives restarts (the take id is in the custom id)."""

    @classmethod
    def button(cls, target_id: int) -> discord.ui.Button[Any]:
        return discord.ui.Button(
            label="Cancel", style=discord.ButtonStyle.danger, custom_id=f"shot:cancel:{target_id}"
        )

    async def run(self, interaction: discord.Interaction[Any]) -> str:
        shot = await bot_of(interaction).services.takes.cancel(
            self.target_id, user_id=interaction.user.id, can_manage=interaction.permissions.manage_messages
        )
        return f"Shot #{shot.root_id} take {shot.take} is cancelled; nothing was charged."


class RerollButton(GuardedButton, template=r"shot:reroll:(?P<id>[0-9]+)"):
    """Re-roll on a clip message: a new take charged to whoever pressed it."""

    @classmethod
    def button(cls, target_id: int) -> discord.ui.Button[Any]:
        return discord.ui.Button(
            label="Re-roll",
            emoji="\U0001f501",
            style=discord.ButtonStyle.primary,
            custom_id=f"shot:reroll:{target_id}",
        )

    async def run(self, interaction: discord.Interaction[Any]) -> str:
        shot = await bot_of(interaction).services.takes.reroll(
            self.target_id,
            user_id=interaction.user.id,
            upload_limit_bytes=interaction.filesize_limit,
            from_message_id=interaction.message.id if interaction.message else None,
        )
        return f"Take {shot.take} of shot #{shot.root_id} is queued; it is charged to you."


def _view(*items: discord.ui.Item[Any]) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for item in items:
        view.add_item(item)
    return view


# The bot's own short steps (sending, downloading, posting): almost always followed within seconds by the next state,
# so they are shown only if they last a few edit intervals; waiting (queue, fal) and final states wait one interval.
_BRIEF = frozenset({JobState.SUBMITTING, JobState.COMPLETED, JobState.DOWNLOADED, JobState.POSTING})
_BRIEF_WAIT = 3


POSTED_TEXT_KEPT = 1000  # clips whose posted text the publisher remembers for their verdict edit
FAST_ANSWER_S = 2.0  # Discord allows 3 s for the first answer: past this, /shot defers and posts its progress


class _ProgressAnswer:
    """/shot's one answer: the progress message itself when the take is queued within FAST_ANSWER_S (one request);
    otherwise a deferral first, then a progress post in the channel and an answer that links it."""

    def __init__(self, interaction: discord.Interaction[Any], publisher: DiscordTakePublisher) -> None:
        self.interaction = interaction
        self.publisher = publisher
        self.answering = False  # the progress message is being sent as the answer: too late to defer
        self.deferred = False

    async def announce(self, take: Take) -> int:
        if self.deferred:
            return await self.publisher.create_progress(take)
        self.answering = True
        try:
            return await self.publisher.answer_with_progress(self.interaction, take)
        except discord.NotFound:  # 10062: the interaction expired (a stalled loop); nothing was shown
            log.warning(
                "/shot's interaction expired before its answer; posting take %d's progress instead", take.id
            )
            return await self.publisher.create_progress(take)

    async def in_time(self, work: asyncio.Future[Any]) -> None:
        """Wait for the take to be queued; defer at FAST_ANSWER_S unless the answer is already on its way."""
        await asyncio.wait({work}, timeout=FAST_ANSWER_S)
        if work.done() or self.answering:
            return
        self.deferred = True
        try:
            await self.interaction.response.defer(ephemeral=True, thinking=True)
        except discord.HTTPException:
            log.warning("could not defer /shot in time; its progress message is posted all the same")


class DiscordTakePublisher:
    """The TakePublisher port, with the bot token (never the 15-minute interaction webhook).

    Progress edits go through a queue per channel (a Discord rate concern; the engine only says what changed and
    never waits): a change waits `edit_interval_s` (three for the bot's own short steps) before it is shown, so the
    changes that follow within that time (sending → queued → generating; downloading → posting → done) are merged
    into one edit of the newest state; an edit that would show exactly what the message already shows is not sent;
    each channel's edits go out one at a time, so discord.py's per-route rate limits hold them back there without
    holding back other channels.
    """

    def __init__(self, bot: AnchorshotBot) -> None:
        self.bot = bot
        self._pending: dict[int, dict[int, Take]] = {}  # channel → take id → newest state, not shown yet
        self._due: dict[int, float] = {}  # take id → when (monotonic) its merged edit goes out
        self._shown: dict[int, Any] = {}  # take id → what its progress message shows now
        self._editors: dict[int, asyncio.Task[None]] = {}  # channel → its edit queue's task
        self._wake: dict[int, asyncio.Event] = {}
        # clip message id → the text it was posted with, so its face verdict is one edit, not a read and an edit
        self._posted_text: dict[int, str] = {}

    @property
    def model_label(self) -> str:
        return self.bot.services.takes.spec.label

    @property
    def edit_interval_s(self) -> float:
        return self.bot.services.settings.progress_edit_interval_s

    async def _channel(self, channel_id: int) -> discord.abc.Messageable:
        await self.bot.wait_until_ready()
        channel = self.bot.get_channel(channel_id)
        if channel is None:
            channel = await self.bot.fetch_channel(channel_id)
        assert isinstance(channel, discord.abc.Messageable)
        return channel

    def _reference(self, take: Take, message_id: int | None) -> discord.MessageReference | None:
        if message_id is None:
            return None
        return discord.MessageReference(
            message_id=message_id,
            channel_id=take.channel_id,
            guild_id=take.guild_id,
            fail_if_not_exists=False,
        )

    # Progress --------------------------------------------------------------------------------------------
    def _embed(self, take: Take) -> discord.Embed:
        """A take's progress embed; a waiting take shows its place in the bot's queue."""
        position = take.queue_position if take.state is JobState.WAITING else None
        return progress_embed(take, self.model_label, position=position)

    def _progress_view(self, take: Take) -> discord.ui.View | None:
        return _view(CancelButton(take.id)) if take.state in CANCELLABLE else None

    async def create_progress(self, take: Take, *, look_first: bool = False) -> int:
        channel = await self._channel(take.channel_id)
        if look_first:  # after a crash: the message may be there already, posted after the take was queued
            found = await self._find_mine(
                channel,
                discord.Object(id=discord.utils.time_snowflake(_utc(take.created_at - 5))),
                lambda footer: footer == progress_marker(take, self.model_label),
            )
            if found is not None:
                return found
        message = await channel.send(
            embed=self._embed(take),
            # discord.py's overloads of send() leave out the None these parameters default to at run time.
            view=self._progress_view(take),  # type: ignore[arg-type]
            allowed_mentions=NO_PINGS,
            reference=self._reference(take, take.reply_to_message_id),  # type: ignore[arg-type]
            mention_author=False,
            nonce=f"p{take.id}",  # discord.py sends enforce_nonce with it: a re-send within minutes is one message
        )
        self._shown[take.id] = self._looks(take)
        return message.id

    async def answer_with_progress(self, interaction: discord.Interaction[Any], take: Take) -> int:
        """Answer a command with the take's progress message: one callback instead of a deferral, its answer and
        a post. Later edits go through the channel with the bot token (an interaction token lasts 15 minutes)."""
        response = await interaction.response.send_message(
            embed=self._embed(take),
            view=self._progress_view(take),  # type: ignore[arg-type]
            allowed_mentions=NO_PINGS,
        )
        message_id = response.message_id
        if message_id is None and isinstance(response.resource, discord.InteractionMessage):
            message_id = response.resource.id
        if message_id is None:  # Discord returns the message it made; if an answer ever lacks it, ask for it
            message_id = (await interaction.original_response()).id
        self._shown[take.id] = self._looks(take)
        return message_id

    def _looks(self, take: Take) -> Any:
        return (
            self._embed(take).to_dict(),
            take.state in CANCELLABLE,
        )

    def take_changed(self, take: Take) -> None:
        """Queue the newest state of a take for its channel's edit queue (never waits)."""
        pending = self._pending.setdefault(take.channel_id, {})
        due = time.monotonic() + self.edit_interval_s * (_BRIEF_WAIT if take.state in _BRIEF else 1)
        self._due[take.id] = min(self._due.get(take.id, due), due) if take.id in pending else due
        pending[take.id] = take
        self._wake.setdefault(take.channel_id, asyncio.Event()).set()
        task = self._editors.get(take.channel_id)
        if task is None or task.done():
            self._editors[take.channel_id] = asyncio.create_task(
                self._edit_queue(take.channel_id), name=f"progress-{take.channel_id}"
            )

    async def _edit_queue(self, channel_id: int) -> None:
        """One channel's edits, oldest due first, one at a time."""
        pending = self._pending[channel_id]
        wake = self._wake[channel_id]
        try:
            while pending:
                take_id = min(pending, key=lambda t: self._due[t])
                wait = self._due[take_id] - time.monotonic()
                if wait > 0:
                    wake.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await wake.wait()  # a new change may be due sooner
                    continue
                take = pending.pop(take_id)
                self._due.pop(take_id, None)
                looks = self._looks(take)
                if looks != self._shown.get(take_id):
                    try:
                        await self._show(take)
                        self._shown[take_id] = looks
                    except Exception:
                        log.warning("could not update the progress of take %d", take_id, exc_info=True)
                if take.is_final and take_id not in pending:
                    self._shown.pop(take_id, None)
        finally:
            self._editors.pop(channel_id, None)
            if not pending:
                self._pending.pop(channel_id, None)
                self._wake.pop(channel_id, None)

    async def _show(self, take: Take) -> None:
        if take.progress_message_id is None:
            fresh = await self.bot.services.takes.get(take.id)
            if fresh is None or fresh.progress_message_id is None:
                message_id = await self.create_progress(fresh or take, look_first=True)
                await self.bot.services.takes.record_progress_message(take, message_id)
                return
            take = fresh
        channel = await self._channel(take.channel_id)
        partial = channel.get_partial_message(take.progress_message_id)  # type: ignore[attr-defined]
        await partial.edit(
            embed=self._embed(take),
            view=self._progress_view(take),
            allowed_mentions=NO_PINGS,
        )

    # Clips -----------------------------------------------------------------------------------------------
    async def _send_result(self, take: Take, **kwargs: Any) -> int:
        channel = await self._channel(take.channel_id)
        anchor = await self.bot.services.anchors.version_by_id(take.anchor_version_id)
        try:
            message = await channel.send(
                embed=clip_embed(take, self.model_label, anchor.version, kwargs.pop("note", None)),
                view=_view(RerollButton(take.id)),
                allowed_mentions=NO_PINGS,
                # None is send()'s run-time default; discord.py's overloads leave it out.
                reference=self._reference(take, take.reply_to_message_id),  # type: ignore[arg-type]
                mention_author=False,
                nonce=f"c{take.id}",
                **kwargs,
            )
        except discord.HTTPException as exc:
            if exc.status == 413 or exc.code == 40005:
                raise ClipTooLarge(str(exc)) from exc
            if exc.status == 403 and exc.code == MISSING_PERMISSIONS and "file" in kwargs:
                raise CannotAttach(str(exc)) from exc
            if exc.status in (400, 403, 404):
                raise PostRefused(str(exc)) from exc
            raise  # 5xx or anything else: the post may have been stored; the engine looks before posting again
        self._posted_text[message.id] = message.content or ""
        while len(self._posted_text) > POSTED_TEXT_KEPT:
            self._posted_text.pop(next(iter(self._posted_text)))
        return message.id

    async def post_clip(self, take: Take, clip: Path, note: str | None) -> int:
        file = discord.File(clip, filename=f"shot-{take.root_id}-take-{take.take}.mp4")
        return await self._send_result(take, file=file, note=note)

    async def post_link(self, take: Take, url: str, reason: str) -> int:
        link = (
            f"\nDownload it here while fal keeps it (about an hour): <{url}>"
            if url.startswith("http")
            else ""
        )
        return await self._send_result(take, content=f"{reason}{link}")

    async def offer_reroll(self, take: Take) -> None:
        """With REROLL_REACTION_HINT, react to the clip with the re-roll emoji so members re-roll in one click."""
        if take.clip_message_id is None or not self.bot.services.settings.reroll_reaction_hint:
            return
        channel = await self._channel(take.channel_id)
        try:
            await channel.get_partial_message(take.clip_message_id).add_reaction(  # type: ignore[attr-defined]
                self.bot.services.settings.reroll_emojis[0]
            )
        except discord.HTTPException:
            log.info("could not add the re-roll reaction to %s", take.clip_message_id)

    # Face scores (the ScorePublisher port of bot/consistency) --------------------------------------------
    async def show_verdict(self, take: Take, text: str) -> None:
        """Put the one-line face verdict at the top of the clip message's text (replacing an earlier one)."""
        if take.clip_message_id is None:
            return
        channel = await self._channel(take.channel_id)
        old = self._posted_text.pop(take.clip_message_id, None)
        if old is None:  # posted before a restart: read what it says
            old = (await channel.fetch_message(take.clip_message_id)).content or ""
        rest = old.split("\n", 1)[1] if old.startswith(VERDICT_MARK) and "\n" in old else ""
        if not old.startswith(VERDICT_MARK):
            rest = old
        content = f"{VERDICT_MARK} {text}" + (f"\n{rest}" if rest else "")
        if content != old:
            partial = channel.get_partial_message(take.clip_message_id)  # type: ignore[attr-defined]
            await partial.edit(content=content, allowed_mentions=NO_PINGS)

    async def announce(self, take: Take, text: str, *, nonce: str) -> int:
        channel = await self._channel(take.channel_id)
        reference = self._reference(take, take.clip_message_id)
        if reference is None:
            message = await channel.send(text, allowed_mentions=NO_PINGS, nonce=nonce)
        else:
            message = await channel.send(
                text, allowed_mentions=NO_PINGS, reference=reference, mention_author=False, nonce=nonce
            )
        return message.id

    async def find_posted_clip(self, take: Take) -> int | None:
        """Read forward (oldest first) from the progress message: found however busy the channel was after it."""
        channel = await self._channel(take.channel_id)
        start = take.progress_message_id or discord.utils.time_snowflake(_utc(take.created_at - 5))
        marker = clip_marker(take)
        return await self._find_mine(
            channel, discord.Object(id=start), lambda footer: footer.startswith(marker)
        )

    async def _find_mine(
        self, channel: discord.abc.Messageable, after: discord.abc.Snowflake, match: Callable[[str], bool]
    ) -> int | None:
        assert self.bot.user is not None
        history = channel.history(limit=HISTORY_SCAN_LIMIT, after=after, oldest_first=True)
        async for message in history:
            if message.author.id == self.bot.user.id and any(
                match(e.footer.text or "") for e in message.embeds
            ):
                return message.id
        return None

    async def upload_limit(self, guild_id: int) -> int:
        guild = self.bot.get_guild(guild_id)
        return guild.filesize_limit if guild else 10 * 1024 * 1024


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class ShotCog(commands.Cog):
    def __init__(self, bot: AnchorshotBot) -> None:
        self.bot = bot
        self.publisher = DiscordTakePublisher(bot)

    @property
    def shots(self) -> TakeService:
        return self.bot.services.takes

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
        auto_reroll="Re-roll once automatically if the face drifts from the anchor (default: the channel's)",
    )
    async def shot(
        self,
        interaction: discord.Interaction[AnchorshotBot],
        prompt: str,
        duration: int | None = None,
        aspect_ratio: Literal["anchor", "16:9", "9:16", "1:1"] = "anchor",
        audio: bool = False,
        negative_prompt: str | None = None,
        auto_reroll: bool | None = None,
    ) -> None:
        """Queue a shot; its progress message is the answer (or, when queueing is slow, a post the answer links)."""
        assert interaction.guild_id is not None and interaction.channel_id is not None
        # The answer needs no channel permission, but the progress edits and the clip do: refuse before anyone pays.
        # (Discord always sends app_permissions; a payload without them reads as 0 here: then do not guess.)
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
        )
        answer = _ProgressAnswer(interaction, self.publisher)
        work = asyncio.ensure_future(self.shots.request(request, announce=answer.announce))
        await answer.in_time(work)
        shot = await work
        if answer.deferred:
            where = f" Progress: https://discord.com/channels/{shot.guild_id}/{shot.channel_id}/{shot.progress_message_id}"
            price = (
                "free (dry run)" if shot.backend == "dry-run" else f"{format_usd(shot.price_micros)} on hold"
            )
            try:
                await interaction.edit_original_response(
                    content=f"Shot #{shot.id} is queued ({price}).{where}"
                )
            except discord.HTTPException:  # the deferral itself came too late: the progress post says it all
                log.info("could not answer /shot for take %d; its progress message is posted", shot.id)

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
