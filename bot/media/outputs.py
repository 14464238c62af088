"""Checks on what a model returned, before anyone pays for it.

A result URL can serve something that is not the promised file: an HTML error page, a body cut short, an image
where a clip was promised, an empty file. `check_video`, `check_image` and `check_audio` open the file for real
(PyAV decodes the first and the last frames of a clip; Pillow decodes an image; every audio frame is decoded)
and raise `BadOutput` with a machine-readable `reason` and a short detail that is safe to log (it never quotes
the file's content).

Size caps, one per kind (a download should be cut off at the same figure):
- video 200 MiB: fal's own cap on a video input (`x-fal` max_file_size 209715200); a 15 s 1080p Kling clip is
  20-40 MiB, so a body ten times that is not a clip;
- image 30 MiB: a 4096×4096 PNG from an image model is 10-25 MiB; beyond that it is not a picture we asked for;
- audio 50 MiB: five minutes of 16-bit 44.1 kHz stereo WAV (voice samples are 5-30 s).

The checks block (they decode); from async code use the `*_async` wrappers, which run them in a worker thread.
"""

from __future__ import annotations

import asyncio
import io
import wave
from enum import StrEnum
from pathlib import Path

import av
import filetype
from PIL import Image

from bot.media.intake import MAX_PIXELS, header_size, sniff, text_kind
from bot.media.video import VideoInfo

_MIB = 1024 * 1024
MAX_VIDEO_BYTES = 200 * _MIB
MAX_IMAGE_BYTES = 30 * _MIB
MAX_AUDIO_BYTES = 50 * _MIB
MAX_VIDEO_SIDE = 4096  # Kling's largest output is 1080p; fal's video inputs stop at 2160
MAX_VIDEO_DURATION_S = 600.0
_HEAD = 8192
_NOT_VIDEO_CONTAINERS = ("image2", "tty", "lavfi")


class Reason(StrEnum):
    """Why an output was refused."""

    EMPTY = "empty"
    TOO_LARGE = "too_large"
    ERROR_PAGE = "error_page"  # HTML, JSON, XML or plain text where a media file was expected
    WRONG_KIND = "wrong_kind"  # a real file of another kind (an image where a clip was promised...)
    TRUNCATED = "truncated"  # cut short: no index, or frames missing at the end
    UNDECODABLE = "undecodable"
    ZERO_DURATION = "zero_duration"
    ABSURD_SIZE = "absurd_size"  # frame size, pixel count or duration no model produces


class BadOutput(Exception):
    """A downloaded output that must not be delivered or charged for."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _head_and_size(path: Path, max_bytes: int) -> tuple[bytes, int]:
    try:
        size = path.stat().st_size
        if size == 0:
            raise BadOutput(Reason.EMPTY, f"{path.name} is empty")
        if size > max_bytes:
            raise BadOutput(Reason.TOO_LARGE, f"{path.name} is {size} bytes, over the {max_bytes}-byte cap")
        with path.open("rb") as fh:
            return fh.read(_HEAD), size
    except OSError as exc:
        raise BadOutput(Reason.EMPTY, f"{path.name} cannot be read ({exc.strerror})") from exc


def _refuse_other_kinds(head: bytes, name: str, expected_major: str) -> bool:
    """Raise for text or a known file of another kind; return whether the magic number matched the kind."""
    text = text_kind(head)
    if text is not None:
        raise BadOutput(Reason.ERROR_PAGE, f"{name} is {text}, not {expected_major}")
    guess = filetype.guess(head)
    if guess is None:
        return False
    if guess.mime.split("/", 1)[0] != expected_major:
        raise BadOutput(Reason.WRONG_KIND, f"{name} is {guess.mime}, not {expected_major}")
    return True


def check_video(path: Path, *, max_bytes: int = MAX_VIDEO_BYTES) -> VideoInfo:
    """Prove `path` is a playable clip: a video container with a sane size and duration whose first and last
    frames decode; raise `BadOutput` otherwise."""
    path = Path(path)
    head, size = _head_and_size(path, max_bytes)
    known_video = _refuse_other_kinds(head, path.name, "video")
    with _open_video(path, known_video) as container:
        stream = _video_stream(container, path.name)
        width, height = _frame_size(stream, path.name)
        duration_s = _duration_s(container, stream, path.name)
        frame_s = _frame_seconds(stream)
        end = _decoded_end(container, stream, path.name, frame_s)
        if end < duration_s - max(0.5, 3 * frame_s):
            raise BadOutput(
                Reason.TRUNCATED, f"{path.name} should last {duration_s:.2f} s, frames up to {end:.2f} s"
            )
    return VideoInfo(duration_s=duration_s, width=width, height=height, size_bytes=size)


def _open_video(path: Path, known_video: bool) -> av.container.InputContainer:
    """Open the file with FFmpeg; a known video that does not open is truncated, anything else the wrong kind."""
    try:
        return av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, ValueError) as exc:
        if known_video:
            raise BadOutput(Reason.TRUNCATED, f"{path.name} cannot be opened, its index is missing") from exc
        raise BadOutput(Reason.WRONG_KIND, f"{path.name} is not a video FFmpeg can open") from exc


def _video_stream(container: av.container.InputContainer, name: str) -> av.video.stream.VideoStream:
    """The first video stream of a real video container (not an image sequence, a pipe or a filter)."""
    fmt = container.format.name
    if fmt.endswith("_pipe") or fmt in _NOT_VIDEO_CONTAINERS or not container.streams.video:
        raise BadOutput(Reason.WRONG_KIND, f"{name} has no video stream ({fmt})")
    return container.streams.video[0]


def _frame_size(stream: av.video.stream.VideoStream, name: str) -> tuple[int, int]:
    """(width, height) of the stream's frames, refused when missing or larger than any model makes."""
    codec = stream.codec_context  # None when FFmpeg found no decoder parameters (a cut-off header)
    width, height = (codec.width, codec.height) if codec is not None else (0, 0)
    if not width or not height:
        raise BadOutput(Reason.UNDECODABLE, f"{name} has no frame size")
    if max(width, height) > MAX_VIDEO_SIDE:
        raise BadOutput(Reason.ABSURD_SIZE, f"{name} is {width}×{height}")
    return width, height


def _duration_s(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, name: str
) -> float:
    """The declared duration (the container's, else the stream's), refused when zero or absurdly long."""
    duration_s = (container.duration or 0) / av.time_base
    if duration_s <= 0 and stream.duration and stream.time_base:
        duration_s = float(stream.duration * stream.time_base)
    if duration_s <= 0:
        raise BadOutput(Reason.ZERO_DURATION, f"{name} has no duration")
    if duration_s > MAX_VIDEO_DURATION_S:
        raise BadOutput(Reason.ABSURD_SIZE, f"{name} lasts {duration_s:.0f} s")
    return duration_s


def _frame_seconds(stream: av.video.stream.VideoStream) -> float:
    """One frame's length in seconds (0.1 when the stream gives no rate)."""
    rate = stream.average_rate or stream.guessed_rate
    return 1 / float(rate) if rate else 0.1


def _decoded_end(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, name: str, frame_s: float
) -> float:
    """Where the frames end, in seconds, once the first frame and the last keyframe are shown to decode.

    Every packet to the end must be there (demuxed, not decoded: a truncated file stops early), and the last
    keyframe must decode. Decoding from the last keyframe to the end (often the whole clip) cost 533 ms of CPU
    for a 1080p 5 s clip; this costs two frames (bench/README.md, "Scale")."""
    try:
        first = next(container.decode(stream), None)
        if first is None:
            raise BadOutput(Reason.TRUNCATED, f"{name} has no frames")
        end, last_key = _packet_end(container, stream)
        if last_key is not None:
            container.seek(last_key, stream=stream, backward=True)
            if next(container.decode(stream), None) is None:
                raise BadOutput(Reason.TRUNCATED, f"{name}: its last keyframe does not decode")
    except av.FFmpegError as exc:
        raise BadOutput(Reason.TRUNCATED, f"{name} stops decoding ({type(exc).__name__})") from exc
    return end if end is not None else (first.time or 0.0) + frame_s


def _packet_end(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> tuple[float | None, int | None]:
    """(the latest packet end in seconds, the last keyframe's pts), demuxing to the end without decoding."""
    end: float | None = None
    last_key: int | None = None
    for packet in container.demux(stream):
        if packet.pts is None or not packet.size or packet.time_base is None:
            continue
        stop = float((packet.pts + (packet.duration or 0)) * packet.time_base)
        end = stop if end is None else max(end, stop)
        if packet.is_keyframe:
            last_key = packet.pts
    return end, last_key


def check_image(data_or_path: bytes | Path, *, max_bytes: int = MAX_IMAGE_BYTES) -> tuple[int, int, str]:
    """Prove an output is a whole PNG, JPEG, WebP or GIF image; return (width, height, Pillow format)."""
    if isinstance(data_or_path, bytes):
        name, data = "image", data_or_path
        if not data:
            raise BadOutput(Reason.EMPTY, "the image is empty")
        if len(data) > max_bytes:
            raise BadOutput(
                Reason.TOO_LARGE, f"the image is {len(data)} bytes, over the {max_bytes}-byte cap"
            )
    else:
        path = Path(data_or_path)
        name = path.name
        _head_and_size(path, max_bytes)
        data = path.read_bytes()
    fmt, kind = sniff(data)
    if fmt is None:
        if kind in ("html", "xml", "text", "svg"):
            raise BadOutput(Reason.ERROR_PAGE, f"{name} is {kind}, not an image")
        raise BadOutput(Reason.WRONG_KIND, f"{name} is {kind or 'an unknown file'}, not an image")
    declared = header_size(data)
    if declared is not None and declared[0] * declared[1] > MAX_PIXELS:
        raise BadOutput(Reason.ABSURD_SIZE, f"{name} claims {declared[0]}×{declared[1]} pixels")
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            if im.size[0] * im.size[1] > MAX_PIXELS:
                raise BadOutput(Reason.ABSURD_SIZE, f"{name} is {im.size[0]}×{im.size[1]}")
            im.load()
            return im.size[0], im.size[1], fmt
    except BadOutput:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        message = str(exc).lower()
        cut = isinstance(exc, EOFError) or "truncated" in message or "end of" in message
        reason = Reason.TRUNCATED if cut else Reason.UNDECODABLE
        raise BadOutput(reason, f"{name} does not decode as {fmt}") from exc


def check_audio(path: Path, *, max_bytes: int = MAX_AUDIO_BYTES) -> float:
    """Prove `path` is whole, decodable audio (WAV, or any format FFmpeg reads); return its duration in s."""
    path = Path(path)
    head, _size = _head_and_size(path, max_bytes)
    _refuse_other_kinds(head, path.name, "audio")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, ValueError) as exc:
        raise BadOutput(Reason.WRONG_KIND, f"{path.name} is not audio FFmpeg can open") from exc
    with container:
        if not container.streams.audio or container.streams.video:
            raise BadOutput(Reason.WRONG_KIND, f"{path.name} has no audio stream, or has video")
        stream = container.streams.audio[0]
        declared = max((container.duration or 0) / av.time_base, _wav_declared_s(path))
        samples = 0
        try:
            for frame in container.decode(stream):
                samples += frame.samples
        except av.FFmpegError as exc:
            raise BadOutput(Reason.TRUNCATED, f"{path.name} stops decoding ({type(exc).__name__})") from exc
        rate = stream.codec_context.sample_rate or stream.rate
        decoded = samples / rate if rate else 0.0
    if decoded <= 0:
        raise BadOutput(Reason.ZERO_DURATION, f"{path.name} has no sound")
    if declared > 0 and decoded < declared - 0.1:
        raise BadOutput(Reason.TRUNCATED, f"{path.name} should last {declared:.2f} s, {decoded:.2f} s decode")
    return decoded


def _wav_declared_s(path: Path) -> float:
    """The length a PCM WAV's header declares (FFmpeg trusts the file size instead), or 0."""
    try:
        with wave.open(str(path), "rb") as w:
            return w.getnframes() / w.getframerate()
    except (wave.Error, EOFError, OSError, ZeroDivisionError):
        return 0.0


async def check_video_async(path: Path, *, max_bytes: int = MAX_VIDEO_BYTES) -> VideoInfo:
    """`check_video` in a worker thread."""
    return await asyncio.to_thread(check_video, path, max_bytes=max_bytes)


async def check_image_async(
    data_or_path: bytes | Path, *, max_bytes: int = MAX_IMAGE_BYTES
) -> tuple[int, int, str]:
    """`check_image` in a worker thread."""
    return await asyncio.to_thread(check_image, data_or_path, max_bytes=max_bytes)


async def check_audio_async(path: Path, *, max_bytes: int = MAX_AUDIO_BYTES) -> float:
    """`check_audio` in a worker thread."""
    return await asyncio.to_thread(check_audio, path, max_bytes=max_bytes)
