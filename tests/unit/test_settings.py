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
