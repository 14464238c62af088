"""Reading a plan of shots: one a line (or separated by "|"), each with an optional length ("4s: she opens the door").

Every shot is checked as a /shot prompt is (cleaned of invisible characters, not empty, not too long, a length the
model makes), and a storyboard in one call against Kling's multi-shot limits, before anything is quoted or held.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.errors import UserError
from bot.scenes.models import MAX_PLAN_SHOTS, STORYBOARD_SHOT_S, STORYBOARD_SHOTS, PlannedShot
from bot.text import clean_text

MAX_SHOT_PROMPT_CHARS = 2500  # as /shot's prompt
MULTI_PROMPT_CHARS = 512  # Kling's API reference: at most 512 characters a shot in one call
# "4s: …", "4 s - …", "4:…" with a unit; without one ("3: …") a space must follow, so "12:30 the clock strikes"
# and "3-4 people walk in" are prompts, not lengths.
_LENGTH = re.compile(
    r"^\s*(\d{1,3})\s*(?:(?:s|sec|secs|seconds?)\s*[:\-\u2013\u2014]|[:\-\u2013\u2014](?=\s|$))\s*(.*)$",
    re.IGNORECASE | re.DOTALL,
)


def split_shots(text: str) -> list[str]:
    """The shots of a plan's text: one a line, or separated by "|"; empty pieces dropped."""
    pieces = re.split(r"[\n|]", text)
    return [p for p in (piece.strip() for piece in pieces) if p]


def parse_plan(
    text: str, *, default_s: int, durations_s: Sequence[int], one_call: bool = False
) -> list[PlannedShot]:
    """The planned shots, each checked; raises UserError (naming the shot) on the first problem."""
    pieces = split_shots(
        clean_text(text, field="plan", max_chars=MAX_PLAN_SHOTS * (MAX_SHOT_PROMPT_CHARS + 10))
    )
    if not pieces:
        raise UserError("The plan has no shots; write one a line, e.g. `4s: she opens the door`.")
    if len(pieces) > MAX_PLAN_SHOTS:
        raise UserError(f"A plan has at most {MAX_PLAN_SHOTS} shots; this one has {len(pieces)}.")
    shots = [_shot(n, piece, default_s, durations_s, one_call) for n, piece in enumerate(pieces, 1)]
    if one_call:
        check_storyboard(shots, durations_s)
    return shots


def _shot(n: int, piece: str, default_s: int, durations_s: Sequence[int], one_call: bool) -> PlannedShot:
    match = _LENGTH.match(piece)
    seconds, prompt = (int(match[1]), match[2]) if match else (default_s, piece)
    limit = MULTI_PROMPT_CHARS if one_call else MAX_SHOT_PROMPT_CHARS
    try:
        prompt = clean_text(prompt, field=f"prompt of shot {n}", max_chars=limit)
    except UserError as exc:
        raise UserError(f"Shot {n}: {exc.message}") from None
    if one_call:
        low, high = STORYBOARD_SHOT_S
        if not low <= seconds <= high:
            raise UserError(f"Shot {n} is {seconds} s; in one call each shot is {low} to {high} s.")
    elif seconds not in durations_s:
        raise UserError(f"Shot {n} is {seconds} s; the video model makes {_span(durations_s)}.")
    return PlannedShot(prompt, seconds)


def check_storyboard(shots: Sequence[PlannedShot], durations_s: Sequence[int]) -> None:
    """2-6 shots whose lengths add up to a length the model makes in one call (3-15 s for Kling v3)."""
    low, high = STORYBOARD_SHOTS
    if not low <= len(shots) <= high:
        raise UserError(f"A storyboard in one call has {low} to {high} shots; this plan has {len(shots)}.")
    total = sum(s.duration_s for s in shots)
    if total not in durations_s:
        raise UserError(
            f"In one call the shots add up to {total} s, but one clip is {_span(durations_s)}; shorten some."
        )


def check_sent_shots(sent: Sequence[str]) -> None:
    """Kling's limit on each shot of one call counts what is sent: a cast's names written as its references
    ("Mara" -> "@Element1") can lengthen a shot typed within it."""
    for n, prompt in enumerate(sent, 1):
        if len(prompt) > MULTI_PROMPT_CHARS:
            raise UserError(
                f"Shot {n} comes to {len(prompt)} characters once the cast's names are written as the video "
                f"model's references; in one call a shot has at most {MULTI_PROMPT_CHARS}. Shorten it."
            )


def _span(durations_s: Sequence[int]) -> str:
    allowed = list(durations_s)
    if allowed == list(range(allowed[0], allowed[-1] + 1)):
        return f"{allowed[0]} to {allowed[-1]} s"
    return " or ".join(str(d) for d in allowed) + " s"
