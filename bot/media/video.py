"""Video helpers built on the ffmpeg binary shipped with imageio-ffmpeg.

Everything runs ffmpeg as a subprocess (argument list, never a shell) and works on files: no video is
ever read into Python memory. Outputs are written to a temporary name beside the destination and moved
into place with `os.replace`, so readers never see a half-written file.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from PIL import Image


class VideoError(Exception):
    """ffmpeg failed, or a file is not a usable video. The message is short and safe to log."""


class VideoTooLarge(VideoError):
    """The video cannot be made to fit the requested size."""


@dataclass(frozen=True)
class VideoInfo:
    duration_s: float
    width: int
    height: int
    size_bytes: int


@dataclass(frozen=True)
class _Probe:
    info: VideoInfo
    fps: float | None
    has_audio: bool


DEFAULT_TIMEOUT_S = 300.0
AUDIO_BITRATE = 96_000
CONTAINER_HEADROOM = 0.08  # share of the budget kept for the mp4 container (and encoder overshoot)
MIN_VIDEO_BITRATE = 64_000  # below this there is nothing watchable left
MIN_BITS_PER_PIXEL = 0.05  # H.264 below ~0.05 bit per pixel per frame turns to mush: scale down first
FIT_SIDES = (1280, 854)  # long sides tried, in order, when the bitrate per pixel is too low
RETRY_FACTOR = 0.85  # extra cut on top of the measured overshoot for the one retry


@functools.cache
def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _tail(stderr: bytes, limit: int = 300) -> str:
    text = stderr.decode("utf-8", "replace").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    last = " | ".join(lines[-3:])
    return last[-limit:]


async def _run(args: list[str], *, timeout: float = DEFAULT_TIMEOUT_S) -> tuple[int, bytes]:
    """Run ffmpeg with `args`; return (exit code, stderr). Kills ffmpeg on timeout or cancellation."""
    try:
        proc = await asyncio.create_subprocess_exec(
            ffmpeg_exe(),
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise VideoError(f"could not start ffmpeg: {exc}") from exc
    try:
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError as exc:
        raise VideoError(f"ffmpeg took longer than {timeout:.0f} s") from exc
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.shield(proc.wait())
    return proc.returncode or 0, stderr


def _temp_beside(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _cleanup(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


_DURATION_RE = re.compile(r"Duration:\s*(\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
_VIDEO_RE = re.compile(r"Stream #\d+:\d+[^\n]*?: Video: [^\n]*")
_SIZE_RE = re.compile(r"[\s,](\d{1,5})x(\d{1,5})(?=[\s,\[]|$)")
_FPS_RE = re.compile(r"([\d.]+)\s*fps")
_AUDIO_RE = re.compile(r"Stream #\d+:\d+[^\n]*?: Audio: ")
_ROTATION_RE = re.compile(r"rotation of (-?[\d.]+) degrees")
_INPUT_RE = re.compile(r"Input #0, ([\w,]+), from")


async def _probe(path: Path) -> _Probe:
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise VideoError(f"{path.name}: cannot read file ({exc.strerror})") from exc
    _, stderr = await _run(["-hide_banner", "-nostdin", "-i", str(path)], timeout=60)
    text = stderr.decode("utf-8", "replace")
    container = _INPUT_RE.search(text)
    if container is None:
        raise VideoError(f"{path.name}: not a readable video ({_tail(stderr, 160)})")
    if container.group(1).endswith("_pipe") or container.group(1) in ("image2", "tty"):
        raise VideoError(f"{path.name}: is a still image or text, not a video ({container.group(1)})")
    stream = _VIDEO_RE.search(text)
    if stream is None:
        raise VideoError(f"{path.name}: has no video stream")
    dims = _SIZE_RE.search(stream.group(0))
    if dims is None:
        raise VideoError(f"{path.name}: video stream has no frame size")
    width, height = int(dims.group(1)), int(dims.group(2))
    rotation = _ROTATION_RE.search(text)
    if rotation and round(abs(float(rotation.group(1)))) % 180 == 90:
        width, height = height, width
    duration = _DURATION_RE.search(text)
    if duration is None:
        raise VideoError(f"{path.name}: duration unknown")
    hours, minutes, seconds = duration.groups()
    duration_s = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    fps_match = _FPS_RE.search(stream.group(0))
    fps = float(fps_match.group(1)) if fps_match else None
    return _Probe(
        info=VideoInfo(duration_s=duration_s, width=width, height=height, size_bytes=size),
        fps=fps,
        has_audio=_AUDIO_RE.search(text) is not None,
    )


async def probe(path: Path) -> VideoInfo:
    """Duration, frame size (display orientation) and file size, parsed from `ffmpeg -i` output."""
    return (await _probe(path)).info


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


def _fit_dims(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(width, height))
    return _even(width * scale), _even(height * scale)


async def make_dry_run_clip(
    image_path: Path, out_path: Path, *, duration_s: int, fps: int = 24, max_side: int = 640
) -> None:
    """A real H.264 mp4 with a slow zoom over the still image, for dry runs without calling Kling."""
    image_path, out_path = Path(image_path), Path(out_path)
    if duration_s <= 0 or fps <= 0:
        raise VideoError("duration and fps must be positive")
    try:
        with Image.open(image_path) as im:
            src_w, src_h = im.size
    except (OSError, ValueError) as exc:
        raise VideoError(f"{image_path.name}: not a readable image") from exc
    out_w, out_h = _fit_dims(src_w, src_h, max_side)
    frames = int(duration_s * fps)
    # Upscale once (the input is a single frame) so zoompan's whole-pixel crop steps are 1/4 px in the output;
    # then zoom from 1.0 to 1.08 around the centre over the clip.
    zoom_end = 0.08
    vf = (
        f"scale={out_w * 4}:{out_h * 4}:flags=bicubic,"
        f"zoompan=z='1+{zoom_end}*on/{max(1, frames - 1)}'"
        f":x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':d={frames}:s={out_w}x{out_h}:fps={fps},"
        "setsar=1,format=yuv420p"
    )
    tmp = _temp_beside(out_path)
    args = [
        "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y",
        "-i", str(image_path),
        "-vf", vf,
        "-frames:v", str(frames), "-r", str(fps),
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
        "-movflags", "+faststart", "-an", "-f", "mp4", str(tmp),
    ]  # fmt: skip
    try:
        code, stderr = await _run(args)
        if code != 0 or _size_or_zero(tmp) == 0:
            raise VideoError(f"ffmpeg could not make the dry-run clip: {_tail(stderr)}")
        os.replace(tmp, out_path)
    finally:
        _cleanup(tmp)


def _plan_size(width: int, height: int, video_bps: float, fps: float) -> tuple[int, int]:
    """Frame size for the bitrate: the source size, or 1280 then 854 long side if bits per pixel run short."""
    w, h = _even(width), _even(height)
    if video_bps / (w * h * fps) >= MIN_BITS_PER_PIXEL:
        return w, h
    for side in FIT_SIDES:
        if max(width, height) <= side:
            continue
        w, h = _fit_dims(width, height, side)
        if video_bps / (w * h * fps) >= MIN_BITS_PER_PIXEL:
            return w, h
    return w, h


async def _encode(src: Path, out: Path, *, size: tuple[int, int], video_bps: int, has_audio: bool) -> None:
    kbps = max(1, video_bps // 1000)
    args = [
        "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y",
        "-i", str(src),
        "-map", "0:v:0",
        "-vf", f"scale={size[0]}:{size[1]}:flags=bicubic,setsar=1,format=yuv420p",
        "-c:v", "libx264", "-preset", "veryfast",
        "-b:v", f"{kbps}k", "-maxrate", f"{kbps}k", "-bufsize", f"{kbps * 2}k",
        "-pix_fmt", "yuv420p",
    ]  # fmt: skip
    if has_audio:
        args += ["-map", "0:a:0", "-c:a", "aac", "-b:a", str(AUDIO_BITRATE), "-ac", "2"]
    else:
        args += ["-an"]
    args += ["-sn", "-dn", "-map_metadata", "-1", "-movflags", "+faststart", "-f", "mp4", str(out)]
    code, stderr = await _run(args)
    if code != 0 or _size_or_zero(out) == 0:
        raise VideoError(f"ffmpeg could not re-encode the video: {_tail(stderr)}")


async def fit_to_size(src: Path, dst: Path, *, max_bytes: int) -> VideoInfo:
    """Re-encode `src` into `dst` so that it is at most `max_bytes`; returns the probe of `dst`.

    A source already small enough is copied as is. Raises `VideoTooLarge` when the size can't be reached
    with a watchable bitrate, `VideoError` when ffmpeg fails.
    """
    src, dst = Path(src), Path(dst)
    meta = await _probe(src)
    info = meta.info
    tmp = _temp_beside(dst)
    try:
        if info.size_bytes <= max_bytes:
            await asyncio.to_thread(shutil.copyfile, src, tmp)
            os.replace(tmp, dst)
            return await probe(dst)
        if info.duration_s <= 0:
            raise VideoError(f"{src.name}: duration unknown, cannot compute a bitrate")
        budget_bits = max_bytes * 8 * (1 - CONTAINER_HEADROOM)
        audio_bps = AUDIO_BITRATE if meta.has_audio else 0
        video_bps = budget_bits / info.duration_s - audio_bps
        if video_bps < MIN_VIDEO_BITRATE:
            raise VideoTooLarge(
                f"{info.duration_s:.1f} s of video can't fit in {max_bytes} bytes "
                f"({max(0, video_bps) / 1000:.0f} kbit/s left for the picture)"
            )
        fps = meta.fps or 24.0
        size = _plan_size(info.width, info.height, video_bps, fps)
        await _encode(src, tmp, size=size, video_bps=int(video_bps), has_audio=meta.has_audio)
        produced = _size_or_zero(tmp)
        if produced > max_bytes:
            # One retry, cut by the measured overshoot plus a margin.
            video_bps = (video_bps + audio_bps) * (max_bytes / produced) * RETRY_FACTOR - audio_bps
            if video_bps < MIN_VIDEO_BITRATE:
                raise VideoTooLarge(f"re-encoded video is {produced} bytes, over {max_bytes}")
            size = _plan_size(info.width, info.height, video_bps, fps)
            await _encode(src, tmp, size=size, video_bps=int(video_bps), has_audio=meta.has_audio)
            produced = _size_or_zero(tmp)
            if produced > max_bytes:
                raise VideoTooLarge(f"re-encoded video is still {produced} bytes, over {max_bytes}")
        os.replace(tmp, dst)
    finally:
        _cleanup(tmp)
    return await probe(dst)
