"""The persistent buttons of a take: Cancel on its progress message, Re-roll on its clip."""

from __future__ import annotations

from typing import Any

import discord

from cogs.components import GuardedButton, bot_of


class CancelButton(GuardedButton, template=r"shot:cancel:(?P<id>[0-9]+)"):
    """Cancel on a progress message; survives restarts (the take id is in the custom id)."""

    @classmethod
    def button(cls, target_id: int) -> discord.ui.Button[Any]:
        return discord.ui.Button(
            label="Cancel", style=discord.ButtonStyle.danger, custom_id=f"shot:cancel:{target_id}"
        )

    async def run(self, interaction: discord.Interaction[Any]) -> str:
        shot = await bot_of(interaction).services.takes.cancel(
            self.target_id, user_id=interaction.user.id, can_manage=interaction.permissions.manage_messages
        )
        return f"Shot #{shot.root_id} take {shot.take} is cancelled; nothing was charged."


class RerollButton(GuardedButton, template=r"shot:reroll:(?P<id>[0-9]+)"):
    """Re-roll on a clip message: a new take charged to whoever pressed it."""

    @classmethod
    def button(cls, target_id: int) -> discord.ui.Button[Any]:
        return discord.ui.Button(
            label="Re-roll",
            emoji="\U0001f501",
            style=discord.ButtonStyle.primary,
            custom_id=f"shot:reroll:{target_id}",
        )

    async def run(self, interaction: discord.Interaction[Any]) -> str:
        shot = await bot_of(interaction).services.takes.reroll(
            self.target_id,
            user_id=interaction.user.id,
            upload_limit_bytes=interaction.filesize_limit,
            from_message_id=interaction.message.id if interaction.message else None,
        )
        return f"Take {shot.take} of shot #{shot.root_id} is queued; it is charged to you."


def view_of(*items: discord.ui.Item[Any]) -> discord.ui.View:
    """A persistent view holding `items`."""
    view = discord.ui.View(timeout=None)
    for item in items:
        view.add_item(item)
    return view
