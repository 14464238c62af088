"""Benchmark of bot/media/faces: scoring one 5 s 1080p clip, and the event loop's worst lag while 4 clips are
scored at once through `loop.run_in_executor` (a thread pool, then a process pool).

Run: .venv/bin/python bench/faces.py [--runs N] [--rounds N]

The clip is real H.264 (libx264 CRF 23, 1920×1080, 24 fps, 120 frames, one keyframe) made from the
scikit-image astronaut portrait with a push-in and sensor grain. Results and their reading: bench/README.md, "Faces".
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.media import faces  # noqa: E402
from tests import faces_samples as samples  # noqa: E402

CLIP_SECONDS = 5
FPS = 24
SIZE = (1920, 1080)
CONCURRENT = 4
TICK_S = 0.005
BASELINE_S = 5.0


def make_clip(path: Path) -> Path:
    """A push-in on the portrait with fresh sensor grain in every frame, so the bitrate (and the decoding work)
    is like a generated 1080p take's (several MiB for 5 s) rather than a near-static clip's."""
    frames = samples.camera_move(samples.centred_portrait(), CLIP_SECONDS * FPS, SIZE)
    grainy = [Image.blend(f, Image.effect_noise(SIZE, 60).convert("RGB"), 0.09) for f in frames]
    return samples.write_mp4(path, grainy, fps=FPS)


def anchor_embedding():
    (face,) = faces.detect_faces(samples.centred_portrait())
    return face.embedding


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def warm() -> bool:
    """Load the models in a pool worker (what the bot would do when it starts the pool)."""
    return faces.face_engine_status()[0]


async def ticking(work: Callable[[], Awaitable[object]]) -> tuple[float, float, float]:
    """(worst loop lag, median loop lag, wall time of `work`) with a task that sleeps TICK_S in a loop."""
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            t = time.perf_counter()
            await asyncio.sleep(TICK_S)
            lags.append(time.perf_counter() - t - TICK_S)

    tick = asyncio.create_task(ticker())
    t0 = time.perf_counter()
    await work()
    wall = time.perf_counter() - t0
    done.set()
    await tick
    return max(lags), statistics.median(lags), wall


async def lag_while_scoring(
    executor: Executor, clip: Path, anchor, workers: int
) -> tuple[float, float, float]:
    """Loop lag while CONCURRENT clips are scored in `executor` (its workers warmed up first)."""
    loop = asyncio.get_running_loop()
    await asyncio.gather(*(loop.run_in_executor(executor, warm) for _ in range(workers)))

    async def work() -> None:
        results = await asyncio.gather(
            *(loop.run_in_executor(executor, faces.score_clip, clip, [anchor]) for _ in range(CONCURRENT))
        )
        assert all(r.verdict is faces.Verdict.MATCH for r in results), [r.verdict_text() for r in results]

    return await ticking(work)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="timings of one clip (median)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the loop-lag set-ups (median)")
    args = parser.parse_args()

    load_start = os.getloadavg()[0]
    t = time.perf_counter()
    ok, reason = faces.face_engine_status()
    load_s = time.perf_counter() - t
    if not ok:
        raise SystemExit(reason)
    anchor = anchor_embedding()
    rows: list[tuple[str, str]] = [("model load (once per process)", f"{load_s * 1000:.0f} ms")]

    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "take.mp4")
        size_mib = clip.stat().st_size / 2**20
        result = faces.score_clip(clip, [anchor])
        print(f"clip: {SIZE[0]}×{SIZE[1]}, {CLIP_SECONDS} s, {size_mib:.1f} MiB; {result.verdict_text()}")

        decode = statistics.median(timed(lambda: faces.sample_frames(clip, 8), args.runs))
        score = statistics.median(timed(lambda: faces.score_clip(clip, [anchor]), args.runs))
        rows.append(("decode 8 frames (PyAV)", f"{decode * 1000:.0f} ms"))
        rows.append(("score_clip, 8 frames (decode + detect + embed)", f"{score * 1000:.0f} ms"))

        # Rounds interleave the set-ups, so a burst of load from other users of the machine hits them alike.
        configs: list[tuple[str, Callable[[], Executor] | None, int]] = [
            (f"nothing scored ({BASELINE_S:.0f} s)", None, 0),
            ("threads ×4", lambda: ThreadPoolExecutor(max_workers=CONCURRENT), CONCURRENT),
            ("processes ×2", lambda: _processes(2, nice=0), 2),
            ("processes ×2, nice 10", lambda: _processes(2, nice=10), 2),
            ("processes ×1, nice 10", lambda: _processes(1, nice=10), 1),
        ]
        seen: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _, _ in configs}
        for _ in range(args.rounds):
            for name, make, workers in configs:
                if make is None:
                    seen[name].append(asyncio.run(ticking(lambda: asyncio.sleep(BASELINE_S))))
                    continue
                with make() as pool:
                    seen[name].append(asyncio.run(lag_while_scoring(pool, clip, anchor, workers)))
        for name, runs in seen.items():
            worsts = sorted(w for w, _, _ in runs)
            walls = [wall for _, _, wall in runs]
            what = (
                f"loop lag, {name}" if name.startswith("nothing") else f"{CONCURRENT} clips at once, {name}"
            )
            wall_text = "" if name.startswith("nothing") else f"wall {statistics.median(walls):.1f} s; "
            rows.append(
                (
                    what,
                    f"{wall_text}worst lag {statistics.median(worsts) * 1000:.0f} ms "
                    f"(rounds: {', '.join(f'{w * 1000:.0f}' for w in worsts)})",
                )
            )

    rows.append(
        (
            "load average (1 min) at start / end",
            f"{load_start:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        )
    )
    width = max(len(k) for k, _ in rows)
    print(f"{'what'.ljust(width)} | result")
    print(f"{'-' * width}-|-------")
    for k, v in rows:
        print(f"{k.ljust(width)} | {v}")


def _processes(workers: int, *, nice: int) -> ProcessPoolExecutor:
    # spawn (or forkserver), never fork: the bot's process has running threads (discord.py, aiosqlite).
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=faces.pool_initializer,
        initargs=(nice,),
    )


if __name__ == "__main__":
    main()
