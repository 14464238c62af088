"""What a take is, as the rest of the bot sees it."""

from __future__ import annotations

from dataclasses import dataclass

FINAL_STATES = ("posted", "failed", "cancelled")
IN_FLIGHT_STATES = ("submitted", "running", "completed", "downloaded")


def shot_job_key(shot_id: int) -> str:
    """The ledger key of a take's hold."""
    return f"shot:{shot_id}"


@dataclass(frozen=True)
class Shot:
    """One take of a shot, as stored."""

    id: int
    guild_id: int
    channel_id: int
    user_id: int
    root_shot_id: int | None
    take: int
    prompt: str
    negative_prompt: str | None
    duration_s: int
    aspect_ratio: str
    audio: int
    anchor_version_id: int
    endpoint: str
    backend: str
    price_micros: int
    state: str
    request_id: str | None
    queue_position: int | None
    progress_message_id: int | None
    reply_to_message_id: int | None
    clip_message_id: int | None
    upload_limit_bytes: int | None
    output_url: str | None
    clip_path: str | None
    error: str | None
    created_at: float
    submitted_at: float | None
    started_at: float | None
    completed_at: float | None
    finished_at: float | None
    updated_at: float

    @property
    def job_key(self) -> str:
        """The ledger key of this take's hold."""
        return shot_job_key(self.id)

    @property
    def root_id(self) -> int:
        return self.root_shot_id or self.id

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES
