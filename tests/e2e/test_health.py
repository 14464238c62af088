"""The container's HEALTHCHECK: `anchorshot health` is 0 while the bot is connected, 1 once its heartbeat is stale."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bot.heartbeat import MAX_AGE_S, health_problem, heartbeat_path
from tests.conftest import ROOT


def _health(data_dir, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "FAL_"))}
    env["DATA_DIR"] = str(data_dir)
    env.update(extra)
    return subprocess.run(
        [sys.executable, "-m", "bot", "health"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


async def test_health_follows_the_heartbeat_of_a_connected_bot(runner, fake_discord, tmp_path):
    before = _health(runner.data_dir)
    assert before.returncode == 1 and "has not connected" in before.stderr

    await runner.start()
    beat = heartbeat_path(runner.data_dir)
    await fake_discord.wait_for(beat.exists, timeout=10)
    ok = _health(runner.data_dir)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "anchorshot: healthy"

    await runner.stop()
    stale = time.time() - MAX_AGE_S - 5
    os.utime(beat, (stale, stale))
    late = _health(runner.data_dir)
    assert late.returncode == 1 and "not connected" in late.stderr


def test_health_problem_reads_the_age_of_the_file(tmp_path):
    path = tmp_path / "heartbeat"
    assert "has not connected" in (health_problem(path) or "")
    path.write_text("1\n")
    now = path.stat().st_mtime
    assert health_problem(path, now=now + MAX_AGE_S - 1) is None
    assert "old" in (health_problem(path, now=now + MAX_AGE_S + 1) or "")


async def test_processes_of_different_shards_sharing_a_data_dir_each_answer_for_themselves(
    runner, fake_discord
):
    """SHARD_IDS=1 beats in its own file: the health of shard 0's process (never started) is not its own."""
    fake_discord.add_guild("Odd shard", shard=(1, 2))
    await runner.start(shard_count=2, shard_ids=[1])
    mine = heartbeat_path(runner.data_dir, [1])
    await fake_discord.wait_for(mine.exists, timeout=10)
    assert mine != heartbeat_path(runner.data_dir, [0]) != heartbeat_path(runner.data_dir)
    assert _health(runner.data_dir, SHARD_COUNT="2", SHARD_IDS="1").returncode == 0
    other = _health(runner.data_dir, SHARD_COUNT="2", SHARD_IDS="0")
    assert other.returncode == 1 and "has not connected" in other.stderr
