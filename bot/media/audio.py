"""Voice samples for Kling's create-voice: check what a member sent, keep a clean WAV of its first seconds.

fal's `voice_url` takes an mp3, wav, mp4 or mov of 5-30 s with one clean speaker. A member may send anything
with any name: only FFmpeg (PyAV) says what a file is, never its name or content type.

`probe_sample` opens the file and finds its first audio stream, then measures how much sound the file really
holds: it demuxes the audio packets to their end (reading, not decoding; bounded by `MAX_SAMPLE_BYTES`) and only
decodes to count samples when the packets carry no timing. A file that promises more sound than it holds is
refused as damaged: a cut-off upload, or a header that claims hours for seconds of sound (for a WAV the promise
is its header's data size, which FFmpeg ignores in favour of the file size; `0` and `0xFFFFFFFF`, which streaming
writers leave there, mean "unknown"). Raw MP3 and AAC are not held to their promise: FFmpeg may have estimated
it from the first frame's bitrate.

`prepare_voice_sample` decodes the first `max_s` seconds (and a frame beyond, to know whether there was more:
never the rest of the file) into mono 16-bit PCM at the file's own rate when it is 16-48 kHz, else 44.1 kHz,
and writes it as a WAV atomically. Both raise `BadSample`, whose `message` can be shown to the member as is.
They block (they read and decode); from async code use the `*_async` wrappers, which run them in a thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import tempfile
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from bot.media.intake import mb_figure

VOICE_MIN_S = 5.0
VOICE_MAX_S = 30.0
MAX_SAMPLE_BYTES = 20 * 1024 * 1024
OUT_RATE_RANGE_HZ = (16_000, 48_000)  # kept as it is; any other rate is resampled to OUT_DEFAULT_RATE_HZ
OUT_DEFAULT_RATE_HZ = 44_100
IN_RATE_RANGE_HZ = (8_000, 192_000)  # a sample rate outside it is not a recording of a voice
PROMISE_SLACK_S = 0.5  # a file may hold this much less sound than it declares (encoder padding, edit lists)
# Sound is measured around its own mean, 50 ms at a time: a DC offset (a constant sample value, which a cheap
# recorder can leave on a silent file) or a slow drift is no sound. A sample needs VOICED_MIN_S of windows at
# VOICE_RMS or more: speech at any usable recording level is far above it (-20 to -35 dBFS), room hiss is below.
SILENCE_PEAK = 100  # of 32767 (about -50 dBFS): a loudest point (around the mean) under it is silence
VOICE_RMS = 150  # of 32767 (about -47 dBFS): the RMS of a 50 ms window that holds sound at a speaking level
VOICE_WINDOW_S = 0.05
VOICED_MIN_S = 1.0
_ESTIMATED_FORMATS = frozenset({"mp3", "aac"})  # raw streams whose declared length FFmpeg may estimate
_WAV_SIZE_UNKNOWN = 0xFFFF_F000  # a WAV data size at or above this is a streaming placeholder


class BadSample(ValueError):
    """A file that cannot serve as a voice sample; `message` is one plain sentence for the member."""

    def __init__(self, message: str, reason: str = "unusable") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason  # a short word for logs and tests: empty, too_large, unreadable, no_audio, ...


@dataclass(frozen=True)
class SampleInfo:
    duration_s: float
    has_audio: bool
    codec: str
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class PreparedSample:
    path: Path
    seconds_found: float
    seconds_used: float
    was_cut: bool
    sha256: str
    size_bytes: int


def _length(seconds: float) -> str:
    """A length as a member reads it: "2.0 s", "4 min 10 s", "13 h 31 min" (rounded down, never up)."""
    if seconds < 90:
        return f"{int(seconds * 10) / 10:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


def _wanted(min_s: float, max_s: float) -> str:
    return f"a voice needs {min_s:g} to {max_s:g} s of one person speaking."


def probe_sample(path: str | os.PathLike[str]) -> SampleInfo:
    """Say how much sound `path` holds and in what form; raise `BadSample` if it is no usable audio."""
    path = Path(path)
    _check_size(path)
    with _open(path) as container:
        stream = _audio_stream(container)
        ctx = stream.codec_context
        held = _held_s(container, stream)
        if held is None:
            held = _counted_s(path)
        _check_promise(_promised_s(container, stream, path), held, container.format.name)
    return SampleInfo(
        duration_s=held,
        has_audio=True,
        codec=ctx.codec.canonical_name,
        sample_rate=ctx.sample_rate,
        channels=ctx.channels,
    )


def _check_size(path: Path) -> int:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise BadSample("I could not read that file.", "unreadable") from exc
    if size == 0:
        raise BadSample("That file is empty.", "empty")
    if size > MAX_SAMPLE_BYTES:
        raise BadSample(too_large_text(size), "too_large")
    return size


def too_large_text(size: int | None, max_bytes: int = MAX_SAMPLE_BYTES) -> str:
    """What a member reads of a voice sample over `max_bytes`: `size` bytes (rounded up, so it never reads as the
    limit), or None when all that is known is that it is over (a download stopped at the cap)."""
    what = f"{mb_figure(size)} MB" if size is not None else f"over {mb_figure(max_bytes)} MB"
    return f"That file is {what}; a voice sample may be {mb_figure(max_bytes)} MB at most."


@contextmanager
def _open(path: Path) -> Iterator[av.container.InputContainer]:
    """The file opened by FFmpeg, whatever its name says; `BadSample` when FFmpeg cannot read it."""
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise BadSample("That file is not a sound or video file I can read.", "unreadable") from exc
    with container:
        yield container


def _audio_stream(container: av.container.InputContainer) -> av.audio.stream.AudioStream:
    """The first audio stream, with a decoder and a sane rate and channel count."""
    if not container.streams.audio:
        raise BadSample("That file has no sound I can read.", "no_audio")
    stream = container.streams.audio[0]
    ctx = stream.codec_context  # None when FFmpeg found no decoder parameters (a header cut short)
    if ctx is None or not ctx.channels or not ctx.sample_rate:
        raise BadSample("That file has no sound I can read.", "no_audio")
    low, high = IN_RATE_RANGE_HZ
    if not low <= ctx.sample_rate <= high:
        raise BadSample(
            f"That file's sound is recorded at {ctx.sample_rate} Hz, which I cannot use as a voice.",
            "bad_rate",
        )
    return stream


def _held_s(container: av.container.InputContainer, stream: av.audio.stream.AudioStream) -> float | None:
    """Seconds from the first audio packet to the end of the last (None when no packet is timed)."""
    start: float | None = None
    end: float | None = None
    try:
        for packet in container.demux(stream):
            if packet.pts is None or not packet.size or packet.time_base is None:
                continue
            begin = float(packet.pts * packet.time_base)
            stop = float((packet.pts + (packet.duration or 0)) * packet.time_base)
            start = begin if start is None else min(start, begin)
            end = stop if end is None else max(end, stop)
    except av.FFmpegError as exc:
        raise BadSample("That file is damaged: I cannot read its sound to the end.", "damaged") from exc
    if start is None or end is None:
        return None
    return max(0.0, end - max(start, 0.0))


def _counted_s(path: Path) -> float:
    """Seconds of sound by decoding every frame (bounded by the file's size cap); for untimed packets."""
    samples = 0
    with _open(path) as container:
        stream = _audio_stream(container)
        try:
            for frame in container.decode(stream):
                samples += frame.samples
        except av.FFmpegError as exc:
            raise BadSample("That file is damaged: its sound stops decoding.", "damaged") from exc
        return samples / stream.codec_context.sample_rate


def _promised_s(
    container: av.container.InputContainer, stream: av.audio.stream.AudioStream, path: Path
) -> float | None:
    """The length the file declares for its sound, or None when it declares none."""
    if container.format.name == "wav":
        try:
            with wave.open(str(path), "rb") as w:
                frames, width, rate = w.getnframes(), w.getsampwidth() * w.getnchannels(), w.getframerate()
        except (wave.Error, EOFError, OSError):
            return None
        if frames == 0 or frames * width >= _WAV_SIZE_UNKNOWN or not rate:
            return None
        return frames / rate
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return container.duration / av.time_base if container.duration else None


def _check_promise(promised: float | None, held: float, fmt: str) -> None:
    """Refuse a file that declares more sound than it holds (cut short, or a header that lies)."""
    if promised is None or fmt in _ESTIMATED_FORMATS or promised <= held + PROMISE_SLACK_S:
        return
    raise BadSample(
        f"That file looks damaged: it says it lasts {_length(promised)} but holds only {_length(held)} "
        "of sound. Please send it again.",
        "damaged",
    )


def prepare_voice_sample(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    min_s: float = VOICE_MIN_S,
    max_s: float = VOICE_MAX_S,
) -> PreparedSample:
    """Write the first `max_s` seconds of `src`'s sound to `dst` as a mono 16-bit WAV; refuse an unusable file."""
    src, dst = Path(src), Path(dst)
    info = probe_sample(src)
    if info.duration_s < min_s:
        raise BadSample(
            f"That sample is {_length(info.duration_s)} long; {_wanted(min_s, max_s)}", "too_short"
        )
    low, high = OUT_RATE_RANGE_HZ
    rate = info.sample_rate if low <= info.sample_rate <= high else OUT_DEFAULT_RATE_HZ
    with _open(src) as container:
        pcm, more = _decode_mono(container, _audio_stream(container), rate, max_s)
    used = len(pcm) / rate
    if used < min(info.duration_s, max_s) - PROMISE_SLACK_S:
        raise BadSample(
            f"That file looks damaged: only {_length(used)} of its {_length(info.duration_s)} of sound decode.",
            "damaged",
        )
    if used < min_s:
        raise BadSample(f"That sample is {_length(used)} long; {_wanted(min_s, max_s)}", "too_short")
    _check_heard(pcm, rate, min_s, max_s)
    sha256, size = _write_wav(dst, pcm, rate)
    return PreparedSample(dst, info.duration_s, used, more, sha256, size)


def _sound_windows(pcm: npt.NDArray[np.int16], rate: int) -> npt.NDArray[np.float32]:
    """`pcm` cut into VOICE_WINDOW_S windows (one a row), each around its own mean: a DC offset or a drift slower
    than a window is no sound."""
    n = max(1, round(rate * VOICE_WINDOW_S))
    whole = len(pcm) // n * n
    windows: npt.NDArray[np.float32] = pcm[:whole].astype(np.float32).reshape(-1, n)
    windows -= windows.mean(axis=1, keepdims=True)
    return windows


def _check_heard(pcm: npt.NDArray[np.int16], rate: int, min_s: float, max_s: float) -> None:
    """Refuse a sample with no sound, or with less than VOICED_MIN_S of it at a speaking level (windows whose RMS
    reaches VOICE_RMS): something is there, but no voice anyone could hear."""
    windows = _sound_windows(pcm, rate)
    if not windows.size or float(np.abs(windows).max()) < SILENCE_PEAK:
        raise BadSample(f"I hear nothing in that sample; {_wanted(min_s, max_s)}", "silent")
    rms = np.sqrt(np.mean(np.square(windows), axis=1))
    if int(np.count_nonzero(rms >= VOICE_RMS)) * windows.shape[1] / rate < VOICED_MIN_S:
        raise BadSample(
            f"That sample is too quiet: less than {VOICED_MIN_S:g} s of it is at a speaking level. Record closer "
            f"to the microphone; {_wanted(min_s, max_s)}",
            "too_quiet",
        )


def _decode_mono(
    container: av.container.InputContainer, stream: av.audio.stream.AudioStream, rate: int, max_s: float
) -> tuple[npt.NDArray[np.int16], bool]:
    """The first `max_s` seconds as mono s16 samples at `rate`, and whether the sound went on beyond them.

    Decoding stops one frame past `max_s`: a long file costs no more than a 30 s one."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    limit = round(max_s * rate)
    chunks: list[npt.NDArray[np.int16]] = []
    got = 0
    try:
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1).astype(np.int16, copy=False))
                got += out.samples
            if got > limit:
                break
        else:
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1).astype(np.int16, copy=False))
                got += out.samples
    except (av.FFmpegError, ValueError) as exc:
        raise BadSample("That file is damaged: its sound stops decoding.", "damaged") from exc
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    return pcm[:limit], got > limit


def _write_wav(dst: Path, pcm: npt.NDArray[np.int16], rate: int) -> tuple[str, int]:
    """Write a mono s16le WAV to `dst` atomically (a temporary file beside it, then a rename); (sha256, size)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    data = buf.getvalue()
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return hashlib.sha256(data).hexdigest(), len(data)


async def probe_sample_async(path: str | os.PathLike[str]) -> SampleInfo:
    """`probe_sample` in a worker thread."""
    return await asyncio.to_thread(probe_sample, path)


async def prepare_voice_sample_async(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    min_s: float = VOICE_MIN_S,
    max_s: float = VOICE_MAX_S,
) -> PreparedSample:
    """`prepare_voice_sample` in a worker thread: the event loop never waits on a decode."""
    return await asyncio.to_thread(prepare_voice_sample, src, dst, min_s=min_s, max_s=max_s)
