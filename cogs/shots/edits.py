"""Progress edits, queued per channel: a Discord rate concern, so the engine only says what changed and never waits.

A change waits `interval_s` (three intervals for the bot's own short steps) before it is shown, so the changes that
follow within that time (sending → queued → generating; downloading → posting → done) merge into one edit of the
newest state; an edit that would show exactly what the message already shows is not sent; each channel's edits go
out one at a time, so discord.py's per-route rate limits hold them back there without holding back other channels.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from bot.jobs import JobState
from bot.takes.models import Take

log = logging.getLogger(__name__)

# The bot's own short steps (sending, downloading, posting): almost always followed within seconds by the next state,
# so they are shown only if they last a few edit intervals; waiting (queue, fal) and final states wait one interval.
BRIEF = frozenset({JobState.SUBMITTING, JobState.COMPLETED, JobState.DOWNLOADED, JobState.POSTING})
BRIEF_WAIT = 3


class ProgressEdits:
    """The TakeSink of the shots cog: `take_changed` queues, one task per channel shows."""

    def __init__(
        self,
        show: Callable[[Take], Awaitable[None]],
        looks: Callable[[Take], Hashable | Any],
        interval_s: Callable[[], float],
        shows_already: Callable[[Take], bool],
    ) -> None:
        """`show` edits a take's progress message; `looks` is what that edit would show (equal: not sent);
        `shows_already` says whether a message no edit of this process has shown yet already shows that."""
        self.show = show
        self.looks = looks
        self.shows_already = shows_already
        self.interval_s = interval_s
        self.shown: dict[int, Any] = {}  # take id → what its progress message shows now
        self._pending: dict[int, dict[int, Take]] = {}  # channel → take id → newest state, not shown yet
        self._due: dict[int, float] = {}  # take id → when (monotonic) its merged edit goes out
        self._editors: dict[int, asyncio.Task[None]] = {}  # channel → its edit queue's task
        self._wake: dict[int, asyncio.Event] = {}

    def take_changed(self, take: Take) -> None:
        """Queue the newest state of a take for its channel's edit queue (never waits)."""
        pending = self._pending.setdefault(take.channel_id, {})
        due = time.monotonic() + self.interval_s() * (BRIEF_WAIT if take.state in BRIEF else 1)
        self._due[take.id] = min(self._due.get(take.id, due), due) if take.id in pending else due
        pending[take.id] = take
        self._wake.setdefault(take.channel_id, asyncio.Event()).set()
        task = self._editors.get(take.channel_id)
        if task is None or task.done():
            self._editors[take.channel_id] = asyncio.create_task(
                self._edit_queue(take.channel_id), name=f"progress-{take.channel_id}"
            )

    async def _edit_queue(self, channel_id: int) -> None:
        """One channel's edits, oldest due first, one at a time."""
        pending = self._pending[channel_id]
        wake = self._wake[channel_id]
        try:
            while pending:
                take_id = min(pending, key=lambda t: self._due[t])
                wait = self._due[take_id] - time.monotonic()
                if wait > 0:
                    wake.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await wake.wait()  # a new change may be due sooner
                    continue
                take = pending.pop(take_id)
                self._due.pop(take_id, None)
                await self._edit(take)
                if take.is_final and take_id not in pending:
                    self.shown.pop(take_id, None)
        finally:
            self._editors.pop(channel_id, None)
            if not pending:
                self._pending.pop(channel_id, None)
                self._wake.pop(channel_id, None)

    async def _edit(self, take: Take) -> None:
        looks = self.looks(take)
        unchanged = (looks == self.shown[take.id]) if take.id in self.shown else self.shows_already(take)
        if unchanged:
            self.shown[take.id] = looks
            return
        try:
            await self.show(take)
            self.shown[take.id] = looks
        except Exception as exc:
            log.warning("could not update the progress of take %d (%s)", take.id, exc)

    async def close(self) -> None:
        """Stop every channel's queue (the cog unloads)."""
        tasks = list(self._editors.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
