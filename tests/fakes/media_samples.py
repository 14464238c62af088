"""Real, playable mp4 samples for tests, made with imageio-ffmpeg's bundled ffmpeg binary.

* ``small_mp4()``: 2 s, 320x240 ``testsrc`` + a 440 Hz AAC tone, about 30 KB. Cached per process.
* ``large_mp4(min_bytes)``: 1280x720 noisy ``testsrc2`` encoded at a fixed high bitrate so the file is
  bigger than ``min_bytes`` (default 11 MiB, i.e. above Discord's 10 MiB upload limit). Cached on disk
  under ``$TMPDIR/anchorshot-media-samples/`` keyed by size, and in memory per process. Building one
  takes about a second on a 2-core box.

Both are H.264 (yuv420p) + AAC in mp4 with ``+faststart`` (the ``moov`` box comes first), like Kling output
(Kling v3 generates audio by default). Pass ``with_audio=False`` for a video-only file.

* ``indexed_clip(path, ...)``: a clip whose every frame says which frame it is. Frame n is one flat colour that
  encodes n and a tag (``read_index`` decodes it from a decoded frame), so a test can check that a frame is really
  the last one, that a cut part starts on the right source frame, or which clip a frame of a joined export came
  from. Frames are made with numpy and piped raw to ffmpeg (fast at any size); options choose the size, rate,
  pixel format, encoder options (B-frames...), sound layout and length, and display rotation.
* ``storyboard_mp4(durations)``: what the fake fal returns for a ``multi_prompt`` take: one clip of the shots'
  total length whose tag (and so its colour) changes at every shot boundary. Cached per process.
"""

from __future__ import annotations

import functools
import math
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import imageio_ffmpeg
import numpy as np

__all__ = [
    "cache_dir",
    "ffmpeg_exe",
    "indexed_clip",
    "large_mp4",
    "read_index",
    "small_mp4",
    "storyboard_mp4",
]

_FFMPEG_TIMEOUT_S = 120


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped with imageio-ffmpeg (no system ffmpeg needed)."""
    return imageio_ffmpeg.get_ffmpeg_exe()


def cache_dir() -> Path:
    path = Path(tempfile.gettempdir()) / "anchorshot-media-samples"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run_ffmpeg(args: list[str]) -> None:
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args]
    proc = subprocess.run(cmd, capture_output=True, timeout=_FFMPEG_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")


def _encode(
    out: Path,
    *,
    video_src: str,
    duration: float,
    with_audio: bool,
    video_opts: list[str],
) -> None:
    args = ["-f", "lavfi", "-i", video_src]
    if with_audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={duration}"]
    args += ["-c:v", "libx264", *video_opts, "-pix_fmt", "yuv420p"]
    if with_audio:
        args += ["-c:a", "aac", "-b:a", "64k", "-shortest"]
    args += ["-t", str(duration), "-movflags", "+faststart", "-f", "mp4", str(out)]
    _run_ffmpeg(args)


@functools.cache
def small_mp4(*, with_audio: bool = True) -> bytes:
    """A 2 s 320x240 24 fps test-pattern clip (about 30 KB)."""
    with tempfile.TemporaryDirectory(prefix="anchorshot-small-mp4-") as tmp:
        out = Path(tmp) / "small.mp4"
        _encode(
            out,
            video_src="testsrc=size=320x240:rate=24:duration=2",
            duration=2,
            with_audio=with_audio,
            video_opts=["-preset", "veryfast", "-crf", "28"],
        )
        return out.read_bytes()


@functools.cache
def large_mp4(min_bytes: int = 11 * 1024 * 1024, *, with_audio: bool = True) -> bytes:
    """A playable 1280x720 24 fps clip strictly bigger than ``min_bytes``.

    Encoded at a fixed bitrate (1.3x what ``min_bytes`` needs over 4 s, noise keeps x264 from
    undershooting); if it still comes out too small the duration is doubled and it is re-encoded.
    """
    if min_bytes < 0:
        raise ValueError("min_bytes must be >= 0")
    name = f"large-{min_bytes}-{'av' if with_audio else 'v'}.mp4"
    cached = cache_dir() / name
    if cached.exists() and cached.stat().st_size > min_bytes:
        return cached.read_bytes()

    duration = 4
    kbps = max(2000, math.ceil(min_bytes * 8 * 1.3 / duration / 1000))
    for _ in range(5):
        tmp = cached.with_name(f"{name}.{os.getpid()}.tmp")
        rate = f"{kbps}k"
        try:
            _encode(
                tmp,
                video_src=f"testsrc2=size=1280x720:rate=24:duration={duration},noise=alls=60:allf=t+u",
                duration=duration,
                with_audio=with_audio,
                video_opts=_constant_bitrate(rate),
            )
            if tmp.stat().st_size > min_bytes:
                os.replace(tmp, cached)  # atomic: parallel test workers never read a half-written file
                return cached.read_bytes()
        finally:
            tmp.unlink(missing_ok=True)
        duration *= 2
    raise RuntimeError(f"could not make an mp4 bigger than {min_bytes} bytes")


def _constant_bitrate(rate: str) -> list[str]:
    """x264 options for a fast encode held at `rate` (e.g. "12000k"), so a sample lands near a chosen size."""
    return ["-preset", "ultrafast", "-b:v", rate, "-minrate", rate, "-maxrate", rate, "-bufsize", rate]


def clip_1080p(min_bytes: int = 15 * 1024 * 1024, seconds: int = 5) -> Path:
    """A noisy 1920x1080 24 fps clip with AAC sound, just over ``min_bytes``; cached on disk, returns its path.

    The re-encode benchmark's input: the size of a long, sharp Kling clip that must shrink for Discord.
    """
    cached = cache_dir() / f"1080p-{min_bytes}-{seconds}s.mp4"
    if cached.exists() and cached.stat().st_size > min_bytes:
        return cached
    kbps = math.ceil(min_bytes * 8 * 1.04 / seconds / 1000)
    for _ in range(6):
        tmp = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
        rate = f"{kbps}k"
        try:
            _encode(
                tmp,
                video_src=f"testsrc2=size=1920x1080:rate=24:duration={seconds},noise=alls=30:allf=t+u",
                duration=seconds,
                with_audio=True,
                video_opts=_constant_bitrate(rate),
            )
            size = tmp.stat().st_size
            if min_bytes < size <= min_bytes * 1.1:
                os.replace(tmp, cached)
                return cached
            kbps = math.ceil(kbps * min_bytes * 1.03 / size)
        finally:
            tmp.unlink(missing_ok=True)
    raise RuntimeError(f"could not make a 1080p clip just over {min_bytes} bytes")


# ------------------------------------------------------------------------------------ indexed clips

# Frame n of tag t is flat Y = 40 + 8·(n mod 24), U = 96 + 16·t, V = 80 + 8·(n div 24): steps well above what an
# H.264 encode at CRF <= 23 moves a flat colour, for n < 384 (16 s at 24 fps) and t < 6; chroma kept moderate so
# that neighbouring frames stay distinct in RGB too (no clipping to the same colour).
_Y0, _Y_STEP, _U0, _U_STEP, _V0, _V_STEP = 40, 8, 96, 16, 80, 8
MAX_INDEX = 24 * 16
MAX_TAG = 6
_AUDIO_LAYOUTS = {"mono": 1, "stereo": 2, "5.1": 6}


def index_colour(n: int, tag: int = 0) -> tuple[int, int, int]:
    """The (Y, U, V) of frame `n` of a clip tagged `tag`."""
    if not 0 <= n < MAX_INDEX or not 0 <= tag < MAX_TAG:
        raise ValueError(f"frame {n} / tag {tag} out of the encodable range")
    return _Y0 + _Y_STEP * (n % 24), _U0 + _U_STEP * tag, _V0 + _V_STEP * (n // 24)


def read_index(frame: object) -> tuple[int, int]:
    """(tag, frame number) of a decoded frame (an ``av.VideoFrame``) of an indexed clip, read from its centre."""
    planes = frame.to_ndarray(format="yuv444p")  # type: ignore[attr-defined]
    _, h, w = planes.shape
    box = planes[:, h // 2 - 4 : h // 2 + 4, w // 2 - 4 : w // 2 + 4].reshape(3, -1)
    y, u, v = (float(np.median(p)) for p in box)
    n = round((y - _Y0) / _Y_STEP) + 24 * round((v - _V0) / _V_STEP)
    return round((u - _U0) / _U_STEP), n


def _raw_frames(frames: int, size: tuple[int, int], tags: Sequence[int], pix_fmt: str) -> bytes:
    w, h = size
    cw, ch = ((w + 1) // 2, (h + 1) // 2) if pix_fmt == "yuv420p" else (w, h)
    out = bytearray()
    for n in range(frames):
        y, u, v = index_colour(n % MAX_INDEX, tags[n] % MAX_TAG)  # longer clips and more tags wrap around
        out += np.full(w * h, y, np.uint8).tobytes()
        out += np.full(cw * ch, u, np.uint8).tobytes()
        out += np.full(cw * ch, v, np.uint8).tobytes()
    return bytes(out)


def indexed_clip(
    path: Path,
    *,
    frames: int,
    rate: float = 24,
    size: tuple[int, int] = (320, 240),
    tag: int = 0,
    boundaries: Sequence[int] = (),
    audio: str | None = None,
    audio_seconds: float | None = None,
    sample_rate: int = 44100,
    pix_fmt: str = "yuv420p",
    video_opts: Sequence[str] = ("-preset", "ultrafast", "-crf", "12"),
    rotation: int | None = None,
) -> Path:
    """An H.264 mp4 of `frames` flat frames; frame n reads back (``read_index``) as (tag + the number of
    `boundaries` <= n, n), both modulo what the colours can say (6 tags, 384 frames). `audio` is None, "mono", "stereo" or "5.1" (a sine tone at `sample_rate`, as long as
    the video unless `audio_seconds` says otherwise). `rotation` adds display-rotation metadata (degrees
    counter-clockwise, as phones write it) without touching the frames."""
    tags = [tag + sum(1 for b in boundaries if b <= n) for n in range(frames)]
    raw = _raw_frames(frames, size, tags, pix_fmt)
    target = path if rotation is None else path.with_name(f"unrotated-{path.name}")
    args = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
        "-f", "rawvideo", "-pix_fmt", pix_fmt, "-s", f"{size[0]}x{size[1]}", "-r", f"{rate:.6g}", "-i", "pipe:0",
    ]  # fmt: skip
    if audio is not None:
        seconds = audio_seconds if audio_seconds is not None else frames / rate
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={sample_rate}:duration={seconds}"]
        args += ["-c:a", "aac", "-b:a", "96k", "-ac", str(_AUDIO_LAYOUTS[audio])]
    args += ["-c:v", "libx264", *video_opts, "-pix_fmt", pix_fmt, "-movflags", "+faststart", str(target)]
    proc = subprocess.run(args, input=raw, capture_output=True, timeout=_FFMPEG_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {proc.stderr.decode(errors='replace')[-500:]}")
    if rotation is not None:
        _run_ffmpeg(["-display_rotation:v:0", str(rotation), "-i", str(target), "-c", "copy", str(path)])
        target.unlink()
    return path


@functools.lru_cache(maxsize=32)
def storyboard_mp4(
    durations: tuple[int, ...], *, size: tuple[int, int] = (320, 240), with_audio: bool = True, rate: int = 24
) -> bytes:
    """A clip of sum(`durations`) seconds whose frames carry the shot number as their tag (shot k, 0-based, is
    tag k: its colour changes at every boundary) and the frame number; about 0.2 s to make for 15 s."""
    starts = [rate * sum(durations[:k]) for k in range(1, len(durations))]
    with tempfile.TemporaryDirectory(prefix="anchorshot-storyboard-") as tmp:
        out = Path(tmp) / "storyboard.mp4"
        indexed_clip(
            out,
            frames=rate * sum(durations),
            rate=rate,
            size=size,
            boundaries=starts,
            audio="stereo" if with_audio else None,
            sample_rate=48000,
            video_opts=("-preset", "ultrafast", "-crf", "23"),
        )
        return out.read_bytes()


# ------------------------------------------------------------------------------------------ voice samples


@functools.lru_cache(maxsize=32)
def speech_wav(seconds: float, *, sample_rate: int = 22050) -> bytes:
    """A mono 16-bit WAV of `seconds` of a voice-like sound: a fundamental gliding between 130 and 210 Hz with
    seven falling harmonics, shaped into syllables (about four a second, a short pause every fourth) and a
    little breath noise; peaks near -6 dBFS. Deterministic, cached per process."""
    import io
    import wave

    t = np.arange(round(seconds * sample_rate)) / sample_rate
    f0 = 170 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voice = sum((0.6 / k) * np.sin(k * phase) for k in range(1, 8))
    syllables = np.abs(np.sin(np.pi * 4 * t)) ** 0.6
    pauses = (np.floor(t * 4) % 4 != 3).astype(float)  # every fourth syllable is a pause between words
    breath = np.random.default_rng(17).normal(0, 0.02, t.size)
    signal = voice * syllables * pauses + breath
    peak = float(np.max(np.abs(signal))) or 1.0
    pcm = (signal / peak * 0.5 * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


@functools.lru_cache(maxsize=16)
def speech_mp4(seconds: float) -> bytes:
    """A 160x120 H.264 + AAC mp4 of `seconds` whose sound is `speech_wav(seconds)`; cached per process."""
    with tempfile.TemporaryDirectory(prefix="anchorshot-speech-mp4-") as tmp:
        wav, out = Path(tmp) / "speech.wav", Path(tmp) / "speech.mp4"
        wav.write_bytes(speech_wav(seconds))
        _run_ffmpeg(
            [
                "-f", "lavfi", "-i", f"testsrc=size=160x120:rate=24:duration={seconds}", "-i", str(wav),
                "-c:v", "libx264", "-preset", "ultrafast", "-crf", "30", "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-b:a", "64k", "-t", str(seconds), "-movflags", "+faststart", "-f", "mp4", str(out),
            ]
        )  # fmt: skip
        return out.read_bytes()


@functools.lru_cache(maxsize=16)
def silent_mp4(seconds: float) -> bytes:
    """A 160x120 H.264 mp4 of `seconds` with no audio stream at all; cached per process."""
    with tempfile.TemporaryDirectory(prefix="anchorshot-silent-mp4-") as tmp:
        out = Path(tmp) / "silent.mp4"
        _encode(
            out,
            video_src=f"testsrc=size=160x120:rate=24:duration={seconds}",
            duration=seconds,
            with_audio=False,
            video_opts=["-preset", "ultrafast", "-crf", "30"],
        )
        return out.read_bytes()
