"""The floor for the face worker's CPU per take: `faces.score_clip` called directly, in a bare process.

    python bench/floor_face.py ANCHOR.png CLIP.mp4 REPEAT

The anchor's embedding comes from `faces.face_checks` (as the bot stores it at /anchor set), then the same clip is
scored REPEAT times with the bot's defaults (8 frames, threshold 0.6) at normal priority, after the models are
loaded. Prints {"cpu_s": [CPU of each call], "verdict": ...}: process CPU (user + system), not wall time, so it
compares with the CPU the bot's niced worker spends per take.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.media import faces  # noqa: E402


def main() -> None:
    anchor, clip, repeat = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    report = faces.face_checks(anchor.read_bytes())
    if report.embedding is None:
        raise SystemExit("the anchor has no usable face")
    samples, verdict = [], None
    for _ in range(repeat):
        t0 = time.process_time()
        score = faces.score_clip(clip, [report.embedding])
        samples.append(time.process_time() - t0)
        verdict = str(score.verdict)
    print(json.dumps({"cpu_s": samples, "verdict": verdict}))


if __name__ == "__main__":
    main()
