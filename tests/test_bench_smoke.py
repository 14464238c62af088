"""bench/scale.py keeps working: a tiny run (3 takes, 40 commands, re-encode skipped) end to end.

Only that it completes, delivers every take exactly once, shows every take's face verdict (one score job posted and
one take_scores row per take: the anchors are a real face, the clips show it) and reports every figure; no timing
is asserted.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _figures() -> list[str]:
    spec = importlib.util.spec_from_file_location("bench_scale", ROOT / "bench" / "scale.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.FIGURES)


def test_scale_bench_quick_run(tmp_path):
    out = tmp_path / "scale.json"
    command = [sys.executable, str(ROOT / "bench" / "scale.py"), "--quick", "--takes", "3"]
    command += ["--reencode-repeat", "0", "--out", str(out)]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    (run,) = res["runs"]
    takes = run["takes"]
    assert takes["delivered"] == 3
    assert takes["delivered_exactly_once"] is True
    assert takes["duplicate_posts"] == 0
    assert takes["fal_duplicate_runs"] == 0
    assert takes["bot_storm"]["unanswered"] == 0
    assert takes["verdicts_shown"] == 3 and takes["verdict_edits"] == 3
    assert takes["unscored_takes"] == 0
    assert takes["scores"]["face_score_jobs"] == {"posted": 3}
    assert takes["scores"]["take_scores"] == {"match": 3}
    assert takes["scores"]["posted_takes_without_score_row"] == 0
    assert run["ledger"]["overspent_members"] == 0
    for table in (run["table"], res["table"]):
        rows = {row["figure"]: row for row in table}
        assert list(rows) == _figures()
        measured = [key for key in rows if key != "reencode_x_length"]  # skipped here
        assert all(rows[key]["bot"] is not None for key in measured), rows
