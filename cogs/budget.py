"""/budget for members, /budget-admin for people with Manage Server (Discord glue only)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.budget.service import BudgetService
from bot.client import REFUSAL_EXTRA
from bot.errors import NotAllowed, UserError
from bot.money import format_usd
from bot.text import clean_text
from cogs.render import budget_embed, report_csv, report_embed, safe
from cogs.transformers import SignedUsd, Usd, UsdOrNone

if TYPE_CHECKING:
    from bot.client import AnchorshotBot


REPORT_NAMES_FETCHED = 100  # members looked up by name for one report (the bot has no member list intent)


def refuse_bots(user: discord.abc.User) -> None:
    """A bot has no budget: it never asks for shots (UserError, nothing changed)."""
    if user.bot:
        raise UserError(f"{safe(user.display_name, 40)} is a bot; bots make no shots and have no budget.")


async def display_names(guild: discord.Guild | None, user_ids: list[int]) -> dict[int, str]:
    """The members' names in this server: from the cache, else asked of Discord (at most REPORT_NAMES_FETCHED
    lookups, found or not); a member who left shows no name."""
    names: dict[int, str] = {}
    if guild is None:
        return names
    fetched = 0  # lookups asked of Discord, found or not (members who left are looked up in vain)
    for uid in user_ids:
        member = guild.get_member(uid)
        if member is None and fetched < REPORT_NAMES_FETCHED:
            fetched += 1
            try:
                member = await guild.fetch_member(uid)
            except discord.HTTPException:
                member = None
        if member is not None:
            names[uid] = member.display_name
    return names


def require_manage_guild(interaction: discord.Interaction[AnchorshotBot], what: str) -> None:
    """Seeing someone else's budget needs Manage Server (a check on an option's value, so made here)."""
    if not interaction.permissions.manage_guild:
        raise NotAllowed(f"{what} needs the Manage Server permission.")


# Money settings need Manage Server; checked by the bot too (Discord hides the group, but a limit is real money).
manage_guild = app_commands.checks.has_permissions(manage_guild=True)


def refusal(what: str) -> dict[str, str]:
    """A command's extras: its own sentence when the member lacks Manage Server."""
    return {REFUSAL_EXTRA: f"{what} needs the Manage Server permission."}


class BudgetCog(commands.Cog):
    admin = app_commands.Group(
        name="budget-admin",
        description="Set spending limits and see the server's spend (Manage Server)",
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, bot: AnchorshotBot) -> None:
        self.bot = bot

    @property
    def budget(self) -> BudgetService:
        return self.bot.services.budget

    @app_commands.command(name="budget", description="Your spend, holds and what is left this period")
    @app_commands.guild_only()
    @app_commands.describe(user="Someone else's budget (needs Manage Server)")
    async def show(
        self, interaction: discord.Interaction[AnchorshotBot], user: discord.Member | None = None
    ) -> None:
        """Show a member's budget."""
        target = user or interaction.user
        if target.id != interaction.user.id:
            require_manage_guild(interaction, "Seeing someone else's budget")
        refuse_bots(target)
        assert interaction.guild_id is not None
        view = await self.budget.view(interaction.guild_id, target.id)
        await interaction.response.send_message(embed=budget_embed(view, target.display_name), ephemeral=True)

    @admin.command(
        name="set", description="Set one member's limit per period", extras=refusal("Setting a limit")
    )
    @manage_guild
    @app_commands.describe(user="The member", limit="Dollars per period, e.g. 25 or 12.50")
    async def set_limit(
        self, interaction: discord.Interaction[AnchorshotBot], user: discord.Member, limit: Usd
    ) -> None:
        assert interaction.guild_id is not None
        refuse_bots(user)
        await self.budget.set_user_limit(interaction.guild_id, user.id, limit)
        await interaction.response.send_message(
            f"{user.mention}'s limit is now {format_usd(limit)} {self.budget.period_words()}.", ephemeral=True
        )

    @admin.command(
        name="default",
        description="Set the default limit for every member without their own",
        extras=refusal("Setting the default limit"),
    )
    @manage_guild
    @app_commands.describe(limit="Dollars per period, e.g. 10")
    async def set_default(self, interaction: discord.Interaction[AnchorshotBot], limit: Usd) -> None:
        assert interaction.guild_id is not None
        await self.budget.set_guild_default(interaction.guild_id, limit)
        await interaction.response.send_message(
            f"The default limit is now {format_usd(limit)} per member, {self.budget.period_words()}.",
            ephemeral=True,
        )

    @admin.command(
        name="cap",
        description="Cap the whole server's spend per period (or 'none')",
        extras=refusal("Setting the server cap"),
    )
    @manage_guild
    @app_commands.describe(limit="Dollars per period, or none to remove the cap")
    async def set_cap(self, interaction: discord.Interaction[AnchorshotBot], limit: UsdOrNone) -> None:
        assert interaction.guild_id is not None
        if limit is None:
            await self.budget.set_guild_cap(interaction.guild_id, None)
            await interaction.response.send_message("The server has no spending cap now.", ephemeral=True)
            return
        await self.budget.set_guild_cap(interaction.guild_id, limit)
        await interaction.response.send_message(
            f"The whole server can now spend at most {format_usd(limit)} {self.budget.period_words()}.",
            ephemeral=True,
        )

    @admin.command(
        name="adjust",
        description="Book a correction: a charge, or a credit with a minus sign",
        extras=refusal("Adjusting a budget"),
    )
    @manage_guild
    @app_commands.describe(
        user="The member", amount="Dollars: 2.50 charges, -2.50 credits", reason="Shown in their last charges"
    )
    async def adjust(
        self,
        interaction: discord.Interaction[AnchorshotBot],
        user: discord.Member,
        amount: SignedUsd,
        reason: app_commands.Range[str, 1, 100],
    ) -> None:
        assert interaction.guild_id is not None
        refuse_bots(user)
        reason = clean_text(reason, field="reason", max_chars=100)
        await self.budget.adjust(
            interaction.guild_id, user.id, amount, f"Adjustment: {reason}", interaction.user.id
        )
        verb = "Charged" if amount > 0 else "Credited"
        await interaction.response.send_message(
            f"{verb} {format_usd(abs(amount))} to {user.mention} this period ({safe(reason, 100)}).",
            ephemeral=True,
        )

    @admin.command(
        name="report",
        description="Everyone's spend for a period, with a CSV",
        extras=refusal("The spend report"),
    )
    @manage_guild
    @app_commands.describe(period="e.g. 2026-11 (default: the current period)")
    async def report(
        self, interaction: discord.Interaction[AnchorshotBot], period: str | None = None
    ) -> None:
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        key, rows = await self.budget.report(interaction.guild_id, period)
        names = await display_names(interaction.guild, [r.user_id for r in rows])
        data = report_csv(key, rows, names).encode()
        await interaction.edit_original_response(
            embed=report_embed(key, rows, names),
            attachments=[
                discord.File(
                    io.BytesIO(data),
                    filename=f"anchorshot-spend-{key}.csv",
                    description=f"Spend per member for {key}, as CSV",
                )
            ],
        )


async def setup(bot: AnchorshotBot) -> None:
    await bot.add_cog(BudgetCog(bot))
