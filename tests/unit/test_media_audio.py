"""bot/media/audio.py with real files: what makes a voice sample, what is refused, and the WAV it writes."""

from __future__ import annotations

import asyncio
import hashlib
import random
import struct
import subprocess
import threading
from pathlib import Path

import av
import numpy as np
import pytest

from bot.media import audio
from bot.media.audio import (
    MAX_SAMPLE_BYTES,
    VOICE_MAX_S,
    VOICE_MIN_S,
    BadSample,
    PreparedSample,
    SampleInfo,
    prepare_voice_sample,
    prepare_voice_sample_async,
    probe_sample,
)
from tests.fakes.media_samples import ffmpeg_exe, silent_mp4, speech_mp4, speech_wav


def _ffmpeg(*args: str) -> None:
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _decoded(path: Path) -> tuple[str, int, int, np.ndarray]:
    """(codec, rate, channels, samples as int16) of a file's first audio stream, read back with PyAV."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        ctx = stream.codec_context
        frames = [f.to_ndarray().reshape(-1) for f in container.decode(stream)]
        return ctx.name, ctx.sample_rate, ctx.channels, np.concatenate(frames)


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict[str, Path]:
    """10 s of speech in every form a member may send, made once for the module."""
    base = tmp_path_factory.mktemp("voice-samples")
    wav = _write(base / "speech.wav", speech_wav(10))
    out = {"wav": wav, "mp4": _write(base / "speech.mp4", speech_mp4(10))}
    encodes = {
        "mp3": ("speech.mp3", ["-c:a", "libmp3lame", "-b:a", "64k"]),
        "m4a": ("speech.m4a", ["-c:a", "aac", "-b:a", "64k"]),
        "ogg": ("speech.ogg", ["-c:a", "libopus", "-b:a", "32k"]),
        "stereo_mp3": ("stereo.mp3", ["-ac", "2", "-c:a", "libmp3lame", "-b:a", "96k"]),
        "wav_8k": ("phone.wav", ["-ar", "8000"]),
        "wav_96k": ("studio.wav", ["-ar", "96000"]),
    }
    for key, (name, opts) in encodes.items():
        _ffmpeg("-i", str(wav), *opts, str(base / name))
        out[key] = base / name
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=160x120:rate=24:duration=10", "-i", str(wav),
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
        str(base / "speech.mov"),
    )  # fmt: skip
    out["mov"] = base / "speech.mov"
    return out


# ------------------------------------------------------------------------------------------- the test samples


def test_speech_samples_sound_like_a_voice_and_the_silent_clip_has_no_audio(tmp_path):
    codec, rate, channels, pcm = _decoded(_write(tmp_path / "s.wav", speech_wav(10)))
    assert (codec, rate, channels, len(pcm)) == ("pcm_s16le", 22050, 1, 10 * 22050)
    spectrum = np.abs(np.fft.rfft(pcm.astype(float)))
    assert 120 <= np.fft.rfftfreq(len(pcm), 1 / rate)[spectrum.argmax()] <= 220  # a voice's fundamental
    windows = np.abs(pcm[: len(pcm) // 1102 * 1102].astype(float)).reshape(-1, 1102).mean(axis=1)
    assert windows.min() < 0.1 * windows.max()  # syllables and pauses, not a steady tone
    assert speech_wav(10) is speech_wav(10)  # cached
    with av.open(str(_write(tmp_path / "s.mp4", speech_mp4(6)))) as clip:
        assert clip.streams.video and clip.streams.audio[0].codec_context.name == "aac"
    with av.open(str(_write(tmp_path / "v.mp4", silent_mp4(6)))) as clip:
        assert clip.streams.video and not clip.streams.audio


# ------------------------------------------------------------------------------------------------- accepted


def test_a_10_s_wav_is_kept_as_it_is(samples, tmp_path):
    info = probe_sample(samples["wav"])
    assert info == SampleInfo(
        duration_s=10.0, has_audio=True, codec="pcm_s16le", sample_rate=22050, channels=1
    )
    out = prepare_voice_sample(samples["wav"], tmp_path / "voice.wav")
    assert isinstance(out, PreparedSample) and out.path == tmp_path / "voice.wav"
    assert out.seconds_found == pytest.approx(10.0, abs=0.01) and out.seconds_used == pytest.approx(
        10.0, abs=0.01
    )
    assert out.was_cut is False
    data = out.path.read_bytes()
    assert out.sha256 == hashlib.sha256(data).hexdigest() and out.size_bytes == len(data)
    codec, rate, channels, pcm = _decoded(out.path)
    assert (codec, rate, channels) == ("pcm_s16le", 22050, 1)
    _, _, _, source = _decoded(samples["wav"])
    assert np.array_equal(pcm, source)  # the very same sound
    assert sorted(p.name for p in tmp_path.iterdir()) == ["voice.wav"]  # no temporary file left behind


def test_a_40_s_wav_is_cut_to_its_first_30_s(tmp_path):
    src = _write(tmp_path / "long.wav", speech_wav(40))
    out = prepare_voice_sample(src, tmp_path / "voice.wav")
    assert out.was_cut is True and out.seconds_found == pytest.approx(40.0, abs=0.01)
    assert out.seconds_used == pytest.approx(30.0, abs=0.01)
    with av.open(str(out.path)) as container:
        stream = container.streams.audio[0]
        seconds = sum(f.samples for f in container.decode(stream)) / stream.codec_context.sample_rate
    assert seconds == pytest.approx(30.0, abs=0.05)
    _, _, _, pcm = _decoded(out.path)
    _, _, _, source = _decoded(src)
    assert np.array_equal(pcm, source[: 30 * 22050])  # the FIRST 30 s


@pytest.mark.parametrize(
    ("key", "codec", "in_rate", "channels", "out_rate"),
    [
        ("mp3", "mp3", 22050, 1, 22050),
        ("stereo_mp3", "mp3", 22050, 2, 22050),
        ("m4a", "aac", 22050, 1, 22050),
        ("mp4", "aac", 22050, 1, 22050),
        ("mov", "aac", 22050, 1, 22050),
        ("ogg", "opus", 48000, 1, 48000),
        ("wav_8k", "pcm_s16le", 8000, 1, 44100),
        ("wav_96k", "pcm_s16le", 96000, 1, 44100),
    ],
)
def test_every_kind_of_sample_becomes_a_mono_16_bit_wav(
    samples, tmp_path, key, codec, in_rate, channels, out_rate
):
    info = probe_sample(samples[key])
    assert (info.codec, info.sample_rate, info.channels, info.has_audio) == (codec, in_rate, channels, True)
    assert info.duration_s == pytest.approx(10.0, abs=0.1)
    out = prepare_voice_sample(samples[key], tmp_path / "voice.wav")
    assert out.seconds_used == pytest.approx(10.0, abs=0.1) and not out.was_cut
    got_codec, rate, got_channels, pcm = _decoded(out.path)
    assert (got_codec, rate, got_channels) == ("pcm_s16le", out_rate, 1)
    assert len(pcm) / rate == pytest.approx(out.seconds_used, abs=0.001)
    assert np.abs(pcm.astype(np.int32)).max() > 8000  # the speech is there, at about its level (-6 dBFS)


def test_a_wav_streamed_with_an_unknown_length_is_accepted(samples, tmp_path):
    """FFmpeg writing to a pipe leaves 0xFFFFFFFF as the data size: "unknown", not a lie."""
    piped = tmp_path / "piped.wav"
    with piped.open("wb") as fh:
        cmd = [ffmpeg_exe(), "-loglevel", "error", "-i", str(samples["wav"]), "-f", "wav", "pipe:1"]
        subprocess.run(cmd, stdout=fh, check=True, timeout=60)
    assert b"data\xff\xff\xff\xff" in piped.read_bytes()[:200]
    assert prepare_voice_sample(piped, tmp_path / "voice.wav").seconds_used == pytest.approx(10.0, abs=0.01)


def test_a_long_file_costs_no_more_than_its_first_30_s(tmp_path, monkeypatch):
    long = tmp_path / "ten-minutes.ogg"
    _ffmpeg(
        "-f", "lavfi", "-i", "sine=frequency=180:sample_rate=48000:duration=600", "-c:a", "libopus", str(long)
    )
    real = av.AudioResampler
    fed: list[float] = []

    class Counting:
        def __init__(self, **kwargs):
            self.inner = real(**kwargs)

        def resample(self, frame):
            if frame is not None:
                fed.append(frame.samples / frame.sample_rate)
            return self.inner.resample(frame)

    monkeypatch.setattr(audio.av, "AudioResampler", Counting)
    out = prepare_voice_sample(long, tmp_path / "voice.wav")
    assert out.seconds_found == pytest.approx(600.0, abs=0.1) and out.was_cut
    assert out.seconds_used == pytest.approx(VOICE_MAX_S, abs=0.001)
    assert VOICE_MAX_S <= sum(fed) <= VOICE_MAX_S + 0.1  # decoding stopped one frame past 30 s


async def test_the_async_wrapper_prepares_in_a_worker_thread(samples, tmp_path, monkeypatch):
    threads: list[int] = []
    real = audio.prepare_voice_sample

    def spy(*args, **kwargs):
        threads.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(audio, "prepare_voice_sample", spy)
    out = await prepare_voice_sample_async(samples["wav"], tmp_path / "voice.wav", min_s=1.0, max_s=4.0)
    assert out.seconds_used == pytest.approx(4.0, abs=0.001) and out.was_cut
    assert threads and threads[0] != threading.get_ident()
    with pytest.raises(BadSample):
        await asyncio.wait_for(prepare_voice_sample_async(tmp_path / "missing.wav", tmp_path / "x.wav"), 30)


# ------------------------------------------------------------------------------------------------- refused


def _refused(src: Path, dst: Path, reason: str) -> BadSample:
    with pytest.raises(BadSample) as err:
        prepare_voice_sample(src, dst)
    assert err.value.reason == reason, err.value.message
    assert isinstance(err.value, ValueError) and err.value.message == str(err.value)
    assert not dst.exists()
    return err.value


def test_a_2_s_sample_is_refused_naming_its_length(tmp_path):
    err = _refused(_write(tmp_path / "short.wav", speech_wav(2)), tmp_path / "voice.wav", "too_short")
    assert "2.0 s" in err.message and f"{VOICE_MIN_S:g} to {VOICE_MAX_S:g} s" in err.message
    with pytest.raises(BadSample):
        prepare_voice_sample(_write(tmp_path / "short.mp4", speech_mp4(3)), tmp_path / "voice.wav")


def test_a_text_file_named_wav_is_refused(tmp_path):
    text = _write(tmp_path / "voice.wav", b"RIFF? no: these are my notes for the voice\n" * 40)
    err = _refused(text, tmp_path / "out.wav", "unreadable")
    assert err.message == "That file is not a sound or video file I can read."


@pytest.mark.parametrize(
    "name", ["voice.wav", "voice.mp3", "voice.mp4", "voice.aac", "voice.ogg", "voice.bin"]
)
def test_random_bytes_are_refused_whatever_their_name(tmp_path, name):
    for seed in range(12):
        rng = random.Random(f"{name}-{seed}")
        junk = _write(tmp_path / name, rng.randbytes(rng.choice([700, 40_000, 300_000])))
        with pytest.raises(BadSample) as err:
            prepare_voice_sample(junk, tmp_path / "out.wav")
        assert err.value.reason in ("unreadable", "no_audio", "damaged", "too_short")
    assert not (tmp_path / "out.wav").exists()


def test_a_video_with_no_audio_track_is_refused(tmp_path):
    err = _refused(_write(tmp_path / "clip.mp4", silent_mp4(8)), tmp_path / "voice.wav", "no_audio")
    assert err.message == "That file has no sound I can read."
    with pytest.raises(BadSample):
        probe_sample(tmp_path / "clip.mp4")


def test_a_truncated_wav_or_mp4_is_refused(tmp_path):
    for name, data in [("cut.wav", speech_wav(12)), ("cut.mp4", speech_mp4(12))]:
        cut = _write(tmp_path / name, data[: len(data) // 2])
        err = _refused(cut, tmp_path / "voice.wav", "damaged")
        assert "12.0 s" in err.message  # what the file says it lasts
    header_only = _write(tmp_path / "head.wav", speech_wav(12)[:44])
    with pytest.raises(BadSample):
        prepare_voice_sample(header_only, tmp_path / "voice.wav")


def test_an_empty_file_is_refused(tmp_path):
    assert (
        _refused(_write(tmp_path / "voice.wav", b""), tmp_path / "out.wav", "empty").message
        == "That file is empty."
    )


def test_a_wav_claiming_hours_for_10_s_of_sound_is_refused(tmp_path):
    data = bytearray(speech_wav(10))
    at = data.index(b"data")
    data[at + 4 : at + 8] = struct.pack("<I", 0x7FFF_FFF0)  # 2 GiB of samples: 13.5 hours at 22050 Hz
    err = _refused(_write(tmp_path / "liar.wav", bytes(data)), tmp_path / "voice.wav", "damaged")
    assert "13 h 31 min" in err.message and "10.0 s" in err.message


def test_a_file_over_20_mib_is_refused_before_it_is_read(tmp_path):
    big = tmp_path / "big.wav"
    with big.open("wb") as fh:
        fh.truncate(MAX_SAMPLE_BYTES + 1)  # sparse: nothing to decode, only the size to see
    assert "20 MB" in _refused(big, tmp_path / "voice.wav", "too_large").message


def test_a_silent_sample_is_refused(tmp_path):
    silence = tmp_path / "silence.wav"
    _ffmpeg("-f", "lavfi", "-i", "anullsrc=r=22050:cl=mono", "-t", "10", "-c:a", "pcm_s16le", str(silence))
    assert probe_sample(silence).duration_s == pytest.approx(10.0, abs=0.01)
    _refused(silence, tmp_path / "voice.wav", "silent")


def test_a_refusal_leaves_an_earlier_sample_in_place(samples, tmp_path):
    dst = tmp_path / "voice.wav"
    first = prepare_voice_sample(samples["wav"], dst)
    with pytest.raises(BadSample):
        prepare_voice_sample(_write(tmp_path / "short.wav", speech_wav(2)), dst)
    assert hashlib.sha256(dst.read_bytes()).hexdigest() == first.sha256
    second = prepare_voice_sample(samples["mp3"], dst)  # replaced whole, atomically
    assert hashlib.sha256(dst.read_bytes()).hexdigest() == second.sha256 != first.sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.wav", "voice.wav"]


def _pcm_wav(pcm: np.ndarray, rate: int = 22050) -> bytes:
    import io
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.clip(pcm, -32768, 32767).astype("<i2").tobytes())
    return buf.getvalue()


def _speech_pcm(seconds: float) -> np.ndarray:
    data = speech_wav(seconds)
    return np.frombuffer(data[data.index(b"data") + 8 :], "<i2").astype(np.int32)


@pytest.mark.parametrize(
    "pcm",
    [np.full(220_500, 3000), np.full(220_500, -12000), np.linspace(-3000, 3000, 220_500)],
    ids=["dc-3000", "dc-minus-12000", "slow-drift"],
)
def test_a_silent_sample_with_a_dc_offset_or_a_drift_is_refused(tmp_path, pcm):
    """Found in review: a silent recording whose samples sit at 3000 (a DC offset) passed the silence check, which
    measured the raw peak, and was charged. Sound is measured around its mean, 50 ms at a time."""
    err = _refused(_write(tmp_path / "dc.wav", _pcm_wav(pcm)), tmp_path / "voice.wav", "silent")
    assert err.message == "I hear nothing in that sample; a voice needs 5 to 30 s of one person speaking."


def test_a_sample_with_no_speaking_level_sound_is_refused_as_too_quiet(tmp_path):
    """Speech at -55 dBFS, or one click in 10 s of silence: something, but not a voice anyone can hear."""
    whisper = _speech_pcm(10) // 100
    err = _refused(_write(tmp_path / "w.wav", _pcm_wav(whisper)), tmp_path / "voice.wav", "too_quiet")
    assert err.message.startswith("That sample is too quiet: less than 1 s of it is at a speaking level.")
    click = np.zeros(220_500, np.int32)
    click[100_000:100_050] = 20_000
    _refused(_write(tmp_path / "click.wav", _pcm_wav(click)), tmp_path / "voice.wav", "too_quiet")


@pytest.mark.parametrize(("scale", "offset"), [(1, 3000), (0.1, 0), (0.1, -2000)])
def test_speech_over_a_dc_offset_or_recorded_quietly_is_still_a_voice(tmp_path, scale, offset):
    pcm = (_speech_pcm(8) * scale).astype(np.int32) + offset  # 0.1: about -35 dBFS, a quiet but usable take
    prepared = prepare_voice_sample(_write(tmp_path / "s.wav", _pcm_wav(pcm)), tmp_path / "voice.wav")
    assert prepared.seconds_used == pytest.approx(8.0, abs=0.01)
