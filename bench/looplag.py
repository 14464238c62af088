"""Run a Python program with an event-loop lag probe in its first event loop, without touching its code.

    python bench/looplag.py OUT.jsonl -m bot          # like `python -m bot`
    python bench/looplag.py OUT.jsonl bench/floor_bot.py

The probe sleeps 10 ms again and again and records how late each wake-up came (the loop was busy with something
else meanwhile: a stall). Every 0.25 s it appends one JSON line ``{"t": time.monotonic(), "max": worst lag in s,
"n": wake-ups}`` to OUT.jsonl (CLOCK_MONOTONIC is system-wide, so the bench lines these up with its own clock).
The probe costs about 100 wake-ups a second, and they are not free: on this VM about 12-14 ms of CPU a second, all
of it in the probed process (an idle bot uses under 1 ms/s without it). SIGUSR1 pauses the probe (no wake-ups at
all until SIGUSR2 resumes it), so a bench can leave a long, quiet phase out of it instead of charging the program
for the instrument. It is installed through the event loop policy, so it works whatever the program's entry point
does, as long as it runs its loop with asyncio.run / new_event_loop.
"""

from __future__ import annotations

import asyncio
import json
import runpy
import signal
import sys
import time

TICK_S = 0.010
WINDOW_S = 0.25


async def _probe(path: str) -> None:
    running = asyncio.Event()
    running.set()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, running.clear)
    loop.add_signal_handler(signal.SIGUSR2, running.set)
    with open(path, "a", buffering=1) as out:  # noqa: ASYNC230 - one short line per window
        worst, n, window_end = 0.0, 0, time.monotonic() + WINDOW_S
        while True:
            if not running.is_set():  # paused: close the window, wait without waking up
                if n:
                    out.write(json.dumps({"t": time.monotonic(), "max": round(worst, 6), "n": n}) + "\n")
                await running.wait()
                worst, n, window_end = 0.0, 0, time.monotonic() + WINDOW_S
            before = time.monotonic()
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            worst = max(worst, now - before - TICK_S)
            n += 1
            if now >= window_end:
                out.write(json.dumps({"t": now, "max": round(worst, 6), "n": n}) + "\n")
                worst, n, window_end = 0.0, 0, now + WINDOW_S


class _ProbePolicy(asyncio.DefaultEventLoopPolicy):
    def __init__(self, path: str) -> None:
        super().__init__()
        self._path = path
        self._installed = False

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        if not self._installed:
            self._installed = True
            tasks: list[asyncio.Task[None]] = []
            loop.call_soon(lambda: tasks.append(loop.create_task(_probe(self._path))))
        return loop


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    path = sys.argv[1]
    asyncio.set_event_loop_policy(_ProbePolicy(path))
    if sys.argv[2] == "-m":
        sys.argv = [sys.argv[3], *sys.argv[4:]]
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    else:
        sys.argv = sys.argv[2:]
        runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
