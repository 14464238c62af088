"""Embeds and text for the cogs: rendering lives apart from logic."""

from __future__ import annotations

import csv
import io

import discord
from discord.utils import escape_markdown, escape_mentions

from bot.anchors.models import AnchorVersion, CheckItem
from bot.budget.service import BudgetView, ReportRow
from bot.consistency.models import VersionRecord
from bot.money import decimal_usd, format_usd
from bot.text import human_size

COLOR_OK = 0x2ECC71
COLOR_INFO = 0x5865F2
COLOR_WARN = 0xF1C40F
COLOR_FAIL = 0xE74C3C
DESCRIPTION_LIMIT = 4000  # an embed's description, under Discord's 4,096 (and a whole embed's 6,000)
_STATUS_ICON = {"pass": "\u2705", "warn": "\u26a0\ufe0f", "info": "\u2139\ufe0f"}


def safe(text: str, limit: int = 1000) -> str:
    """Escape markdown and mentions, and shorten, so user text shows as typed and pings nobody."""
    text = escape_mentions(escape_markdown(text))
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def fit_lines(lines: list[str], room: int, noun: str) -> str:
    """`lines` one a line, as many as fit in `room` characters, then "… and 7 more shots" for the rest (whole
    lines only: a link is never cut in half)."""
    shown: list[str] = []
    used = 0
    for n, line in enumerate(lines):
        rest = len(lines) - n - 1
        tail = len(f"\n\u2026 and {rest} more {noun}s") if rest else 0
        if used + len(line) + 1 + tail > room:
            left = len(lines) - n
            shown.append(f"\u2026 and {left} more {noun}{'s' if left != 1 else ''}")
            break
        shown.append(line)
        used += len(line) + 1
    return "\n".join(shown)


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
    embed.add_field(name="Size", value=f"{version.width}\u00d7{version.height} ({version.shape})")
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
    embed.set_footer(text="The bot's own copy of the image: every shot starts from exactly this.")
    return embed


def add_record_field(embed: discord.Embed, record: VersionRecord) -> None:
    """The anchor version's face record: how well takes from it kept the face."""
    if not record.takes_scored:
        value = "No takes scored yet."
    else:
        median = f"{record.median_score:.0f}%" if record.median_score is not None else "\u2014"
        rate = f"{record.drift_rate:.0%}" if record.drift_rate is not None else "\u2014"
        value = (
            f"{record.takes_scored} takes scored \u00b7 median face match {median} \u00b7 drift rate {rate}"
        )
        if record.no_face:
            value += f" ({record.no_face} with no face visible)"
    embed.add_field(name="Face record", value=value, inline=False)


def history_embed(
    rows: list[AnchorVersion],
    page: int,
    pages: int,
    current_ids: set[int],
    title: str = "Anchor history",
    *,
    note: str | None = None,
) -> discord.Embed:
    """One page of anchor versions; `note` (whose versions they are, in a thread) goes first."""
    embed = discord.Embed(title=title, color=COLOR_INFO)
    lead = f"{note}\n\n" if note else ""
    if not rows:
        embed.description = lead + "This channel has never had an anchor. Set one with /anchor set."
        return embed
    lines = []
    for v in rows:
        mark = " \u2190 current" if v.id in current_ids else ""
        name = safe(v.name, 60) if v.name else "(no name)"
        lines.append(f"**v{v.version}** {name} \u2014 <@{v.set_by}>, {ts(v.set_at, 'R')}{mark}")
    embed.description = lead + "\n".join(lines)
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
    embed.add_field(name="Limit", value=f"{format_usd(view.limit)} {view.per} ({source})")
    embed.add_field(name="Remaining", value=format_usd(view.remaining))
    embed.add_field(
        name="Resets", value=ts(view.resets_at.timestamp(), "R") if view.resets_at else "never", inline=True
    )
    if view.cap is not None:
        embed.add_field(
            name="Server cap",
            value=f"{format_usd(view.guild_spent + view.guild_held)} of {format_usd(view.cap)} used",
        )
    embed.description = (
        f"`{progress_bar(view.spent + view.held, view.limit)}`\nThis period: {view.period} (UTC)"
    )
    if view.recent:
        lines = [
            f"{ts(r.created_at, 'd')} {safe(r.description, 60)} \u2014 {format_usd(r.amount)}"
            for r in view.recent
        ]
        embed.add_field(name="Last charges", value="\n".join(lines), inline=False)
    return embed


def report_embed(period: str, rows: list[ReportRow], names: dict[int, str]) -> discord.Embed:
    embed = discord.Embed(title=f"Spend report {period}", color=COLOR_INFO)
    if not rows:
        embed.description = "Nobody spent anything in this period."
        return embed
    lines = [
        f"<@{r.user_id}> ({safe(names.get(r.user_id, '?'), 40)}): {format_usd(r.spent)} spent, "
        f"{format_usd(r.held)} held, {r.charges} charge{'s' if r.charges != 1 else ''}"
        for r in rows[:25]
    ]
    if len(rows) > 25:
        lines.append(f"\u2026 and {len(rows) - 25} more (see the CSV)")
    embed.description = "\n".join(lines)
    embed.set_footer(text=f"Total spent {format_usd(sum(r.spent for r in rows))}")
    return embed


def _cell(text: str) -> str:
    """A member's text as a CSV cell a spreadsheet shows, never runs: one starting like a formula gets a quote."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def report_csv(period: str, rows: list[ReportRow], names: dict[int, str]) -> str:
    """The report as CSV (the csv module quotes names with commas or quotes)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["period", "user_id", "display_name", "spent_usd", "held_usd", "charges"])
    for r in rows:
        writer.writerow(
            [
                period,
                r.user_id,
                _cell(names.get(r.user_id, "")),
                decimal_usd(r.spent),
                decimal_usd(r.held),
                r.charges,
            ]
        )
    return out.getvalue()


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
    embed.add_field(name="Database", value=human_size(db_bytes))
    embed.add_field(
        name="Gateway latency", value=f"{latency_ms:.0f} ms" if latency_ms == latency_ms else "n/a"
    )
    return embed
