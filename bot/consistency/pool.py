"""The one shared process pool for face work (dlib holds the GIL for 75-170 ms a call, so never on the loop).

bench/README.md "Faces": one worker at nice 10, started with spawn (the bot's process runs threads, so never fork),
kept the event loop's worst lag at 15-66 ms while 4 clips were scored; threads lagged it 140-320 ms.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from bot.media import faces

log = logging.getLogger(__name__)
T = TypeVar("T")


class FacePool:
    """A lazily started `ProcessPoolExecutor(max_workers=workers, initializer=faces.pool_initializer)`."""

    def __init__(self, workers: int = 1, *, nice: int = 10) -> None:
        self.workers = workers
        self.nice = nice
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=faces.pool_initializer,
                    initargs=(self.nice,),
                )
            return self._pool

    def _broken(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn` in the pool and wait here (call from a worker thread, never from the event loop)."""
        pool = self.executor()
        try:
            return pool.submit(fn, *args, **kwargs).result()
        except BrokenProcessPool:
            log.warning("the face worker died; starting a new one")
            self._broken(pool)
            return self.executor().submit(fn, *args, **kwargs).result()

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn` in the pool from the event loop, awaiting without blocking it."""
        return await asyncio.to_thread(self.call, fn, *args, **kwargs)

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
