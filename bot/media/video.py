"""Video helpers: probing with PyAV, encoding with the ffmpeg binary shipped with imageio-ffmpeg.

Probing opens the file with PyAV (FFmpeg's libraries) in a worker thread; encoding runs ffmpeg as a subprocess
(argument list, never a shell). Both work on files: no video is ever read into Python memory. Outputs are
written to a temporary name beside the destination and moved into place with `os.replace`, so readers never
see a half-written file. Every public function is async and leaves the event loop free.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import secrets
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
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
class VideoProbe:
    """Everything `probe_details` reads from a video's headers."""

    info: VideoInfo
    fps: float | None
    video_codec: str
    audio_codec: str | None
    container: str

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None


DEFAULT_TIMEOUT_S = 300.0
AUDIO_BITRATE = 96_000
CONTAINER_HEADROOM = 0.02  # share of the budget kept for the mp4 container's tables
CONTAINER_FIXED_BYTES = 32 * 1024  # ...plus its fixed headers
AUDIO_OVERSHOOT = 1.05  # AAC's bitrate is an average: allow 5 % over
VBV_BUFFER_S = 0.5  # x264's VBV buffer, in seconds of the peak rate (see _one_pass_rates)
FIT_PRESET = (
    "superfast"  # about twice as fast as veryfast on 1080p; the bitrate cap, not the preset, sets the size
)
MIN_VIDEO_BITRATE = 64_000  # below this there is nothing watchable left
MIN_BITS_PER_PIXEL = 0.05  # H.264 below ~0.05 bit per pixel per frame turns to mush: scale down first
FIT_SIDES = (1280, 854)  # long sides tried, in order, when the bitrate per pixel is too low
RETRY_FACTOR = 0.85  # extra cut on top of the measured overshoot for the one retry
EXPORT_PRESET = "veryfast"  # x264 preset when `concat` must re-encode
EXPORT_NICE = 10  # `concat`'s ffmpeg yields the CPU to the bot (bench/README.md, "Scene export")
EXPORT_TIMEOUT_FACTOR = (
    10.0  # `concat` may take this many seconds per second of result (at least DEFAULT_TIMEOUT_S)
)


@functools.cache
def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _tail(stderr: bytes, limit: int = 300) -> str:
    text = stderr.decode("utf-8", "replace").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    last = " | ".join(lines[-3:])
    return last[-limit:]


async def _run(args: list[str], *, timeout: float = DEFAULT_TIMEOUT_S, nice: int = 0) -> tuple[int, bytes]:
    """Run ffmpeg with `args`; return (exit code, stderr). Kills ffmpeg on timeout or cancellation.

    `nice` > 0 lowers ffmpeg's priority as soon as it is started, before it reads its inputs, so the encoder
    threads it starts later inherit it (Linux: a new thread takes its creator's nice value)."""
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
    if nice > 0:
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, proc.pid, nice)
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


_NOT_VIDEO_CONTAINERS = ("image2", "tty", "lavfi")


def probe_file(path: Path) -> VideoProbe:
    """Read a video's duration, frame size (display orientation), frame rate and codecs with PyAV; blocking.

    Raises `VideoError` for a missing file, a file FFmpeg can't open, a still image or text, no video stream,
    or an unknown duration. Only headers are read: `bot.media.outputs.check_video` also decodes frames.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise VideoError(f"{path.name}: cannot read file ({exc.strerror})") from exc
    with _open_video(path) as container:
        return _probe_container(container, path, size)


def _open_video(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise VideoError(f"{path.name}: not a readable video ({exc})"[:300]) from exc


def _probe_container(container: av.container.InputContainer, path: Path, size: int) -> VideoProbe:
    """`probe_file`'s reading of an open container (headers only)."""
    fmt = container.format.name
    if fmt.endswith("_pipe") or fmt in _NOT_VIDEO_CONTAINERS:
        raise VideoError(f"{path.name}: is a still image or text, not a video ({fmt})")
    if not container.streams.video:
        raise VideoError(f"{path.name}: has no video stream")
    stream = container.streams.video[0]
    width, height = stream.codec_context.width, stream.codec_context.height
    if not width or not height:
        raise VideoError(f"{path.name}: video stream has no frame size")
    rotation = _rotation(stream)
    if round(abs(rotation)) % 180 == 90:
        width, height = height, width
    if container.duration is not None and container.duration > 0:
        duration_s = container.duration / av.time_base
    elif stream.duration is not None and stream.time_base is not None:
        duration_s = float(stream.duration * stream.time_base)
    else:
        raise VideoError(f"{path.name}: duration unknown")
    rate = stream.average_rate or stream.guessed_rate
    audio = container.streams.audio[0] if container.streams.audio else None
    return VideoProbe(
        info=VideoInfo(duration_s=duration_s, width=width, height=height, size_bytes=size),
        fps=float(rate) if rate else None,
        video_codec=stream.codec_context.name,
        audio_codec=audio.codec_context.name if audio is not None else None,
        container=fmt,
    )


def _rotation(stream: av.video.stream.VideoStream) -> float:
    """Display rotation in degrees from the stream's metadata (phones write it; Kling does not)."""
    try:
        return float(stream.metadata.get("rotate", 0) or 0)
    except ValueError:
        return 0.0


async def probe_details(path: Path) -> VideoProbe:
    """`probe_file` in a worker thread."""
    return await asyncio.to_thread(probe_file, Path(path))


async def probe(path: Path) -> VideoInfo:
    """Duration, frame size (display orientation) and file size, read with PyAV in a worker thread."""
    return (await probe_details(path)).info


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


def _one_pass_rates(max_bytes: int, duration_s: float, audio_bps: int) -> tuple[float, float]:
    """(video bit/s cap, budget bits for the picture) so that one encode is guaranteed to fit.

    With `-maxrate M -bufsize M*VBV_BUFFER_S`, x264's VBV bounds the picture's bits by M*duration plus one
    buffer: so M = picture budget / (duration + VBV_BUFFER_S). The old `-bufsize` of two seconds at the mean
    rate let a 5 s clip overshoot by up to 40 %, so the first encode never fitted.
    """
    budget_bits = max_bytes * 8 * (1 - CONTAINER_HEADROOM) - CONTAINER_FIXED_BYTES * 8
    video_bits = budget_bits - audio_bps * duration_s * AUDIO_OVERSHOOT
    return video_bits / (duration_s + VBV_BUFFER_S), video_bits


async def _encode(
    src: Path,
    out: Path,
    *,
    size: tuple[int, int],
    source_size: tuple[int, int],
    video_bps: int,
    has_audio: bool,
) -> None:
    kbps = max(1, video_bps // 1000)
    buffer_kbits = max(1, int(kbps * VBV_BUFFER_S))
    scale = "" if size == source_size else f"scale={size[0]}:{size[1]}:flags=bicubic,"
    args = [
        "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y",
        "-i", str(src),
        "-map", "0:v:0",
        "-vf", f"{scale}setsar=1,format=yuv420p",
        "-c:v", "libx264", "-preset", FIT_PRESET,
        "-b:v", f"{kbps}k", "-maxrate", f"{kbps}k", "-bufsize", f"{buffer_kbits}k",
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


@dataclass(frozen=True)
class FitReport:
    """What `fit_video` did: the result's probe and how many encodes it took (0: copied as is)."""

    info: VideoInfo
    passes: int


async def fit_to_size(src: Path, dst: Path, *, max_bytes: int) -> VideoInfo:
    """Re-encode `src` into `dst` so that it is at most `max_bytes`; returns the probe of `dst`.

    A source already small enough is copied as is. Raises `VideoTooLarge` when the size can't be reached
    with a watchable bitrate, `VideoError` when ffmpeg fails.
    """
    return (await fit_video(src, dst, max_bytes=max_bytes)).info


async def fit_video(src: Path, dst: Path, *, max_bytes: int) -> FitReport:
    """`fit_to_size`, also saying how many encodes it took: one, unless x264 overshoots its VBV bound
    (then a second pass, cut by the measured overshoot)."""
    src, dst = Path(src), Path(dst)
    meta = await probe_details(src)
    info = meta.info
    tmp = _temp_beside(dst)
    passes = 0
    try:
        if info.size_bytes <= max_bytes:
            await asyncio.to_thread(shutil.copyfile, src, tmp)
            os.replace(tmp, dst)
            return FitReport(await probe(dst), 0)
        if info.duration_s <= 0:
            raise VideoError(f"{src.name}: duration unknown, cannot compute a bitrate")
        audio_bps = AUDIO_BITRATE if meta.has_audio else 0
        video_bps, _ = _one_pass_rates(max_bytes, info.duration_s, audio_bps)
        if video_bps < MIN_VIDEO_BITRATE:
            raise VideoTooLarge(
                f"{info.duration_s:.1f} s of video can't fit in {max_bytes} bytes "
                f"({max(0, video_bps) / 1000:.0f} kbit/s left for the picture)"
            )
        fps = meta.fps or 24.0
        source_size = (info.width, info.height)
        size = _plan_size(info.width, info.height, video_bps, fps)
        await _encode(
            src, tmp, size=size, source_size=source_size, video_bps=int(video_bps), has_audio=meta.has_audio
        )
        passes = 1
        produced = _size_or_zero(tmp)
        if produced > max_bytes:
            # Rare: cut by the measured overshoot plus a margin and encode once more.
            video_bps = (video_bps + audio_bps) * (max_bytes / produced) * RETRY_FACTOR - audio_bps
            if video_bps < MIN_VIDEO_BITRATE:
                raise VideoTooLarge(f"re-encoded video is {produced} bytes, over {max_bytes}")
            size = _plan_size(info.width, info.height, video_bps, fps)
            await _encode(
                src,
                tmp,
                size=size,
                source_size=source_size,
                video_bps=int(video_bps),
                has_audio=meta.has_audio,
            )
            passes = 2
            produced = _size_or_zero(tmp)
            if produced > max_bytes:
                raise VideoTooLarge(f"re-encoded video is still {produced} bytes, over {max_bytes}")
        os.replace(tmp, dst)
    finally:
        _cleanup(tmp)
    return FitReport(await probe(dst), passes)


@dataclass(frozen=True)
class ClipTiming:
    """A clip's picture, read from its packets: its length in seconds, its average frame rate, the frames that
    makes (the number of frames of a constant-rate clip), and whether the file has sound."""

    seconds: Fraction
    rate: Fraction
    frames: int
    has_audio: bool


def clip_timing(path: Path) -> ClipTiming:
    """The video stream's own length (first packet to the end of the last, whatever the sound's length) and rate,
    demuxing every packet without decoding; blocking. Raises `VideoError` for no video, no frame or no rate."""
    path = Path(path)
    with _open_video(path) as container:
        return _timing_of(container, path)


def _timing_of(container: av.container.InputContainer, path: Path) -> ClipTiming:
    """`clip_timing` on an open container (demuxes the video stream from where it stands to the end)."""
    if not container.streams.video:
        raise VideoError(f"{path.name}: has no video stream")
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate
    if not rate:
        raise VideoError(f"{path.name}: frame rate unknown")
    first: int | None = None
    end: int | None = None
    for packet in container.demux(stream):
        if packet.pts is None or not packet.size:
            continue
        first = packet.pts if first is None else min(first, packet.pts)
        stop = packet.pts + (packet.duration or 0)
        end = stop if end is None else max(end, stop)
    if first is None or end is None or stream.time_base is None:
        raise VideoError(f"{path.name}: has no video frames")
    seconds = (end - first) * Fraction(stream.time_base)
    fps = Fraction(rate)
    return ClipTiming(seconds, fps, round(seconds * fps), bool(container.streams.audio))


@dataclass(frozen=True)
class _JoinInput:
    """What `concat` reads of one clip: its probe, its picture's timing, and what must match for the clips'
    H.264 to be joined as it is (codec, coded size, pixel format and shape, rate, parameter sets, rotation)."""

    path: Path
    meta: VideoProbe
    timing: ClipTiming
    copy_key: tuple[object, ...]


def _join_input(path: Path) -> _JoinInput:
    """Probe, timing, and the copy key (decoding the first frame for its display rotation), from one opening of
    the file; blocking."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise VideoError(f"{path.name}: cannot read file ({exc.strerror})") from exc
    with _open_video(path) as container:
        meta = _probe_container(container, path, size)
        stream = container.streams.video[0]
        try:
            first = next(container.decode(stream), None)
            container.seek(0, stream=stream, backward=True)
        except av.FFmpegError as exc:
            raise VideoError(f"{path.name}: its first frame does not decode") from exc
        timing = _timing_of(container, path)
        codec = stream.codec_context
        rotation = round(first.rotation) if first is not None else 0
        # The concat demuxer takes each file's streams by index: the video must be at the same one in every clip.
        key = (stream.index, codec.name, codec.width, codec.height, codec.pix_fmt, stream.sample_aspect_ratio)
        extradata = bytes(codec.extradata or b"")
        return _JoinInput(path, meta, timing, (*key, timing.rate, extradata, rotation))


def _join_inputs(clips: Sequence[Path]) -> list[_JoinInput]:
    """Every clip's `_join_input`, one after the other (blocking: run it in a worker thread). Two threads at once
    lagged the event loop three times as much for a quarter less time (bench/README.md, "Scene export")."""
    return [_join_input(c) for c in clips]


def _audio_chain(i: int, has_audio: bool, seconds: Fraction) -> str:
    """Input `i`'s sound (or silence) as 48 kHz stereo, cut or padded to `seconds`, labelled [a{i}]."""
    source = f"[{i}:a:0]asetpts=PTS-STARTPTS," if has_audio else "anullsrc=r=48000:cl=stereo,"
    return (
        f"{source}aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo,"
        f"apad,atrim=0:{float(seconds):.6f}[a{i}]"
    )


def _concat_graph(
    inputs: Sequence[_JoinInput], size: tuple[int, int], rate: Fraction, with_audio: bool
) -> str:
    """The filter graph joining every input. Each clip lasts its picture's length at the output rate: its frames
    are padded by repeating the last one or trimmed to that count, its sound (or silence) is padded or cut to the
    same length, so sound and picture never drift apart at a joint."""
    width, height = size
    rate_text = f"{rate.numerator}/{rate.denominator}"
    graph: list[str] = []
    labels = ""
    for i, clip in enumerate(inputs):
        frames = max(1, round(clip.timing.seconds * rate))
        graph.append(
            f"[{i}:v:0]setpts=PTS-STARTPTS,"
            f"scale={width}:{height}:force_original_aspect_ratio=decrease:flags=bicubic,"
            f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,fps={rate_text},"
            f"tpad=stop_mode=clone:stop=2,trim=end_frame={frames},format=yuv420p[v{i}]"
        )
        labels += f"[v{i}]"
        if with_audio:
            graph.append(_audio_chain(i, clip.meta.has_audio, Fraction(frames) / rate))
            labels += f"[a{i}]"
    graph.append(f"{labels}concat=n={len(inputs)}:v=1:a={int(with_audio)}[v]" + ("[a]" if with_audio else ""))
    return ";".join(graph)


def _ffconcat_list(inputs: Sequence[_JoinInput]) -> str:
    """An ffconcat script of the clips, each given its picture's exact length (so the next one starts right after
    its last frame, whatever its sound's length)."""
    lines = ["ffconcat version 1.0"]
    for clip in inputs:
        quoted = str(clip.path.resolve()).replace("'", "'\\''")
        lines += [f"file '{quoted}'", f"duration {float(clip.timing.seconds):.6f}"]
    return "\n".join(lines) + "\n"


def _copy_args(inputs: Sequence[_JoinInput], listing: Path, with_audio: bool) -> list[str]:
    """ffmpeg arguments joining the clips' H.264 as it is (the concat demuxer) and re-encoding only the sound."""
    args = ["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y"]
    args += ["-f", "concat", "-safe", "0", "-i", str(listing)]
    if with_audio:
        for clip in inputs:
            args += ["-i", str(clip.path)]
        chains = [_audio_chain(i + 1, c.meta.has_audio, c.timing.seconds) for i, c in enumerate(inputs)]
        labels = "".join(f"[a{i + 1}]" for i in range(len(inputs)))
        graph = ";".join([*chains, f"{labels}concat=n={len(inputs)}:v=0:a=1[a]"])
        args += ["-filter_complex", graph, "-map", "0:v:0", "-map", "[a]", "-c:a", "aac", "-b:a", "128k"]
    else:
        args += ["-map", "0:v:0", "-an"]
    return [
        *args,
        "-c:v",
        "copy",
        "-sn",
        "-dn",
        "-map_metadata",
        "-1",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
    ]


def _encode_args(
    inputs: Sequence[_JoinInput], size: tuple[int, int], rate: Fraction, with_audio: bool, crf: int
) -> list[str]:
    """ffmpeg arguments re-encoding every clip to one size and rate (see `_concat_graph`)."""
    rate_text = f"{rate.numerator}/{rate.denominator}"
    args = ["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y"]
    for clip in inputs:
        args += ["-i", str(clip.path)]
    args += [
        "-filter_complex", _concat_graph(inputs, size, rate, with_audio),
        "-map", "[v]",
        "-c:v", "libx264", "-preset", EXPORT_PRESET, "-crf", str(crf), "-pix_fmt", "yuv420p", "-r", rate_text,
    ]  # fmt: skip
    args += ["-map", "[a]", "-c:a", "aac", "-b:a", "128k"] if with_audio else ["-an"]
    return [*args, "-map_metadata", "-1", "-movflags", "+faststart", "-f", "mp4"]


async def concat(
    clips: Sequence[Path], out: Path, *, fps: float | None = None, crf: int = 20, copy: bool = True
) -> VideoInfo:
    """Join `clips` end to end into one H.264/AAC mp4 at the first clip's frame size and a constant frame rate.

    Each clip lasts its picture's length, so the result's length is the sum of the clips'. If any clip has sound,
    the result has a stereo 48 kHz track: a clip's sound is cut or padded with silence to its picture's length,
    and a silent clip contributes silence.

    When every clip's H.264 is alike (same coded size, pixel format, rate, parameter sets and rotation: takes of
    one model) and `fps` is not given or is their rate, the pictures are joined as they are, frame for frame,
    without re-encoding (only the sound is; `crf` is unused) — unless `copy` is False. Otherwise every clip is
    re-encoded: clips of another size are scaled to fit and padded with black (never stretched), every clip is
    resampled to `fps` (default: the first clip's rate) and trimmed or padded to its length in whole frames at
    that rate. ffmpeg runs at a lower priority (`EXPORT_NICE`), so the bot's own process keeps the CPU it needs.
    """
    clips = [Path(c) for c in clips]
    out = Path(out)
    if not clips:
        raise VideoError("concat needs at least one clip")
    inputs = await asyncio.to_thread(_join_inputs, clips)
    first = inputs[0]
    rate = Fraction(fps).limit_denominator(1001) if fps else first.timing.rate
    with_audio = any(clip.meta.has_audio for clip in inputs)
    timeout = max(DEFAULT_TIMEOUT_S, EXPORT_TIMEOUT_FACTOR * float(sum(c.timing.seconds for c in inputs)))
    if copy and rate == first.timing.rate and all(c.copy_key == first.copy_key for c in inputs):
        listing = _temp_beside(out.with_suffix(".ffconcat"))
        try:
            await asyncio.to_thread(listing.write_text, _ffconcat_list(inputs), "utf-8")
            args = _copy_args(inputs, listing, with_audio)
            return await _run_to(args, out, "join the clips", timeout=timeout, nice=EXPORT_NICE)
        finally:
            _cleanup(listing)
    size = (_even(first.meta.info.width), _even(first.meta.info.height))
    args = _encode_args(inputs, size, rate, with_audio, crf)
    return await _run_to(args, out, "join the clips", timeout=timeout, nice=EXPORT_NICE)


async def mux(video: Path, audio_wav: Path, out: Path, *, audio_bitrate: int = 128_000) -> VideoInfo:
    """Put `audio_wav` on `video` as its only sound track; the video is copied, not re-encoded.

    The result keeps the video's length: shorter audio is padded with silence, longer audio is cut.
    """
    video, audio_wav, out = Path(video), Path(audio_wav), Path(out)
    meta = await probe_details(video)
    if not audio_wav.is_file():
        raise VideoError(f"{audio_wav.name}: no such audio file")
    args = [
        "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y",
        "-i", str(video), "-i", str(audio_wav),
        "-map", "0:v:0", "-map", "1:a:0",
        "-c:v", "copy", "-c:a", "aac", "-b:a", str(audio_bitrate), "-ac", "2",
        "-af", "apad", "-t", f"{meta.info.duration_s:.3f}",
        "-map_metadata", "-1", "-movflags", "+faststart", "-f", "mp4",
    ]  # fmt: skip
    return await _run_to(args, out, "put the sound on the clip")


async def _run_to(
    args: list[str], out: Path, what: str, *, timeout: float = DEFAULT_TIMEOUT_S, nice: int = 0
) -> VideoInfo:
    """Run ffmpeg with `args` + a temporary output beside `out`, move it into place, and probe it."""
    tmp = _temp_beside(out)
    try:
        code, stderr = await _run([*args, str(tmp)], timeout=timeout, nice=nice)
        if code != 0 or _size_or_zero(tmp) == 0:
            raise VideoError(f"ffmpeg could not {what}: {_tail(stderr)}")
        os.replace(tmp, out)
    finally:
        _cleanup(tmp)
    return await probe(out)
