"""Settings and the entry point's one-line explanations."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


def _run_bot(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "FAL_"))}
    clean.update(env)
    clean["DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=60
    )


def test_missing_token_exits_with_one_line(tmp_path):
    result = _run_bot(tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "DISCORD_TOKEN is not set" in lines[0]
    assert "Traceback" not in result.stderr


def test_malformed_token_exits_with_one_line(tmp_path):
    result = _run_bot(tmp_path, DISCORD_TOKEN="hunter2")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "does not look like a bot token" in result.stderr
    assert "hunter2" not in result.stderr


def test_a_database_url_with_no_server_behind_it_exits_with_one_line(tmp_path):
    from tests.conftest import TEST_TOKEN

    url = "postgresql://anchor:s3cret-pw@127.0.0.1:1/anchorshot"  # port 1: nothing listens
    result = _run_bot(tmp_path, DISCORD_TOKEN=TEST_TOKEN, DATABASE_URL=url)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("anchorshot: cannot open the PostgreSQL database at 127.0.0.1:1/anchorshot (")
    assert "check DATABASE_URL" in lines[0] and "s3cret-pw" not in result.stderr and "anchor:" not in lines[0]


def test_bad_setting_is_one_readable_line():
    with pytest.raises(ConfigError) as err:
        load_settings(_env_file=None, default_budget_usd="lots")
    assert "DEFAULT_BUDGET_USD" in str(err.value)


def test_secrets_do_not_show_in_repr():
    s = Settings(_env_file=None, discord_token="abc.def.ghi", fal_key="fal-secret-key")
    assert "fal-secret-key" not in repr(s)
    assert "abc.def.ghi" not in repr(s)
    assert not s.dry_run
    assert Settings(_env_file=None).dry_run


def test_env_file_is_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for key in ("FAL_KEY", "DEFAULT_BUDGET_USD"):
        monkeypatch.delenv(key, raising=False)
    (tmp_path / ".env").write_text("FAL_KEY=from-dotenv\nDEFAULT_BUDGET_USD=25\n")
    s = Settings()
    assert s.fal_key.get_secret_value() == "from-dotenv"
    assert s.default_budget_usd == 25


# ---------------------------------------------------------------- sharding (issue #18)


def _shards(monkeypatch, **env: str) -> Settings:
    """Settings read from these environment variables (SHARD_*), nothing else."""
    for key in ("SHARD_COUNT", "SHARD_IDS"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load_settings(_env_file=None)


def test_unset_shards_mean_one_plain_connection(monkeypatch):
    s = _shards(monkeypatch)
    assert s.shard_count is None and s.shard_ids is None and not s.sharded
    s = _shards(monkeypatch, SHARD_COUNT="", SHARD_IDS="")  # empty strings, as compose files write them
    assert s.shard_count is None and s.shard_ids is None and not s.sharded


@pytest.mark.parametrize("written", ["0,1", "0 1", " 1, 0 ", "[0,1]", "[0, 1]", "1\t0"])
def test_shard_ids_are_read_in_every_spelling(monkeypatch, written):
    s = _shards(monkeypatch, SHARD_COUNT="4", SHARD_IDS=written)
    assert s.shard_count == 4 and s.shard_ids == [0, 1] and s.sharded


def test_one_shard_id_and_all_shards(monkeypatch):
    assert _shards(monkeypatch, SHARD_COUNT="2", SHARD_IDS="1").shard_ids == [1]
    assert _shards(monkeypatch, SHARD_COUNT="2", SHARD_IDS="[1]").shard_ids == [1]
    every = _shards(monkeypatch, SHARD_COUNT="3")  # no SHARD_IDS: this process runs all three
    assert every.shard_count == 3 and every.shard_ids is None and every.sharded
    assert _shards(monkeypatch, SHARD_COUNT="2", SHARD_IDS="[]").shard_ids is None
    assert Settings(_env_file=None, shard_count=2, shard_ids=[1]).shard_ids == [
        1
    ]  # keywords, as tests pass them


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"SHARD_IDS": "0,1"}, "SHARD_IDS: Value error, set SHARD_COUNT too"),
        ({"SHARD_COUNT": "", "SHARD_IDS": "0"}, "SHARD_IDS: Value error, set SHARD_COUNT too"),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "0,2"}, "shard 2 is not one of 0..1 (SHARD_COUNT is 2)"),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "-1"}, "shard -1 is not one of 0..1"),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "1,1"}, "shard 1 is listed twice"),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "one"}, "'one' is not a list of shard numbers"),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "[0,1"}, "is not a list of shard numbers"),
        ({"SHARD_COUNT": "0"}, "SHARD_COUNT: Input should be greater than or equal to 1"),
        ({"SHARD_COUNT": "two"}, "SHARD_COUNT: Input should be a valid integer"),
    ],
)
def test_bad_shard_settings_are_one_readable_line(monkeypatch, env, words):
    with pytest.raises(ConfigError) as err:
        _shards(monkeypatch, **env)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_a_bad_shard_count_is_not_also_reported_as_missing(monkeypatch):
    with pytest.raises(ConfigError) as err:
        _shards(monkeypatch, SHARD_COUNT="0", SHARD_IDS="0")
    assert "SHARD_COUNT: Input should be greater" in str(err.value) and "set SHARD_COUNT too" not in str(
        err.value
    )


@pytest.mark.parametrize(("code", "words"), [(4011, "set SHARD_COUNT"), (4010, "check SHARD_COUNT and SHARD_IDS")])
def test_a_gateway_close_that_sharding_fixes_is_one_line(tmp_path, monkeypatch, capsys, code, words):
    import discord

    import bot.__main__ as entry
    from tests.conftest import TEST_TOKEN

    class Socket:
        close_code = code

    async def closed(settings: Settings, token: str) -> None:
        raise discord.ConnectionClosed(Socket(), shard_id=None)  # type: ignore[arg-type]

    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DISCORD_TOKEN", TEST_TOKEN)
    monkeypatch.setattr(entry, "run", closed)
    monkeypatch.setattr(entry, "setup_logging", lambda level: None)
    with pytest.raises(SystemExit) as exit_:
        entry.main([])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err and f"close code {code}" in err
