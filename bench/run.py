"""Benchmarks: medians of repeated runs on real files (the machines are shared and noisy: read ratios, not absolutes).

Run: .venv/bin/python bench/run.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.anchors.checklist import anchor_checklist  # noqa: E402
from bot.budget.service import BudgetService  # noqa: E402
from bot.db.database import SqliteDatabase  # noqa: E402
from bot.media import crop, video  # noqa: E402
from bot.media.normalize import normalize_image  # noqa: E402
from bot.settings import BudgetPeriod  # noqa: E402


def photo_like(size: tuple[int, int]) -> bytes:
    """A large JPEG with gradients, shapes and noise, like a phone photo."""
    w, h = size
    img = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(img)
    draw.ellipse((w * 0.3, h * 0.15, w * 0.7, h * 0.7), fill=(180, 120, 100))
    img = img.filter(ImageFilter.GaussianBlur(2))
    noise = Image.effect_noise(size, 30).convert("RGB")
    img = Image.blend(img, noise, 0.15)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92)
    return buf.getvalue()


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


async def atimed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - t)
    return out


def report(name: str, samples: list[float], unit: str = "ms", scale: float = 1000.0) -> float:
    med = statistics.median(samples) * scale
    lo, hi = min(samples) * scale, max(samples) * scale
    print(f"{name:<48} median {med:9.2f} {unit}   (min {lo:.2f}, max {hi:.2f}, n={len(samples)})")
    return med


async def bench_ledger(tmp: Path, n: int) -> None:
    db = SqliteDatabase(tmp / "bench.sqlite3")
    await db.open()
    budget = BudgetService(
        db, default_limit_micros=10**12, period=BudgetPeriod.MONTH, max_limit_micros=10**13
    )
    i = 0

    async def hold_capture() -> None:
        nonlocal i
        i += 1
        await budget.hold(job_key=f"b{i}", guild_id=1, user_id=i % 20, amount=560_000, description="bench")
        await budget.capture(f"b{i}")

    report("ledger hold + capture (one job)", await atimed(hold_capture, n))

    async def fifty_at_once() -> None:
        nonlocal i
        base = i
        i += 50
        await asyncio.gather(
            *(
                budget.hold(job_key=f"c{base + k}", guild_id=2, user_id=7, amount=1, description="bench")
                for k in range(50)
            )
        )

    samples = await atimed(fifty_at_once, max(3, n // 20))
    med = report("50 concurrent holds for one user", samples)
    print(f"{'':<48} = {med / 50:.2f} ms per hold under contention")

    async def view() -> None:
        await budget.view(1, 3)

    report(f"/budget view with {i} ledger rows", await atimed(view, n))
    await db.close()


def bench_images(repeat: int) -> None:
    big = photo_like((4000, 3000))
    print(f"input: 4000x3000 JPEG, {len(big) / 1048576:.1f} MiB")
    norm = normalize_image(big)
    report("normalize_image (4000x3000 -> 2048 long side)", timed(lambda: normalize_image(big), repeat))
    report("anchor_checklist (2048x1536)", timed(lambda: anchor_checklist(norm.data), repeat))
    report("crop_to_aspect 9:16", timed(lambda: crop.crop_to_aspect(norm.data, (9, 16)), repeat))


async def bench_video(tmp: Path, repeat: int) -> None:
    src = tmp / "anchor.jpg"
    src.write_bytes(normalize_image(photo_like((1536, 2048))).data)
    out = tmp / "dry.mp4"

    async def dry() -> None:
        await video.make_dry_run_clip(src, out, duration_s=5)

    report("dry-run clip, 5 s", await atimed(dry, repeat), "s", 1.0)
    fit = await measure_fit(tmp, repeat)
    med = report(
        f"fit_video {fit['source_mib']:.1f} MiB 1080p {fit['duration_s']:.0f} s -> under 10 MiB",
        fit["samples"],
        "s",
        1.0,
    )
    print(f"{'':<48} = {med / fit['duration_s']:.2f}x the clip's length; passes {fit['passes']}")
    print(f"{'':<48} result {fit['result_mib']:.2f} MiB")


async def measure_fit(tmp: Path, repeat: int) -> dict:
    """Re-encode the 15 MiB 1080p 5 s sample to fit Discord's 10 MiB limit `repeat` times (bench/scale.py uses
    this too): wall time per run, encodes per run, the clip's length and the result's size."""
    from tests.fakes.media_samples import clip_1080p

    big = clip_1080p()  # 15 MiB, 1920x1080, 5 s, with sound
    source = await video.probe(big)
    fitted = tmp / "fit.mp4"
    limit = 10 * 1024 * 1024
    passes: list[int] = []

    async def fit() -> None:
        passes.append((await video.fit_video(big, fitted, max_bytes=int(limit * 0.97))).passes)

    samples = await atimed(fit, repeat)
    return {
        "samples": samples,
        "passes": passes,
        "duration_s": source.duration_s,
        "source_mib": big.stat().st_size / 1048576,
        "result_mib": fitted.stat().st_size / 1048576,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    n = 50 if args.quick else 200
    repeat = 3 if args.quick else 7
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        asyncio.run(bench_ledger(tmp, n))
        bench_images(repeat)
        asyncio.run(bench_video(tmp, max(3, repeat // 2) if args.quick else 5))


if __name__ == "__main__":
    main()
