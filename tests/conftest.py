"""The test rig: the real bot, in-process or as a subprocess, against a fake Discord and a fake fal on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import Services, open_services
from bot.client import AnchorshotBot
from bot.settings import Settings
from tests.fakes.discord_fake import FakeDiscord
from tests.fakes.fal_fake import FakeFal

ROOT = Path(__file__).resolve().parents[1]
TEST_TOKEN = "MTAwMDAwMDAwMDAwMDAwMDAwMQ.GfakeX.fake-token-for-tests-only_abcdefghij"


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord()
    await fake.start()
    fake.install()
    yield fake
    await fake.close()


@pytest.fixture
async def fake_fal() -> AsyncIterator[FakeFal]:
    fake = FakeFal()
    await fake.start()
    fake.install()
    yield fake
    fake.restore()
    await fake.close()


class BotRunner:
    """Starts and stops the real bot in this process, on a given DATA_DIR."""

    def __init__(self, discord_fake: FakeDiscord, fal_fake: FakeFal, data_dir: Path) -> None:
        self.discord = discord_fake
        self.fal = fal_fake
        self.data_dir = data_dir
        self.bot: AnchorshotBot | None = None
        self.services: Services | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._task: asyncio.Task[None] | None = None

    def settings(self, *, fal: bool = True, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "discord_token": TEST_TOKEN,
            "fal_key": "test-key" if fal else "",
            "data_dir": self.data_dir,
            "fal_poll_interval_s": 0.05,
            "progress_edit_interval_s": 0.0,
            "log_level": "DEBUG",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    async def start(self, *, fal: bool = True, **overrides: Any) -> AnchorshotBot:
        settings = self.settings(fal=fal, **overrides)
        self._stack = contextlib.AsyncExitStack()
        self.services = await self._stack.enter_async_context(open_services(settings))
        self.bot = AnchorshotBot(self.services, guild_ready_timeout=0.05)
        await self._stack.enter_async_context(self.bot)
        self._task = asyncio.create_task(self.bot.start(TEST_TOKEN))
        await self.discord.wait_for(lambda: self._task.done() or self.bot.is_ready(), timeout=15)
        if self._task.done():
            self._task.result()
        return self.bot

    async def stop(self) -> None:
        if self.bot is not None:
            await self.bot.close()
        if self._task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._task, 10)
        if self._stack is not None:
            await self._stack.aclose()
        self.bot = self.services = self._task = self._stack = None


@pytest.fixture
async def runner(fake_discord, fake_fal, tmp_path) -> AsyncIterator[BotRunner]:
    r = BotRunner(fake_discord, fake_fal, tmp_path / "data")
    yield r
    await r.stop()


@pytest.fixture
async def bot(runner) -> AnchorshotBot:
    """The real bot with the fal backend, connected to both fakes."""
    return await runner.start()


class BotProcess:
    """`python -m bot` as a subprocess, pointed at the fakes through its settings."""

    def __init__(self, discord_fake: FakeDiscord, fal_fake: FakeFal, data_dir: Path, log_path: Path) -> None:
        self.discord = discord_fake
        self.fal = fal_fake
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "FAL_"))}
        env.update(
            {
                "DISCORD_TOKEN": TEST_TOKEN,
                "FAL_KEY": "test-key",
                "DATA_DIR": str(self.data_dir),
                "DISCORD_API_BASE": f"{self.discord.base_url}/api/v10",
                "DISCORD_GATEWAY_URL": self.discord.base_url.replace("http://", "ws://") + "/",
                "FAL_QUEUE_URL": f"{self.fal.base_url}/queue/",
                "FAL_REST_URL": f"{self.fal.base_url}/rest",
                "FAL_CDN_URL": f"{self.fal.base_url}/cdn",
                "FAL_POLL_INTERVAL_S": "0.1",
                "PROGRESS_EDIT_INTERVAL_S": "0",
                "LOG_LEVEL": "DEBUG",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(extra)
        return env

    async def start(self, **extra: str) -> None:
        identified = self.discord.identify_count
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: ASYNC220
                [sys.executable, "-m", "bot"],
                cwd=ROOT,
                env=self.env(**extra),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        await self.discord.wait_for(
            lambda: self.discord.identify_count > identified or self.proc.poll() is not None, timeout=30
        )
        assert self.proc.poll() is None, self.log_path.read_text()[-3000:]

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
async def bot_process(fake_discord, fake_fal, tmp_path) -> AsyncIterator[BotProcess]:
    proc = BotProcess(fake_discord, fake_fal, tmp_path / "data", tmp_path / "bot.log")
    yield proc
    proc.stop()
