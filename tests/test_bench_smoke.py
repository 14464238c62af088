"""bench/scale.py keeps working: a tiny run (3 takes, 40 commands, re-encode skipped) end to end.

Only that it completes, delivers every take exactly once, shows every take's face verdict (one score job posted and
one take_scores row per take: the anchors are a real face, the clips show it) and reports every figure; no timing
is asserted. The PostgreSQL variant (issue #18, marked postgres: `-m postgres`) runs 4 takes over two bot processes
(shards 0 and 1 of 2) on a throwaway cluster, or on ANCHORSHOT_TEST_DATABASE_URL's server.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pg import ENV_URL, unavailable_reason

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("bench_scale", ROOT / "bench" / "scale.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _figures() -> list[str]:
    return list(_module().FIGURES)


@pytest.mark.long
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


# Two bot processes, a cluster and every floor: about two minutes on a loaded machine.
@pytest.mark.postgres
@pytest.mark.long
@pytest.mark.timeout(400)
def test_scale_bench_postgres_two_processes(tmp_path):
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    out = tmp_path / "scale-pg.json"
    database = os.environ.get(ENV_URL) or "auto"
    command = [sys.executable, str(ROOT / "bench" / "scale.py"), "--quick", "--takes", "4"]
    command += ["--processes", "2", "--database", database, "--lease", "3", "--ledger-rounds", "4"]
    command += ["--reencode-repeat", "0", "--out", str(out)]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=360)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    (run,) = res["runs"]
    takes = run["takes"]
    assert takes["processes"] == 2
    assert takes["delivered"] == 4
    assert takes["delivered_exactly_once"] is True
    assert takes["duplicate_posts"] == 0
    assert takes["fal_duplicate_runs"] == 0
    assert takes["bot_storm"]["unanswered"] == 0
    assert takes["unscored_takes"] == 0
    assert takes["scores"]["takes_posted"] == 4
    assert run["ledger"]["overspent_members"] == 0 and run["ledger"]["seq_overspent_members"] == 0
    module = _module()
    rows = {row["figure"]: row for row in res["table"]}
    assert list(rows) == list(module.FIGURES) + list(module.PG_FIGURES)
