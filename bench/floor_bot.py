"""The floor for command answers: a bare discord.py bot that only answers, against the same fake Discord.

It registers the two commands the bench fires (`/status`, and `/anchor clear`, which the real bot refuses to a
member without Manage Messages before touching its database) and answers each at once, ephemerally. Settings come
from the same environment variables as the real bot (DISCORD_TOKEN, DISCORD_API_BASE, DISCORD_GATEWAY_URL).
"""

from __future__ import annotations

import logging
import os

import discord
import yarl
from discord import app_commands

if os.environ.get("DISCORD_API_BASE"):
    discord.http.Route.BASE = os.environ["DISCORD_API_BASE"].rstrip("/")
if os.environ.get("DISCORD_GATEWAY_URL"):
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["DISCORD_GATEWAY_URL"])


class FloorBot(discord.Client):
    def __init__(self) -> None:
        super().__init__(intents=discord.Intents.default())
        self.tree = app_commands.CommandTree(self)
        anchor = app_commands.Group(name="anchor", description="floor", guild_only=True)

        @self.tree.command(name="status", description="floor")
        async def status(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("ok", ephemeral=True)

        @anchor.command(name="clear", description="floor")
        async def clear(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("needs Manage Messages", ephemeral=True)

        self.tree.add_command(anchor)

    async def setup_hook(self) -> None:
        await self.tree.sync()


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    FloorBot().run(os.environ["DISCORD_TOKEN"], log_handler=None)


if __name__ == "__main__":
    main()
