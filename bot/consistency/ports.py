"""What the score kind needs from the chat side (the shots cog's publisher implements it)."""

from __future__ import annotations

from typing import Protocol

from bot.takes.models import Take


class ScorePublisher(Protocol):
    async def show_verdict(self, take: Take, text: str) -> None:
        """Edit the take's clip message to show the one-line face verdict (idempotent)."""

    async def announce(self, take: Take, text: str, *, nonce_tag: str) -> int:
        """Post a public line in the take's channel, in reply to its clip, once (a nonce made from `nonce_tag`);
        return its id."""
