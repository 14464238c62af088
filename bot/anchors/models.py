"""What an anchor is, as the rest of the bot sees it."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

from bot.errors import UserError
from bot.text import clean_text, inside, quoted_spans

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
    character_id: int | None = None  # whose anchor this is (every version since the cast has one)

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


@dataclass(frozen=True)
class Character:
    """A named character of a channel's cast: its own anchor versions (the current one: `version_id`, None after
    /anchor clear), angles, face and voice. A channel's first character is its main one."""

    id: int
    guild_id: int
    channel_id: int
    name: str
    is_main: bool
    version_id: int | None
    added_by: int
    added_at: float
    removed: bool = False  # taken out of the cast (its history stays)


@dataclass(frozen=True)
class CastMember:
    """A character as a shot uses it: with the anchor version it has now."""

    character: Character
    version: AnchorVersion

    @property
    def name(self) -> str:
        return self.character.name


@dataclass(frozen=True)
class ShotCast:
    """Who a shot shows: `start` gives the start image; `named` are the characters the prompt names, in the order
    they first appear (their @ElementN); empty when it names no one (a shot about the start character)."""

    start: CastMember
    named: tuple[CastMember, ...]


# Cast names -----------------------------------------------------------------------------------------------
# Cast names: what a valid name is, and which cast members a prompt names (as `Mara` or `@Mara`).
#
# A name is 1-32 letters, digits, spaces, `-` or `_` (any script's letters, with the combining marks a letter
# carries: Devanagari and Tamil vowel signs and viramas, Thai tone marks, accents), unique in a channel whatever its
# case. In a prompt, a cast name as a whole word (any case) or after `@` names that character; an `@Word` that is no
# cast name is refused, a plain word that is no cast name is just a word. Named characters become Kling's
# `@Element1`, `@Element2`... in the order the names first appear.

NAME_MAX = 32
PLACEHOLDER = "main"  # the name of a main character whose anchor was set without one
MAX_MARKS_PER_LETTER = 4  # "क्षि" needs 1-2; Zalgo text stacks dozens
_NAME_CHARS = frozenset(" -_")
_NAME_MARKS = frozenset({"Mn", "Mc"})  # nonspacing and spacing combining marks


def _mark_class() -> str:
    """Every combining mark (Unicode category M*) as character-class ranges: `\\w` does not match them, so a word
    is letters, digits, `_` and these. Marks live in planes 0, 1 and 14 only (about 10 ms to list, once)."""
    ranges: list[tuple[int, int]] = []
    for cp in (*range(0x20000), *range(0xE0000, 0xE1000)):
        if unicodedata.category(chr(cp)).startswith("M"):
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    return "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges)


WORD_CHARS = rf"\w{_mark_class()}"  # a character-class body: a character of a word in any script (marks too)
# `@Word` where a name is expected: not an e-mail address (a word character before), not a Discord mention (`<@`).
_DISCORD_WORDS = frozenset({"everyone", "here"})  # @everyone and @here are Discord's words, never a cast name
_AT_WORD = re.compile(rf"(?<![{WORD_CHARS}<@])@([^\W_][{WORD_CHARS}-]*)")


def clean_name(text: str) -> str:
    """A cast name as stored: invisible characters removed, spaces collapsed; UserError when it is not one."""
    name = clean_text(text, field="name", max_chars=NAME_MAX)
    if "\n" in name or not all(
        ch.isalnum() or ch in _NAME_CHARS or unicodedata.category(ch) in _NAME_MARKS for ch in name
    ):
        raise UserError(
            "A cast name is letters, digits, spaces, - or _ only (like Mara, Old Tom or R2-D2); "
            f"“{shown_name(name)}” has other characters."
        )
    if not any(ch.isalnum() for ch in name):
        raise UserError("A cast name needs at least one letter or digit.")
    _check_marks(name)
    key = name_key(name)
    if key in _DISCORD_WORDS or re.fullmatch(r"element[\s_-]*\d*", key):
        raise UserError(
            f"“{shown_name(name)}” can't be a cast name: Discord or the video model uses that word; pick another."
        )
    return name


def _check_marks(name: str) -> None:
    """Refuse a combining mark that sits on no letter, and a letter carrying more than MAX_MARKS_PER_LETTER."""
    marks, on_letter = 0, False
    for ch in name:
        if unicodedata.category(ch) not in _NAME_MARKS:
            marks, on_letter = 0, ch.isalpha()
            continue
        marks += 1
        if not on_letter:
            raise UserError(
                f"In a cast name, accents and vowel signs belong on a letter; “{shown_name(name)}” has one "
                "on its own. Type the name again."
            )
        if marks > MAX_MARKS_PER_LETTER:
            raise UserError(
                f"A letter of a cast name may carry at most {MAX_MARKS_PER_LETTER} accents or vowel signs; "
                f"“{shown_name(name)}” stacks more. Type the name plainly."
            )


def name_key(name: str) -> str:
    """The form names are compared in: case-folded, spaces collapsed."""
    return " ".join(name.casefold().split())


def shown_name(text: str) -> str:
    """A name as an answer echoes it: at most 40 characters (a member can type thousands)."""
    return text if len(text) <= 40 else text[:39] + "\u2026"


@dataclass(frozen=True)
class Named:
    """The cast members a prompt names (canonical names, in the order they first appear), and the @words that
    name no one."""

    names: tuple[str, ...]
    unknown: tuple[str, ...]


def _pattern(names: Sequence[str]) -> re.Pattern[str] | None:
    """One pattern for every name of `names` (longest first), each its own group `n<index in names>`: the group
    that matched tells which name it was (case-insensitive matching and case-folding disagree on ı and İ). A
    character still called "main" (its anchor was set without a name) is named by `@main` only: "the main street"
    names no one."""
    order = sorted((i for i, n in enumerate(names) if n.strip()), key=lambda i: len(names[i]), reverse=True)
    if not order:
        return None

    def alt(i: int) -> str:
        words = r"\s+".join(re.escape(w) for w in names[i].split())
        return ("@" if name_key(names[i]) == PLACEHOLDER else "@?") + f"(?P<n{i}>{words})"

    alts = "|".join(alt(i) for i in order)
    return re.compile(rf"(?<![{WORD_CHARS}<@-])(?:{alts})(?![{WORD_CHARS}@-])", re.IGNORECASE)


def _which(m: re.Match[str]) -> int:
    assert m.lastgroup is not None
    return int(m.lastgroup[1:])


def named_in(prompt: str, cast: Sequence[str]) -> Named:
    """Which of `cast` the prompt names, in order of first appearance, and which `@Words` are not in it. Words
    in quotes are what a character says: they name no one."""
    quotes = quoted_spans(prompt)
    found: list[str] = []
    starts: set[int] = set()
    pattern = _pattern(cast)
    if pattern is not None:
        for m in pattern.finditer(prompt):
            starts.add(m.start())
            name = cast[_which(m)]
            if not inside(quotes, m.start()) and name not in found:
                found.append(name)
    unknown: list[str] = []
    for m in _AT_WORD.finditer(prompt):
        if m.group(1).casefold() in _DISCORD_WORDS or inside(quotes, m.start()):
            continue
        if m.start() not in starts and m.group(1) not in unknown:
            unknown.append(m.group(1))
    return Named(tuple(found), tuple(unknown))


def element_names(prompt: str, order: Sequence[str]) -> str:
    """The prompt with each name of `order` (as a word or `@Name`) replaced by its `@ElementN`; quoted words are
    spoken and stay as they are."""
    pattern = _pattern(order)
    if pattern is None:
        return prompt
    quotes = quoted_spans(prompt)

    def tag(m: re.Match[str]) -> str:
        return m.group(0) if inside(quotes, m.start()) else f"@Element{_which(m) + 1}"

    return pattern.sub(tag, prompt)
