"""Benchmark of a scene export (issue #16): ten 5 s 1080p takes joined by `bot.media.video.concat`, as the bot does.

Run: .venv/bin/python bench/export.py [--runs 3] [--takes 10] [--setups copy,encode,...] [--extras]

The takes are real H.264 + AAC clips made once with ffmpeg and cached (`tests/fakes/media_samples.cache_dir()`):
1920×1080, 24 fps, 5 s, a moving test pattern with fresh grain in every frame (each take its own pattern and hue)
at a constant 14 Mbit/s, about 8.4 MiB a take like a sharp Kling take, with a stereo 48 kHz tone. Grain is the hard
case for the encoder; a generated take compresses better.

Each run awaits `concat` from an asyncio event loop the way the bot would (ffmpeg is a subprocess, the probes run in
a worker thread) while a task sleeps 5 ms in a loop and records how late each wake-up comes: the loop's worst lag.
Set-ups, interleaved run by run (`--setups` picks some):

- `copy`: `concat(takes, out)` awaited on the loop. The takes are encoded alike (as takes of one model are), so
  the pictures are joined as they are and only the sound is re-encoded;
- `copy-thread`: the same in a worker thread through `asyncio.run` (what the scene export kind's `run` does);
- `encode`: `concat(takes, out, copy=False)`: every take re-encoded (what happens when the takes differ in size,
  rate or encoding), ffmpeg at nice 10 (`EXPORT_NICE`);
- `encode-nice0`: the same with ffmpeg at the bot's own priority;
- `encode-superfast`: `encode` with x264's superfast preset instead of veryfast (`EXPORT_PRESET`);
- `idle`: no export, 8 s: the loop's lag from the machine alone at that moment (it is shared).

Medians of the runs; the machine's load (`os.getloadavg`) is printed along. `--extras` also times `last_frame` and
`frame_at` on a take, and cutting a 10 s 1080p storyboard clip into [4, 3, 3] with `cut`. Results and their
reading: bench/README.md, "Scene export (issue #16)".
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ticking import ticking  # noqa: E402
from bot.media import cuts, frames, video  # noqa: E402
from tests.fakes.media_samples import cache_dir, ffmpeg_exe  # noqa: E402

SECONDS = 5
FPS = 24
IDLE_S = 8.0
BITRATE = "14000k"


def take(index: int) -> Path:
    """Take `index` of the scene (cached on disk): its own pattern offset and hue, fresh grain every frame."""
    path = cache_dir() / f"scene-take-{index}-1080p-{SECONDS}s.mp4"
    if path.exists() and path.stat().st_size > 1_000_000:
        return path
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    source = (
        f"testsrc2=size=1920x1080:rate={FPS}:duration={SECONDS + index},trim=start={index},setpts=PTS-STARTPTS,"
        f"hue=h={index * 36},noise=alls=20:allf=t+u"
    )
    args = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
        "-f", "lavfi", "-i", source,
        "-f", "lavfi", "-i", f"sine=frequency={220 + 40 * index}:sample_rate=48000:duration={SECONDS}",
        "-c:v", "libx264", "-preset", "veryfast", "-b:v", BITRATE, "-maxrate", BITRATE, "-bufsize", BITRATE,
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-t", str(SECONDS),
        "-movflags", "+faststart", "-f", "mp4", str(tmp),
    ]  # fmt: skip
    try:
        subprocess.run(args, check=True, timeout=600)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


async def export_on_loop(takes: list[Path], out: Path) -> video.VideoInfo:
    return await video.concat(takes, out)


async def export_encoded(takes: list[Path], out: Path) -> video.VideoInfo:
    return await video.concat(takes, out, copy=False)


async def export_encoded_nice0(takes: list[Path], out: Path) -> video.VideoInfo:
    saved, video.EXPORT_NICE = video.EXPORT_NICE, 0
    try:
        return await video.concat(takes, out, copy=False)
    finally:
        video.EXPORT_NICE = saved


async def export_in_thread(takes: list[Path], out: Path) -> video.VideoInfo:
    """As the export kind runs it: `asyncio.run(concat(...))` in a worker thread, awaited from the loop."""
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=1) as pool:
        return await loop.run_in_executor(pool, lambda: asyncio.run(video.concat(takes, out)))


async def idle(takes: list[Path], out: Path) -> video.VideoInfo:
    """No export: the loop's lag on this machine at this moment, for comparison."""
    await asyncio.sleep(IDLE_S)
    return video.VideoInfo(duration_s=IDLE_S, width=0, height=0, size_bytes=0)


async def export_superfast(takes: list[Path], out: Path) -> video.VideoInfo:
    saved, video.EXPORT_PRESET = video.EXPORT_PRESET, "superfast"
    try:
        return await video.concat(takes, out, copy=False)
    finally:
        video.EXPORT_PRESET = saved


SETUPS: dict[str, Callable[[list[Path], Path], Awaitable[video.VideoInfo]]] = {
    "idle": idle,
    "copy": export_on_loop,
    "copy-thread": export_in_thread,
    "encode": export_encoded,
    "encode-nice0": export_encoded_nice0,
    "encode-superfast": export_superfast,
}


def run_export(
    how: Callable[[list[Path], Path], Awaitable[video.VideoInfo]], takes: list[Path], out: Path
) -> dict:
    info: list[video.VideoInfo] = []

    async def work() -> None:
        info.append(await how(takes, out))

    worst, median_lag, wall = asyncio.run(ticking(work))
    return {"worst": worst, "median_lag": median_lag, "wall": wall, "seconds": info[0].duration_s, "out": out}


def check(out: Path, takes: list[Path]) -> str:
    """The export's length against the sum of the takes' (frames at 24 fps), and its size."""
    timing = video.clip_timing(out)
    expected = sum(video.clip_timing(t).frames for t in takes)
    meta = video.probe_file(out)
    return (
        f"{timing.frames} frames (takes: {expected}), {float(timing.seconds):.3f} s, "
        f"{meta.info.width}×{meta.info.height}, {meta.fps:g} fps, audio {meta.audio_codec}, "
        f"{meta.info.size_bytes / 2**20:.1f} MiB"
    )


def extras(takes: list[Path], tmp: Path, runs: int) -> None:
    def timed(fn: Callable[[], object]) -> float:
        samples = []
        for _ in range(runs):
            t = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t)
        return statistics.median(samples)

    png = frames.last_frame(takes[0])
    print(f"last_frame, 5 s 1080p take: {timed(lambda: frames.last_frame(takes[0])) * 1000:.0f} ms "
          f"({len(png) / 2**20:.1f} MiB PNG)")  # fmt: skip
    print(f"frame_at(2.5 s), same take: {timed(lambda: frames.frame_at(takes[0], 2.5)) * 1000:.0f} ms")
    board = tmp / "storyboard.mp4"
    asyncio.run(video.concat(takes[:2], board))  # a 10 s 1080p clip, as a storyboard take
    seconds = timed(lambda: cuts.cut(board, [4, 3, 3], tmp / "parts"))
    print(f"cut 10 s 1080p into [4, 3, 3]: {seconds:.1f} s ({seconds / 10:.2f}× the clip's length)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="exports per set-up (median)")
    parser.add_argument("--takes", type=int, default=10, help="shots in the scene")
    parser.add_argument("--extras", action="store_true", help="also time last_frame, frame_at and cut")
    parser.add_argument(
        "--setups", default="idle,copy,copy-thread,encode", help=f"comma-separated: {', '.join(SETUPS)}"
    )
    args = parser.parse_args()
    setups = {name: SETUPS[name] for name in args.setups.split(",")}
    t = time.perf_counter()
    takes = [take(i) for i in range(args.takes)]
    sizes = [p.stat().st_size / 2**20 for p in takes]
    print(f"{len(takes)} takes ready in {time.perf_counter() - t:.1f} s: 1920×1080 {SECONDS} s, "
          f"{min(sizes):.1f}-{max(sizes):.1f} MiB each")  # fmt: skip
    print(f"cpus {os.cpu_count()}, load average at start {os.getloadavg()}")
    seen: dict[str, list[dict]] = {name: [] for name in setups}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for run in range(args.runs):
            for name, how in setups.items():
                result = run_export(how, takes, tmp / f"scene-{name}-{run}.mp4")
                seen[name].append(result)
                print(f"run {run + 1} {name}: wall {result['wall']:.1f} s for {result['seconds']:.2f} s "
                      f"({result['wall'] / result['seconds']:.2f}×), worst lag {result['worst'] * 1000:.1f} ms, "
                      f"load {os.getloadavg()[0]:.2f}")  # fmt: skip
        for name, results in seen.items():
            if name != "idle":
                print(f"export, {name}:", check(results[-1]["out"], takes))
        for name, results in seen.items():
            walls = [r["wall"] / r["seconds"] for r in results]
            worsts = [r["worst"] * 1000 for r in results]
            print(
                f"{name}: median {statistics.median(walls):.2f}× the result's length "
                f"(runs {', '.join(f'{w:.2f}' for w in walls)}); worst lag median {statistics.median(worsts):.0f} ms "
                f"(runs {', '.join(f'{w:.0f}' for w in worsts)}); loop lag median "
                f"{statistics.median(r['median_lag'] for r in results) * 1000:.2f} ms"
            )
        if args.extras:
            extras(takes, tmp, args.runs)
    print(f"load average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
