"""Consistency's records as the rest of the bot sees them: anchor faces, take scores, a version's record."""

from __future__ import annotations

from dataclasses import dataclass

SCORE_KIND = "face_score"


@dataclass(frozen=True)
class StoredFace:
    version_id: int
    angle_id: int | None
    face_count: int
    embedding: bytes | None
    checks: list[dict[str, str]]


@dataclass(frozen=True)
class CastScore:
    """A take's score against one of the characters it names (its @ElementN is `position`)."""

    character_id: int
    name: str
    position: int
    verdict: str
    score: int | None
    frames_matching: int
    frames_sampled: int


@dataclass(frozen=True)
class CastRecord:
    """How a character has held across the takes scored against it."""

    takes_scored: int
    median_score: float | None


@dataclass(frozen=True)
class StoredScore:
    take_id: int
    anchor_version_id: int
    verdict: str
    score: int | None
    median_distance: float | None
    frames_sampled: int
    frames_with_face: int
    frames_matching: int
    threshold: float
    cast: tuple[
        CastScore, ...
    ] = ()  # one score per named character (a take of several); the figures above are
    # then the worst character's


@dataclass(frozen=True)
class VersionRecord:
    """How an anchor version has held: takes scored, their median score, and the share that drifted."""

    takes_scored: int
    median_score: float | None
    drifted: int
    no_face: int

    @property
    def drift_rate(self) -> float | None:
        with_face = self.takes_scored - self.no_face
        return self.drifted / with_face if with_face else None


@dataclass(frozen=True)
class VerdictView:
    """A take's face verdict as its clip message shows it: the verdict ("match", "drift", "no_face") and its
    lines (the score, then what happens next: an automatic re-roll on its way, or how it compares)."""

    verdict: str
    lines: tuple[str, ...]

    @property
    def drifted(self) -> bool:
        return self.verdict == "drift"
