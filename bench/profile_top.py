"""Read py-spy's raw (collapsed) stacks and print where the time went: by thread, the top frames by own time (the
innermost frame of each sample), and by inclusive time (every frame on the stack, counted once per sample).

    python bench/profile_top.py PROFILE.txt [--top 25] [--thread MainThread] [--grep WORD]

The files come from `bench/scale.py --profile DIR` (py-spy record -r 100 -f raw --threads --nonblocking; idle
samples are left out by py-spy, so every sample is a moment the thread was on a CPU or runnable). `--grep` counts
the samples whose stack contains WORD (a rough "how much is under X").
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

_THREAD = re.compile(r"^thread \((?:0x)?[0-9a-fA-F]+\): (.*)$")


def parse(path: Path) -> list[tuple[str, list[str], int]]:
    """(thread name, frames outermost first, count) per line."""
    out = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        thread = "?"
        m = _THREAD.match(frames[0])
        if m:
            thread, frames = m[1], frames[1:]
        if frames and frames[0].startswith("process "):
            frames = frames[1:]
        out.append((thread, frames, int(count)))
    return out


def short(frame: str) -> str:
    """`fn (path/to/file.py:123)` -> `fn (file.py)`: one entry per function, not per line."""
    m = re.match(r"^(.*) \((.*?):\d+\)$", frame)
    if not m:
        return frame
    path = m[2]
    parts = path.split("/")
    where = "/".join(parts[-2:]) if len(parts) > 1 else path
    return f"{m[1]} ({where})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("profile", type=Path, nargs="+")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--thread", help="only this thread (e.g. MainThread)")
    p.add_argument("--grep", action="append", default=[], help="count samples whose stack contains this")
    args = p.parse_args()
    rows = [r for path in args.profile for r in parse(path)]
    by_thread: collections.Counter[str] = collections.Counter()
    for thread, _, n in rows:
        by_thread[thread] += n
    total = sum(by_thread.values())
    print(f"{total} samples")
    for thread, n in by_thread.most_common():
        print(f"  {n:6d} {100 * n / max(total, 1):5.1f}%  {thread}")
    if args.thread:
        rows = [r for r in rows if r[0] == args.thread]
    total = sum(n for _, _, n in rows)
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    for _, frames, n in rows:
        if frames:
            own[short(frames[-1])] += n
        for f in {short(f) for f in frames}:
            incl[f] += n
    print(f"\nown time ({args.thread or 'all threads'}, {total} samples)")
    for f, n in own.most_common(args.top):
        print(f"  {n:6d} {100 * n / max(total, 1):5.1f}%  {f}")
    print("\ninclusive time")
    for f, n in incl.most_common(args.top):
        print(f"  {n:6d} {100 * n / max(total, 1):5.1f}%  {f}")
    for word in args.grep:
        n = sum(c for _, frames, c in rows if any(word in f for f in frames))
        print(f"\nunder {word!r}: {n} samples ({100 * n / max(total, 1):.1f}%)")


if __name__ == "__main__":
    main()
