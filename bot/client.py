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

EXTENSIONS: tuple[str, ...] = (
    "cogs.status",
    "cogs.anchors",
    "cogs.cast",
    "cogs.voice",
    "cogs.budget",
    "cogs.shots",
    "cogs.studio",
    "cogs.scenes",
    "cogs.help",
)
SYNC_HASH_KEY = "command_sync_hash"

OUTSIDE_GUILD = "I only work in a server's channels, not in direct messages; use me in a server we share."
EXPIRED = (
    "That button or form has expired (it was open too long, or I restarted since): run the command again. "
    "Nothing was charged."
)
UNANSWERED_AFTER_S = 2.5  # a click or a form no handler took up by now (Discord allows 3 s) gets EXPIRED
_CLAIMED = "anchorshot.claimed"  # an Interaction.extras key: a handler has taken the interaction up


def claim(interaction: discord.Interaction[Any]) -> None:
    """Mark an interaction as taken up by its handler (called first thing): the unanswered-click fallback
    (`AnchorshotBot.on_interaction`) then leaves it alone, however long the handler takes to answer."""
    interaction.extras[_CLAIMED] = True


NO_PINGS = discord.AllowedMentions.none()
MESSAGE_LIMIT = 2000  # Discord's limit on a message's content
REFUSAL_EXTRA = "refusal"  # a command's extras key: its own sentence for a missing permission

_PERMISSION_NAMES = {
    "manage_messages": "Manage Messages",
    "manage_guild": "Manage Server",
}


async def reply_ephemeral(interaction: discord.Interaction[Any], message: str) -> None:
    """Answer an interaction privately, whether or not it was already acknowledged.

    After a private "thinking" defer that nothing has filled yet, the answer edits that original response (a
    followup right after a defer is deprecated); otherwise it is a new ephemeral message. A message over Discord's
    2,000 characters is cut (Discord would refuse it whole, and the member would get no answer at all).
    """
    if len(message) > MESSAGE_LIMIT:
        message = message[: MESSAGE_LIMIT - 1] + "\u2026"
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(message, ephemeral=True, allowed_mentions=NO_PINGS)
        elif await _private_thinking(interaction):
            await interaction.edit_original_response(
                content=message, embeds=[], attachments=[], view=None, allowed_mentions=NO_PINGS
            )
        else:
            await interaction.followup.send(message, ephemeral=True, allowed_mentions=NO_PINGS)
    except discord.HTTPException:
        log.warning("could not send an error reply to interaction %s", interaction.id, exc_info=True)


async def _private_thinking(interaction: discord.Interaction[Any]) -> bool:
    """Whether the original response is an ephemeral "thinking..." placeholder still waiting to be filled."""
    if interaction.response.type is not discord.InteractionResponseType.deferred_channel_message:
        return False
    original = await interaction.original_response()
    return original.flags.ephemeral and original.flags.loading


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
    original: BaseException = getattr(error, "original", None) or error
    if isinstance(error, app_commands.TransformerError) and error.__cause__ is not None:
        original = error.__cause__  # a transformer's own refusal (e.g. an amount that is not dollars)
    if isinstance(original, UserError):
        await reply_ephemeral(interaction, original.message)
        return
    if isinstance(error, app_commands.TransformerError) and error.type is discord.AppCommandOptionType.user:
        await reply_ephemeral(interaction, "That person is not a member of this server; pick someone who is.")
        return
    if isinstance(error, app_commands.NoPrivateMessage):
        await reply_ephemeral(interaction, "This command works in a server channel, not in direct messages.")
        return
    if isinstance(error, app_commands.MissingPermissions):
        refusal = interaction.command.extras.get(REFUSAL_EXTRA) if interaction.command is not None else None
        if isinstance(refusal, str):
            await reply_ephemeral(interaction, refusal)
            return
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
    """The bot; receives its services through the constructor.

    Unsharded (no SHARD_COUNT) it is a plain `commands.Bot` on one gateway connection, as before issue #18. With
    SHARD_COUNT set, `AnchorshotBot(services)` builds a `ShardedAnchorshotBot` instead (an `AutoShardedBot` over
    SHARD_IDS), the way `pathlib.Path()` builds a `PosixPath`: every caller builds the bot one way, and the settings
    alone choose. `is_ready()` and `latency` mean the same to both (a sharded bot is ready once all its shards are,
    and averages their latencies); /status asks the connection of its own guild through `gateway_latency` and
    `shard_words`.
    """

    def __new__(cls, services: Services, **options: Any) -> AnchorshotBot:
        if cls is AnchorshotBot and services.settings.sharded:
            cls = ShardedAnchorshotBot
        return super().__new__(cls)

    def __init__(self, services: Services, **options: Any) -> None:
        # The bot never joins voice: discord.py's start-up warnings that voice libraries are missing are noise.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        # Only what the bot reads: guilds (channels, roles and permissions) and reactions (🔁). Every slash command
        # and button arrives as an interaction, which needs no intent; the default set would also send every member's
        # message, edit and typing in every server, each parsed and cached by discord.py for nothing.
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_reactions = True
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
        self.no_reply_channels: set[int] = set()  # where Discord refused a reply: posts there are plain
        self.synced: str | None = None  # "global", "guild:<id>" or None (no sync needed)
        self._heartbeat: asyncio.Task[None] | None = None

    def gateway_words(self) -> str:
        """The gateway connections this process runs, for the log."""
        return "one gateway connection (not sharded)"

    def shard_words(self, guild_id: int | None) -> str | None:
        """Which shard serves `guild_id`, for /status; None when the bot is not sharded."""
        return None

    def gateway_latency(self, guild_id: int | None) -> float:
        """Seconds between a heartbeat and its acknowledgement on the connection that serves `guild_id`
        (NaN before the first)."""
        return self.latency

    async def setup_hook(self) -> None:
        """Load the cogs (they attach the chat side of every kind), sync commands when needed, then start the
        services' background work: the job engine starts only once every kind's chat side is attached."""
        log.info("gateway: this process runs %s", self.gateway_words())
        for extension in EXTENSIONS:
            try:
                await self.load_extension(extension)
            except Exception:
                # Stop here: syncing a smaller command set would quietly remove commands everywhere.
                log.exception("failed to load extension %s", extension)
                raise
        await self.sync_commands_if_needed()
        self.services.start()
        self._heartbeat = asyncio.create_task(
            heartbeat.beat(
                heartbeat.heartbeat_path(self.services.settings.data_dir, self.services.settings.shard_ids),
                lambda: self.is_ready() and not self.is_closed(),
            ),
            name="heartbeat",
        )

    async def close(self) -> None:
        """Stop the heartbeat (the file goes stale, so the container reports unhealthy) and the services'
        background work, then disconnect."""
        await heartbeat.stop(self._heartbeat)
        self._heartbeat = None
        await self.services.stop()
        await super().close()

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

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """A click or a form that no live view answers (a view that timed out, or one from before a restart: only
        persistent buttons outlive the process) would leave the member with "This interaction failed": it gets
        EXPIRED instead. Every handler claims its interaction as it starts (`claim`), which a live view's does
        within moments of the click, so one unclaimed by now has no handler."""
        if interaction.type not in (discord.InteractionType.component, discord.InteractionType.modal_submit):
            return
        await asyncio.sleep(UNANSWERED_AFTER_S)
        if interaction.extras.get(_CLAIMED) or interaction.response.is_done():
            return
        try:
            await interaction.response.send_message(EXPIRED, ephemeral=True)
        except (discord.HTTPException, discord.InteractionResponded):
            log.info("could not answer an unhandled component %s", interaction.data)

    async def on_ready(self) -> None:
        assert self.user is not None
        log.info("connected as %s (%s) to %d guild(s)", self.user, self.user.id, len(self.guilds))


class ShardedAnchorshotBot(AnchorshotBot, commands.AutoShardedBot):
    """The bot as an `AutoShardedBot` over SHARD_IDS (all of 0..SHARD_COUNT-1 when unset): one gateway connection
    a shard, in this process. Built by `AnchorshotBot(services)` when SHARD_COUNT is set; the count is always given,
    so discord.py connects to DISCORD_GATEWAY_URL's gateway without asking GET /gateway/bot."""

    def __init__(self, services: Services, **options: Any) -> None:
        settings = services.settings
        options.setdefault("shard_count", settings.shard_count)
        if settings.shard_ids is not None:
            options.setdefault("shard_ids", list(settings.shard_ids))
        super().__init__(services, **options)

    def _my_shards(self) -> list[int]:
        assert self.shard_count is not None
        return list(self.shard_ids) if self.shard_ids is not None else list(range(self.shard_count))

    def gateway_words(self) -> str:
        shards = self._my_shards()
        noun = "shard" if len(shards) == 1 else "shards"
        return f"{noun} {', '.join(map(str, shards))} of {self.shard_count}"

    def _shard_of(self, guild_id: int | None) -> int:
        """Discord's routing (gateway docs, Sharding): a guild's events come on (guild_id >> 22) % count, DMs on 0."""
        assert self.shard_count is not None
        return 0 if guild_id is None else (guild_id >> 22) % self.shard_count

    def shard_words(self, guild_id: int | None) -> str | None:
        return f"{self._shard_of(guild_id)} of {self.shard_count}; this process runs {self.gateway_words()}"

    def gateway_latency(self, guild_id: int | None) -> float:
        shard = self.get_shard(self._shard_of(guild_id))  # None: a shard another process runs
        return shard.latency if shard is not None else self.latency
