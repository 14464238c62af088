"""The persistent buttons of scenes: Keep and Continue on a take's clip, Confirm on a plan (Discord glue only).

Apart from cogs/scenes.py so that the shots cog can put Keep on the clips of a scene's takes without importing the
scenes cog.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord

from bot.client import MESSAGE_LIMIT, claim, handle_interaction_error
from bot.errors import UserError
from bot.money import format_usd
from bot.scenes.models import Plan
from bot.takes.models import PART_KIND, Take
from bot.takes.service import TakeRequest
from cogs.channels import refuse_unless_can_post
from cogs.components import ELSEWHERE, GuardedButton, bot_of
from cogs.shots.buttons import RerollButton, queued_answer

if TYPE_CHECKING:
    from bot.client import AnchorshotBot

log = logging.getLogger(__name__)
NO_PINGS = discord.AllowedMentions.none()


class KeepButton(GuardedButton, template=r"scene:keep:(?P<id>[0-9]+)"):
    """Keep this take for its shot (the requester, the scene's starter or a moderator)."""

    @classmethod
    def button(cls, target_id: int, price_micros: int | None = None) -> discord.ui.Button[Any]:
        return discord.ui.Button(
            label="Keep",
            emoji="\u2705",
            style=discord.ButtonStyle.success,
            custom_id=f"scene:keep:{target_id}",
        )

    async def run(self, interaction: discord.Interaction[Any]) -> str:
        return await keep_take(
            bot_of(interaction),
            self.target_id,
            interaction.user.id,
            bool(interaction.permissions.manage_messages),
        )


class ContinueButton(GuardedButton, template=r"scene:continue:(?P<id>[0-9]+)"):
    """On a kept take: the next shot of the scene, starting from this take's last frame (asks for its prompt)."""

    @classmethod
    def button(cls, target_id: int, price_micros: int | None = None) -> discord.ui.Button[Any]:
        return discord.ui.Button(
            label="Continue",
            emoji="\u23ed",
            style=discord.ButtonStyle.secondary,
            custom_id=f"scene:continue:{target_id}",
        )

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Answer with a form for the next shot's prompt (a modal must be the first answer: no deferral)."""
        claim(interaction)
        if await self.elsewhere(interaction):
            await interaction.response.send_message(ELSEWHERE, ephemeral=True)
            return
        await interaction.response.send_modal(NextShotForm(self.target_id))


class NextShotForm(discord.ui.Modal, title="The next shot"):
    prompt: discord.ui.TextInput[Any] = discord.ui.TextInput(
        label="What happens next", style=discord.TextStyle.paragraph, max_length=2500
    )
    seconds: discord.ui.TextInput[Any] = discord.ui.TextInput(
        label="Length in seconds", required=False, max_length=3, placeholder="5"
    )

    def __init__(self, take_id: int) -> None:
        super().__init__(timeout=900)
        self.take_id = take_id

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        claim(interaction)
        bot = bot_of(interaction)
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
            assert interaction.guild_id is not None and interaction.channel_id is not None
            seconds = str(self.seconds.value or "").strip()
            if seconds and not (seconds.isascii() and seconds.isdigit()):  # "²" is a digit int() cannot read
                raise UserError("The length is a number of seconds, e.g. 5.")
            request = TakeRequest(
                guild_id=interaction.guild_id,
                channel_id=interaction.channel_id,
                parent_channel_id=getattr(interaction.channel, "parent_id", None),
                user_id=interaction.user.id,
                prompt=str(self.prompt.value),
                duration_s=int(seconds) if seconds else None,
                upload_limit_bytes=interaction.filesize_limit,
            )
            take, notes = await bot.services.scenes.shoot(request, continue_from=self.take_id)
            await interaction.edit_original_response(content="\n".join([queued_answer(take), *notes]))
        except Exception as exc:
            await handle_interaction_error(interaction, exc)


class ConfirmButton(GuardedButton, template=r"scene:confirm:(?P<id>[0-9]+)"):
    """Confirm a plan: hold its whole quote at once and queue its shots (the member who planned it only)."""

    @classmethod
    def button(cls, target_id: int, price_micros: int | None = None) -> discord.ui.Button[Any]:
        label = f"Confirm \u00b7 {format_usd(price_micros)}" if price_micros else "Confirm"
        return discord.ui.Button(
            label=label, style=discord.ButtonStyle.success, custom_id=f"scene:confirm:{target_id}"
        )

    async def place(self, bot: AnchorshotBot) -> tuple[int, int] | None:
        plan = await bot.services.scenes.get_plan(self.target_id)
        return (plan.guild_id, plan.channel_id) if plan is not None else None

    async def run(self, interaction: discord.Interaction[Any]) -> str:
        refuse_unless_can_post(
            interaction
        )  # the plan's takes post in this channel: refused before anything is held
        return await confirm_plan(interaction, self.target_id)


def scene_clip_view(take: Take, *, kept: bool, reroll: discord.ui.Item[Any]) -> discord.ui.View:
    """A scene take's clip buttons: Re-roll, then Keep, or (once kept) a Kept mark and Continue."""
    view = discord.ui.View(timeout=None)
    view.add_item(reroll)
    if kept:
        view.add_item(
            discord.ui.Button(label="Kept", emoji="\u2705", style=discord.ButtonStyle.success, disabled=True)
        )
        view.add_item(ContinueButton(take.id))
    else:
        view.add_item(KeepButton(take.id))
    return view


def reroll_price(take: Take) -> int | None:
    """What pressing Re-roll on the take's clip is charged: the take's own price, or for a storyboard part (free
    itself) the price of a take of its length, sound and voice, worked out when it was cut (None: it cannot be
    re-rolled alone, or a part cut before its price was kept). None in a dry run."""
    if take.backend == "dry-run":
        return None
    if take.kind == PART_KIND:
        price = (take.cut_from or {}).get("reroll_price_micros")
        return price if isinstance(price, int) else None
    return take.price_micros


def clip_view_for(take: Take, *, kept: bool) -> discord.ui.View:
    """The buttons a take's clip carries: Re-roll (with its price), and for a scene's take Keep or Kept + Continue."""
    reroll = RerollButton(take.id, price_micros=reroll_price(take))
    if take.scene_id is None:
        view = discord.ui.View(timeout=None)
        view.add_item(reroll)
        return view
    return scene_clip_view(take, kept=kept, reroll=reroll)


async def keep_take(bot: AnchorshotBot, take_id: int, user_id: int, can_manage: bool) -> str:
    """Keep a take for its shot: its clip shows it is kept (with Continue); the take it replaces shows Keep again."""
    scenes, takes = bot.services.scenes, bot.services.takes
    shot, take, previous = await scenes.keep(take_id, user_id=user_id, can_manage=can_manage)
    await _show_kept(bot, take, kept=True)
    if previous is not None and (old := await takes.get(previous)) is not None:
        await _show_kept(bot, old, kept=False)
    scene = await scenes.scene(take.scene_id or 0)
    name = f" of \u201c{scene.name}\u201d" if scene else ""
    return f"{take.label} is kept for shot {shot.position}{name}" + (
        f" (instead of take {old.take})." if previous is not None and old is not None else "."
    )


async def _show_kept(bot: AnchorshotBot, take: Take, *, kept: bool) -> None:
    if take.clip_message_id is None:
        return
    message = bot.get_partial_messageable(take.channel_id, guild_id=take.guild_id).get_partial_message(
        take.clip_message_id
    )
    try:
        await message.edit(view=clip_view_for(take, kept=kept))
    except discord.HTTPException:
        log.info("could not mark take %d %s", take.id, "kept" if kept else "not kept")


async def confirm_plan(interaction: discord.Interaction[Any], plan_id: int) -> str:
    """Confirm a plan: the whole quote held at once and its takes queued; the plan's message says so."""
    bot = bot_of(interaction)
    message = interaction.message
    jobs = await bot.services.scenes.confirm(
        plan_id,
        user_id=interaction.user.id,
        parent_channel_id=getattr(interaction.channel, "parent_id", None),
        message_id=message.id if message else None,
    )
    plan = await bot.services.scenes.get_plan(plan_id)
    assert plan is not None
    await bot.services.scenes.announce(jobs, message.id if message else None)
    if message is not None:
        try:
            await message.edit(content=confirmed_text(message.content, interaction.user.mention), view=None)
        except discord.HTTPException:
            log.info("could not mark plan %d confirmed on its message", plan_id)
    return confirmed_words(plan)


def confirmed_text(content: str, mention: str) -> str:
    """The plan's message once confirmed: its text, then who confirmed it, within Discord's 2,000 characters (a
    plan can fill them all: its end is cut to make room)."""
    line = f"\n\u2705 Confirmed by {mention}."
    room = MESSAGE_LIMIT - len(line)
    if len(content) > room:
        content = content[: room - 1] + "\u2026"
    return content + line


def confirmed_words(plan: Plan) -> str:
    shots = f"{len(plan.shots)} shot{'s' if len(plan.shots) != 1 else ''}"
    how = " in one call (a storyboard, cut at the planned lengths)" if plan.one_call else ""
    return f"Confirmed: {shots}{how}, {format_usd(plan.price_micros)} held; each is charged only once it is posted."
