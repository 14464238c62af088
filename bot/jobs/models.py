"""A job as stored: the engine's columns plus the kind's own arguments and outputs (JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.jobs.states import FINAL, JobState


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    parent_id: int | None
    seq: int
    ledger_key: str
    guild_id: int
    channel_id: int
    user_id: int
    args: dict[str, Any]
    outputs: dict[str, Any]
    state: JobState
    attempts: int
    next_attempt_at: float
    request_id: str | None
    endpoint: str | None
    backend: str
    price_micros: int
    queue_position: int | None
    progress_message_id: int | None
    reply_to_message_id: int | None
    result_message_id: int | None
    error: str | None
    created_at: float
    submitted_at: float | None
    started_at: float | None
    completed_at: float | None
    finished_at: float | None
    updated_at: float
    number: int | None = None  # its number in a per-server series (a take's shot number), shared by re-rolls
    lease_owner: str | None = None  # the process whose steps move it (several processes on one queue, #18)
    lease_until: float | None = None  # when that lease runs out unless renewed

    @property
    def root_id(self) -> int:
        """The original of a family of jobs (a shot's first take)."""
        return self.parent_id or self.id

    @property
    def is_final(self) -> bool:
        return self.state in FINAL


@dataclass(frozen=True)
class Prepared:
    """A request validated into the kind's arguments and a quote."""

    args: dict[str, Any]
    price_micros: int
    endpoint: str | None = None
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    series: str | None = None  # a new job draws the next number of this per-server series (re-rolls share it)


@dataclass(frozen=True)
class NewJob:
    """One job to queue (see `JobEngine.enqueue_all`): its kind, the kind's prepared request, and where it is from."""

    kind: str
    prepared: Prepared
    guild_id: int
    channel_id: int
    user_id: int
    parent_id: int | None = None
    reply_to_message_id: int | None = None
