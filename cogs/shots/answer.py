"""/shot's one answer: the progress message itself when the take is queued in time, else a deferral first."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import discord

from bot.takes.models import Take

if TYPE_CHECKING:
    from cogs.shots.publisher import DiscordTakePublisher

log = logging.getLogger(__name__)

FAST_ANSWER_S = 2.0  # Discord allows 3 s for the first answer: past this, /shot defers and posts its progress


class ProgressAnswer:
    """The progress message is the answer when the take is queued within FAST_ANSWER_S (one request); otherwise
    a deferral first, then a progress post in the channel and an answer that links it."""

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
        except discord.NotFound:  # the interaction expired (a stalled loop), or Discord kept no answer
            log.warning("/shot's answer was not shown; posting take %d's progress instead", take.id)
            return await self.publisher.create_progress(take)

    async def in_time(self, work: asyncio.Future[Any]) -> None:
        """Wait for the take to be queued; defer at FAST_ANSWER_S unless the answer is already on its way."""
        await asyncio.wait({work}, timeout=FAST_ANSWER_S)
        if work.done() or self.answering:
            return
        self.deferred = True
        try:
            await self.interaction.response.defer(ephemeral=True, thinking=True)
        except (discord.HTTPException, discord.InteractionResponded):
            log.warning("could not defer /shot in time; its progress message is posted all the same")
