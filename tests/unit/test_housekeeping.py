"""The clip sweeper (retention by mtime, the keep hook, the periodic loop), disk usage and quiet HTTP loggers."""

from __future__ import annotations

import asyncio
import logging
import os
import time

from bot.housekeeping import ClipSweeper, disk_used
from bot.text import human_size

DAY = 86400.0


def _clip(folder, name: str, age_days: float, now: float, size: int = 10):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (now - age_days * DAY, now - age_days * DAY))
    return path


async def test_sweep_deletes_only_old_clips_and_keeps_what_scenes_use(tmp_path):
    now = 2_000_000_000.0
    clips = tmp_path / "media" / "clips"
    old = _clip(clips, "shot-1.mp4", 31, now)
    used_by_scene = _clip(clips, "shot-2.mp4", 90, now)
    fresh = _clip(clips, "shot-3.mp4", 29.9, now)
    nested_old = _clip(clips, "sub/shot-4.mp4", 400, now)
    elsewhere = _clip(tmp_path / "media" / "anchors", "a.jpg", 400, now)

    async def keep():
        return {used_by_scene}

    sweeper = ClipSweeper(clips, retention_days=30, keep=keep, clock=lambda: now)
    deleted = await sweeper.sweep_once()
    assert sorted(deleted) == sorted([old, nested_old])
    assert not old.exists() and not nested_old.exists()
    assert used_by_scene.exists() and fresh.exists() and elsewhere.exists()
    # Later, the fresh clip ages past the limit too.
    sweeper.clock = lambda: now + DAY
    assert await sweeper.sweep_once() == [fresh]


async def test_sweep_of_a_missing_folder_does_nothing(tmp_path):
    assert await ClipSweeper(tmp_path / "nope", retention_days=1).sweep_once() == []


async def test_periodic_sweeper_runs_again_after_its_interval(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    sweeper = ClipSweeper(clips, retention_days=1, interval_s=0.05)
    sweeper.start()
    try:
        await asyncio.sleep(0.1)
        late = _clip(clips, "late.mp4", 2, time.time())  # appears after the first sweep
        for _ in range(100):
            if not late.exists():
                break
            await asyncio.sleep(0.02)
        assert not late.exists()
    finally:
        await sweeper.stop()
    await sweeper.stop()  # idempotent


async def test_a_failing_keep_hook_does_not_stop_the_sweeper(tmp_path, caplog):
    calls = 0

    async def keep():
        nonlocal calls
        calls += 1
        raise RuntimeError("scenes unavailable")

    sweeper = ClipSweeper(tmp_path, retention_days=1, interval_s=0.02, keep=keep)
    sweeper.start()
    await asyncio.sleep(0.2)
    await sweeper.stop()
    assert calls >= 2
    assert "clip sweep failed" in caplog.text


def test_disk_used_and_human_size(tmp_path):
    db = tmp_path / "anchorshot.sqlite3"
    db.write_bytes(b"d" * 1000)
    (tmp_path / "anchorshot.sqlite3-wal").write_bytes(b"w" * 24)
    _clip(tmp_path / "media" / "clips", "c.mp4", 0, time.time(), size=2048)
    assert disk_used(db, tmp_path / "media") == 1000 + 24 + 2048
    assert human_size(0) == "0 bytes"
    assert human_size(1536) == "1.5 KB"
    assert human_size(10 * 1024**2) == "10 MB"  # Discord's 10 MB upload limit reads as Discord says it
    assert human_size(5 * 1024**3) == "5.0 GB"


def test_fal_http_lines_are_quiet_at_info():
    from bot.__main__ import setup_logging

    setup_logging("INFO")
    for name in ("httpx", "httpcore", "discord.http"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
