"""The character as Kling's @Element1 in a take's prompt."""

from __future__ import annotations

import re

ELEMENT = "@Element1"


def element_prompt(prompt: str, name: str | None) -> str:
    """The anchor's name (or "the character") in the prompt becomes @Element1 (whole words, any case)."""
    words = [w for w in (name, "the character") if w and w.strip()]
    pattern = "|".join(re.escape(w.strip()) for w in sorted(words, key=len, reverse=True))
    return re.sub(rf"(?<!\w)(?:{pattern})(?!\w)", ELEMENT, prompt, flags=re.IGNORECASE)
