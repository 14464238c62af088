"""Cleaning free text typed by members (prompts, negative prompts, anchor names, admin reasons).

Invisible characters are removed before the empty check, so a prompt made only of zero-width spaces is refused
instead of being sent to fal and charged.
"""

from __future__ import annotations

import re
import unicodedata

from bot.errors import UserError

_KEEP_CONTROLS = frozenset("\n\t")
# Horizontal whitespace runs (spaces, tabs, no-break and other Unicode spaces) become one space; more than two
# line breaks in a row become two (one blank line).
_HSPACE_RE = re.compile(r"[^\S\n]+")
_SPACE_AROUND_NL_RE = re.compile(r" *\n *")
_MANY_NL_RE = re.compile(r"\n{3,}")


def _visible(ch: str) -> bool:
    cat = unicodedata.category(ch)
    if cat == "Cf" or cat == "Cs":  # format characters (zero-width, bidi controls, BOM) and lone surrogates
        return False
    if cat == "Cc":
        return ch in _KEEP_CONTROLS
    return True


def _normalise(text: str) -> str:
    text = "".join(ch for ch in text if _visible(ch))
    text = unicodedata.normalize("NFC", text)
    text = _HSPACE_RE.sub(" ", text)
    text = _SPACE_AROUND_NL_RE.sub("\n", text)
    text = _MANY_NL_RE.sub("\n\n", text)
    return text.strip()


def clean_text(text: str, *, field: str, max_chars: int) -> str:
    """Return `text` normalised (NFC, invisible and control characters removed, whitespace collapsed, stripped).

    Raise `UserError` naming `field` when nothing visible is left, when it is longer than `max_chars` after
    cleaning, or when it cannot be encoded as UTF-8.
    """
    if not isinstance(text, str):
        raise UserError(f"The {field} must be text.")
    cleaned = _normalise(text)
    # Normalising can (rarely) expose a new run to collapse; once more makes the result a fixed point.
    again = _normalise(cleaned)
    while again != cleaned:
        cleaned, again = again, _normalise(again)
    if not cleaned:
        raise UserError(f"The {field} is empty once invisible characters are removed; type some words.")
    try:
        cleaned.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"The {field} contains characters that cannot be sent; retype it.") from None
    if len(cleaned) > max_chars:
        raise UserError(
            f"The {field} is {len(cleaned):,} characters long; keep it to {max_chars:,} characters or fewer."
        )
    return cleaned


def human_size(size: int) -> str:
    """A size as members read it: "850 KB", "8.9 MB", "15 MB" (units of 1024, as Discord counts its limits)."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            if unit == "bytes":
                return f"{int(value)} bytes"
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


_QUOTED = re.compile(r'"[^"]*"|\u201c[^\u201d]*\u201d')


def quoted_spans(text: str) -> list[tuple[int, int]]:
    """Where `text` quotes someone: "…" and “…” (the words a character says, never rewritten)."""
    return [m.span() for m in _QUOTED.finditer(text)]


def inside(spans: list[tuple[int, int]], at: int) -> bool:
    return any(start <= at < end for start, end in spans)
