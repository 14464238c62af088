"""/anchor generate, /anchor refine, /anchor angles: the contact sheet and its buttons (Discord glue only).

The subcommands are attached to the `/anchor` group of cogs/anchors.py when this cog loads (it loads after it).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import discord
from discord import app_commands
from discord.ext import commands

from bot.anchors.service import Upload
from bot.client import REFUSAL_EXTRA
from bot.jobs import Job, JobState
from bot.money import format_usd
from bot.studio.service import MAX_ANGLES, Expired, StudioService
from cogs.anchors import cast_choices, manage_messages, parent_of, tell_channel
from cogs.channels import channel_of, find_mine, nonce, post_reply
from cogs.components import GuardedButton, bot_of
from cogs.render import anchor_embed, safe

if TYPE_CHECKING:
    from bot.client import AnchorshotBot

log = logging.getLogger(__name__)
NO_PINGS = discord.AllowedMentions.none()
REFUSAL = {
    REFUSAL_EXTRA: "Changing the anchor is for moderators (Manage Messages in this channel); ask one of them."
}
HISTORY_SCAN_LIMIT = 2000


def _studio(interaction: discord.Interaction[Any]) -> StudioService:
    return bot_of(interaction).services.studio


def sheet_marker(job: Job) -> str:
    return f"anchor studio \u00b7 set {job.id}"


class SheetButton(
    GuardedButton,
    template=r"studio:(?P<action>use|keep|keepall|again):(?P<id>[0-9]+)(?::(?P<k>[0-9]))?",
):
    """Use k / Keep k / Keep all / Again on a contact sheet; the set id is in the custom id (survives restarts)."""

    def __init__(
        self, target_id: int, action: str = "again", k: int = 0, price_micros: int | None = None
    ) -> None:
        again = f"Again \u00b7 {format_usd(price_micros)}" if price_micros else "Again"
        label = {"use": f"Use {k}", "keep": f"Keep {k}", "keepall": "Keep all", "again": again}[action]
        style = discord.ButtonStyle.secondary if action == "again" else discord.ButtonStyle.primary
        custom_id = f"studio:{action}:{target_id}" + (f":{k}" if k else "")
        discord.ui.DynamicItem.__init__(
            self, discord.ui.Button(label=label, style=style, custom_id=custom_id)
        )
        self.target_id, self.action, self.k = target_id, action, k

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(int(match["id"]), match["action"], int(match["k"] or 0))

    async def run(self, interaction: discord.Interaction[Any]) -> str:
        studio = _studio(interaction)
        try:
            if self.action == "use":
                return await self._use(interaction, studio)
            if self.action in ("keep", "keepall"):
                return await self._keep(interaction, studio)
            job = await studio.again(
                self.target_id,
                user_id=interaction.user.id,
                can_manage=bool(interaction.permissions.manage_messages),
            )
            return await start_set(interaction, studio, job)
        except Expired as exc:
            if isinstance(interaction.message, discord.Message):
                await retire(interaction.message)
            return exc.message

    async def _use(self, interaction: discord.Interaction[Any], studio: StudioService) -> str:
        """Candidate k becomes the anchor: one private answer with its checklist, the sheet marks it, the channel
        is told once."""
        result = await studio.use(
            self.target_id,
            self.k,
            user_id=interaction.user.id,
            can_manage=bool(interaction.permissions.manage_messages),
        )
        version = result.version
        embed = anchor_embed(
            version, result.checklist, title=f"Anchor set: {version.label}", notes=result.notes
        )
        answer = f"Candidate {self.k} is now the anchor of <#{version.channel_id}>; every new /shot starts from it."
        path = studio.anchors.image_path(version.sha256)
        await interaction.edit_original_response(  # one edit: the answer, the checklist and the image
            content=answer,
            embed=embed,
            attachments=[
                discord.File(path, filename="anchor.jpg", description=f"The anchor, {version.label}")
            ],
        )
        await mark_chosen(interaction, self.target_id, f"\u2714 Candidate {self.k} is now {version.label}")
        await tell_channel(
            bot_of(interaction),
            version.channel_id,
            interaction.guild_id,
            f"\U0001f3ad {interaction.user.mention} made {version.label} (candidate {self.k} of the anchor studio) "
            "this channel's anchor.",
            version,
        )
        return answer

    async def _keep(self, interaction: discord.Interaction[Any], studio: StudioService) -> str:
        """Views kept as angles of the version they were made from; the sheet marks them, the channel is told."""
        kept = await studio.keep(
            self.target_id,
            [self.k] if self.k else None,
            user_id=interaction.user.id,
            can_manage=bool(interaction.permissions.manage_messages),
        )
        words = f"{kept.added} angle{'s' if kept.added != 1 else ''}"
        await mark_chosen(interaction, self.target_id, f"\u2714 Kept: {self.k or 'all'}")
        await tell_channel(
            bot_of(interaction),
            interaction.channel_id or 0,
            interaction.guild_id,
            f"\U0001f3ad {interaction.user.mention} kept {words} of the anchor ({kept.total} of {MAX_ANGLES} now): "
            "every take shows the video model these views of the character.",
        )
        return (
            f"Kept {words}: this anchor version now has {kept.total} of {MAX_ANGLES}; every take shows the video "
            "model these views of the character."
        )


def sheet_view(job: Job) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    n = len(job.outputs.get("paths") or [])
    if job.args["purpose"] == "angles":
        view.add_item(SheetButton(job.id, "keepall"))
        items = [SheetButton(job.id, "keep", k) for k in range(1, n + 1)]
    else:
        items = [SheetButton(job.id, "use", k) for k in range(1, n + 1)]
    for item in [*items, SheetButton(job.id, "again", price_micros=_again_price(job))]:
        view.add_item(item)
    return view


def _again_price(job: Job) -> int | None:
    """What Again costs (the same request once more), shown on its button; none on a dry run."""
    if job.backend == "dry-run":
        return None
    return int(job.args["count"]) * int(job.args["unit_micros"])


async def mark_chosen(interaction: discord.Interaction[Any], job_id: int, words: str) -> None:
    """The sheet shows what was chosen and retires its other buttons (Again stays: a new set)."""
    message = interaction.message
    if message is None:
        return
    view = discord.ui.View(timeout=None)
    view.add_item(discord.ui.Button(label=words[:80], style=discord.ButtonStyle.success, disabled=True))
    studio = _studio(interaction)
    job = await studio.get(job_id)
    if job is not None:
        view.add_item(SheetButton(job_id, "again", price_micros=_again_price(job)))
    try:
        await message.edit(view=view)
    except discord.HTTPException:
        log.info("could not mark the chosen candidate on sheet %s", message.id)


def request_text(job: Job, studio: StudioService) -> str:
    count, unit = job.args["count"], job.args["unit_micros"]
    what = {"generate": "anchor candidates", "refine": "refinements of the anchor", "angles": "angles"}
    price = f"{count} \u00d7 {format_usd(unit)} = {format_usd(count * unit)}"
    if mp := job.args.get("megapixels"):  # a per-megapixel model: each view is billed on the anchor's size
        price += f" at {format_usd(unit // mp)} per megapixel, {mp} MP each"
    if not studio.engine.charge:
        price = f"free (dry run; would cost {price})"
    return (
        f"Making {count} {what[job.args['purpose']]} for <@{job.user_id}> ({price}, held until delivery; "
        f"only delivered images are charged).\n**Prompt sent:**\n> {safe(job.args['prompt'], 1500)}"
    )


async def start_set(interaction: discord.Interaction[Any], studio: StudioService, job: Job) -> str:
    """Post the set's public request message (showing the wrapped prompt), let the engine send it; the answer."""
    channel = interaction.channel
    try:
        assert isinstance(channel, discord.abc.Messageable)
        message = await channel.send(request_text(job, studio), allowed_mentions=NO_PINGS)
    except (discord.HTTPException, AssertionError):
        await studio.engine.abandon(job, error="I could not post in this channel.")
        return "I could not post in this channel; give me Send Messages and Attach Files here. Nothing was charged."
    await studio.announce(job, message.id)
    return f"On its way: the contact sheet will appear in <#{job.channel_id}> (set {job.id})."


EXPIRED_NOTE = "These candidates expired after 24 hours and were deleted; make a new set to choose again."


async def retire(message: discord.Message | discord.PartialMessage) -> None:
    """Take the buttons off an expired sheet and say why (politely, once)."""
    try:
        await message.edit(content=EXPIRED_NOTE, view=None)
    except discord.HTTPException:
        log.info("could not retire the expired sheet %s", message.id)


class DiscordSheetPublisher:
    """The SheetPublisher port (contact sheets) and the studio's sink (a failed set says so in the channel)."""

    def __init__(self, bot: AnchorshotBot) -> None:
        self.bot = bot
        self._tasks: set[asyncio.Task[None]] = set()

    def _channel(self, job: Job) -> discord.PartialMessageable:
        return channel_of(self.bot, job.channel_id, job.guild_id)

    async def post_sheet(self, job: Job) -> int:
        n = len(job.outputs["paths"])
        missing = job.outputs.get("missing", 0)
        embed = discord.Embed(
            title=f"{n} candidate{'s' if n != 1 else ''}", description=safe(job.args["description"], 500)
        )
        embed.set_image(url="attachment://sheet.png")
        if missing:
            embed.add_field(
                name="Not delivered",
                value=f"{missing} image{'s' if missing != 1 else ''} failed; not charged.",
                inline=False,
            )
        choose = "Keep the views to add as angles" if job.args["purpose"] == "angles" else "Pick one"
        embed.add_field(name="Choose", value=f"{choose}; the buttons expire after 24 hours.", inline=False)
        embed.set_footer(text=sheet_marker(job))
        message = await post_reply(
            self.bot,
            job.channel_id,
            job.guild_id,
            job.reply_to_message_id,
            embed=embed,
            file=discord.File(Path(job.outputs["sheet"]), filename="sheet.png"),
            view=sheet_view(job),
            allowed_mentions=NO_PINGS,
            nonce=nonce(self.bot, f"s{job.id}"),
        )
        return message.id

    async def find_sheet(self, job: Job) -> int | None:
        after = discord.Object(id=job.progress_message_id or 0)
        marker = sheet_marker(job)
        return await find_mine(
            self.bot, self._channel(job), after, lambda footer: footer == marker, limit=HISTORY_SCAN_LIMIT
        )

    def job_changed(self, job: Job) -> None:
        """A set that failed says so in the channel (in reply to its request message)."""
        if job.state is not JobState.FAILED or job.progress_message_id is None:
            return
        task = asyncio.create_task(self._say_failed(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _say_failed(self, job: Job) -> None:
        try:
            await post_reply(
                self.bot,
                job.channel_id,
                job.guild_id,
                job.progress_message_id,
                content=f"\u274c Set {job.id} failed: {safe(job.error or 'it was not made', 900)}\n"
                "Nothing was charged.",
                allowed_mentions=NO_PINGS,
            )
        except discord.HTTPException:
            log.warning("could not say that set %d failed", job.id, exc_info=True)


# Commands (attached to /anchor when the cog loads) ---------------------------------------------------------
@app_commands.describe(
    description="Who the character is (the bot wraps it in the anchor rules)",
    count="How many candidates (1-4)",
    model="Seedream v4.5 (default) or v5 Lite",
)
@app_commands.choices(
    model=[
        app_commands.Choice(name="Seedream v4.5", value="seedream-v4.5"),
        app_commands.Choice(name="Seedream v5 Lite", value="seedream-v5-lite"),
    ]
)
@manage_messages
async def generate(
    interaction: discord.Interaction[AnchorshotBot],
    description: app_commands.Range[str, 1, 1000],
    count: app_commands.Range[int, 1, 4] = 4,
    model: str = "seedream-v4.5",
) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    assert interaction.guild_id is not None and interaction.channel_id is not None
    studio = _studio(interaction)
    job = await studio.generate(
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id,
        user_id=interaction.user.id,
        description=description,
        count=count,
        model_key=model,
    )
    await interaction.edit_original_response(content=await start_set(interaction, studio, job))


async def _cast_names(interaction: discord.Interaction[Any], current: str) -> list[app_commands.Choice[str]]:
    return await cast_choices(bot_of(interaction), interaction, current)


NAME = "Whose anchor (a cast name; default: the main character)"


@app_commands.describe(
    instruction="What to change, e.g. 'plain grey background'", count="How many (1-4)", name=NAME
)
@app_commands.autocomplete(name=_cast_names)
@manage_messages
async def refine(
    interaction: discord.Interaction[AnchorshotBot],
    instruction: app_commands.Range[str, 1, 1000],
    count: app_commands.Range[int, 1, 4] = 2,
    name: str | None = None,
) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    assert interaction.guild_id is not None and interaction.channel_id is not None
    studio = _studio(interaction)
    job = await studio.refine(
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id,
        parent_id=parent_of(interaction.channel),
        user_id=interaction.user.id,
        instruction=instruction,
        count=count,
        name=name,
    )
    await interaction.edit_original_response(content=await start_set(interaction, studio, job))


@app_commands.describe(
    count="How many views (1-3): three-quarter left, three-quarter right, profile",
    model="Qwen multiple angles (one call per view, default) or Seedream v4.5 edit (one call)",
    name=NAME,
)
@app_commands.autocomplete(name=_cast_names)
@app_commands.choices(
    model=[
        app_commands.Choice(name="Qwen multiple angles", value="qwen-multiple-angles"),
        app_commands.Choice(name="Seedream v4.5 edit", value="seedream-v4.5-edit"),
    ]
)
@manage_messages
async def angles_make(
    interaction: discord.Interaction[AnchorshotBot],
    count: app_commands.Range[int, 1, 3] = 3,
    model: str = "qwen-multiple-angles",
    name: str | None = None,
) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    assert interaction.guild_id is not None and interaction.channel_id is not None
    studio = _studio(interaction)
    job = await studio.make_angles(
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id,
        parent_id=parent_of(interaction.channel),
        user_id=interaction.user.id,
        count=count,
        model_key=model,
        name=name,
    )
    await interaction.edit_original_response(content=await start_set(interaction, studio, job))


@app_commands.describe(image="Another view of the same character: PNG, JPEG or WebP", name=NAME)
@app_commands.autocomplete(name=_cast_names)
@manage_messages
async def angles_add(
    interaction: discord.Interaction[AnchorshotBot], image: discord.Attachment, name: str | None = None
) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    assert interaction.channel_id is not None
    kept = await _studio(interaction).add_angle(
        channel_id=interaction.channel_id,
        parent_id=parent_of(interaction.channel),
        user_id=interaction.user.id,
        upload=Upload(
            url=image.url, filename=image.filename, content_type=image.content_type, size=image.size
        ),
        name=name,
    )
    await interaction.edit_original_response(
        content=f"Angle added: this anchor version now has {kept.total} of {MAX_ANGLES}."
    )


@app_commands.describe(name=NAME)
@app_commands.autocomplete(name=_cast_names)
@manage_messages
async def angles_clear(interaction: discord.Interaction[AnchorshotBot], name: str | None = None) -> None:
    assert interaction.channel_id is not None
    n = await _studio(interaction).clear_angles(
        channel_id=interaction.channel_id, parent_id=parent_of(interaction.channel), name=name
    )
    await interaction.response.send_message(
        f"Cleared {n} angle{'s' if n != 1 else ''}; takes show the video model the anchor alone until angles are "
        "kept again.",
        ephemeral=True,
    )


def studio_commands() -> list[app_commands.Command[Any, Any, Any] | app_commands.Group]:
    """Fresh command objects for one bot (a restart in the same process builds new ones)."""
    angles = app_commands.Group(
        name="angles", description="Extra views of the anchor that every take carries"
    )
    for name, fn, text in (
        ("make", angles_make, "Make more views of the current anchor, quoted and charged (moderators)"),
        ("add", angles_add, "Add a photo of the character from another angle (moderators)"),
        ("clear", angles_clear, "Remove every kept angle of the current anchor version (moderators)"),
    ):
        angles.add_command(app_commands.Command(name=name, description=text, callback=fn, extras=REFUSAL))
    return [
        app_commands.Command(
            name="generate",
            description="Make anchor candidates from a description, quoted and charged (moderators)",
            callback=generate,
            extras=REFUSAL,
        ),
        app_commands.Command(
            name="refine",
            description="Make edited versions of the current anchor, quoted and charged (moderators)",
            callback=refine,
            extras=REFUSAL,
        ),
        angles,
    ]


class StudioCog(commands.Cog):
    def __init__(self, bot: AnchorshotBot) -> None:
        self.bot = bot
        self.publisher = DiscordSheetPublisher(bot)
        self.added: list[str] = []
        self._sweeper: asyncio.Task[None] | None = None
        self._detach: Callable[[], None] | None = None

    async def cog_load(self) -> None:
        studio = self.bot.services.studio
        self._detach = studio.attach(self.publisher, self.publisher)
        self.bot.add_dynamic_items(SheetButton)
        group = self.bot.tree.get_command("anchor")
        assert isinstance(group, app_commands.Group), "cogs.anchors must load before cogs.studio"
        for command in studio_commands():
            group.add_command(command, override=True)
            self.added.append(command.name)
        self._sweeper = asyncio.create_task(self._sweep_loop(studio))

    async def cog_unload(self) -> None:
        """Detach this cog's chat side only: studio sets wait for a reload to be delivered."""
        if self._detach is not None:
            self._detach()
        if self._sweeper is not None:
            self._sweeper.cancel()
        self.bot.remove_dynamic_items(SheetButton)
        group = self.bot.tree.get_command("anchor")
        if isinstance(group, app_commands.Group):
            for name in self.added:
                group.remove_command(name)

    async def sweep(self, studio: StudioService) -> int:
        """Delete the candidates of sets older than 24 hours and retire their sheets; return how many."""
        expired = await studio.expire_due()
        for job in expired:
            if job.result_message_id is not None:
                await retire(channel_of(self.bot, job.channel_id).get_partial_message(job.result_message_id))
        return len(expired)

    async def _sweep_loop(self, studio: StudioService) -> None:
        while True:
            try:
                await self.sweep(studio)
            except Exception:
                log.exception("candidate sweep failed")
            await asyncio.sleep(3600)


async def setup(bot: AnchorshotBot) -> None:
    await bot.add_cog(StudioCog(bot))
