"""The event loop's lag while some work runs on it, measured in-process (bench/faces.py and bench/export.py)."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

TICK_S = 0.005


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
