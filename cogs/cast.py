"""/cast: add, list, remove, main (Discord glue only; the anchors' Cast does the work), and the cast-name
autocomplete every command with a `name` option shares."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.anchors.service import Upload
from bot.client import REFUSAL_EXTRA
from bot.media.sheet import MAX_CAST, cast_sheet
from cogs.anchors import cast_choices, manage_messages, parent_of, tell_channel
from cogs.render import COLOR_INFO, DESCRIPTION_LIMIT, anchor_embed, fit_lines, safe

if TYPE_CHECKING:
    from bot.client import AnchorshotBot

log = logging.getLogger(__name__)
REFUSAL = {
    REFUSAL_EXTRA: "Changing the cast is for moderators (Manage Messages in this channel); ask one of them."
}


class CastCog(commands.Cog):
    cast = app_commands.Group(
        name="cast",
        description="The named characters of this channel, each with its own anchor",
        guild_only=True,
    )

    def __init__(self, bot: AnchorshotBot) -> None:
        self.bot = bot

    @cast.command(
        name="add", description="Add a named character with its portrait (moderators)", extras=REFUSAL
    )
    @manage_messages
    @app_commands.describe(
        name="1-32 letters, digits, spaces, - or _ (write it in a prompt, or @Name, to show the character)",
        image="A clean portrait: PNG, JPEG or WebP, at least 300 px",
    )
    async def add(
        self,
        interaction: discord.Interaction[AnchorshotBot],
        name: app_commands.Range[str, 1, 80],
        image: discord.Attachment,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None and interaction.channel_id is not None
        cast = self.bot.services.anchors.cast
        clean = await cast.precheck(interaction.channel_id, name, parent_of(interaction.channel))
        upload = Upload(
            url=image.url, filename=image.filename, content_type=image.content_type, size=image.size
        )
        data = await self.bot.services.anchors.fetch_upload(upload)
        result = await cast.add(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            parent_id=parent_of(interaction.channel),
            user_id=interaction.user.id,
            data=data,
            name=clean,
        )
        version = result.version
        embed = anchor_embed(version, result.checklist, title=f"{clean} joined the cast", notes=result.notes)
        path = self.bot.services.anchors.image_path(version.sha256)
        await interaction.edit_original_response(
            content=f"Write {clean} (or @{clean}) in a /shot prompt to show this character.",
            embed=embed,
            attachments=[discord.File(path, filename="anchor.jpg", description=f"{clean}'s anchor")],
        )
        await tell_channel(
            self.bot,
            interaction.channel_id,
            interaction.guild_id,
            f"\U0001f3ad {interaction.user.mention} added {clean} to this channel's cast.",
            version,
        )

    @cast.command(name="list", description="Who is in this channel's cast, on one contact sheet")
    async def list_(self, interaction: discord.Interaction[AnchorshotBot]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.channel_id is not None
        lines, tiles = await self._listing(interaction.channel_id, parent_of(interaction.channel))
        if not lines:
            await interaction.edit_original_response(
                content="This channel has no cast yet: /cast add name:<name> image:<portrait> adds a character "
                "(the first one is the main character every shot starts from)."
            )
            return
        shown = tiles if len(tiles) <= MAX_CAST else tiles[: MAX_CAST - 1]
        sheet = await asyncio.to_thread(cast_sheet, shown, more=len(tiles) - len(shown))
        description = fit_lines(lines, DESCRIPTION_LIMIT, "character")
        embed = discord.Embed(title="Cast", description=description, color=COLOR_INFO)
        embed.set_image(url="attachment://cast.png")
        most = self.bot.services.settings.cast_per_shot
        embed.set_footer(text=f"Name characters in a prompt (Mara or @Mara); at most {most} a shot.")
        file = discord.File(io.BytesIO(sheet.data), filename="cast.png", description="The cast, main first")
        await interaction.edit_original_response(embed=embed, attachments=[file])

    async def _listing(
        self, channel_id: int, parent_id: int | None
    ) -> tuple[list[str], list[tuple[bytes | None, str]]]:
        """A line per character (main first: angles, voice, takes, median face score) and its sheet tile."""
        services = self.bot.services
        lines: list[str] = []
        tiles: list[tuple[bytes | None, str]] = []
        for c in await services.anchors.cast.members(channel_id, parent_id):
            version = await services.anchors.version_by_id(c.version_id) if c.version_id else None
            angles = len(await services.studio.angle_shas(version.id)) if version else 0
            voice = await services.voices.get(c.id)
            record = await services.consistency.cast_record(c.id)
            words = [f"**{safe(c.name, 40)}**" + (" (main)" if c.is_main else "")]
            if c.channel_id != channel_id:
                words.append("from the parent channel")
            words.append(f"v{version.version}" if version else "no anchor right now")
            words.append(f"{angles} angle{'s' if angles != 1 else ''}")
            words.append(f"voice ({voice.seconds:.0f} s sample)" if voice else "no voice")
            words.append(f"{record.takes_scored} take{'s' if record.takes_scored != 1 else ''} scored")
            if record.median_score is not None:
                words.append(f"median face {record.median_score:.0f}%")
            lines.append(" \u00b7 ".join(words))
            image = None
            if version is not None:
                image = await asyncio.to_thread(services.anchors.image_path(version.sha256).read_bytes)
            tiles.append((image, c.name + (" (main)" if c.is_main else "")))
        return lines, tiles

    @cast.command(
        name="remove",
        description="Take a character out of the cast; history stays (moderators)",
        extras=REFUSAL,
    )
    @manage_messages
    @app_commands.describe(name="The character to remove")
    async def remove(self, interaction: discord.Interaction[AnchorshotBot], name: str) -> None:
        assert interaction.guild_id is not None and interaction.channel_id is not None
        gone = await self.bot.services.anchors.cast.remove(interaction.channel_id, name)
        await interaction.response.send_message(
            f"{gone.name} left this channel's cast (the anchor versions and takes stay in the history).",
            ephemeral=True,
        )
        await tell_channel(
            self.bot,
            interaction.channel_id,
            interaction.guild_id,
            f"\U0001f3ad {interaction.user.mention} took {gone.name} out of this channel's cast.",
        )

    @cast.command(
        name="main",
        description="Make a character the main one every shot starts from (moderators)",
        extras=REFUSAL,
    )
    @manage_messages
    @app_commands.describe(name="The character whose anchor shots start from")
    async def main(self, interaction: discord.Interaction[AnchorshotBot], name: str) -> None:
        assert interaction.guild_id is not None and interaction.channel_id is not None
        character = await self.bot.services.anchors.cast.make_main(interaction.channel_id, name)
        await interaction.response.send_message(
            f"{character.name} is the main character now: shots start from this anchor unless they say start:.",
            ephemeral=True,
        )
        await tell_channel(
            self.bot,
            interaction.channel_id,
            interaction.guild_id,
            f"\U0001f3ad {interaction.user.mention} made {character.name} this channel's main character.",
        )

    @remove.autocomplete("name")
    @main.autocomplete("name")
    async def _names(
        self, interaction: discord.Interaction[AnchorshotBot], current: str
    ) -> list[app_commands.Choice[str]]:
        return await cast_choices(self.bot, interaction, current)


async def setup(bot: AnchorshotBot) -> None:
    await bot.add_cog(CastCog(bot))
