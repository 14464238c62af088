"""Benchmark of bot/media/faces: scoring one 5 s 1080p clip, and the event loop's worst lag while 4 clips are
scored at once through `loop.run_in_executor` (a thread pool, then a process pool).

Run: .venv/bin/python bench/faces.py [--runs N] [--rounds N]
     .venv/bin/python bench/faces.py --kind [--rounds N]   # the bot's real `face_score` kind (issue #12)

`--kind` drives the real job engine, the real `face_score` kind and the shared FacePool (one spawn worker at nice
10) on a real SQLite file: 4 score jobs queued at once on the 5 s 1080p clip, timed from RUNNING to scored, with
the event loop's worst lag over the whole run.

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
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ticking import ticking  # noqa: E402
from bot.media import faces  # noqa: E402
from tests import faces_samples as samples  # noqa: E402

CLIP_SECONDS = 5
FPS = 24
SIZE = (1920, 1080)
CONCURRENT = 4
POLL_S = 3.0  # the bot's default poll interval (FAL_POLL_INTERVAL_S); `--poll` changes it for --kind
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
        assert all(r.verdict is faces.Verdict.MATCH for r in results), [r.verdict for r in results]

    return await ticking(work)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="timings of one clip (median)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the loop-lag set-ups (median)")
    parser.add_argument(
        "--kind", action="store_true", help="drive the bot's real face_score kind (issue #12)"
    )
    args = parser.parse_args()
    if args.kind:
        kind_main(args.rounds)
        return

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
        print(
            f"clip: {SIZE[0]}×{SIZE[1]}, {CLIP_SECONDS} s, {size_mib:.1f} MiB; {result.verdict} ({result.frames_matching}/{result.frames_sampled} frames match)"
        )

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


class _NoTakes:
    """The bench has no Discord: the score is stored, then its delivery finds no take and stops there."""

    publisher = None

    async def get(self, take_id: int) -> None:
        return None


class _NoLedger:
    async def tx_hold(self, conn, **kw) -> None:  # type: ignore[no-untyped-def]
        return None

    async def tx_settle(self, conn, job_key: str, kind: str) -> bool:  # type: ignore[no-untyped-def]
        return True


class _Placeholder:
    name, remote, ledger_prefix = "take", True, "shot"


async def kind_round(clip: Path, anchor: bytes, tmp: Path) -> tuple[float, float, float, list[float]]:
    """(worst lag, median lag, wall, per-job scoring seconds) for CONCURRENT score jobs through the engine."""
    from bot.consistency.kind import FaceScoreKind
    from bot.consistency.pool import FacePool
    from bot.consistency.service import ConsistencyService
    from bot.db import SqliteDatabase
    from bot.jobs import EngineConfig, JobEngine, JobState, Prepared

    db = SqliteDatabase(tmp / f"bench-{time.monotonic_ns()}.sqlite3")
    await db.open()
    engine = JobEngine(
        db, ledger=_NoLedger(), backend="bench", charge=False, config=EngineConfig(poll_interval_s=POLL_S)
    )
    pool = FacePool(1)
    service = ConsistencyService(db, engine=engine, takes=_NoTakes(), anchors=None, pool=pool)  # type: ignore[arg-type]
    engine.register(FaceScoreKind(service))
    engine.register(_Placeholder())  # type: ignore[arg-type]
    await pool.run(warm)  # the bot starts its face worker at start-up
    takes = [
        await engine.enqueue("take", Prepared(args={}, price_micros=0), guild_id=1, channel_id=1, user_id=1)
        for _ in range(CONCURRENT)
    ]
    del engine.kinds["take"]  # placeholders only: the score rows need a take to belong to
    jobs = []
    for take in takes:
        args = {
            "take_id": take.id,
            "clip_path": str(clip),
            "anchor_version_id": 1,
            "embeddings": [anchor.hex()],
            "threshold": faces.DEFAULT_THRESHOLD,
            "frames": 8,
        }
        job = await engine.enqueue(
            "face_score",
            Prepared(args=args, price_micros=0),
            guild_id=1,
            channel_id=1,
            user_id=take.id,
            parent_id=take.id,
        )
        jobs.append(await engine.set_messages(job, progress_message_id=1))

    async def work() -> None:
        engine.start()
        while True:
            states = [(await engine.get(j.id)).state for j in jobs]  # type: ignore[union-attr]
            if all(s in (JobState.FAILED, JobState.POSTED) for s in states):
                return
            await asyncio.sleep(0.5)

    worst, median, wall = await ticking(work)
    done = [await engine.get(j.id) for j in jobs]
    await engine.stop()
    pool.shutdown()
    await db.close()
    for j in done:
        assert j is not None and j.outputs.get("verdict") == "match", j
    per_job = [(j.completed_at or 0) - (j.started_at or 0) for j in done if j is not None]
    return worst, median, wall, per_job


def kind_main(rounds: int) -> None:
    load_start = os.getloadavg()[0]
    report = faces.face_checks(samples.centred_portrait())
    assert report.embedding is not None
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "take.mp4")
        results, idle = [], []
        for _ in range(rounds):  # interleaved with an idle baseline: the machine's own lag at that moment
            results.append(asyncio.run(kind_round(clip, report.embedding, Path(tmp))))
            idle.append(asyncio.run(ticking(lambda: asyncio.sleep(BASELINE_S)))[0])
    worsts = sorted(r[0] for r in results)
    idle.sort()
    per_job = sorted(t for r in results for t in r[3])
    rows.append(("clip", f"{SIZE[0]}×{SIZE[1]}, {CLIP_SECONDS} s, {FPS} fps"))
    rows.append(
        (
            f"{CONCURRENT} score jobs at once (real kind, engine, FacePool ×1 nice 10)",
            f"wall {statistics.median(r[2] for r in results):.1f} s; worst lag {statistics.median(worsts) * 1000:.0f} ms "
            f"(rounds: {', '.join(f'{w * 1000:.0f}' for w in worsts)})",
        )
    )
    rows.append(
        (
            f"loop lag, nothing scored ({BASELINE_S:.0f} s, between rounds)",
            f"worst lag {statistics.median(idle) * 1000:.0f} ms (rounds: {', '.join(f'{w * 1000:.0f}' for w in idle)})",
        )
    )
    first = sorted(min(r[3]) for r in results)
    rows.append(
        ("one clip's scoring (RUNNING to scored, first of the 4)", f"median {statistics.median(first):.2f} s")
    )
    rows.append(
        (
            "RUNNING to scored, all jobs (queued behind one worker)",
            f"median {statistics.median(per_job):.1f} s, max {max(per_job):.1f} s",
        )
    )
    rows.append(
        (
            "load average (1 min) at start / end",
            f"{load_start:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        )
    )
    width = max(len(k) for k, _ in rows)
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
