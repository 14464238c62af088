"""Real, playable mp4 samples for tests, made with imageio-ffmpeg's bundled ffmpeg binary.

* ``small_mp4()``: 2 s, 320x240 ``testsrc`` + a 440 Hz AAC tone, about 30 KB. Cached per process.
* ``large_mp4(min_bytes)``: 1280x720 noisy ``testsrc2`` encoded at a fixed high bitrate so the file is
  bigger than ``min_bytes`` (default 11 MiB, i.e. above Discord's 10 MiB upload limit). Cached on disk
  under ``$TMPDIR/anchorshot-media-samples/`` keyed by size, and in memory per process. Building one
  takes about a second on a 2-core box.

Both are H.264 (yuv420p) + AAC in mp4 with ``+faststart`` (the ``moov`` box comes first), like Kling output
(Kling v3 generates audio by default). Pass ``with_audio=False`` for a video-only file.
"""

from __future__ import annotations

import functools
import math
import os
import subprocess
import tempfile
from pathlib import Path

import imageio_ffmpeg

__all__ = ["cache_dir", "ffmpeg_exe", "large_mp4", "small_mp4"]

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
