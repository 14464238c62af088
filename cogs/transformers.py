"""Typed slash-command options: a dollar amount typed by a member arrives in the cog as integer micro-dollars."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import discord
from discord import app_commands

if TYPE_CHECKING:
    from bot.client import AnchorshotBot

NO_CAP_WORDS = frozenset({"none", "off", "no", "remove"})


class UsdTransformer(app_commands.Transformer[Any]):
    """Parse "25", "$12.50" or "-2.50" into micro-dollars once, refusing junk, NaN, negative or absurd amounts politely.

    ``signed`` allows a minus sign (an adjustment: a credit) and refuses zero; ``none_words`` lets words like "none"
    through as ``None`` (no cap). Sync sees a plain string option, exactly as before.
    """

    def __init__(self, *, signed: bool = False, none_words: frozenset[str] = frozenset()) -> None:
        self.signed = signed
        self.none_words = none_words

    async def transform(self, interaction: discord.Interaction[Any], value: Any, /) -> int | None:
        text = str(value)
        if text.strip().lower() in self.none_words:
            return None
        budget = cast("AnchorshotBot", interaction.client).services.budget
        return budget.parse_adjustment(text) if self.signed else budget.parse_limit(text)


Usd = app_commands.Transform[int, UsdTransformer()]
"""A non-negative amount up to the largest limit, in micro-dollars."""

SignedUsd = app_commands.Transform[int, UsdTransformer(signed=True)]
"""A charge (positive) or credit (negative), never zero, in micro-dollars."""

UsdOrNone = app_commands.Transform[int | None, UsdTransformer(none_words=NO_CAP_WORDS)]
"""Like ``Usd``, or ``None`` when the member typed "none", "off", "no" or "remove"."""
