"""What consistency says: the anchor's face checks and a take's face verdict, in members' words.

bot/media/faces.py measures (faces found, where, how large, how tilted; distances per frame); this module judges
those measurements against the anchor rules and words them.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.consistency.models import CastScore, StoredScore
from bot.media.faces import Face, FaceReport, Verdict

# The detector's box spans roughly brows to chin, about 60 % of the head with its hair.
FACE_MIN_HEIGHT = (
    0.15  # box < 15 % of the frame: a 720p take renders the face under ~110 px and identity drifts
)
FACE_MAX_HEIGHT = (
    0.55  # box > 55 %: the head (≈ box / 0.6) fills ~90 % of the frame; any motion crops the face
)
ROLL_LIMIT_DEG = 10.0  # eyes tilted more than this: the model tends to straighten or exaggerate the tilt

TITLES = {
    "face_count": "One face",
    "face_centred": "Face centred",
    "face_size": "Face size",
    "eyes_level": "Eyes level",
}


@dataclass(frozen=True)
class FaceCheck:
    """One line of the anchor checklist. `level` is "pass", "warn" or "fail"."""

    key: str  # "face_count" | "face_centred" | "face_size" | "eyes_level"
    level: str
    text: str

    @property
    def title(self) -> str:
        return TITLES.get(self.key, self.key)


def anchor_face_checks(report: FaceReport) -> list[FaceCheck]:
    """Exactly one face (or one that clearly dominates), in the middle third, a usable size, eyes level."""
    count = _count_check(report)
    if report.face is None:
        return [count]
    return [count, _centred_check(report.face), _size_check(report.face), _level_check(report.face)]


def checks_pass(checks: list[FaceCheck]) -> bool:
    return all(c.level != "fail" for c in checks)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _count_check(report: FaceReport) -> FaceCheck:
    """Pass for one face; warn when the largest clearly dominates the others; fail for none or faces alike."""
    if report.count == 0:
        return FaceCheck(
            "face_count",
            "fail",
            "No face found. Use a photo where the face looks towards the camera and fills at least "
            "a sixth of the picture's height.",
        )
    if report.count == 1:
        return FaceCheck("face_count", "pass", "Exactly one face.")
    if report.dominant:
        return FaceCheck(
            "face_count",
            "warn",
            f"{_plural(report.count, 'face')} found; the largest is used as the character. "
            "Please crop the picture to one person if you can.",
        )
    return FaceCheck(
        "face_count",
        "fail",
        f"More than one face ({report.count} of similar size), so it is unclear who the character is. "
        "Please crop the picture to one person.",
    )


def _centred_check(face: Face) -> FaceCheck:
    """Pass when the face's centre is in the middle third of the width; warn (naming the side) otherwise."""
    cx, _cy = face.centre
    where = f"The face is centred at {cx:.0%} of the width"
    if 1 / 3 <= cx <= 2 / 3:
        return FaceCheck("face_centred", "pass", f"{where} (middle third).")
    side = "left" if cx < 1 / 3 else "right"
    return FaceCheck(
        "face_centred",
        "warn",
        f"{where}, off to the {side}; please move it into the middle third so later shots keep it in frame.",
    )


def _size_check(face: Face) -> FaceCheck:
    """Pass when the face box is FACE_MIN_HEIGHT..FACE_MAX_HEIGHT of the picture's height; warn otherwise."""
    share = face.size_fraction
    if share < FACE_MIN_HEIGHT:
        return FaceCheck(
            "face_size",
            "warn",
            f"The face is small ({share:.0%} of the picture's height); please crop closer, "
            f"to at least {FACE_MIN_HEIGHT:.0%}, so the video keeps its features.",
        )
    if share > FACE_MAX_HEIGHT:
        return FaceCheck(
            "face_size",
            "warn",
            f"The face is very large ({share:.0%} of the picture's height); please leave some room around "
            f"the head (at most {FACE_MAX_HEIGHT:.0%}) so it is not cropped when it moves.",
        )
    return FaceCheck("face_size", "pass", f"The face is {share:.0%} of the picture's height.")


def _level_check(face: Face) -> FaceCheck:
    """Pass when the eye line is within ROLL_LIMIT_DEG of level; warn with the measured tilt otherwise."""
    roll = abs(face.roll)
    if roll > ROLL_LIMIT_DEG:
        return FaceCheck(
            "eyes_level",
            "warn",
            f"The head is tilted by {roll:.0f}°; a level head (eyes within {ROLL_LIMIT_DEG:.0f}°) "
            "gives steadier shots.",
        )
    return FaceCheck("eyes_level", "pass", f"The eyes are level ({roll:.0f}° of tilt).")


def percent(value: float) -> str:
    """Every percentage members read is written one way: "94%"."""
    return f"{value:.0f}%"


def verdict_text(verdict: Verdict | str, score: int | None, matching: int, sampled: int) -> str:
    """A take's face verdict in one line."""
    if verdict == Verdict.NO_FACE:
        return "no face visible, so it could not be checked"
    if verdict == Verdict.DRIFT:
        return f"\u26a0 the face drifted from the anchor \u00b7 {matching} of {sampled} frames match"
    return f"face match {percent(score or 0)} \u00b7 {matching} of {sampled} frames"


def stored_verdict_text(s: StoredScore) -> str:
    if len(s.cast) > 1:
        return cast_verdict_text(s.cast)
    return verdict_text(s.verdict, s.score, s.frames_matching, s.frames_sampled)


def cast_verdict_text(cast: tuple[CastScore, ...]) -> str:
    """One verdict a character: "face match · Mara 94% · Grace 88%", or which of them drifted first."""
    parts = [f"{c.name} {percent(c.score)}" if c.score is not None else f"{c.name}: no face" for c in cast]
    drifted = [c.name for c in cast if c.verdict == Verdict.DRIFT]
    if drifted:
        head = f"\u26a0 {' and '.join(drifted)} drifted from the anchor"
    elif all(c.verdict == Verdict.NO_FACE for c in cast):
        return "no face visible, so it could not be checked"
    else:
        head = "face match"
    return " \u00b7 ".join([head, *parts])


def verdict_line(s: StoredScore, *, rerolled: bool) -> str:
    """The verdict, with the next step for a drifted take that is not re-rolled automatically."""
    text = stored_verdict_text(s)
    if s.verdict == Verdict.DRIFT and not rerolled:
        text += "; press Re-roll for another take"
    return text


def score_words(s: StoredScore) -> str:
    """A score in a comparison: "91%", or "no face"."""
    return percent(s.score) if s.score is not None else "no face"
