"""The Discord application: the Bot subclass, its command tree and its error handler."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import heartbeat
from bot.app import Services
from bot.errors import UserError

log = logging.getLogger(__name__)

EXTENSIONS: tuple[str, ...] = ("cogs.status", "cogs.anchors", "cogs.budget", "cogs.shots", "cogs.studio")
SYNC_HASH_KEY = "command_sync_hash"

OUTSIDE_GUILD = "I only work in a server's channels, not in direct messages; use me in a server we share."

_PERMISSION_NAMES = {
    "manage_messages": "Manage Messages",
    "manage_guild": "Manage Server",
}


async def reply_ephemeral(interaction: discord.Interaction[Any], message: str) -> None:
    """Answer an interaction privately, whether or not it was already acknowledged."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(
                message, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
            )
        else:
            await interaction.response.send_message(
                message, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
            )
    except discord.HTTPException:
        log.warning("could not send an error reply to interaction %s", interaction.id, exc_info=True)


class AnchorshotTree(app_commands.CommandTree["AnchorshotBot"]):
    """The command tree, with the project's one error handler."""

    async def interaction_check(self, interaction: discord.Interaction[AnchorshotBot]) -> bool:
        """Every command is guild-only; should one arrive from a DM anyway, refuse it once, politely."""
        if interaction.guild_id is not None:
            return True
        if interaction.type is discord.InteractionType.application_command:
            await reply_ephemeral(interaction, OUTSIDE_GUILD)
        return False

    async def on_error(
        self, interaction: discord.Interaction[AnchorshotBot], error: app_commands.AppCommandError
    ) -> None:
        """Turn the project's own errors into short ephemeral replies; log anything else with an incident id."""
        await handle_interaction_error(interaction, error)


async def handle_interaction_error(interaction: discord.Interaction[Any], error: BaseException) -> None:
    """Shared by the tree and by persistent components."""
    original = getattr(error, "original", error)
    if isinstance(original, UserError):
        await reply_ephemeral(interaction, original.message)
        return
    if isinstance(error, app_commands.NoPrivateMessage):
        await reply_ephemeral(interaction, "This command works in a server channel, not in direct messages.")
        return
    if isinstance(error, app_commands.MissingPermissions):
        names = ", ".join(
            _PERMISSION_NAMES.get(p, p.replace("_", " ").title()) for p in error.missing_permissions
        )
        await reply_ephemeral(interaction, f"You need the {names} permission to do that.")
        return
    if isinstance(error, app_commands.CheckFailure):
        await reply_ephemeral(interaction, "You can't use this command here.")
        return
    incident = secrets.token_hex(4)
    command = interaction.command.qualified_name if interaction.command else "component"
    log.error(
        "incident %s: unexpected error in %s (user %s, channel %s)",
        incident,
        command,
        interaction.user.id if interaction.user else "?",
        interaction.channel_id,
        exc_info=original,
    )
    await reply_ephemeral(
        interaction,
        f"Something went wrong on my side. Nothing was charged. If it keeps happening, tell an admin: incident `{incident}`.",
    )


class AnchorshotBot(commands.Bot):
    """The bot; receives its services through the constructor."""

    def __init__(self, services: Services, **options: Any) -> None:
        intents = discord.Intents.default()
        intents.message_content = False
        options.setdefault("guild_ready_timeout", 2.0)
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            tree_cls=AnchorshotTree,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            **options,
        )
        self.services = services
        self.synced: str | None = None  # "global", "guild:<id>" or None (no sync needed)
        self._heartbeat: asyncio.Task[None] | None = None

    async def setup_hook(self) -> None:
        """Load the cogs, register persistent components, sync commands when needed."""
        for extension in EXTENSIONS:
            try:
                await self.load_extension(extension)
            except Exception:
                # Stop here: syncing a smaller command set would quietly remove commands everywhere.
                log.exception("failed to load extension %s", extension)
                raise
        self._guard_components_outside_guilds()
        await self.sync_commands_if_needed()
        self._heartbeat = asyncio.create_task(
            heartbeat.beat(
                heartbeat.heartbeat_path(self.services.settings.data_dir),
                lambda: self.is_ready() and not self.is_closed(),
            ),
            name="heartbeat",
        )

    async def close(self) -> None:
        """Stop the heartbeat (the file goes stale, so the container reports unhealthy), then disconnect."""
        await heartbeat.stop(self._heartbeat)
        self._heartbeat = None
        await super().close()

    def _guard_components_outside_guilds(self) -> None:
        """Buttons clicked outside a server get one polite refusal and reach no component callback.

        discord.py hands component interactions straight to its view store (before any public hook), so the guard
        wraps the store's dispatch. Should a discord.py upgrade move it, the bot still starts and says so.
        """
        store = getattr(getattr(self, "_connection", None), "_view_store", None)
        original = getattr(store, "dispatch_view", None)
        if original is None:
            log.warning("cannot guard buttons outside servers: discord.py's view store moved")
            return
        tasks: set[asyncio.Task[None]] = set()

        def dispatch_view(component_type: int, custom_id: str, interaction: discord.Interaction[Any]) -> None:
            if interaction.guild_id is not None:
                original(component_type, custom_id, interaction)
                return
            log.info("refused a component (%s) from user %s outside a server", custom_id, interaction.user.id)
            task = asyncio.get_running_loop().create_task(reply_ephemeral(interaction, OUTSIDE_GUILD))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        store.dispatch_view = dispatch_view  # type: ignore[union-attr]

    def command_schema_hash(self) -> str:
        """A hash of every command's schema, to tell whether a sync is needed."""
        payload = [cmd.to_dict(self.tree) for cmd in self.tree.get_commands()]
        payload.sort(key=lambda c: c["name"])
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    async def sync_commands_if_needed(self) -> None:
        """Sync to COMMAND_GUILD_ID on every start, else globally only when the schema changed."""
        guild_id = self.services.settings.command_guild_id
        try:
            if guild_id:
                guild = discord.Object(id=guild_id)
                self.tree.copy_global_to(guild=guild)
                await self.tree.sync(guild=guild)
                self.synced = f"guild:{guild_id}"
                log.info("synced application commands to guild %s", guild_id)
                return
            digest = self.command_schema_hash()
            if await self.services.kv.get(SYNC_HASH_KEY) == digest:
                log.info("application commands unchanged since the last sync; not syncing")
                return
            await self.tree.sync()
            await self.services.kv.set(SYNC_HASH_KEY, digest)
            self.synced = "global"
            log.info("synced application commands globally")
        except discord.HTTPException:
            log.exception("command sync failed; commands may be out of date until the next start")

    async def on_ready(self) -> None:
        assert self.user is not None
        log.info("connected as %s (%s) to %d guild(s)", self.user, self.user.id, len(self.guilds))
