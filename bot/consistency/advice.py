"""Prompt advice before spending: phrases that tend to break the anchor's face (never blocks a shot).

From the reference workflow's "where it breaks": shots that never show the face (back angles, from behind),
extreme close-ups (the model invents detail the anchor does not have), and spoken dialogue (without a bound voice
the voice changes from shot to shot).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    key: str
    pattern: re.Pattern[str]
    advice: str


def _rx(*alternatives: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")\b", re.IGNORECASE)


RULES: tuple[Rule, ...] = (
    Rule(
        "face_hidden",
        _rx(
            r"from behind",
            r"(?:seen |shot )?from the back",
            r"back (?:view|angle|shot) ?",
            r"(?:over[- ]the[- ]shoulder)",
            r"(?:her|his|their) back to (?:the )?camera",
            r"turns? (?:her|his|their) back",
            r"walks? away from (?:the )?camera",
            r"silhouetted?",
            r"face (?:hidden|covered|not visible)",
            r"(?:wearing|in) a (?:mask|helmet|balaclava)",
        ),
        "The face may not be visible in this shot, so its match to the anchor cannot be checked "
        "(and the face can change when it turns back).",
    ),
    Rule(
        "extreme_close_up",
        _rx(
            r"extreme close[- ]?ups?",
            r"macro",
            r"ecu",
            r"close[- ]?up (?:of|on) (?:the |her |his |their )?(?:eyes?|lips|mouth|iris)",
        ),
        "An extreme close-up invents detail the anchor does not show; a medium close-up keeps the face closer "
        "to the anchor.",
    ),
    Rule(
        "dialogue",
        re.compile(
            r"[\"“”]\s*[^\"“”]{2,}[\"“”]|\b(?:says?|said|saying|speaks?|speaking|talks?|talking|whispers?|"
            r"shouts?|yells?|sings?|singing|dialogue|asks?)\b",
            re.IGNORECASE,
        ),
        "Spoken dialogue: without a bound voice the character's voice changes from shot to shot; bind a voice "
        "to this character, or keep the shot silent.",
    ),
)


def prompt_advice(prompt: str) -> list[str]:
    """Short advisories for a prompt, in rule order (empty when nothing applies). Never raises."""
    return [rule.advice for rule in RULES if rule.pattern.search(prompt or "")]


def advice_keys(prompt: str) -> list[str]:
    return [rule.key for rule in RULES if rule.pattern.search(prompt or "")]
