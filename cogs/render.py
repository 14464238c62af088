"""Embeds and text for the cogs: rendering lives apart from logic."""

from __future__ import annotations

from datetime import UTC, datetime

import discord
from discord.utils import escape_markdown, escape_mentions

from bot.anchors.models import AnchorVersion, CheckItem
from bot.budget.service import BudgetView, ReportRow
from bot.consistency.models import VersionRecord
from bot.jobs import JobState
from bot.money import format_usd
from bot.takes.models import Take

COLOR_OK = 0x2ECC71
COLOR_INFO = 0x5865F2
COLOR_WARN = 0xF1C40F
COLOR_FAIL = 0xE74C3C
_STATUS_ICON = {"pass": "\u2705", "warn": "\u26a0\ufe0f", "info": "\u2139\ufe0f"}


# The words a take's progress message shows for each state (the engine names no state in any member's words).
# One text from queued to started: the move to the video service is a moment, not worth an edit (#10).
S = JobState
DISPLAY: dict[JobState, str] = {
    S.WAITING: "\u23f3 Queued",
    S.SUBMITTING: "\u23f3 Queued",
    S.SUBMITTED: "\u23f3 Queued",
    S.RUNNING: "\U0001f3ac Generating",
    S.COMPLETED: "\U0001f4e5 Downloading the clip",
    S.DOWNLOADED: "\U0001f4e4 Posting the clip",
    S.POSTING: "\U0001f4e4 Posting the clip",
    S.POSTED: "\u2705 Done",
    S.FAILED: "\u274c Failed",
    S.CANCELLED: "\U0001f6d1 Cancelled",
}


def safe(text: str, limit: int = 1000) -> str:
    """Escape markdown and mentions, and shorten, so user text shows as typed and pings nobody."""
    text = escape_mentions(escape_markdown(text))
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def ts(epoch: float, style: str = "f") -> str:
    """A Discord timestamp tag."""
    return f"<t:{int(epoch)}:{style}>"


def checklist_lines(items: list[CheckItem]) -> str:
    return "\n".join(f"{_STATUS_ICON.get(i.level, '')} **{i.key}**: {i.text}" for i in items)


def anchor_embed(
    version: AnchorVersion,
    checklist: list[CheckItem],
    *,
    title: str,
    notes: tuple[str, ...] = (),
    inherited_from: int | None = None,
    filename: str = "anchor.jpg",
) -> discord.Embed:
    warn = any(i.level == "warn" for i in checklist)
    embed = discord.Embed(title=title, color=COLOR_WARN if warn else COLOR_OK)
    embed.add_field(name="Version", value=str(version.version))
    embed.add_field(name="Name", value=safe(version.name, 100) if version.name else "\u2014")
    embed.add_field(name="Size", value=f"{version.width}\u00d7{version.height}")
    embed.add_field(name="Set by", value=f"<@{version.set_by}>")
    embed.add_field(name="Set", value=ts(version.set_at, "R"))
    if inherited_from is not None:
        embed.add_field(
            name="From", value=f"<#{inherited_from}> (this thread has no anchor of its own)", inline=False
        )
    if notes:
        embed.add_field(name="What I did", value="\n".join(notes)[:1024], inline=False)
    if checklist:
        embed.add_field(name="Anchor checklist", value=checklist_lines(checklist)[:1024], inline=False)
    embed.set_image(url=f"attachment://{filename}")
    embed.set_footer(text=f"sha256 {version.sha256[:12]}")
    return embed


def add_record_field(embed: discord.Embed, record: VersionRecord) -> None:
    """The anchor version's face record: how well takes from it kept the face."""
    if not record.takes_scored:
        value = "No takes scored yet."
    else:
        median = f"{record.median_score:.0f} %" if record.median_score is not None else "\u2014"
        rate = f"{record.drift_rate:.0%}" if record.drift_rate is not None else "\u2014"
        value = (
            f"{record.takes_scored} takes scored \u00b7 median face match {median} \u00b7 drift rate {rate}"
        )
        if record.no_face:
            value += f" ({record.no_face} with no face visible)"
    embed.add_field(name="Face record", value=value, inline=False)


def history_embed(rows: list[AnchorVersion], page: int, pages: int, current_id: int | None) -> discord.Embed:
    embed = discord.Embed(title="Anchor history", color=COLOR_INFO)
    if not rows:
        embed.description = "This channel has never had an anchor. Set one with /anchor set."
        return embed
    lines = []
    for v in rows:
        mark = " \u2190 current" if v.id == current_id else ""
        name = safe(v.name, 60) if v.name else "(no name)"
        lines.append(f"**v{v.version}** {name} \u2014 <@{v.set_by}>, {ts(v.set_at, 'R')}{mark}")
    embed.description = "\n".join(lines)
    embed.set_footer(text=f"Page {page} of {pages}")
    return embed


def progress_bar(used: int, limit: int, width: int = 20) -> str:
    if limit <= 0:
        return "\u2591" * width + " 100%"
    frac = min(1.0, max(0.0, used / limit))
    filled = round(frac * width)
    return "\u2588" * filled + "\u2591" * (width - filled) + f" {frac * 100:.0f}%"


def budget_embed(view: BudgetView, member_name: str) -> discord.Embed:
    embed = discord.Embed(title=f"Budget of {safe(member_name, 80)}", color=COLOR_INFO)
    embed.add_field(name="Spent", value=format_usd(view.spent))
    embed.add_field(name="Held (in flight)", value=format_usd(view.held))
    source = {"user": "own limit", "guild": "server default", "default": "bot default"}[view.limit_source]
    embed.add_field(name="Limit", value=f"{format_usd(view.limit)} ({source})")
    embed.add_field(name="Remaining", value=format_usd(view.remaining))
    embed.add_field(
        name="Resets", value=ts(view.resets_at.timestamp(), "R") if view.resets_at else "never", inline=True
    )
    if view.cap is not None:
        embed.add_field(
            name="Server cap",
            value=f"{format_usd(view.guild_spent + view.guild_held)} of {format_usd(view.cap)} used",
        )
    embed.description = f"`{progress_bar(view.spent + view.held, view.limit)}`\nPeriod {view.period}"
    if view.recent:
        lines = [
            f"{ts(r.created_at, 'd')} {safe(r.description, 60)} \u2014 {format_usd(r.amount)}"
            for r in view.recent
        ]
        embed.add_field(name="Last charges", value="\n".join(lines), inline=False)
    return embed


def report_embed(period: str, rows: list[ReportRow]) -> discord.Embed:
    embed = discord.Embed(title=f"Spend report {period}", color=COLOR_INFO)
    if not rows:
        embed.description = "Nobody spent anything in this period."
        return embed
    lines = [
        f"<@{r.user_id}>: {format_usd(r.spent)} spent, {format_usd(r.held)} held, {r.charges} shot(s)"
        for r in rows[:25]
    ]
    if len(rows) > 25:
        lines.append(f"\u2026 and {len(rows) - 25} more (see the CSV)")
    embed.description = "\n".join(lines)
    embed.set_footer(text=f"Total spent {format_usd(sum(r.spent for r in rows))}")
    return embed


def report_csv(period: str, rows: list[ReportRow]) -> str:
    out = ["period,user_id,spent_usd,held_usd,charges"]
    for r in rows:
        out.append(f"{period},{r.user_id},{r.spent / 1_000_000:.6f},{r.held / 1_000_000:.6f},{r.charges}")
    return "\n".join(out) + "\n"


def take_state_line(take: Take, *, position: int | None = None) -> str:
    """The status line: changes only with the state; elapsed time is a Discord timestamp clients tick themselves."""
    text = DISPLAY[take.state]
    if take.state is JobState.WAITING and position:
        text += f" (position {position} in the bot's queue)"
    elif take.state is JobState.RUNNING and (take.started_at or take.submitted_at):
        text += f", started {ts(take.started_at or take.submitted_at or 0, 'R')}"
    return text


def price_text(shot: Take) -> str:
    if shot.backend == "dry-run":
        return f"free (dry run; would cost {format_usd(shot.price_micros)})"
    return format_usd(shot.price_micros)


def progress_embed(shot: Take, model_label: str, *, position: int | None = None) -> discord.Embed:
    color = {JobState.FAILED: COLOR_FAIL, JobState.CANCELLED: COLOR_FAIL, JobState.POSTED: COLOR_OK}.get(
        shot.state, COLOR_INFO
    )
    title = f"Shot #{shot.root_id}" + (f" \u2014 take {shot.take}" if shot.take > 1 else "")
    if shot.backend == "dry-run":
        title += " (dry run)"
    embed = discord.Embed(title=title, color=color, description=safe(shot.prompt, 1500))
    if shot.sent_prompt != shot.prompt:
        embed.add_field(name="Prompt sent", value=safe(shot.sent_prompt, 1000), inline=False)
    embed.add_field(name="Status", value=take_state_line(shot, position=position), inline=False)
    if shot.state in (JobState.FAILED, JobState.CANCELLED) and shot.error:
        embed.add_field(
            name="What happened", value=safe(shot.error, 900) + "\nNothing was charged.", inline=False
        )
    embed.add_field(name="Requested by", value=f"<@{shot.user_id}>")
    embed.add_field(name="Price", value=price_text(shot))
    embed.add_field(name="Length", value=f"{shot.duration_s} s, {shot.aspect_ratio}")
    embed.set_footer(text=progress_marker(shot, model_label))
    if shot.advice:
        embed.add_field(
            name="Advice (the shot goes ahead)",
            value="\n".join(f"\u2022 {a}" for a in shot.advice)[:1024],
            inline=False,
        )
    return embed


def progress_marker(shot: Take, model_label: str) -> str:
    """A progress message's footer; after a crash the bot finds the one it already posted by it."""
    return f"{model_label} \u00b7 shot {shot.id}"


def clip_marker(shot: Take) -> str:
    """How a clip's embed footer starts; after a restart the bot finds clips it already posted by it."""
    return f"shot {shot.id} \u00b7 take {shot.take} \u00b7"


def clip_embed(shot: Take, model_label: str, anchor_version: int, note: str | None) -> discord.Embed:
    title = f"Shot #{shot.root_id} \u2014 take {shot.take}"
    if shot.backend == "dry-run":
        title += " (dry run)"
    embed = discord.Embed(title=title, color=COLOR_OK, description=safe(shot.prompt, 1500))
    embed.add_field(name="Duration", value=f"{shot.duration_s} s")
    embed.add_field(name="Aspect", value=shot.aspect_ratio)
    embed.add_field(name="Model", value=model_label)
    embed.add_field(name="Price", value=price_text(shot))
    embed.add_field(name="Anchor", value=f"v{anchor_version}")
    embed.add_field(name="Requested by", value=f"<@{shot.user_id}>")
    if note:
        embed.add_field(name="Note", value=note[:1024], inline=False)
    embed.set_footer(text=f"{clip_marker(shot)} react \U0001f501 or press Re-roll for another take")
    embed.timestamp = datetime.now(UTC)
    return embed


def status_embed(
    *,
    version: str,
    uptime_s: float,
    backend: str,
    waiting: int,
    in_flight: int,
    db_bytes: int,
    latency_ms: float,
) -> discord.Embed:
    embed = discord.Embed(title="Anchorshot status", color=COLOR_INFO)
    embed.add_field(name="Version", value=version)
    hours, rest = divmod(int(uptime_s), 3600)
    embed.add_field(name="Uptime", value=f"{hours}h {rest // 60:02d}m {rest % 60:02d}s")
    embed.add_field(
        name="Backend", value="fal" if backend == "fal" else "dry-run (no FAL_KEY: free local clips)"
    )
    embed.add_field(name="Shots queued", value=str(waiting))
    embed.add_field(name="Shots in flight", value=str(in_flight))
    embed.add_field(name="Database", value=f"{db_bytes / 1024:.1f} KiB")
    embed.add_field(
        name="Gateway latency", value=f"{latency_ms:.0f} ms" if latency_ms == latency_ms else "n/a"
    )
    return embed
