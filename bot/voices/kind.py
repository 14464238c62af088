"""The `voice` job kind: Kling's create-voice turns the character's sample into a voice id (fal steps are
bot/kinds/fal.py's). Delivering stores the voice with the character and says so in the channel; the member pays only
then, once."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from bot.alerts import Alerts
from bot.fal.gateway import Gateway
from bot.fal.models import model
from bot.jobs import Fail, Job, Outlet
from bot.kinds.fal import FalKind
from bot.voices.models import LEDGER_PREFIX, VOICE_KIND, Voice
from bot.voices.ports import NotPosted, VoicePublisher
from bot.voices.store import VoiceStore

log = logging.getLogger(__name__)
GONE = "The voice was made, but its channel is gone (or the bot was removed from it); nothing was charged."


class VoiceKind(FalKind):
    name = VOICE_KIND
    ledger_prefix = LEDGER_PREFIX
    noun = "voice"
    announced = True  # its request message is posted right after it is queued
    service = "the voice service"
    output = "voice"

    def __init__(
        self, *, store: VoiceStore, gateway: Gateway, samples_dir: Path, alerts: Alerts | None
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.samples_dir = samples_dir
        self.alerts = alerts
        self.outlet: Outlet[VoicePublisher] = Outlet("voices")

    def can_deliver(self) -> bool:
        return self.outlet.attached

    def sample_path(self, sha256: str) -> Path:
        return self.samples_dir / f"{sha256}.wav"

    async def arguments(self, job: Job) -> dict[str, Any]:
        """The sample uploaded to fal's storage (a fresh upload each time: a voice is made once)."""
        sha = job.args["sample_sha256"]
        path = self.sample_path(sha)
        if not path.is_file():
            raise Fail(
                "The voice sample went missing from the bot's disk before it was sent; upload it again."
            )
        data = await asyncio.to_thread(path.read_bytes)
        url = await self.gateway.upload(data, "audio/wav", f"voice-{sha[:12]}.wav")
        return model(self.endpoint(job)).arguments(voice_url=url)

    def outputs(self, job: Job, payload: dict[str, Any]) -> dict[str, Any]:
        [voice] = model(self.endpoint(job)).outputs(payload)
        return {"voice_id": voice.voice_id}

    async def find_delivered(self, job: Job) -> int | None:
        try:
            return await self.outlet.get().find_voice(job)
        except NotPosted as exc:
            raise Fail(GONE) from exc

    async def deliver(self, job: Job) -> int | None:
        """Store the voice with its character (once), then say so in the channel."""
        voice_id = job.outputs.get("voice_id")
        if not voice_id:
            raise Fail("The voice service finished but sent back no voice.")
        a = job.args
        voice = Voice(
            character_id=int(a["character_id"]),
            voice_id=str(voice_id),
            sample_sha256=a["sample_sha256"],
            seconds=float(a["seconds"]),
            set_by=job.user_id,
            set_at=job.completed_at or job.updated_at,
        )
        await self.store.put(voice, job.id)
        try:
            return await self.outlet.get().post_voice(job)
        except NotPosted as exc:
            if exc.gone:  # nobody can use a voice of a deleted channel's character: it costs nothing
                raise Fail(GONE) from exc
            # The voice is made and stored, and shots use it: that is what was paid for, the notice is not.
            log.warning("voice job %d: its notice could not be posted (%s); the voice is kept", job.id, exc)
            return None
