"""Consistency pieces without Discord: the face checks as checklist lines, the record, the verdict texts."""

from __future__ import annotations

from bot.anchors.models import Level
from bot.consistency.models import StoredScore, VersionRecord
from bot.consistency.service import _items
from bot.consistency.wording import stored_verdict_text


def test_face_checks_join_the_checklist_and_a_fail_shows_as_a_warning():
    items = _items(
        [
            {"title": "One face", "level": "fail", "text": "No face found."},
            {"title": "Eyes level", "level": "pass", "text": "The eyes are level (2° of tilt)."},
        ]
    )
    assert [(i.key, i.level) for i in items] == [("One face", Level.WARN), ("Eyes level", Level.PASS)]
    assert items[0].key == "One face" and items[0].level == "warn"


def test_record_drift_rate_counts_only_takes_with_a_face():
    assert VersionRecord(takes_scored=4, median_score=90, drifted=1, no_face=2).drift_rate == 0.5
    assert VersionRecord(takes_scored=1, median_score=None, drifted=0, no_face=1).drift_rate is None


def _score(verdict: str, score: int | None, matching: int, with_face: int) -> StoredScore:
    return StoredScore(1, 1, verdict, score, 0.1, 8, with_face, matching, 0.6)


def test_verdict_texts():
    assert stored_verdict_text(_score("match", 94, 8, 8)) == "face match 94% · 8 of 8 frames"
    assert (
        stored_verdict_text(_score("drift", 40, 3, 8))
        == "⚠ the face drifted from the anchor · 3 of 8 frames match"
    )
    assert stored_verdict_text(_score("no_face", None, 0, 0)) == "no face visible, so it could not be checked"
