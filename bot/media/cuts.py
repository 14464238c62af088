"""Cutting one clip into consecutive parts at planned lengths: a storyboard take (one Kling call with
`multi_prompt`, several shots in one clip, no shot timestamps returned) becomes one clip per shot.

The cut is frame-accurate: the clip is decoded once, resampled to its own constant frame rate (a no-op for a
constant-rate clip such as Kling's), and split by frame number, so part k holds exactly the source frames from
its planned start. Every part is re-encoded (H.264, same frame size and rate; AAC with the source's channels when
the source has sound, padded with silence if the sound stops before the picture) in one ffmpeg run, at a lower
priority (`EXPORT_NICE`) so the bot's own process keeps the CPU it needs.

Where the parts fall, for planned lengths p1..pn and a clip of F frames at rate r (`plan_cut`):
- part k starts at frame round(r × (p1 + ... + p(k-1))), so every part is its planned length within one frame
  (within half a frame at each end);
- the last part ends at the clip's end: shorter than planned when the clip is shorter than the plan, longer when
  it is longer (a clip a frame or two longer than planned is normal; compare the clip's length with the plan
  first if a large difference matters);
- a part that would hold no frame (the clip ends before it starts, or it is planned under half a frame) is
  refused with `CutPlanError` (a `VideoError` and a `ValueError`) before anything is encoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from bot.media.video import (
    DEFAULT_TIMEOUT_S,
    EXPORT_NICE,
    ClipTiming,
    VideoError,
    _cleanup,
    _run,
    _size_or_zero,
    _tail,
    _temp_beside,
    clip_timing,
    ffmpeg_exe,
)

CUT_CRF = 18  # the parts are an intermediate (a scene export encodes them again): keep them near lossless
CUT_PRESET = "veryfast"
CUT_AUDIO_BITRATE = "160k"


class CutPlanError(VideoError, ValueError):
    """The planned lengths do not fit the clip: a part would hold no frame."""


def plan_cut(parts: Sequence[float], *, frames: int, rate: float | Fraction) -> list[tuple[int, int]]:
    """Frame ranges [start, end) of `parts` (planned lengths in seconds) in a clip of `frames` frames at `rate`.

    See the module notes: starts at the rounded planned times, the last part ends at the clip's end; raises
    `CutPlanError` when a part would hold no frame and `ValueError` for an empty plan or a length that is not a
    positive number.
    """
    if not parts:
        raise ValueError("a cut needs at least one part")
    if any(not math.isfinite(p) or p <= 0 for p in parts):
        raise ValueError(f"planned lengths must be positive seconds, not {list(parts)!r}")
    fps = Fraction(rate)
    starts = [round(Fraction(sum(parts[:k])) * fps) for k in range(len(parts))]
    ends = [*starts[1:], frames]
    for k, (start, end) in enumerate(zip(starts, ends, strict=True)):
        if end <= start:
            where = "the clip ends first" if start >= frames else "it is shorter than half a frame"
            raise CutPlanError(
                f"part {k + 1} of {len(parts)} would be empty ({where}: {frames} frames at {float(fps):.3g} fps)"
            )
    return list(zip(starts, ends, strict=True))


def _cut_args(
    src: Path, ranges: Sequence[tuple[int, int]], timing: ClipTiming, outs: Sequence[Path], crf: int
) -> list[str]:
    """One ffmpeg run: decode once, split by frame number, encode every part."""
    n, rate = len(ranges), timing.rate
    rate_text = f"{rate.numerator}/{rate.denominator}"
    graph = [f"[0:v:0]fps={rate_text},split={n}" + "".join(f"[s{k}]" for k in range(n))]
    graph += [
        f"[s{k}]trim=start_frame={a}:end_frame={b},setpts=PTS-STARTPTS,setsar=1,format=yuv420p[v{k}]"
        for k, (a, b) in enumerate(ranges)
    ]
    if timing.has_audio:
        graph.append(f"[0:a:0]asplit={n}" + "".join(f"[t{k}]" for k in range(n)))
        graph += [
            f"[t{k}]apad,atrim=start={float(a / rate):.6f}:end={float(b / rate):.6f},asetpts=PTS-STARTPTS[a{k}]"
            for k, (a, b) in enumerate(ranges)
        ]
    args = [
        "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y",
        "-i", str(src), "-filter_complex", ";".join(graph),
    ]  # fmt: skip
    for k, out in enumerate(outs):
        args += ["-map", f"[v{k}]", "-c:v", "libx264", "-preset", CUT_PRESET, "-crf", str(crf)]
        args += ["-pix_fmt", "yuv420p", "-r", rate_text]
        if timing.has_audio:
            args += ["-map", f"[a{k}]", "-c:a", "aac", "-b:a", CUT_AUDIO_BITRATE]
        args += ["-sn", "-dn", "-map_metadata", "-1", "-movflags", "+faststart", "-f", "mp4", str(out)]
    return args


@dataclass(frozen=True)
class _CutJob:
    args: list[str]
    temps: list[Path]
    finals: list[Path]


def _prepare(src: Path, parts: Sequence[float], out_dir: Path, stem: str | None, crf: int) -> _CutJob:
    """Probe the source, plan the parts and build the ffmpeg run (blocking: reads the file's packets)."""
    timing = clip_timing(src)
    ranges = plan_cut(parts, frames=timing.frames, rate=timing.rate)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = stem or f"{src.stem}-part"
    finals = [Path(out_dir) / f"{name}{k + 1}.mp4" for k in range(len(ranges))]
    temps = [_temp_beside(f) for f in finals]
    return _CutJob(_cut_args(src, ranges, timing, temps, crf), temps, finals)


def _finish(job: _CutJob, code: int, stderr: bytes) -> list[Path]:
    if code != 0 or any(_size_or_zero(t) == 0 for t in job.temps):
        raise VideoError(f"ffmpeg could not cut the clip: {_tail(stderr)}")
    for temp, final in zip(job.temps, job.finals, strict=True):
        os.replace(temp, final)
    return job.finals


def cut(
    src: Path,
    parts: Sequence[float],
    out_dir: Path,
    *,
    stem: str | None = None,
    crf: int = CUT_CRF,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> list[Path]:
    """Cut `src` into consecutive parts of the planned lengths `parts` (seconds) in `out_dir` (made if missing),
    named `{stem}{k}.mp4` (k from 1; `stem` defaults to "<src stem>-part"); returns their paths in order.
    Blocking (one ffmpeg subprocess); see the module notes for where the parts fall and what is refused
    (`CutPlanError`); `VideoError` when the source is not a video or ffmpeg fails.
    """
    src = Path(src)
    job = _prepare(src, parts, Path(out_dir), stem, crf)
    try:
        code, stderr = _run_blocking(job.args, timeout)
        return _finish(job, code, stderr)
    finally:
        for temp in job.temps:
            _cleanup(temp)


def _run_blocking(args: list[str], timeout: float) -> tuple[int, bytes]:
    """ffmpeg with `args` at nice `EXPORT_NICE` (set before it reads its input, so its threads inherit it);
    (exit code, stderr). Killed on timeout."""
    try:
        proc = subprocess.Popen(
            [ffmpeg_exe(), *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
    except OSError as exc:
        raise VideoError(f"could not start ffmpeg: {exc}") from exc
    with proc:
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, proc.pid, EXPORT_NICE)
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            proc.kill()
            proc.communicate()
            raise VideoError(f"ffmpeg took longer than {timeout:.0f} s") from exc
        return proc.returncode, stderr


async def cut_async(
    src: Path, parts: Sequence[float], out_dir: Path, *, stem: str | None = None, crf: int = CUT_CRF
) -> list[Path]:
    """`cut` from async code: the probe in a worker thread, ffmpeg as an asyncio subprocess (killed if the
    caller is cancelled)."""
    src = Path(src)
    job = await asyncio.to_thread(_prepare, src, parts, Path(out_dir), stem, crf)
    try:
        code, stderr = await _run(job.args, nice=EXPORT_NICE)
        return _finish(job, code, stderr)
    finally:
        for temp in job.temps:
            with contextlib.suppress(OSError):
                _cleanup(temp)
