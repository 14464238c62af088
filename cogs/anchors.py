"""/anchor: set, show, history, use, clear (Discord glue only; the AnchorService does the work)."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.anchors.models import AnchorVersion, Character, name_key
from bot.anchors.service import AnchorService, Upload
from bot.client import REFUSAL_EXTRA
from bot.errors import NoAnchor, NotAllowed, UserError
from bot.money import format_usd
from cogs.channels import channel_of
from cogs.render import COLOR_INFO, add_record_field, anchor_embed, history_embed, safe

if TYPE_CHECKING:
    from bot.client import AnchorshotBot

log = logging.getLogger(__name__)
NO_PINGS = discord.AllowedMentions.none()


def parent_of(channel: object) -> int | None:
    """The parent channel id of a thread, else None."""
    return getattr(channel, "parent_id", None) if isinstance(channel, discord.Thread) else None


async def cast_choices(
    bot: AnchorshotBot, interaction: discord.Interaction[Any], current: str
) -> list[app_commands.Choice[str]]:
    """The cast names of the channel (and, in a thread, its parent's) that contain what was typed, main first."""
    if interaction.channel_id is None:
        return []
    cast = await bot.services.anchors.cast.members(interaction.channel_id, parent_of(interaction.channel))
    typed = name_key(current)
    return [
        app_commands.Choice(name=c.name + (" (main)" if c.is_main else ""), value=c.name)
        for c in cast
        if typed in name_key(c.name)
    ][:25]


def cast_name(typed: str | None, cast: Sequence[Character]) -> str:
    """The cast's own spelling of a typed name (shown safely), else the typed text."""
    found = next((c.name for c in cast if typed and name_key(c.name) == name_key(typed)), typed or "")
    return safe(found, 40)


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
        image="A clean portrait: PNG, JPEG or WebP, at least 300 px",
        name="Whose anchor (a cast name; default: the main character). A channel's first anchor is named by it",
    )
    async def set_(
        self,
        interaction: discord.Interaction[AnchorshotBot],
        image: discord.Attachment,
        name: app_commands.Range[str, 1, 80] | None = None,
    ) -> None:
        """Store the uploaded image as the new current anchor of a character (the main one by default)."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None and interaction.channel_id is not None
        result = await self.anchors.set_anchor(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            user_id=interaction.user.id,
            upload=Upload(
                url=image.url, filename=image.filename, content_type=image.content_type, size=image.size
            ),
            name=name,
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
            f"\U0001f3ad {interaction.user.mention} made {version.label} {await self._whose(version)}.",
            version,
        )

    @anchor.command(name="show", description="Show this channel's current anchor and its checklist")
    @app_commands.describe(name="Whose anchor (a cast name; default: the main character)")
    async def show(self, interaction: discord.Interaction[AnchorshotBot], name: str | None = None) -> None:
        """Show the current anchor from the bot's own copy."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.channel_id is not None
        parent = parent_of(interaction.channel)
        try:
            version = await self.anchors.version_of(interaction.channel_id, parent, name)
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
    @app_commands.describe(
        page="Page number (10 versions a page)", name="Only this character's versions (a cast name)"
    )
    async def history(
        self,
        interaction: discord.Interaction[AnchorshotBot],
        page: app_commands.Range[int, 1, 10_000] = 1,
        name: str | None = None,
    ) -> None:
        """List the channel's anchor versions (all characters', or one's); in a thread with none of its own, the
        parent channel's, marked as the parent's."""
        assert interaction.channel_id is not None
        parent = parent_of(interaction.channel)
        source, rows, page, pages = await self._listing(interaction.channel_id, parent, page, name)
        cast = await self.anchors.cast.members(source)
        current = {c.version_id for c in cast if c.version_id is not None}
        title = f"Anchor history of {cast_name(name, cast)}" if name else "Anchor history"
        note = None
        if source != interaction.channel_id:
            note = (
                f"This thread has no anchor versions of its own: it uses <#{source}>'s anchor, whose versions "
                f"these are (/anchor use in <#{source}> brings one back)."
            )
        elif parent is not None:
            note = f"The rest of this thread's cast comes from <#{parent}>; /anchor history there lists its versions."
        await interaction.response.send_message(
            embed=history_embed(rows, page, pages, current, title, note=note), ephemeral=True
        )

    async def _listing(
        self, channel_id: int, parent_id: int | None, page: int, name: str | None
    ) -> tuple[int, list[AnchorVersion], int, int]:
        """(channel, rows, page, pages) of what /anchor history lists: the channel's own versions (of `name`, when
        given); in a thread with none of its own, its parent channel's, when that has some."""
        try:
            rows, page, pages = await self.anchors.history(channel_id, page, name=name)
        except UserError:  # the name is not one of the thread's own characters: perhaps its parent's
            if parent_id is None:
                raise
            rows, pages = [], 1
        if rows or parent_id is None:
            return channel_id, rows, page, pages
        inherited, inherited_page, inherited_pages = await self.anchors.history(parent_id, page, name=name)
        if not inherited:
            return channel_id, rows, 1, 1
        return parent_id, inherited, inherited_page, inherited_pages

    @anchor.command(
        name="use", description="Make an earlier anchor version current again (moderators)", extras=REFUSAL
    )
    @manage_messages
    @app_commands.describe(
        version="The version number (suggested from /anchor history)",
        name="Whose version (a cast name; the version says whose it is anyway)",
    )
    async def use(
        self,
        interaction: discord.Interaction[AnchorshotBot],
        version: app_commands.Range[int, 1, 1_000_000],
        name: str | None = None,
    ) -> None:
        """Switch back to an earlier version (of this very channel: a thread's own, never its parent's)."""
        assert interaction.guild_id is not None and interaction.channel_id is not None
        parent = parent_of(interaction.channel)
        if parent is not None:
            await self._refuse_parents_version(interaction.channel_id, parent, version)
        found = await self.anchors.use_version(interaction.guild_id, interaction.channel_id, version, name)
        await interaction.response.send_message(
            f"Anchor {found.label} is current again in <#{interaction.channel_id}>.", ephemeral=True
        )
        await tell_channel(
            self.bot,
            interaction.channel_id,
            interaction.guild_id,
            f"\U0001f3ad {interaction.user.mention} made {found.label} {await self._whose(found)} again.",
            found,
        )

    async def _refuse_parents_version(self, thread_id: int, parent_id: int, version: int) -> None:
        """In a thread without a version `version` of its own (versions count up per channel from 1), say that
        the versions /anchor history shows it are its parent channel's, changed there."""
        newest, _, _ = await self.anchors.history(thread_id, 1, per_page=1)
        if not newest or newest[0].version < version:
            raise UserError(
                f"This thread has no anchor version {version} of its own: the versions it uses are <#{parent_id}>'s. "
                f"Run /anchor use in <#{parent_id}> to change that channel's anchor."
            )

    @use.autocomplete("version")
    async def _versions(
        self, interaction: discord.Interaction[AnchorshotBot], current: str
    ) -> list[app_commands.Choice[int]]:
        """The channel's versions, newest first, as "v4 “Mara” · set 3 days ago by Rin" (up to 25). In a thread, only
        its own: /anchor use there cannot bring back one of its parent's."""
        if interaction.channel_id is None:
            return []
        name = getattr(interaction.namespace, "name", None)
        try:
            rows, _, _ = await self.anchors.history(interaction.channel_id, 1, per_page=25, name=name)
        except UserError:
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
    @app_commands.describe(name="Whose anchor (a cast name; default: the main character)")
    async def clear(self, interaction: discord.Interaction[AnchorshotBot], name: str | None = None) -> None:
        """Clear the current anchor."""
        assert interaction.guild_id is not None and interaction.channel_id is not None
        previous = await self.anchors.clear(interaction.guild_id, interaction.channel_id, name)
        label = previous.label if previous else "the anchor"
        character = await self._character_of(previous)
        if character is not None and not character.is_main:  # the main character still anchors every shot
            private, public = await self._cleared_character(interaction.channel_id, character, label)
        else:
            extra = (
                " This thread now uses its parent channel's anchor, if it has one."
                if isinstance(interaction.channel, discord.Thread)
                else ""
            )
            private = (
                f"Cleared: this channel has no anchor now ({label} stays in /anchor history; bring it back with "
                f"/anchor use).{extra}"
            )
            public = f"cleared this channel's anchor ({label} stays in /anchor history)." + (
                extra or " A moderator can set a new one with /anchor set or /anchor generate."
            )
        await interaction.response.send_message(private, ephemeral=True)
        await tell_channel(
            self.bot,
            interaction.channel_id,
            interaction.guild_id,
            f"\U0001f3ad {interaction.user.mention} {public}",
        )

    async def _cleared_character(self, channel_id: int, character: Character, label: str) -> tuple[str, str]:
        """(private answer, public line) for clearing the anchor of a character that is not the main one."""
        who = safe(character.name, 40)
        main = await self.anchors.cast.main_of(channel_id)
        still = (
            f" The main character, {safe(main.name, 40)}, still anchors every shot."
            if main is not None and main.version_id is not None
            else ""
        )
        private = (
            f"Cleared: {who} has no anchor now ({label} stays in /anchor history; bring it back with "
            f"/anchor use name:{who}).{still}"
        )
        public = (
            f"cleared {who}'s anchor ({label} stays in /anchor history); shots that name {who} are refused until "
            f"{who} has one again."
        )
        return private, public

    async def _character_of(self, version: AnchorVersion | None) -> Character | None:
        """The character a version shows (None for none)."""
        if version is None or version.character_id is None:
            return None
        return await self.anchors.store.character(version.character_id)

    async def _whose(self, version: AnchorVersion) -> str:
        """Whose anchor a version is, in words: "this channel's anchor" (the main character) or "Grace's anchor"."""
        character = await self._character_of(version)
        if character is None or character.is_main:
            return "this channel's anchor"
        return f"{character.name}'s anchor"

    @set_.autocomplete("name")
    @show.autocomplete("name")
    @history.autocomplete("name")
    @use.autocomplete("name")
    @clear.autocomplete("name")
    async def _names(
        self, interaction: discord.Interaction[AnchorshotBot], current: str
    ) -> list[app_commands.Choice[str]]:
        return await cast_choices(self.bot, interaction, current)


def _when(epoch: float) -> str:
    """How long ago, in words for an autocomplete choice (which cannot show a Discord timestamp)."""
    days = int((time.time() - epoch) // 86400)
    return "today" if days < 1 else "yesterday" if days == 1 else f"{days} days ago"


async def setup(bot: AnchorshotBot) -> None:
    await bot.add_cog(AnchorCog(bot))
