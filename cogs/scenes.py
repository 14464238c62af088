"""/scene start|end|list|plan|show|export, keep by ✅, and the chat side of exports and storyboards."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import UserError
from bot.jobs import Job, JobState
from bot.money import format_usd
from bot.scenes.models import EXPORT_KIND, Plan
from bot.scenes.service import SceneReport, SceneService, ShotReport, sheet_shots
from bot.takes.models import STORYBOARD_KIND
from bot.takes.ports import ClipTooLarge
from cogs.channels import channel_of, find_mine, nonce, post_reply
from cogs.render import COLOR_INFO, COLOR_OK, DESCRIPTION_LIMIT, fit_lines, safe
from cogs.scene_buttons import ConfirmButton, ContinueButton, KeepButton, keep_take
from cogs.shots.publisher import DiscordTakePublisher

if TYPE_CHECKING:
    from bot.client import AnchorshotBot

log = logging.getLogger(__name__)
NO_PINGS = discord.AllowedMentions.none()
KEEP_EMOJI = "\u2705"
HISTORY_SCAN_LIMIT = 2000


def export_marker(job: Job) -> str:
    return f"Scene export {job.id} \u00b7"


MESSAGE_LIMIT = 2000  # Discord's limit on a message's content
PLAN_ANSWER_S = 2.0  # /scene plan answers at once when its checks take less; else it defers first
EXPIRY_CHECK_S = 1.0  # how often an open plan's expiry is looked at (the service's clock decides)


def plan_text(plan: Plan, scene_name: str) -> str:
    """A plan's public message: the numbered shots and one quote, within Discord's 2,000 characters (each
    shot's prompt is shortened as much as it takes: ten long shots do not fit whole)."""
    for width in (200, 150, 110, 80, 60, 40, 25):
        text = _plan_text(plan, scene_name, width)
        if len(text) <= MESSAGE_LIMIT:
            return text
    return text[: MESSAGE_LIMIT - 1] + "\u2026"


def _plan_text(plan: Plan, scene_name: str, width: int) -> str:
    lines = [f"{n}. {safe(s.prompt, width)} ({s.duration_s} s)" for n, s in enumerate(plan.shots, 1)]
    quote = f"{len(plan.shots)} shot{'s' if len(plan.shots) != 1 else ''} \u00b7 {plan.seconds} s \u00b7 {format_usd(plan.price_micros)}"
    how = (
        "\nIn one call: one clip, cut at the planned lengths into the scene's shots (the video model marks no cut "
        "points of its own), priced as one take of the whole length."
        if plan.one_call
        else ""
    )
    return (
        f"\U0001f3ac Plan for \u201c{safe(scene_name, 80)}\u201d by <@{plan.user_id}>:\n"
        + "\n".join(lines)
        + f"\n**{quote}**{' with sound' if plan.audio else ''}{how}\n"
        "Nothing is held until Confirm (by whoever planned it, within 10 minutes); each take is charged only once "
        "it is posted."
    )


def show_embed(report: SceneReport, verdicts: dict[int, str]) -> discord.Embed:
    """/scene show: the shots in order with their kept takes, takes tried, seconds, spend and face verdict, as many
    as fit in the description (then how many more), within Discord's limits for a scene of any length."""
    scene = report.scene
    embed = discord.Embed(
        title=f"\U0001f3ac {safe(scene.name, 200)} ({'open' if scene.open else 'ended'})", color=COLOR_INFO
    )
    lines = [_shot_line(r, verdicts) for r in report.shots]
    embed.description = (
        fit_lines(lines, DESCRIPTION_LIMIT, "shot") or "No shots yet: /shot (or /scene plan) adds them."
    )
    kept_s = sum(r.shot.duration_s for r in report.shots if r.kept is not None)
    shown, more = sheet_shots(report)
    picture = f"; the picture shows the first {len(shown)}" if more else ""
    embed.add_field(
        name="Shots", value=f"{len(report.shots)} ({sum(1 for r in report.shots if r.kept)} kept){picture}"
    )
    embed.add_field(name="Takes tried", value=str(report.tried))
    embed.add_field(name="Kept length", value=f"{kept_s} s")
    embed.add_field(name="Spend", value=f"{format_usd(report.spend)} (re-rolls and storyboards included)")
    return embed


def _shot_line(r: ShotReport, verdicts: dict[int, str]) -> str:
    shot, kept, stats = r.shot, r.kept, r.stats
    where = "none kept"
    if kept is not None and kept.clip_message_id:
        url = f"https://discord.com/channels/{kept.guild_id}/{kept.channel_id}/{kept.clip_message_id}"
        where = f"[take {kept.take} kept]({url})"
    tried = f"{stats.tried} take{'s' if stats.tried != 1 else ''}" if stats else "being cut"
    spent = format_usd(stats.spent) if stats else "\u2014"
    face = f" \u00b7 {verdicts[kept.id]}" if kept is not None and kept.id in verdicts else ""
    return (
        f"**{shot.position}.** {safe(shot.prompt, 60)}: {where} \u00b7 {tried} \u00b7 {shot.duration_s} s"
        f" \u00b7 {spent}{face}"
    )


def left_out_line(left_out: list[list[Any]], room: int) -> str:
    """The export's "Left out (no take kept)" line: the shots without a kept take, as many as fit in `room`
    characters, then how many more (a long scene can leave out a hundred)."""
    head = "Left out (no take kept): "
    shots = [f"shot {p} \u201c{safe(t, 40)}\u201d" for p, t in left_out]
    line, shown = head + "; ".join(shots), len(shots)
    while len(line) > room and shown > 0:
        shown -= 1
        line = head + "".join(f"{s}; " for s in shots[:shown]) + f"\u2026 and {len(shots) - shown} more"
    return line if len(line) <= room else line[: max(0, room - 1)] + "\u2026"


class DiscordScenePublisher:
    """The ExportPublisher port, and the storyboards' sink (a failed storyboard says so under its plan)."""

    def __init__(self, bot: AnchorshotBot) -> None:
        self.bot = bot
        self._tasks: set[asyncio.Task[None]] = set()

    async def post_export(self, job: Job, video: Path, note: str | None) -> int:
        a = job.args
        left_out = a.get("left_out") or []
        lines = [
            f"{len(a['positions'])} shot{'s' if len(a['positions']) != 1 else ''} \u00b7 {a['seconds']} s \u00b7 "
            f"{a['tried']} takes tried \u00b7 {format_usd(a['spend'])} spent",
        ]
        if note:
            lines.append(note)
        if left_out:  # as many as fit beside the other lines
            lines.insert(1, left_out_line(left_out, DESCRIPTION_LIMIT - sum(len(x) + 1 for x in lines)))
        embed = discord.Embed(
            title=f"\U0001f3ac {safe(a['name'], 200)}, exported", description="\n".join(lines), color=COLOR_OK
        )
        embed.set_footer(text=f"{export_marker(job)} the kept takes in shot order")
        channel = channel_of(self.bot, job.channel_id, job.guild_id)
        file = discord.File(
            video, filename=f"scene-{a['scene_id']}.mp4", description=f"The scene {a['name']}, exported"
        )
        try:
            message = await channel.send(
                embed=embed, file=file, allowed_mentions=NO_PINGS, nonce=nonce(self.bot, f"x{job.id}")
            )
        except discord.HTTPException as exc:
            if exc.status == 413 or exc.code == 40005:
                raise ClipTooLarge(str(exc)) from exc
            raise
        return message.id

    async def find_export(self, job: Job) -> int | None:
        marker = export_marker(job)
        after = discord.Object(
            id=discord.utils.time_snowflake(datetime.fromtimestamp(job.created_at - 5, UTC))
        )
        channel = channel_of(self.bot, job.channel_id, job.guild_id)
        return await find_mine(
            self.bot, channel, after, lambda f: f.startswith(marker), limit=HISTORY_SCAN_LIMIT
        )

    async def upload_limit(self, guild_id: int) -> int:
        guild = self.bot.get_guild(guild_id)
        return guild.filesize_limit if guild else 10 * 1024 * 1024

    def job_changed(self, job: Job) -> None:
        """A storyboard or an export that failed says so (in reply to its plan / in the channel)."""
        if job.kind not in (STORYBOARD_KIND, EXPORT_KIND) or job.state is not JobState.FAILED:
            return
        task = asyncio.create_task(self._say_failed(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _say_failed(self, job: Job) -> None:
        what = "The storyboard" if job.kind == STORYBOARD_KIND else "The export"
        try:
            await post_reply(
                self.bot,
                job.channel_id,
                job.guild_id,
                job.reply_to_message_id,
                content=f"\u274c {what} failed: {safe(job.error or 'it was not made', 900)} Nothing was charged.",
                allowed_mentions=NO_PINGS,
            )
        except discord.HTTPException:
            log.warning("could not say that job %d failed", job.id)


class SceneCog(commands.Cog):
    scene = app_commands.Group(
        name="scene",
        description="A scene: shots in order, the best take of each kept, one video",
        guild_only=True,
    )

    def __init__(self, bot: AnchorshotBot) -> None:
        self.bot = bot
        self.publisher = DiscordScenePublisher(bot)
        self._detach: list[Callable[[], None]] = []
        self._expiries: set[asyncio.Task[None]] = set()

    @property
    def scenes(self) -> SceneService:
        return self.bot.services.scenes

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(KeepButton, ContinueButton, ConfirmButton)
        self._detach = [
            self.scenes.attach(DiscordTakePublisher(self.bot), self.publisher),  # storyboards post like takes
            self.bot.services.jobs.subscribe(self.publisher),
        ]

    async def cog_unload(self) -> None:
        for detach in self._detach:
            detach()
        self.bot.remove_dynamic_items(KeepButton, ContinueButton, ConfirmButton)
        for task in list(self._expiries):
            task.cancel()

    def _expire_later(self, interaction: discord.Interaction[AnchorshotBot], plan_id: int) -> None:
        """When the plan expires unconfirmed, its button says so (an edit through the command's token, which
        outlives the plan's 10 minutes); a click on it before that edit is refused privately all the same."""
        task = asyncio.create_task(self._expire(interaction, plan_id), name=f"plan-expiry-{plan_id}")
        self._expiries.add(task)
        task.add_done_callback(self._expiries.discard)

    async def _expire(self, interaction: discord.Interaction[AnchorshotBot], plan_id: int) -> None:
        plan = await self.scenes.get_plan(plan_id)
        if plan is None:
            return
        while (left := plan.expires_at - self.scenes.clock()) > 0:  # noqa: ASYNC110 (the clock is injectable)
            await asyncio.sleep(min(left, EXPIRY_CHECK_S))
        plan = await self.scenes.get_plan(plan_id)
        if plan is None or plan.confirmed_at is not None:
            return
        expired = discord.ui.View(timeout=None)
        expired.add_item(
            discord.ui.Button(
                label="Expired: plan it again", style=discord.ButtonStyle.secondary, disabled=True
            )
        )
        try:
            await interaction.edit_original_response(view=expired)
        except discord.HTTPException:
            log.info("could not mark plan %d expired on its message", plan_id)

    @scene.command(
        name="start", description="Open a scene in this channel: every /shot here is its next shot"
    )
    @app_commands.describe(name="What to call it, e.g. Opening")
    async def start(
        self, interaction: discord.Interaction[AnchorshotBot], name: app_commands.Range[str, 1, 80]
    ) -> None:
        assert interaction.guild_id is not None and interaction.channel_id is not None
        scene = await self.scenes.start(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            user_id=interaction.user.id,
            name=name,
        )
        await interaction.response.send_message(
            f"\U0001f3ac {interaction.user.mention} opened the scene \u201c{safe(scene.name, 80)}\u201d: every /shot "
            "here is its next shot, in order; keep the best take of each (\u2705), then /scene export.",
            allowed_mentions=NO_PINGS,
        )

    @scene.command(name="end", description="Close this channel's scene (its starter or a moderator)")
    async def end(self, interaction: discord.Interaction[AnchorshotBot]) -> None:
        assert interaction.channel_id is not None
        scene = await self.scenes.end(
            interaction.channel_id,
            user_id=interaction.user.id,
            can_manage=interaction.permissions.manage_messages,
        )
        await interaction.response.send_message(
            f"\U0001f3ac \u201c{safe(scene.name, 80)}\u201d is closed; it can still be shown and exported.",
            allowed_mentions=NO_PINGS,
        )

    @scene.command(name="list", description="This channel's scenes, newest first")
    async def list_(self, interaction: discord.Interaction[AnchorshotBot]) -> None:
        assert interaction.channel_id is not None
        rows = await self.scenes.scenes(interaction.channel_id)
        lines = [
            f"**{safe(s.name, 60)}** ({'open' if s.open else 'ended'}): {n} shot{'s' if n != 1 else ''}, "
            f"{format_usd(spend)} spent"
            for s, n, spend in rows
        ]
        shown: list[str] = []
        for line in lines:  # newest first, as many as fit in one message
            if sum(len(x) + 1 for x in shown) + len(line) > MESSAGE_LIMIT - 40:
                shown.append(f"\u2026 and {len(lines) - len(shown)} older.")
                break
            shown.append(line)
        await interaction.response.send_message(
            "\n".join(shown) or "No scenes in this channel yet: /scene start name:<name>.", ephemeral=True
        )

    @scene.command(
        name="plan", description="Plan several shots at once: one quote, nothing held until Confirm"
    )
    @app_commands.describe(
        shots="One shot a line (or separated by |), each with an optional length: 4s: she opens the door",
        one_call="2-6 shots made in one call (a storyboard), cut at the planned lengths",
        audio="Generate sound too (costs more)",
    )
    async def plan(
        self,
        interaction: discord.Interaction[AnchorshotBot],
        shots: app_commands.Range[str, 1, 6000],
        one_call: bool = False,
        audio: bool = False,
    ) -> None:
        assert interaction.guild_id is not None and interaction.channel_id is not None
        work = asyncio.ensure_future(
            self.scenes.plan(
                guild_id=interaction.guild_id,
                channel_id=interaction.channel_id,
                user_id=interaction.user.id,
                text=shots,
                one_call=one_call,
                audio=audio,
                parent_channel_id=getattr(interaction.channel, "parent_id", None),
            )
        )
        # Each shot is checked as a /shot is: a long plan may need more than Discord's 3 s to answer.
        await asyncio.wait({work}, timeout=PLAN_ANSWER_S)
        if not work.done():
            await interaction.response.defer(thinking=True)
        plan = await work
        scene = await self.scenes.scene(plan.scene_id)
        view = discord.ui.View(timeout=None)
        view.add_item(
            ConfirmButton(
                plan.id, price_micros=None if self.bot.services.gateway.dry_run else plan.price_micros
            )
        )
        text = plan_text(plan, scene.name if scene else "the scene")
        if interaction.response.is_done():
            await interaction.edit_original_response(content=text, view=view, allowed_mentions=NO_PINGS)
        else:
            await interaction.response.send_message(text, view=view, allowed_mentions=NO_PINGS)
        self._expire_later(interaction, plan.id)

    @scene.command(name="show", description="A scene's shots, kept takes, spend and a storyboard picture")
    @app_commands.describe(name="Which scene (default: the open one, else the newest)")
    async def show(self, interaction: discord.Interaction[AnchorshotBot], name: str | None = None) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.channel_id is not None
        report = await self.scenes.report(await self.scenes.find(interaction.channel_id, name))
        verdicts = {}
        for r in report.shots:
            if r.kept is not None and (words := await self.bot.services.consistency.verdict_of(r.kept.id)):
                verdicts[r.kept.id] = words
        sheet = await self.scenes.storyboard(report)
        embed = show_embed(report, verdicts)
        if sheet is None:  # no shots yet: the words say so, no picture
            await interaction.edit_original_response(embed=embed)
            return
        embed.set_image(url="attachment://storyboard.png")
        await interaction.edit_original_response(
            embed=embed,
            attachments=[
                discord.File(
                    io.BytesIO(sheet), filename="storyboard.png", description="The kept takes' middle frames"
                )
            ],
        )

    @scene.command(name="export", description="Join the kept takes in shot order into one video (free)")
    @app_commands.describe(name="Which scene (default: the open one, else the newest)")
    async def export(self, interaction: discord.Interaction[AnchorshotBot], name: str | None = None) -> None:
        assert interaction.channel_id is not None
        scene = await self.scenes.find(interaction.channel_id, name)
        job, left_out = await self.scenes.export(scene, user_id=interaction.user.id)
        missing = (
            " Shots with no kept take are left out: " + ", ".join(str(s.position) for s in left_out) + "."
            if left_out
            else ""
        )
        await interaction.response.send_message(
            f"Exporting \u201c{safe(scene.name, 80)}\u201d (free): the video will be posted here.{missing}",
            ephemeral=True,
        )

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        """✅ on a scene take's clip keeps it (anyone else's ✅ is ignored)."""
        if payload.guild_id is None or self.bot.user is None or payload.user_id == self.bot.user.id:
            return
        if str(payload.emoji) != KEEP_EMOJI:
            return
        take = await self.bot.services.takes.by_clip_message(payload.message_id)
        if take is None or take.scene_id is None:
            return
        channel = self.bot.get_channel(payload.channel_id)
        member = payload.member
        can_manage = bool(
            member is not None
            and isinstance(channel, discord.abc.GuildChannel | discord.Thread)
            and channel.permissions_for(member).manage_messages
        )
        try:
            await keep_take(self.bot, take.id, payload.user_id, can_manage)
        except UserError:
            return  # not theirs to keep: ignored, as the issue asks (no public noise)


async def setup(bot: AnchorshotBot) -> None:
    await bot.add_cog(SceneCog(bot))
