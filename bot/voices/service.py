"""Voices as members see them: /voice set (a sample becomes a create-voice job), show, clear, and the voices of the
characters a shot names."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from bot.anchors.models import Character
from bot.anchors.service import AnchorService, Upload
from bot.db import Database
from bot.errors import UserError
from bot.fal.models import model
from bot.fal.pricing import PriceTable
from bot.jobs import Job, JobEngine, Prepared
from bot.jobs.kinds import ProgressSink
from bot.media.audio import (
    MAX_SAMPLE_BYTES,
    VOICE_MAX_S,
    VOICE_MIN_S,
    BadSample,
    prepare_voice_sample_async,
    too_large_text,
)
from bot.media.fetch import DownloadError, TooLarge, fetch_limited
from bot.voices.kind import VoiceKind
from bot.voices.models import CREATE_VOICE, VOICE_KIND, SampleTaken, Voice
from bot.voices.ports import VoicePublisher
from bot.voices.store import VoiceStore

log = logging.getLogger(__name__)


class VoiceService:
    def __init__(
        self,
        db: Database,
        engine: JobEngine,
        kind: VoiceKind,
        *,
        anchors: AnchorService,
        prices: PriceTable,
        session: aiohttp.ClientSession,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = VoiceStore(db)
        self.engine = engine
        self.kind = kind
        self.anchors = anchors
        self.prices = prices
        self.session = session
        self.clock = clock

    def attach(self, publisher: VoicePublisher, sink: ProgressSink) -> Callable[[], None]:
        """Attach the chat side: `publisher` says a voice is ready (deliveries wait until it is attached), `sink`
        hears of every change of a voice job. Returns the call that detaches both."""
        self.kind.outlet.attach(publisher)
        unsubscribe = self.engine.subscribe(sink)

        def detach() -> None:
            unsubscribe()
            self.kind.outlet.detach(publisher)

        return detach

    @property
    def price(self) -> int:
        return self.prices.quote(model(CREATE_VOICE))

    async def get(self, character_id: int) -> Voice | None:
        return await self.store.get(character_id)

    async def sample(
        self, channel_id: int, parent_id: int | None, name: str
    ) -> tuple[Character, Voice, Path]:
        """A character's voice and the sample the bot kept of it (for /voice show)."""
        character = await self.anchors.cast.find(channel_id, parent_id, name)
        voice = await self.store.get(character.id)
        path = self.kind.sample_path(voice.sample_sha256) if voice else None
        if voice is None or path is None or not path.is_file():
            raise UserError(f"{character.name} has no voice yet; /voice set name:{character.name} gives one.")
        return character, voice, path

    async def clear(self, channel_id: int, parent_id: int | None, name: str) -> Character:
        character = await self.anchors.cast.find(channel_id, parent_id, name)
        if not await self.store.clear(character.id):
            raise UserError(f"{character.name} has no voice to clear.")
        return character

    # /voice set --------------------------------------------------------------------------------------------
    async def request(
        self,
        *,
        guild_id: int,
        channel_id: int,
        parent_id: int | None,
        user_id: int,
        name: str,
        upload: Upload,
    ) -> tuple[Job, SampleTaken]:
        """Check the sample (a real sound, 5 s or more; the first 30 s are used), keep it, and queue one
        create-voice job holding its price; the member pays only when the voice is stored."""
        character = await self.anchors.cast.find(channel_id, parent_id, name)
        if upload.size is not None and upload.size > MAX_SAMPLE_BYTES:
            raise UserError(too_large_text(upload.size))
        sha, taken = await self._keep_sample(upload)
        args = {
            "character_id": character.id,
            "name": character.name,
            "sample_sha256": sha,
            "seconds": taken.seconds_used,
        }
        prepared = Prepared(
            args=args,
            price_micros=self.price,
            endpoint=model(CREATE_VOICE).endpoint,
            description=f"voice {character.name}",
        )
        job = await self.engine.enqueue(
            VOICE_KIND, prepared, guild_id=guild_id, channel_id=channel_id, user_id=user_id
        )
        log.info("voice job %d queued for character %d", job.id, character.id)
        return job, taken

    async def _keep_sample(self, upload: Upload) -> tuple[str, SampleTaken]:
        """Download, probe and re-encode the sample (never trusting its name or type); return its hash."""
        try:
            data = await fetch_limited(self.session, upload.url, max_bytes=MAX_SAMPLE_BYTES)
        except TooLarge as exc:  # bigger than the attachment said it was
            raise UserError(too_large_text(exc.size)) from None
        except DownloadError as exc:
            raise UserError(f"I could not download that sample ({exc}); please upload it again.") from exc
        folder = self.kind.samples_dir
        folder.mkdir(parents=True, exist_ok=True)
        fd, raw = tempfile.mkstemp(dir=folder, suffix=".upload")
        os.close(fd)
        out = Path(raw).with_suffix(".wav")
        try:
            await asyncio.to_thread(Path(raw).write_bytes, data)
            try:
                prepared = await prepare_voice_sample_async(
                    Path(raw), out, min_s=VOICE_MIN_S, max_s=VOICE_MAX_S
                )
            except BadSample as exc:
                raise UserError(exc.message) from None
            sha = prepared.sha256
            os.replace(out, self.kind.sample_path(sha))
        finally:
            Path(raw).unlink(missing_ok=True)
            out.unlink(missing_ok=True)
        return sha, SampleTaken(prepared.seconds_found, prepared.seconds_used, prepared.was_cut)

    async def announce(self, job: Job, message_id: int) -> Job:
        """Record the request's public message (the result replies to it); the engine then sends the job."""
        job = await self.engine.set_messages(
            job, progress_message_id=message_id, reply_to_message_id=message_id
        )
        self.engine.wake()
        return job

    # Shots -------------------------------------------------------------------------------------------------
    async def voice_ids(self, character_ids: list[int]) -> dict[int, str]:
        """The voice id of each of these characters that has one."""
        out: dict[int, str] = {}
        for character_id in character_ids:
            voice = await self.store.get(character_id)
            if voice is not None:
                out[character_id] = voice.voice_id
        return out
