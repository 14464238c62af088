"""One base for every persistent button: refused outside a server, deferred, answered, errors handled once."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Self, cast

import discord

from bot.client import OUTSIDE_GUILD, claim, handle_interaction_error, reply_ephemeral
from bot.jobs.repeats import KeyedLocks

if TYPE_CHECKING:
    from bot.client import AnchorshotBot

log = logging.getLogger(__name__)
ELSEWHERE = "That button belongs to another channel; nothing changed."
_CLICKS = KeyedLocks()


class GuardedButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"(?!)(?P<id>[0-9]+)"):
    """A persistent button whose custom id is ``<prefix>:<id>``; it survives restarts (the id is the state).

    Subclasses give a ``template`` with a named group ``id``, build their button in ``button()`` and do their one
    service call in ``run()``, returning the private answer. A click outside a server gets one polite refusal and
    reaches no ``run()``; every click is deferred privately at once and answered by editing that response.
    (The base's own template matches nothing: only subclasses are registered.)
    """

    def __init__(self, target_id: int, price_micros: int | None = None) -> None:
        super().__init__(self.button(target_id, price_micros))
        self.target_id = target_id

    @classmethod
    def button(cls, target_id: int, price_micros: int | None = None) -> discord.ui.Button[Any]:
        """The button as it is posted (with the price of pressing it, where it costs), with the custom id that
        matches ``template``; a click rebuilds it from the custom id alone."""
        raise NotImplementedError

    async def run(self, interaction: discord.Interaction[Any]) -> str:
        """Do what the click asks; return the sentence shown to whoever clicked."""
        raise NotImplementedError

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(int(match["id"]))

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        if interaction.guild_id is not None:
            return True
        log.info(
            "refused a component (%s) from user %s outside a server", self.custom_id, interaction.user.id
        )
        await reply_ephemeral(interaction, OUTSIDE_GUILD)
        return False

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        claim(interaction)
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
            # One member's clicks on one button are taken in turn (a double click: the first is carried out, the
            # second sees it), not raced through the checks' database reads.
            async with _CLICKS.hold((self.custom_id, interaction.user.id)):
                if await self.elsewhere(interaction):
                    await interaction.edit_original_response(content=ELSEWHERE)
                    return
                answer = await self.run(interaction)
            await interaction.edit_original_response(content=answer)
        except Exception as exc:
            await handle_interaction_error(interaction, exc)

    async def place(self, bot: AnchorshotBot) -> tuple[int, int] | None:
        """(server, channel) of what the button acts on: a job (a take, a studio set) by default; None when it
        does not exist (then `run` gives its own answer)."""
        job = await bot.services.jobs.get(self.target_id)
        return (job.guild_id, job.channel_id) if job is not None else None

    async def elsewhere(self, interaction: discord.Interaction[Any]) -> bool:
        """Whether the click came from another server or channel than what it acts on. Discord sends a button's
        custom id back as the bot posted it, but a client can send any: an id from another server acts on nothing."""
        place = await self.place(bot_of(interaction))
        if place is None or place == (interaction.guild_id, interaction.channel_id):
            return False
        log.warning(
            "refused a component (%s) from user %s in channel %s: it acts on channel %s",
            self.custom_id,
            interaction.user.id,
            interaction.channel_id,
            place[1],
        )
        return True


def bot_of(interaction: discord.Interaction[Any]) -> AnchorshotBot:
    """The bot an interaction arrived at (discord.py types it as a plain Client)."""
    return cast("AnchorshotBot", interaction.client)
