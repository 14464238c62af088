"""What a voice is, as the rest of the bot sees it."""

from __future__ import annotations

from dataclasses import dataclass

VOICE_KIND = "voice"  # the create-voice job: a sample becomes a voice id at fal
LEDGER_PREFIX = "voice"
CREATE_VOICE = "kling-create-voice"  # the catalogue key of fal's create-voice endpoint


@dataclass(frozen=True)
class Voice:
    """A character's voice: fal's id for it and the sample the bot keeps (media/voices/<sha256>.wav)."""

    character_id: int
    voice_id: str
    sample_sha256: str
    seconds: float
    set_by: int
    set_at: float


@dataclass(frozen=True)
class SampleTaken:
    """What /voice set took from an upload: how long it was, how much of it is used."""

    seconds_found: float
    seconds_used: float
    was_cut: bool
