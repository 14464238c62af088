"""Still frames of a clip, decoded locally with PyAV: the exact last frame (a scene's next shot starts on it; Kling
returns none) and the frame shown at a given time (a storyboard's picture of a take).

Frames come out as they are shown: in presentation order (a clip whose last packets are B-frames still ends on its
last shown frame, not its last decoded one), with the stream's display rotation applied (phones write it; Kling
does not), at the coded size however odd. They are encoded as PNG (lossless, fast compression: a noisy 1080p frame
is 3-6 MB, under fal's 10 MiB start-image cap).

The functions block (they decode): from async code use the `*_async` wrappers, which run them in a worker thread
(PyAV and zlib release the GIL while they work, so the event loop keeps running).
"""

from __future__ import annotations

import asyncio
import io
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
from PIL import Image

from bot.media.video import VideoError

PNG_COMPRESS_LEVEL = 1  # zlib level: 1 is 3-5x faster than the default 6 for a few % more bytes

# Display rotation in degrees counter-clockwise (the display matrix, as FFmpeg's autorotate reads it) -> transpose.
_TRANSPOSE = {
    90: Image.Transpose.ROTATE_90,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_270,
}


def last_frame(path: Path) -> bytes:
    """The clip's last shown frame as PNG bytes (display rotation applied); blocking.

    Seeks to the last keyframe and decodes from there to the end, keeping the frame with the latest time, so it
    is the frame a full decode ends on. Raises `VideoError` for a missing or unreadable file, no video stream or
    no decodable frame.
    """
    path = Path(path)
    with _video(path) as (container, stream):
        key = _last_keyframe(container, stream)
        frame = None
        if key is not None:
            container.seek(key, stream=stream, backward=True)
            frame = _latest(_frames(container, stream, path))
        if frame is None:  # no index to seek by, or nothing decoded from the last keyframe: decode it all
            container.seek(0, stream=stream, backward=True)
            frame = _latest(_frames(container, stream, path))
        if frame is None:
            raise VideoError(f"{path.name}: no frame decodes")
        return _png(frame)


def frame_at(path: Path, seconds: float) -> bytes:
    """The frame shown `seconds` after the clip's first frame, as PNG bytes (display rotation applied); blocking.

    That is the last frame whose time is at or before `seconds` (past the end: the last frame). For a take's
    storyboard picture pass half its duration. Raises `ValueError` for a negative or non-finite time and
    `VideoError` as `last_frame` does.
    """
    path = Path(path)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a frame time must be a finite number of seconds >= 0, not {seconds!r}")
    with _video(path) as (container, stream):
        tb = stream.time_base
        start = stream.start_time or 0
        target = start + math.floor((seconds + 1e-6) / tb) if tb else start  # 1 µs: float error at a frame
        first = None
        # A container without an index may land after the target: then decode from the start.
        for seek in (target, start):
            container.seek(seek, stream=stream, backward=True)
            first = shown = None
            for frame in _frames(container, stream, path):
                if first is None:
                    first = frame
                if frame.pts is not None and frame.pts > target:
                    break
                shown = frame
            if shown is not None:
                return _png(shown)
        if first is None:
            raise VideoError(f"{path.name}: no frame decodes")
        return _png(first)  # the target is before the first frame's time


async def last_frame_async(path: Path) -> bytes:
    """`last_frame` in a worker thread."""
    return await asyncio.to_thread(last_frame, Path(path))


async def frame_at_async(path: Path, seconds: float) -> bytes:
    """`frame_at` in a worker thread."""
    return await asyncio.to_thread(frame_at, Path(path), seconds)


@contextmanager
def _video(
    path: Path,
) -> Iterator[tuple[av.container.InputContainer, av.video.stream.VideoStream]]:
    """The open container and its first video stream (decoded with FFmpeg's own threads)."""
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise VideoError(f"{path.name}: not a readable video ({exc})"[:300]) from exc
    with container:
        if not container.streams.video:
            raise VideoError(f"{path.name}: has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        yield container, stream


def _last_keyframe(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> int | None:
    """The pts of the stream's last keyframe, demuxing to the end without decoding (None if none is marked)."""
    last: int | None = None
    for packet in container.demux(stream):
        if packet.is_keyframe and packet.pts is not None and packet.size:
            last = packet.pts if last is None else max(last, packet.pts)
    return last


def _frames(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, path: Path
) -> Iterator[av.VideoFrame]:
    """Decoded frames from the current position to the end, in presentation order."""
    try:
        yield from container.decode(stream)
    except av.FFmpegError as exc:
        raise VideoError(f"{path.name}: stops decoding ({type(exc).__name__})") from exc


def _latest(frames: Iterator[av.VideoFrame]) -> av.VideoFrame | None:
    """The frame with the latest time (the last one out of the decoder when times are missing)."""
    best: av.VideoFrame | None = None
    for frame in frames:
        if best is None or frame.pts is None or best.pts is None or frame.pts >= best.pts:
            best = frame
    return best


def _png(frame: av.VideoFrame) -> bytes:
    image = Image.fromarray(frame.to_ndarray(format="rgb24"))
    turn = _TRANSPOSE.get(round(frame.rotation) % 360)
    if turn is not None:
        image = image.transpose(turn)
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()
