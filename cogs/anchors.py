"""/anchor: set, show, history, use, clear (Discord glue only; the AnchorService does the work)."""

from __future__ import annotations

import io
import logging
import time
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.anchors.models import AnchorVersion
from bot.anchors.service import AnchorService, Upload
from bot.client import REFUSAL_EXTRA
from bot.errors import NoAnchor, NotAllowed
from bot.money import format_usd
from bot.text import clean_text
from cogs.channels import channel_of
from cogs.render import COLOR_INFO, add_record_field, anchor_embed, history_embed

if TYPE_CHECKING:
    from bot.client import AnchorshotBot

log = logging.getLogger(__name__)
NO_PINGS = discord.AllowedMentions.none()


def parent_of(channel: object) -> int | None:
    """The parent channel id of a thread, else None."""
    return getattr(channel, "parent_id", None) if isinstance(channel, discord.Thread) else None


# Discord applies default member permissions to a whole top-level command only, and /anchor show and history are
# for everyone, so set, use and clear each check Manage Messages in this channel (channel overwrites count).
manage_messages = app_commands.checks.has_permissions(manage_messages=True)
REFUSAL = {
    REFUSAL_EXTRA: "Changing the anchor is for moderators (Manage Messages in this channel); ask one of them."
}


async def tell_channel(
    bot: AnchorshotBot, channel_id: int, guild_id: int | None, text: str, version: AnchorVersion | None = None
) -> None:
    """Say an anchor change once, publicly, in one line (with the anchor as a thumbnail): a teammate's next shot
    has a different face, so the channel is told, not only the member who changed it. Mentions never ping."""
    channel = channel_of(bot, channel_id, guild_id)
    try:
        if version is None:
            await channel.send(text, allowed_mentions=NO_PINGS)
            return
        path = bot.services.anchors.image_path(version.sha256)
        embed = discord.Embed(description=text, color=COLOR_INFO).set_thumbnail(url="attachment://anchor.jpg")
        file = discord.File(path, filename="anchor.jpg", description=f"The anchor, {version.label}")
        await channel.send(embed=embed, file=file, allowed_mentions=NO_PINGS)
    except discord.HTTPException:
        log.warning("could not tell channel %s of its anchor change", channel_id)


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

    @anchor.command(
        name="set", description="Make an image this channel's character anchor (moderators)", extras=REFUSAL
    )
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
            attachments=[
                discord.File(path, filename="anchor.jpg", description=f"The anchor, {version.label}")
            ],
        )
        await tell_channel(
            self.bot,
            interaction.channel_id,
            interaction.guild_id,
            f"\U0001f3ad {interaction.user.mention} made {version.label} this channel's anchor.",
            version,
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
        files = [discord.File(self.anchors.image_path(version.sha256), filename="anchor.jpg")]
        studio = self.bot.services.studio
        if studio is not None:  # the kept angles (the identity pack), see cogs/studio.py
            angles = await studio.angle_shas(version.id)
            embed.add_field(
                name="Angles",
                value=f"{len(angles)} of 3 kept"
                + (" (every take shows them to the video model; see angles.png)" if angles else ""),
                inline=False,
            )
            sheet = await studio.angles_sheet(version.id)
            if sheet is not None:
                files.append(discord.File(io.BytesIO(sheet), filename="angles.png"))
        add_record_field(embed, await self.bot.services.consistency.record(version.id))
        await interaction.edit_original_response(embed=embed, attachments=files)

    @anchor.command(
        name="settings",
        description="This channel's shot settings; without options, shows them (changing: moderators)",
        extras=REFUSAL,
    )
    @app_commands.describe(
        auto_reroll="Re-roll a take once automatically when its face drifts from the anchor"
    )
    async def settings(
        self, interaction: discord.Interaction[AnchorshotBot], auto_reroll: bool | None = None
    ) -> None:
        """Show the channel's settings; set the auto re-roll default (Manage Messages)."""
        assert interaction.guild_id is not None and interaction.channel_id is not None
        consistency = self.bot.services.consistency
        if auto_reroll is not None:
            if not interaction.permissions.manage_messages:
                raise NotAllowed(REFUSAL[REFUSAL_EXTRA])
            await consistency.set_auto_reroll(interaction.guild_id, interaction.channel_id, auto_reroll)
        on = await consistency.auto_reroll_default(interaction.channel_id)
        price = format_usd(
            self.bot.services.takes.quote(self.bot.services.settings.default_duration_s, False)
        )
        await interaction.response.send_message(
            f"Auto re-roll in <#{interaction.channel_id}> is {'on' if on else 'off'}: a take whose face drifts "
            f"from the anchor is {'re-rolled once, charged to whoever asked for it' if on else 'not re-rolled'}"
            f" (at most one more take; {price} for a default shot; a take with no face visible never is). "
            "/shot auto_reroll: overrides it per shot."
            + (
                ""
                if auto_reroll is not None
                else " Change it with /anchor settings auto_reroll: (moderators)."
            ),
            ephemeral=True,
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

    @anchor.command(
        name="use", description="Make an earlier anchor version current again (moderators)", extras=REFUSAL
    )
    @manage_messages
    @app_commands.describe(version="The version number (suggested from /anchor history)")
    async def use(
        self, interaction: discord.Interaction[AnchorshotBot], version: app_commands.Range[int, 1, 1_000_000]
    ) -> None:
        """Switch back to an earlier version."""
        assert interaction.guild_id is not None and interaction.channel_id is not None
        found = await self.anchors.use_version(interaction.guild_id, interaction.channel_id, version)
        await interaction.response.send_message(
            f"Anchor {found.label} is current again in <#{interaction.channel_id}>.", ephemeral=True
        )
        await tell_channel(
            self.bot,
            interaction.channel_id,
            interaction.guild_id,
            f"\U0001f3ad {interaction.user.mention} made {found.label} this channel's anchor again.",
            found,
        )

    @use.autocomplete("version")
    async def _versions(
        self, interaction: discord.Interaction[AnchorshotBot], current: str
    ) -> list[app_commands.Choice[int]]:
        """The channel's versions, newest first, as "v4 “Mara” · set 3 days ago by Rin" (up to 25)."""
        if interaction.channel_id is None:
            return []
        rows, _, _ = await self.anchors.history(interaction.channel_id, 1, per_page=25)
        typed = current.strip().lower().lstrip("v")
        return [
            app_commands.Choice(
                name=f"{v.label} \u00b7 {v.shape} \u00b7 set {_when(v.set_at)}"[:100], value=v.version
            )
            for v in rows
            if not typed or typed in f"{v.version} {(v.name or '').lower()}"
        ]

    @anchor.command(
        name="clear",
        description="Leave this channel without an anchor; history is kept (moderators)",
        extras=REFUSAL,
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
        label = previous.label if previous else "the anchor"
        await interaction.response.send_message(
            f"Cleared: this channel has no anchor now ({label} stays in /anchor history; bring it back with "
            f"/anchor use).{extra}",
            ephemeral=True,
        )
        await tell_channel(
            self.bot,
            interaction.channel_id,
            interaction.guild_id,
            f"\U0001f3ad {interaction.user.mention} cleared this channel's anchor ({label} stays in /anchor history)."
            + (extra or " A moderator can set a new one with /anchor set or /anchor generate."),
        )


def _when(epoch: float) -> str:
    """How long ago, in words for an autocomplete choice (which cannot show a Discord timestamp)."""
    days = int((time.time() - epoch) // 86400)
    return "today" if days < 1 else "yesterday" if days == 1 else f"{days} days ago"


async def setup(bot: AnchorshotBot) -> None:
    await bot.add_cog(AnchorCog(bot))
