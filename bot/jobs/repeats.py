"""Requests for a new job made twice in a moment (a double click, a click and a 🔁 together) count once."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable


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
