"""Requests made twice in a moment (a double click, a click and a 🔁 together): counted once, or taken one at a
time."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Hashable


class RecentRequests:
    """The requests (a target and a member, say) noted within the last `window_s` seconds; in memory, one
    process: a restart forgets them."""

    def __init__(self, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.clock = clock
        self._seen: dict[Hashable, float] = {}

    def repeat(self, key: Hashable) -> bool:
        """Whether `key` was noted within the window; when it was not, it is noted now. No await between the
        look and the note: two requests at the same moment cannot both be first."""
        now = self._prune()
        if key in self._seen:
            return True
        self._seen[key] = now
        return False

    def note(self, key: Hashable) -> None:
        """Note `key` now, whether or not it was already."""
        self._seen[key] = self._prune()

    def forget(self, key: Hashable) -> None:
        """Drop `key` (the request it noted started nothing: asking again is a new request)."""
        self._seen.pop(key, None)

    def _prune(self) -> float:
        now = self.clock()
        self._seen = {k: t for k, t in self._seen.items() if now - t < self.window_s}
        return now


class KeyedLocks:
    """One holder at a time per key (a set, a member's clicks on one button), in arrival order; a key's lock is
    dropped by the last one out, so keys that come once leave nothing behind."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._using: dict[Hashable, int] = {}  # holding or waiting, per key

    @contextlib.asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._using[key] = self._using.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._using[key] -= 1
            if not self._using[key]:
                del self._using[key]
                self._locks.pop(key, None)

    def __len__(self) -> int:
        return len(self._locks)
