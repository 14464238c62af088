"""`anchorshot backup` of a live bot, a damaged database refused at start-up, `anchorshot restore`, carry on."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys

import pytest

from tests import samples
from tests.conftest import ROOT
from tests.e2e.helpers import set_anchor, text_reply
from tests.e2e.shots_helpers import run_shot, wait_clips
from tests.fakes.discord import text_of


async def _cli(bot_process, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m bot ARGS` in a thread, so the fakes keep answering meanwhile."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        env=bot_process.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _captures(db) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT COUNT(*) FROM ledger WHERE kind='capture'").fetchone()[0]
    finally:
        conn.close()


def _corrupt_middle(path) -> None:
    """Overwrite the middle third of the file with garbage, whole pages at a time (after a checkpoint, so the
    WAL cannot paper over the damage)."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(path.read_bytes())
    page = 4096
    start = (len(data) // 3) // page * page or page
    end = max(start + page, (2 * len(data) // 3) // page * page)
    data[start:end] = bytes((i * 37 + 11) % 256 for i in range(end - start))
    path.write_bytes(bytes(data))
    with sqlite3.connect(path) as conn:
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            result = str(exc)
    conn.close()
    assert result != "ok"


@pytest.mark.long
async def test_backup_while_running_then_damaged_start_then_restore(bot_process, fake_discord, tmp_path):
    await bot_process.start()
    await set_anchor(fake_discord, samples.portrait_png(), name="Mara")
    await run_shot(fake_discord, "kept across a restore")
    await wait_clips(fake_discord, 1)
    db = bot_process.data_dir / "anchorshot.sqlite3"
    await fake_discord.wait_for(lambda: _captures(db) == 1, 15)

    backup_file = tmp_path / "backups" / "nightly.sqlite3"
    done = await _cli(bot_process, "backup", str(backup_file))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1 and "backed up" in done.stdout
    assert bot_process.proc.poll() is None  # the bot kept running
    again = await _cli(bot_process, "backup", str(backup_file))
    assert again.returncode == 2 and "--force" in again.stderr and again.stdout == ""
    assert (await _cli(bot_process, "backup", str(backup_file), "--force")).returncode == 0
    with sqlite3.connect(backup_file) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM jobs WHERE state='posted'").fetchone()[0] == 1

    bot_process.stop()
    _corrupt_middle(db)
    damaged = await _cli(bot_process)
    assert damaged.returncode == 2
    assert "Traceback" not in damaged.stderr + damaged.stdout
    lines = damaged.stderr.strip().splitlines()
    assert len(lines) == 1 and "damaged" in lines[0] and "anchorshot restore" in lines[0], damaged.stderr

    restored = await _cli(bot_process, "restore", str(backup_file))
    assert restored.returncode == 0, restored.stderr
    assert "restored" in restored.stdout and "kept as" in restored.stdout
    assert (await _cli(bot_process, "check")).returncode == 0

    await bot_process.start()
    it = await fake_discord.slash("budget")
    reply = await text_reply(it)
    assert "$0.56" in text_of(reply) and reply["_ephemeral"]
    it = await fake_discord.slash("anchor show")
    assert "Mara" in text_of(await text_reply(it))
    await run_shot(fake_discord, "after the restore")
    await wait_clips(fake_discord, 2)


def test_restore_refuses_to_replace_a_sound_database(tmp_path):
    from bot.db.backup import backup, restore
    from bot.errors import ConfigError

    db = tmp_path / "data" / "anchorshot.sqlite3"
    db.parent.mkdir()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t(x)")
        conn.execute("INSERT INTO t VALUES (1)")
    copy = tmp_path / "copy.sqlite3"
    backup(db, copy)
    try:
        restore(copy, db)
    except ConfigError as exc:
        assert "--force" in str(exc)
    else:
        raise AssertionError("a sound database was replaced without --force")
    assert restore(copy, db, force=True) is not None
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT x FROM t").fetchall() == [(1,)]


def test_a_file_that_is_not_a_database_is_damaged(tmp_path):
    from bot.db.backup import integrity_problem

    bad = tmp_path / "x.sqlite3"
    bad.write_bytes(b"not a database at all" * 300)
    assert integrity_problem(bad) is not None
