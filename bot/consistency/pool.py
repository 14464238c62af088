"""The one shared process pool for face work (dlib holds the GIL for 75-170 ms a call, so never on the loop).

bench/README.md "Faces": one worker at nice 10, started with spawn (the bot's process runs threads, so never fork),
kept the event loop's worst lag at 15-66 ms while 4 clips were scored; threads lagged it 140-320 ms.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from bot.media import faces

log = logging.getLogger(__name__)
T = TypeVar("T")


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:  # the bot died (e.g. SIGKILL): never linger holding the models
            os._exit(0)


def worker_initializer(nice: int, parent_pid: int) -> None:
    """`faces.pool_initializer` plus a watchdog that ends the worker when the bot's process is gone."""
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="parent-watch").start()
    faces.pool_initializer(nice)


class PoolClosed(RuntimeError):
    """The pool was shut down: a call made while the bot stops (its job runs again at the next start)."""


class FacePool:
    """A lazily started `ProcessPoolExecutor(max_workers=workers, initializer=faces.pool_initializer)`."""

    def __init__(self, workers: int = 1, *, nice: int = 10) -> None:
        self.workers = workers
        self.nice = nice
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._closed = False

    def executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise PoolClosed("the face worker is shut down (the bot is stopping)")
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=worker_initializer,
                    initargs=(self.nice, os.getpid()),
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
            if self._closed:  # shut down under this call: the bot is stopping, not a fault
                raise PoolClosed("the face worker was shut down (the bot is stopping)") from None
            log.warning("the face worker died; starting a new one")
            self._broken(pool)
            return self.executor().submit(fn, *args, **kwargs).result()

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn` in the pool from the event loop, awaiting without blocking it."""
        return await asyncio.to_thread(self.call, fn, *args, **kwargs)

    def shutdown(self) -> None:
        """Stop the worker and wait for it to exit (a score in progress is lost; its job runs again)."""
        with self._lock:
            pool, self._pool = self._pool, None
            self._closed = True
        if pool is None:
            return
        workers = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in workers:  # a worker busy in dlib would finish its clip first: end it now
            proc.join(timeout=2.0)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=2.0)
