"""What an anchor is, as the rest of the bot sees it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

COMMON_SHAPES = ("1:1", "4:5", "5:4", "3:4", "4:3", "2:3", "3:2", "9:16", "16:9", "1:2", "2:1")


def shape_of(width: int, height: int) -> str:
    """A picture's shape as "w:h": a common ratio within 2 %, else the nearest ratio of small numbers."""
    if width <= 0 or height <= 0:
        return "?"
    ratio = width / height
    for name in COMMON_SHAPES:
        w, h = (int(x) for x in name.split(":"))
        if abs(ratio / (w / h) - 1) <= 0.02:
            return name
    near = Fraction(width, height).limit_denominator(20)
    return f"{near.numerator}:{near.denominator}"


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

    @property
    def shape(self) -> str:
        """The image's shape as members name it ("4:5"): the nearest common ratio, else width:height reduced."""
        return shape_of(self.width, self.height)

    @property
    def label(self) -> str:
        """How members name this version: v4 “Mara”."""
        return f"v{self.version} \u201c{self.name}\u201d" if self.name else f"v{self.version}"


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
