"""/voice set intake end to end: what a sample must hold to be charged for, and how an oversized one is refused.

(The cast's voices as a whole, once a sample is taken, are in test_cast.py.)"""

from __future__ import annotations

import io
import wave

import numpy as np

from bot.jobs import JobState
from tests import samples
from tests.e2e.helpers import set_anchor, settled_totals, text_reply
from tests.fakes.discord import text_of
from tests.fakes.media_samples import speech_wav


async def _voice_set(fake, data: bytes, **attachment: object) -> str:
    att = fake.make_attachment("sample.wav", data, content_type="audio/wav", **attachment)
    return text_of(await text_reply(await fake.slash("voice set", name="Mara", sample=att)))


async def _nothing_asked_nor_held(runner, fake, fake_fal) -> None:
    assert fake_fal.submissions_to("create-voice") == []
    assert [j for j in await runner.services.jobs.in_states(*JobState) if j.kind == "voice"] == []
    assert await settled_totals(runner, fake) == (0, 0)


def _constant_wav(level: int, seconds: float = 10, rate: int = 22050) -> bytes:
    """A WAV whose every sample is `level`: a DC offset, and not a sound."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.full(round(seconds * rate), level, "<i2").tobytes())
    return buf.getvalue()


async def test_a_silent_sample_with_a_dc_offset_is_refused_and_charges_nothing(
    bot, runner, fake_discord, fake_fal
):
    """Found in review: a silent recording whose samples sit at 3000 instead of 0 passed the silence check (it
    measured the raw peak) and was sent to fal and charged. Sound is measured around its mean now."""
    await set_anchor(fake_discord, samples.portrait_png(), name="Mara")
    answer = await _voice_set(fake_discord, _constant_wav(3000))
    assert answer == "I hear nothing in that sample; a voice needs 5 to 30 s of one person speaking."
    await _nothing_asked_nor_held(runner, fake_discord, fake_fal)


async def test_speech_over_a_dc_offset_is_still_a_voice(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png(), name="Mara")
    with wave.open(io.BytesIO(speech_wav(8))) as w:
        rate, pcm = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), "<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((pcm // 2 + 3000).astype("<i2").tobytes())
    assert "On its way" in await _voice_set(fake_discord, buf.getvalue())
    await fake_discord.wait_for(lambda: fake_fal.submissions_to("create-voice"), timeout=30)


async def test_a_sample_bigger_than_its_attachment_said_is_refused_as_a_voice_sample(
    bot, runner, fake_discord, fake_fal
):
    """Found in review: a sample whose download turned out over 20 MB was told to "upload a PNG, JPEG or WebP
    under 20 MB", and 20.3 MB read as "20 MB; ... under 20 MB". The size is rounded up as everywhere else."""
    await set_anchor(fake_discord, samples.portrait_png(), name="Mara")
    big = speech_wav(10) + b"\0" * (20 * 1024 * 1024)  # 20.4 MiB once the 441 kB of speech is counted
    answer = await _voice_set(fake_discord, big, declared_size=300_000)
    assert answer == "That file is 20.5 MB; a voice sample may be 20 MB at most."
    await _nothing_asked_nor_held(runner, fake_discord, fake_fal)
    declared = await _voice_set(fake_discord, speech_wav(6), declared_size=20 * 1024 * 1024 + 300_000)
    assert declared == "That file is 20.3 MB; a voice sample may be 20 MB at most."
