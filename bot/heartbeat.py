"""A heartbeat file under DATA_DIR, fresh while the bot is connected to Discord (the container's HEALTHCHECK)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

HEARTBEAT_NAME = "heartbeat"
INTERVAL_S = 30.0
MAX_AGE_S = 120.0  # four missed beats: the bot is stuck or disconnected


def heartbeat_path(data_dir: Path, shard_ids: Sequence[int] | None = None) -> Path:
    """Where the heartbeat of the bot using `data_dir` lives: one file per process when processes running
    different shards share the folder (`heartbeat-shards-0-1`), so one connected process never answers for
    another's health."""
    if not shard_ids:
        return data_dir / HEARTBEAT_NAME
    return data_dir / f"{HEARTBEAT_NAME}-shards-{'-'.join(str(i) for i in sorted(shard_ids))}"


def _touch(path: Path) -> None:
    path.write_text(f"{time.time():.0f}\n", encoding="utf-8")


async def beat(
    path: Path, is_connected: Callable[[], bool], *, interval_s: float = INTERVAL_S, wait_s: float = 1.0
) -> None:
    """Rewrite the heartbeat every `interval_s` while `is_connected()` (looking every `wait_s` until it is)."""
    while True:
        if not is_connected():
            await asyncio.sleep(wait_s)
            continue
        try:
            await asyncio.to_thread(_touch, path)
        except OSError as exc:
            log.warning("cannot write the heartbeat file %s: %s", path, exc)
        await asyncio.sleep(interval_s)


def health_problem(path: Path, *, now: float | None = None, max_age_s: float = MAX_AGE_S) -> str | None:
    """None when the heartbeat is fresh; otherwise one line saying what is wrong."""
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except FileNotFoundError:
        return f"no heartbeat at {path}: the bot has not connected to Discord yet"
    if age > max_age_s:
        return f"the heartbeat is {age:.0f} s old (more than {max_age_s:.0f} s): the bot is not connected"
    return None


async def stop(task: asyncio.Task[None] | None) -> None:
    """Cancel a heartbeat task and wait for it."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
