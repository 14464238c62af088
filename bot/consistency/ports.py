"""What the score kind needs from the chat side (the shots cog's publisher implements it)."""

from __future__ import annotations

from typing import Protocol

from bot.consistency.models import VerdictView
from bot.takes.models import Take


class ScorePublisher(Protocol):
    async def show_verdict(self, take: Take, verdict: VerdictView) -> None:
        """Show the face verdict on the take's clip message (one edit; idempotent)."""
