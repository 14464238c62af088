"""/anchor: set, show, history, use, clear (Discord glue only; the AnchorService does the work)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.anchors.service import AnchorService, Upload
from bot.client import REFUSAL_EXTRA
from bot.errors import NoAnchor
from bot.text import clean_text
from cogs.render import anchor_embed, history_embed

if TYPE_CHECKING:
    from bot.client import AnchorshotBot


def parent_of(channel: object) -> int | None:
    """The parent channel id of a thread, else None."""
    return getattr(channel, "parent_id", None) if isinstance(channel, discord.Thread) else None


# Discord applies default member permissions to a whole top-level command only, and /anchor show and history are
# for everyone, so set, use and clear each check Manage Messages in this channel (channel overwrites count).
manage_messages = app_commands.checks.has_permissions(manage_messages=True)
REFUSAL = {
    REFUSAL_EXTRA: "Changing the anchor needs the Manage Messages permission in this channel; ask a moderator."
}


class AnchorCog(commands.Cog):
    anchor = app_commands.Group(
        name="anchor",
        description="The character anchor every shot in this channel starts from",
        guild_only=True,
    )

    def __init__(self, bot: AnchorshotBot) -> None:
        self.bot = bot

    @property
    def anchors(self) -> AnchorService:
        return self.bot.services.anchors

    @anchor.command(name="set", description="Make an image this channel's character anchor", extras=REFUSAL)
    @manage_messages
    @app_commands.describe(
        image="A clean portrait: PNG, JPEG or WebP, at least 300 px", name="A name for this version"
    )
    async def set_(
        self,
        interaction: discord.Interaction[AnchorshotBot],
        image: discord.Attachment,
        name: app_commands.Range[str, 1, 80] | None = None,
    ) -> None:
        """Store the uploaded image as the new current anchor."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None and interaction.channel_id is not None
        result = await self.anchors.set_anchor(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            user_id=interaction.user.id,
            upload=Upload(
                url=image.url, filename=image.filename, content_type=image.content_type, size=image.size
            ),
            name=clean_text(name, field="anchor name", max_chars=80) if name is not None else None,
        )
        version = result.version
        path = self.anchors.image_path(version.sha256)
        notes = result.notes + (
            () if result.new_file else ("Same image as an earlier version: stored once.",)
        )
        embed = anchor_embed(
            version, result.checklist, title=f"Anchor set: version {version.version}", notes=notes
        )
        await interaction.edit_original_response(
            content=f"Every new /shot in <#{interaction.channel_id}> now starts from this image.",
            embed=embed,
            attachments=[discord.File(path, filename="anchor.jpg")],
        )

    @anchor.command(name="show", description="Show this channel's current anchor and its checklist")
    async def show(self, interaction: discord.Interaction[AnchorshotBot]) -> None:
        """Show the current anchor from the bot's own copy."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.channel_id is not None
        parent = parent_of(interaction.channel)
        try:
            version = await self.anchors.resolve(interaction.channel_id, parent)
        except NoAnchor as exc:
            await interaction.edit_original_response(content=exc.message)
            return
        checklist = await self.anchors.checklist(version)
        embed = anchor_embed(
            version,
            checklist,
            title=f"Current anchor: version {version.version}",
            inherited_from=version.channel_id if version.channel_id != interaction.channel_id else None,
        )
        await interaction.edit_original_response(
            embed=embed,
            attachments=[discord.File(self.anchors.image_path(version.sha256), filename="anchor.jpg")],
        )

    @anchor.command(name="history", description="List this channel's anchor versions, newest first")
    @app_commands.describe(page="Page number (10 versions a page)")
    async def history(
        self, interaction: discord.Interaction[AnchorshotBot], page: app_commands.Range[int, 1, 10_000] = 1
    ) -> None:
        """List the channel's anchor versions."""
        assert interaction.channel_id is not None
        rows, page, pages = await self.anchors.history(interaction.channel_id, page)
        current = await self.anchors.store.current(interaction.channel_id)
        await interaction.response.send_message(
            embed=history_embed(rows, page, pages, current.id if current else None), ephemeral=True
        )

    @anchor.command(name="use", description="Make an earlier anchor version current again", extras=REFUSAL)
    @manage_messages
    @app_commands.describe(version="The version number from /anchor history")
    async def use(
        self, interaction: discord.Interaction[AnchorshotBot], version: app_commands.Range[int, 1, 1_000_000]
    ) -> None:
        """Switch back to an earlier version."""
        assert interaction.guild_id is not None and interaction.channel_id is not None
        found = await self.anchors.use_version(interaction.guild_id, interaction.channel_id, version)
        await interaction.response.send_message(
            f"Anchor version {found.version} is current again in <#{interaction.channel_id}>.", ephemeral=True
        )

    @anchor.command(
        name="clear", description="Leave this channel without an anchor (history is kept)", extras=REFUSAL
    )
    @manage_messages
    async def clear(self, interaction: discord.Interaction[AnchorshotBot]) -> None:
        """Clear the current anchor."""
        assert interaction.guild_id is not None and interaction.channel_id is not None
        previous = await self.anchors.clear(interaction.guild_id, interaction.channel_id)
        extra = (
            " This thread now uses its parent channel's anchor, if it has one."
            if isinstance(interaction.channel, discord.Thread)
            else ""
        )
        await interaction.response.send_message(
            f"Cleared: this channel has no anchor now (version {previous.version if previous else '?'} stays in "
            f"/anchor history; bring it back with /anchor use).{extra}",
            ephemeral=True,
        )


async def setup(bot: AnchorshotBot) -> None:
    await bot.add_cog(AnchorCog(bot))
