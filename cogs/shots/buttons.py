"""The persistent buttons of a take: Cancel on its progress message, Re-roll on its clip."""

from __future__ import annotations

import dataclasses
from typing import Any

import discord

from bot.client import claim, handle_interaction_error
from bot.money import format_usd
from bot.takes.models import Take
from cogs.components import GuardedButton, bot_of


class CancelButton(GuardedButton, template=r"shot:cancel:(?P<id>[0-9]+)"):
    """Cancel on a progress message; survives restarts (the take id is in the custom id)."""

    @classmethod
    def button(cls, target_id: int, price_micros: int | None = None) -> discord.ui.Button[Any]:
        return discord.ui.Button(
            label="Cancel", style=discord.ButtonStyle.danger, custom_id=f"shot:cancel:{target_id}"
        )

    async def run(self, interaction: discord.Interaction[Any]) -> str:
        shot = await bot_of(interaction).services.takes.cancel(
            self.target_id, user_id=interaction.user.id, can_manage=interaction.permissions.manage_messages
        )
        return f"{shot.label} is cancelled; nothing was charged."


def _priced(label: str, price_micros: int | None) -> str:
    """A button's label with the price of pressing it ("Re-roll · $0.56")."""
    return f"{label} \u00b7 {format_usd(price_micros)}" if price_micros else label


def queued_answer(take: Take) -> str:
    """The private answer to whoever asked for another take: what it costs them, and when."""
    if take.backend == "dry-run":
        return f"{take.label} is on its way (dry run: free)."
    return f"{take.label} is on its way: {format_usd(take.price_micros)}, charged to you only if its clip is posted."


class RerollButton(GuardedButton, template=r"shot:reroll:(?P<id>[0-9]+)"):
    """Re-roll on a clip message: a new take charged to whoever pressed it."""

    @classmethod
    def button(cls, target_id: int, price_micros: int | None = None) -> discord.ui.Button[Any]:
        return discord.ui.Button(
            label=_priced("Re-roll", price_micros),
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
        return queued_answer(shot)


class TryAgainButton(GuardedButton, template=r"shot:retry:(?P<id>[0-9]+)"):
    """Try again on a failed or cancelled take's message: a new take of the same shot, charged to whoever
    pressed it and only if its clip is posted."""

    @classmethod
    def button(cls, target_id: int, price_micros: int | None = None) -> discord.ui.Button[Any]:
        return discord.ui.Button(
            label=_priced("Try again", price_micros),
            emoji="\U0001f504",
            style=discord.ButtonStyle.primary,
            custom_id=f"shot:retry:{target_id}",
        )

    async def run(self, interaction: discord.Interaction[Any]) -> str:
        shot = await bot_of(interaction).services.takes.try_again(
            self.target_id, user_id=interaction.user.id, upload_limit_bytes=interaction.filesize_limit
        )
        return queued_answer(shot)


def view_of(*items: discord.ui.Item[Any]) -> discord.ui.View:
    """A persistent view holding `items`."""
    view = discord.ui.View(timeout=None)
    for item in items:
        view.add_item(item)
    return view


class ConsentView(discord.ui.View):
    """ "Go on without" under a refusal that the endpoint cannot send the cast or a voice: the same shot, plain (the
    names as words, no voices). Lives 10 minutes in memory; after a restart the member runs /shot again."""

    def __init__(self, cog: Any, request: Any, continue_: bool, end_upload: Any) -> None:
        super().__init__(timeout=600)
        self.cog, self.request, self.continue_, self.end_upload = cog, request, continue_, end_upload
        self.going = False  # a press is being answered: a second one at the same time queues nothing

    @discord.ui.button(label="Go on without", style=discord.ButtonStyle.primary)
    async def go(self, interaction: discord.Interaction[Any], button: discord.ui.Button[Any]) -> None:
        """Queue the shot plain. A refusal (no budget left, the anchor gone) is answered like any other and the
        button stays, so the member can press it again once that is put right; it goes once the shot is queued."""
        claim(interaction)  # /shot's answer may wait up to 2 s: not a click nothing handles
        if interaction.user.id != self.request.user_id:
            await interaction.response.send_message(
                "Only the member who asked for this shot can.", ephemeral=True
            )
            return
        if self.going:
            await interaction.response.send_message("This shot is on its way already.", ephemeral=True)
            return
        self.going = True
        try:
            await self.cog.shoot(
                interaction, dataclasses.replace(self.request, plain=True), self.continue_, self.end_upload
            )
        except Exception as exc:
            self.going = False
            await handle_interaction_error(interaction, exc)
            return
        self.stop()
