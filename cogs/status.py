"""/status: is the bot healthy, what backend, how busy."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import __version__
from bot.alerts import Alert
from bot.housekeeping import disk_used
from bot.text import human_size
from cogs.render import status_embed

if TYPE_CHECKING:
    from bot.client import AnchorshotBot


log = logging.getLogger(__name__)
DISK_REFRESH_S = 60.0


class StatusCog(commands.Cog):
    def __init__(self, bot: AnchorshotBot) -> None:
        self.bot = bot
        self._disk: tuple[float, int] | None = None  # (when, bytes) of the last walk
        self._tasks: set[asyncio.Task[None]] = set()
        self._unlisten: Callable[[], None] | None = None

    async def cog_load(self) -> None:
        self._unlisten = self.bot.services.alerts.listen(self._alert)

    async def cog_unload(self) -> None:
        if self._unlisten is not None:
            self._unlisten()

    def _alert(self, alert: Alert) -> None:
        """A fault only an operator can fix: told once in ALERT_CHANNEL_ID, if one is set."""
        channel_id = self.bot.services.settings.alert_channel_id
        if channel_id is None:
            return
        task = asyncio.create_task(self._post_alert(channel_id, alert))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post_alert(self, channel_id: int, alert: Alert) -> None:
        try:
            await self.bot.get_partial_messageable(channel_id).send(
                f"\u26a0\ufe0f Anchorshot needs an admin: {alert.text}",
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException:
            log.warning("could not post the alert in channel %s (check ALERT_CHANNEL_ID)", channel_id)

    async def _disk_used(self) -> int:
        """Bytes of the database and media, walked at most once a minute (a busy bot keeps thousands of clips)."""
        now = time.monotonic()
        if self._disk is None or now - self._disk[0] > DISK_REFRESH_S:
            settings = self.bot.services.settings
            self._disk = (now, await asyncio.to_thread(disk_used, settings.database_path, settings.media_dir))
        return self._disk[1]

    @app_commands.command(
        name="status", description="Version, uptime, generation backend and queue of the bot"
    )
    @app_commands.guild_only()
    async def status(self, interaction: discord.Interaction[AnchorshotBot]) -> None:
        """Show the bot's health."""
        services = self.bot.services
        waiting, in_flight = await services.takes.counts()
        embed = status_embed(
            version=__version__,
            uptime_s=time.time() - services.started_at,
            backend=services.gateway.name,
            waiting=waiting,
            in_flight=in_flight,
            db_bytes=await services.db.size_bytes(),
            latency_ms=self.bot.gateway_latency(interaction.guild_id) * 1000,
        )
        shard = self.bot.shard_words(interaction.guild_id)
        if shard is not None:
            embed.add_field(name="Shard", value=shard)
        used = await self._disk_used()
        embed.add_field(name="Disk used", value=f"{human_size(used)} (database and media)")
        embed.add_field(name="Face checks", value=services.consistency.status_words()[:1024], inline=False)
        for alert in services.alerts.active.values():
            embed.add_field(name="\u26a0\ufe0f Needs an admin", value=alert.text[:1024], inline=False)
        await interaction.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: AnchorshotBot) -> None:
    await bot.add_cog(StatusCog(bot))
