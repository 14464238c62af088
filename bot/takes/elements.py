"""The character as Kling's @Element1 in a take's prompt."""

from __future__ import annotations

import re

from bot.anchors.models import WORD_CHARS
from bot.text import inside, quoted_spans

ELEMENT = "@Element1"


def element_prompt(prompt: str, name: str | None) -> str:
    """The anchor's name (or "the character"), as a whole word or `@Name`, any case, becomes @Element1; words in
    quotes are spoken and stay as they are."""
    words = [w for w in (name, "the character") if w and w.strip()]
    pattern = "|".join(re.escape(w.strip()) for w in sorted(words, key=len, reverse=True))
    quotes = quoted_spans(prompt)
    return re.sub(
        rf"(?<![{WORD_CHARS}@])@?(?:{pattern})(?![{WORD_CHARS}])",  # whole words in any script (marks too)
        lambda m: m.group(0) if inside(quotes, m.start()) else ELEMENT,
        prompt,
        flags=re.IGNORECASE,
    )
