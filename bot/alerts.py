"""Faults only an operator can fix (a refused key, no credit at the generation service): logged once as an ERROR,
listed by /status, and told to whoever listens (the optional ALERT_CHANNEL_ID). Members only read that videos can't
be made right now and that the bot's admins have been told."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

OPERATOR_FAULT_TEXT = "Videos can't be made right now; the bot's admins have been told."


@dataclass(frozen=True)
class Alert:
    key: str  # one fault, e.g. "fal": a second report of it while it lasts is not news
    text: str  # for operators: what is wrong and what to check (never a key or a token)
    since: float


class Alerts:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.active: dict[str, Alert] = {}
        self._listeners: list[Callable[[Alert], None]] = []

    def listen(self, listener: Callable[[Alert], None]) -> Callable[[], None]:
        """Call `listener` with every new fault (once per fault while it lasts); returns the unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def report(self, key: str, text: str) -> None:
        """A fault only an operator can fix: logged and told once, until it is cleared."""
        if key in self.active:
            return
        alert = Alert(key, text, self.clock())
        self.active[key] = alert
        log.error("needs an operator: %s", text)
        for listener in tuple(self._listeners):
            try:
                listener(alert)
            except Exception:
                log.exception("an alert listener failed")

    def clear(self, key: str) -> None:
        """The fault is over (e.g. the service accepted a job again)."""
        if self.active.pop(key, None) is not None:
            log.info("resolved: %s works again", key)
