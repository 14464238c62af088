"""What the candidates kind needs from the chat side (cogs/studio.py implements it with discord.py)."""

from __future__ import annotations

from typing import Protocol

from bot.jobs import Job


class SheetPublisher(Protocol):
    async def post_sheet(self, job: Job) -> int:
        """Post the contact sheet with its Use/Keep/Again buttons, once; return the message id."""

    async def find_sheet(self, job: Job) -> int | None:
        """The sheet already posted for this job (after a crash or an unanswered post), if any."""


class HoldReducer(Protocol):
    async def reduce_hold(self, job_key: str, amount: int) -> bool: ...
