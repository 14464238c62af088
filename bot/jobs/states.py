"""A job's states and the one table of moves between them (the words each state shows live on the chat side).

Every `only_from` in the engine is derived from `TRANSITIONS`; no other module writes a state's name.
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    WAITING = "waiting"  # in the bot's queue (or waiting for its next attempt)
    SUBMITTING = "submitting"  # the one submit to fal is being sent
    SUBMITTED = "submitted"  # fal has it, queued there
    RUNNING = "running"  # fal (or the local pool) is working on it
    COMPLETED = "completed"  # outputs known, not yet fetched and checked
    DOWNLOADED = "downloaded"  # outputs on disk and checked
    POSTING = "posting"  # a post is (or may have been) sent; never released while its outcome is unknown
    POSTED = "posted"
    FAILED = "failed"
    CANCELLED = "cancelled"


S = JobState

TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    S.WAITING: frozenset({S.SUBMITTING, S.RUNNING, S.FAILED, S.CANCELLED}),
    S.SUBMITTING: frozenset({S.SUBMITTED, S.WAITING, S.FAILED}),
    S.SUBMITTED: frozenset({S.RUNNING, S.COMPLETED, S.WAITING, S.FAILED, S.CANCELLED}),
    S.RUNNING: frozenset({S.COMPLETED, S.WAITING, S.FAILED, S.CANCELLED}),
    S.COMPLETED: frozenset({S.DOWNLOADED, S.FAILED}),
    S.DOWNLOADED: frozenset({S.POSTING, S.FAILED}),
    S.POSTING: frozenset({S.POSTED, S.FAILED}),
    S.POSTED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}

# What a final state does to the job's hold, in the same transaction as the move.
SETTLEMENT: dict[JobState, str] = {S.POSTED: "capture", S.FAILED: "release", S.CANCELLED: "release"}


def sources(target: JobState) -> tuple[JobState, ...]:
    """Every state a job may move to `target` from (the `only_from` of that move)."""
    return tuple(s for s in JobState if target in TRANSITIONS[s])


FINAL: frozenset[JobState] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
CANCELLABLE: tuple[JobState, ...] = sources(S.CANCELLED)
AT_BACKEND: tuple[JobState, ...] = (S.SUBMITTED, S.RUNNING)
# Counted against the concurrency limits: everything past the bot's queue and not final.
IN_FLIGHT: tuple[JobState, ...] = tuple(s for s in JobState if s is not S.WAITING and s not in FINAL)
UNFINISHED: tuple[JobState, ...] = tuple(s for s in JobState if s not in FINAL)


def can_move(current: JobState, target: JobState) -> bool:
    return target in TRANSITIONS[current]
