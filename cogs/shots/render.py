"""A take's two messages: its progress message (then one line pointing at the clip) and its clip message.

The progress message looks the same from the moment it is queued until the clip is posted (one "making" line;
only a wait for a free slot in the bot's own queue shows its own line), so a take costs at most four Discord
requests: the /shot answer, the clip, the progress message's last edit and the face verdict.
"""

from __future__ import annotations

import discord

from bot.consistency.models import VerdictView
from bot.jobs import JobState
from bot.money import format_usd
from bot.takes.models import Take
from cogs.render import COLOR_FAIL, COLOR_INFO, COLOR_OK, COLOR_WARN, safe, ts

S = JobState
FINAL_LINES = {
    S.POSTED: "\u2705 Posted",
    S.FAILED: "\u274c Failed",
    S.CANCELLED: "\U0001f6d1 Cancelled",
}
ELEMENT_NOTE = (
    "The character's name is sent as @Element1: that is how the video model is told which references (the "
    "anchor and its angles) show the character."
)


def status_line(take: Take, *, position: int | None) -> str:
    """The one status line: the same from queued to posting (no edit for the video service's own steps)."""
    if take.state in FINAL_LINES:
        return FINAL_LINES[take.state]
    if take.state is S.WAITING and position:
        return f"\u23f3 Waiting for a free slot (position {position} in the bot's queue)"
    return f"\U0001f3ac Making the clip, asked {ts(take.created_at, 'R')}"


def price_text(take: Take) -> str:
    if take.backend == "dry-run":
        return f"free (dry run; would cost {format_usd(take.price_micros)})"
    return format_usd(take.price_micros)


def options_text(take: Take) -> str:
    """The options as chosen: "5 s · 4:5, the anchor's shape · sound off"."""
    if take.aspect_ratio == "anchor":
        shape = f"{take.anchor_shape}, the anchor's shape" if take.anchor_shape else "the anchor's shape"
    else:
        shape = take.aspect_ratio
    return f"{take.duration_s} s \u00b7 {shape} \u00b7 sound {'on' if take.audio else 'off'}"


def scene_text(take: Take) -> str:
    """The scene a take's shot is part of, and where it starts from when it continues another."""
    text = f"\u201c{safe(take.scene_name or 'this scene', 80)}\u201d"
    if take.continues is not None:
        text += f", starting from the last frame of shot {take.continues}"
    if take.cut_from is not None:
        text += ", cut from its storyboard"
    return text


def anchor_text(take: Take) -> str:
    version = f"v{take.anchor_version}" if take.anchor_version else "the channel's anchor"
    return f"{version} \u201c{safe(take.anchor_name, 80)}\u201d" if take.anchor_name else version


def title(take: Take) -> str:
    return take.label + (" (dry run)" if take.backend == "dry-run" else "")


def progress_marker(take: Take, model_label: str) -> str:
    """A progress message's footer; after a crash the bot finds the one it already posted by it."""
    return f"{take.label} \u00b7 {model_label}"


def storyboard_marker(take: Take) -> str:
    """How a storyboard's message footer starts (found by it after a restart)."""
    return f"Storyboard {take.id} \u00b7"


def clip_marker(take: Take) -> str:
    """How a clip's embed footer starts (never a progress message's); after a restart the bot finds the clips it
    already posted by it."""
    return f"{take.label} \u00b7 \U0001f501"


def progress_embed(
    take: Take, model_label: str, *, position: int | None = None, auto_reroll_price: int | None = None
) -> discord.Embed:
    """The progress message until the clip is posted (and for good when it failed or was cancelled)."""
    failed = take.state in (S.FAILED, S.CANCELLED)
    embed = discord.Embed(
        title=title(take), color=COLOR_FAIL if failed else COLOR_INFO, description=safe(take.prompt, 1500)
    )
    embed.add_field(name="Status", value=status_line(take, position=position), inline=False)
    if failed:
        what = (take.error or "It did not finish.") + "\nNothing was charged; press Try again for a new take."
        embed.add_field(name="What happened", value=safe(what, 1000), inline=False)
    embed.add_field(name="Requested by", value=f"<@{take.user_id}>")
    embed.add_field(name="Price", value=price_text(take) + ("" if failed else ", only if the clip is posted"))
    embed.add_field(name="Anchor", value=anchor_text(take))
    embed.add_field(name="Length and shape", value=options_text(take), inline=False)
    if take.scene_id is not None:
        embed.add_field(name="Scene", value=scene_text(take), inline=False)
    if auto_reroll_price is not None and not failed:
        embed.add_field(
            name="Auto re-roll",
            value=f"on: if the face drifts, at most one more take at {format_usd(auto_reroll_price)}",
            inline=False,
        )
    if take.sent_prompt != take.prompt:
        embed.add_field(
            name="Prompt sent", value=safe(take.sent_prompt, 700) + "\n" + ELEMENT_NOTE, inline=False
        )
    if take.advice and not failed:
        embed.add_field(
            name="Advice (the shot goes ahead)",
            value="\n".join(f"\u2022 {a}" for a in take.advice)[:1024],
            inline=False,
        )
    embed.set_footer(text=progress_marker(take, model_label))
    return embed


def posted_line(take: Take, clip_url: str) -> str:
    """What the progress message shrinks to once the clip is posted: one line pointing at it."""
    return f"\u2705 {title(take)} is posted: {clip_url}"


def clip_content(take: Take, note: str | None = None) -> str:
    """The clip message's text: it pings the member who asked for it (and only them: allowed_mentions), with a
    note on how it was delivered (re-encoded, or a link). The verdict edit changes the embed, never this."""
    return f"<@{take.user_id}> your clip is ready." + (f"\n{note}" if note else "")


def clip_embed(take: Take, model_label: str, *, verdict: VerdictView | None = None) -> discord.Embed:
    """The one message with the details: prompt, length and shape, price, requester, anchor and the verdict."""
    color = COLOR_WARN if verdict is not None and verdict.drifted else COLOR_OK
    embed = discord.Embed(title=title(take), color=color, description=safe(take.prompt, 1500))
    embed.add_field(name="Length and shape", value=options_text(take), inline=False)
    embed.add_field(name="Price", value=price_text(take))
    embed.add_field(name="Requested by", value=f"<@{take.user_id}>")
    embed.add_field(name="Anchor", value=anchor_text(take))
    if take.scene_id is not None:
        embed.add_field(name="Scene", value=scene_text(take), inline=False)
    embed.add_field(
        name="Face",
        value="\n".join(verdict.lines)[:1024]
        if verdict is not None
        else "being checked against the anchor\u2026",
        inline=False,
    )
    if take.sent_prompt != take.prompt:
        embed.add_field(
            name="Prompt sent", value=safe(take.sent_prompt, 700) + "\n" + ELEMENT_NOTE, inline=False
        )
    embed.set_footer(text=f"{clip_marker(take)} react or press Re-roll for another take \u00b7 {model_label}")
    return embed
