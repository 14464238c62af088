"""Housekeeping: delete downloaded clips after CLIP_RETENTION_DAYS, and measure the disk the bot uses.

The sweeper runs once at start and then every `interval_s` (an hour); the file-system work runs in a thread so the
event loop never waits on a large directory. Paths returned by the `keep` hook (scenes that still use a clip) are
never deleted, however old.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

log = logging.getLogger(__name__)

KeepHook = Callable[[], Awaitable[set[Path]]]


async def _keep_nothing() -> set[Path]:
    return set()


def tree_size(path: Path) -> int:
    """Total size of the regular files under `path` (0 when it does not exist); blocking, run it in a thread."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def disk_used(database: Path, media_dir: Path) -> int:
    """Bytes used by the database (with its WAL and shared memory) and the media directory; blocking."""
    total = tree_size(media_dir)
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            total += Path(str(database) + suffix).stat().st_size
    return total


def _delete_old(clips_dir: Path, cutoff: float, keep: set[Path]) -> list[Path]:
    """Delete files under `clips_dir` last modified before `cutoff`, except `keep`; return what was deleted."""
    deleted: list[Path] = []
    if not clips_dir.is_dir():
        return deleted
    kept = {p.resolve() for p in keep}
    for root, _dirs, files in os.walk(clips_dir):
        for name in files:
            path = Path(root, name)
            try:
                if path.is_symlink() or not path.is_file() or path.stat().st_mtime >= cutoff:
                    continue
                if path.resolve() in kept:
                    continue
                path.unlink()
                deleted.append(path)
            except FileNotFoundError:
                continue
            except OSError:
                log.warning("could not delete old clip %s", path, exc_info=True)
    return deleted


class ClipSweeper:
    """Deletes clips older than the retention period, now and then every `interval_s`."""

    def __init__(
        self,
        clips_dir: Path,
        *,
        retention_days: float,
        interval_s: float = 3600.0,
        keep: KeepHook | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clips_dir = clips_dir
        self.retention_s = retention_days * 86400
        self.interval_s = interval_s
        self.keep: KeepHook = keep or _keep_nothing
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    async def sweep_once(self) -> list[Path]:
        """Delete what is due now; return the deleted paths."""
        keep = await self.keep()
        cutoff = self.clock() - self.retention_s
        deleted = await asyncio.to_thread(_delete_old, self.clips_dir, cutoff, keep)
        if deleted:
            log.info("deleted %d clip(s) older than %g days", len(deleted), self.retention_s / 86400)
        return deleted

    async def _loop(self) -> None:
        while True:
            try:
                await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("clip sweep failed; trying again in %g s", self.interval_s)
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        """Start sweeping in the background (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="clip-sweeper")

    async def stop(self) -> None:
        """Stop the background sweeper (idempotent)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
