"""Where a kind's results go in the chat: a slot the chat side fills when it loads and empties when it unloads.

A kind keeps one `Outlet` for its publisher and answers `can_deliver()` with `outlet.attached`, so the engine holds
its deliveries (without counting attempts) while no chat side is attached, e.g. between a cog's unload and reload.
"""

from __future__ import annotations

from typing import Generic, TypeVar

P = TypeVar("P")


class NotAttached(RuntimeError):
    """Nothing is attached to the outlet (the chat side is not loaded)."""


class Outlet(Generic[P]):
    def __init__(self, what: str) -> None:
        self.what = what
        self._publisher: P | None = None

    @property
    def attached(self) -> bool:
        return self._publisher is not None

    def attach(self, publisher: P) -> None:
        self._publisher = publisher

    def detach(self, publisher: P | None = None) -> None:
        """Empty the slot (only if it still holds `publisher`, when one is given)."""
        if publisher is None or self._publisher is publisher:
            self._publisher = None

    def get(self) -> P:
        if self._publisher is None:
            raise NotAttached(f"no chat side is attached for {self.what}")
        return self._publisher
