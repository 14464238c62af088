"""What an anchor is, as the rest of the bot sees it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class AnchorVersion:
    """One version of a channel's anchor."""

    id: int
    guild_id: int
    channel_id: int
    version: int
    sha256: str
    name: str | None
    set_by: int
    set_at: float
    width: int
    height: int
    source_format: str


@dataclass(frozen=True)
class ImageRow:
    sha256: str
    width: int
    height: int
    size_bytes: int
    fal_url: str | None
    fal_uploaded_at: float | None


class Level(StrEnum):
    """How a check came out; compares equal to its plain string ("pass", "warn", "info")."""

    PASS = "pass"  # noqa: S105 (a check result, not a password)
    WARN = "warn"
    INFO = "info"


@dataclass(frozen=True)
class CheckItem:
    """One line of the checklist: which check (`key`, shown as its title), how it came out, and why."""

    key: str
    level: Level
    text: str
