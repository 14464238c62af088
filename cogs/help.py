"""/help: how the bot works, what this member may use here, this channel's anchor, prices and their budget."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.anchors.models import AnchorVersion
from bot.errors import NoAnchor
from bot.money import format_usd
from cogs.anchors import parent_of
from cogs.render import COLOR_INFO

if TYPE_CHECKING:
    from bot.client import AnchorshotBot

WORKFLOW = (
    "1. Each channel has an **anchor**: one clean portrait of its character. Every shot starts from it, so the "
    "face stays the same from clip to clip.\n"
    "2. **/shot** with what happens: pick a length (each shows its price) and the clip is made from the anchor.\n"
    "3. You are pinged when it is ready. You pay only for a clip that is posted; a failed one costs nothing.\n"
    "4. Each clip says whether the face still matches the anchor. Not happy? **Re-roll** (or react \U0001f501) "
    "makes another take of the same shot.\n"
    "5. **/budget** shows what you have spent and what is left.\n"
    "6. Several characters? Write their names (or @Name) in the prompt: each cast member keeps their face, and "
    "their voice when sound is on. **/cast list** shows who is in this channel's cast."
)

EVERYONE = (
    ("/shot", "make a clip from this channel's anchor"),
    ("/budget", "your spend and what is left"),
    ("/anchor show, /anchor history", "the anchor and its earlier versions"),
    ("/anchor settings", "this channel's settings (auto re-roll)"),
    ("/cast list, /voice show", "the channel's characters and their voices"),
    ("/scene start|plan|show|export", "shots grouped into a scene, exported as one video"),
    ("/status", "is the bot working"),
)
MODERATORS = (  # Manage Messages in this channel
    ("/anchor set, /anchor use, /anchor clear", "choose the anchor"),
    ("/anchor generate, /anchor refine", "make anchor candidates (charged)"),
    ("/anchor angles make|add|clear", "extra views of the character (charged)"),
    ("/anchor settings auto_reroll:", "re-roll drifted takes automatically"),
    ("/cast add|main|remove", "the channel's named characters"),
    ("/voice set|clear", "a character's voice (charged)"),
)
ADMINS = (  # Manage Server
    ("/budget-admin set|default|cap|adjust|report", "limits and the spend report"),
    ("/budget user:", "anyone's budget"),
)


def command_lines(perms: discord.Permissions) -> str:
    """The commands this member may use here, by their permissions."""
    groups: list[tuple[tuple[str, str], ...]] = [EVERYONE]
    if perms.manage_messages:
        groups.append(MODERATORS)
    if perms.manage_guild:
        groups.append(ADMINS)
    lines = [f"`{name}`: {what}" for group in groups for name, what in group]
    if not perms.manage_messages:
        lines.append("Changing the anchor is for moderators (Manage Messages): ask one of them.")
    return "\n".join(lines)


class HelpCog(commands.Cog):
    def __init__(self, bot: AnchorshotBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="help", description="How Anchorshot works here, what you can use, and the prices"
    )
    @app_commands.guild_only()
    async def help(self, interaction: discord.Interaction[AnchorshotBot]) -> None:
        """Answer privately: the workflow, this member's commands, the anchor, a default shot's price, the budget."""
        assert interaction.guild_id is not None and interaction.channel_id is not None
        services = self.bot.services
        embed = discord.Embed(title="Anchorshot: consistent characters in video", color=COLOR_INFO)
        embed.description = WORKFLOW
        embed.add_field(
            name="What you can use here", value=command_lines(interaction.permissions), inline=False
        )
        files: list[discord.File] = []
        version: AnchorVersion | None = None
        try:
            version = await services.anchors.resolve(interaction.channel_id, parent_of(interaction.channel))
            embed.add_field(
                name="This channel's anchor", value=f"{version.label} ({version.shape})", inline=False
            )
            embed.set_thumbnail(url="attachment://anchor.jpg")
            files.append(
                discord.File(
                    services.anchors.image_path(version.sha256),
                    filename="anchor.jpg",
                    description=f"The anchor, {version.label}",
                )
            )
        except NoAnchor:
            embed.add_field(
                name="This channel's anchor",
                value="None yet: ask a moderator to run /anchor set or /anchor generate.",
                inline=False,
            )
        embed.add_field(name="A default shot here", value=self._price_line(), inline=False)
        if interaction.permissions.manage_messages:
            embed.add_field(name="Anchor studio prices", value=self._studio_prices(version), inline=False)
        view = await services.budget.view(interaction.guild_id, interaction.user.id)
        embed.add_field(
            name="Your budget",
            value=f"{format_usd(view.remaining)} left of {format_usd(view.limit)} {view.per}",
            inline=False,
        )
        await interaction.response.send_message(embed=embed, files=files, ephemeral=True)

    def _price_line(self) -> str:
        services = self.bot.services
        seconds = services.settings.default_duration_s
        silent = services.takes.quote(seconds, False)
        line = f"{seconds} s: {format_usd(silent)}"
        if services.takes.spec.supports_audio:
            line += f" ({format_usd(services.takes.quote(seconds, True))} with sound)"
        if services.gateway.dry_run:
            line += ". This bot runs a free dry run: nothing is charged."
        return line + f" \u00b7 made with {services.takes.spec.label}"

    def _studio_prices(self, version: AnchorVersion | None) -> str:
        """Each studio command's models and rates (a per-megapixel one with what a view of this anchor costs)."""
        return "\n".join(
            f"`{command}`: " + "; ".join(f"{label} {rate}" for label, rate in rates)
            for command, rates in self.bot.services.studio.price_list(version)
        )


async def setup(bot: AnchorshotBot) -> None:
    await bot.add_cog(HelpCog(bot))
