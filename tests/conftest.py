"""The test rig: the real bot, in-process or as a subprocess, against a fake Discord and a fake fal on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.app import Services, open_services
from bot.client import AnchorshotBot
from bot.consistency.pool import FacePool
from bot.settings import Settings
from tests.fakes.discord import FakeDiscord
from tests.fakes.fal_fake import FakeFal

pytest_plugins = [
    "tests.pg",
    "tests.backends",
]  # pg_cluster, pg_url (tests/pg.py); backend, database (tests/backends.py)

ROOT = Path(__file__).resolve().parents[1]
TEST_TOKEN = "MTAwMDAwMDAwMDAwMDAwMDAwMQ.GfakeX.fake-token-for-tests-only_abcdefghij"
FAL_TEST_KEY = "fal-test-key-SECRET-5f3c9a1e:7d2b8e4f6a0c1d3e5f7a9b2c4d6e8f01"
SECRETS = (TEST_TOKEN, FAL_TEST_KEY)


def pytest_configure(config: pytest.Config) -> None:
    """Keep bytecode for this run's many interpreters. With PYTHONDONTWRITEBYTECODE set, as on the CI machines, every
    xdist worker rewrote and compiled every test module again (collecting took 8.7 s of CPU a worker instead of 2.7 s
    with the bytecode kept), and so did every subprocess the tests start. It goes to the checkout's __pycache__
    folders, which git ignores."""
    sys.dont_write_bytecode = False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests marked `long` (each takes a large part of a minute: the crash tests, the bench's smoke run) run
    first. xdist's worksteal scheduler hands each worker a run of the collection and idle workers steal from the end
    of the others' runs: long tests at the start are never left for last, and the short ones balance the tail."""
    # A stable sort: the other tests keep their order.
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto` runs one worker more than the cores: a third of the suite's wall time is spent waiting (bot
    processes starting, fakes answering, crash-test pauses), and an extra worker fills it. Measured on 2 cores
    (`time .venv/bin/python -m pytest -q -n N`): 2 workers 4 min 37 s, 3 workers 3 min 18 s, 4 workers 3 min 42 s."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores + 1


# ---------------------------------------------------------------- no secrets anywhere
# The whole suite runs with the recognisable fake secrets above. A root log handler sees every record (formatted,
# so a token passed in `args` is caught; tracebacks too); the fixtures below scan the subprocess bot's output, every
# file under each test's data dir and every request body the fake Discord stored. Any hit fails the test.


def find_secrets(text: str | bytes) -> list[str]:
    """Which of the test secrets (or their distinctive parts) appear in `text`."""
    if isinstance(text, bytes):
        return [name for name, s in _SECRET_NAMES.items() if s.encode() in text]
    return [name for name, s in _SECRET_NAMES.items() if s in text]


# A secret is also caught when only its secret part leaks (e.g. the token's HMAC, the key after the colon).
_SECRET_NAMES = {
    "DISCORD_TOKEN": TEST_TOKEN,
    "DISCORD_TOKEN (HMAC part)": TEST_TOKEN.rsplit(".", 1)[1],
    "FAL_KEY": FAL_TEST_KEY,
    "FAL_KEY (secret part)": FAL_TEST_KEY.split(":", 1)[1],
}


class SecretSniffer(logging.Handler):
    """Records every log line that carries a test secret."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.leaks: list[str] = []
        self._formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a broken format string: look at the raw parts
            text = f"{record.msg!r} {record.args!r}"
        if record.exc_info:
            text += self._formatter.formatException(record.exc_info)
        if record.stack_info:
            text += record.stack_info
        found = find_secrets(text)
        if found:
            self.leaks.append(f"{record.name} {record.levelname}: {found} in {text[:300]!r}")


SNIFFER = SecretSniffer()


@pytest.fixture(scope="session", autouse=True)
def _sniff_logs_for_secrets():
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(SNIFFER)
    root.setLevel(logging.DEBUG)  # every record reaches the sniffer, DEBUG included
    quiet = {name: logging.getLogger(name).level for name in ("aiosqlite", "asyncio", "PIL")}
    for name in quiet:
        logging.getLogger(name).setLevel(logging.INFO)  # floods at DEBUG, never sees a secret
    yield
    root.removeHandler(SNIFFER)
    root.setLevel(old_level)
    for name, level in quiet.items():
        logging.getLogger(name).setLevel(level)
    assert not SNIFFER.leaks, "secrets in log lines:\n" + "\n".join(SNIFFER.leaks[:10])


@pytest.fixture(autouse=True)
def _no_secret_in_logs_of_this_test():
    before = len(SNIFFER.leaks)
    yield
    leaks = SNIFFER.leaks[before:]
    if leaks:
        del SNIFFER.leaks[before:]  # reported here, not again at the end of the session
        pytest.fail("secrets in log lines:\n" + "\n".join(leaks[:10]), pytrace=False)


def scan_tree_for_secrets(folder: Path) -> list[str]:
    """Files under `folder` that contain a test secret."""
    hits = []
    if folder.is_dir():
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                found = find_secrets(path.read_bytes())
                if found:
                    hits.append(f"{path}: {found}")
    return hits


def scan_discord_for_secrets(fake: FakeDiscord) -> list[str]:
    """Request bodies (JSON, files, query) the fake Discord stored, and the messages it holds."""
    hits = []
    for req in getattr(fake, "requests", []):
        body = json.dumps([req.json, req.query, req.path], default=str)
        found = find_secrets(body) + [
            f for file in getattr(req, "files", []) for f in find_secrets(file.data)
        ]
        if found:
            hits.append(f"{req.method} {req.path}: {sorted(set(found))}")
    for mid, msg in getattr(fake, "messages", {}).items():
        found = find_secrets(json.dumps(msg, default=str))
        if found:
            hits.append(f"message {mid}: {found}")
    return hits


def assert_no_secrets(*hits: list[str]) -> None:
    found = [h for group in hits for h in group]
    assert not found, "test secrets leaked:\n" + "\n".join(found[:10])


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord()
    await fake.start()
    fake.install()
    yield fake
    await fake.close()
    assert_no_secrets(scan_discord_for_secrets(fake))


@pytest.fixture
async def fake_fal() -> AsyncIterator[FakeFal]:
    fake = FakeFal()
    await fake.start()
    fake.install()
    yield fake
    fake.restore()
    await fake.close()


@pytest.fixture(scope="session")
def face_pool():
    """One face worker for every in-process bot of the session (each start would otherwise spawn a process and
    load dlib's models again: about a second of CPU a test)."""
    pool = FacePool(1)
    yield pool
    pool.shutdown()


class BotRunner:
    """Starts and stops the real bot in this process, on a given DATA_DIR."""

    def __init__(
        self,
        discord_fake: FakeDiscord,
        fal_fake: FakeFal,
        data_dir: Path,
        face_pool: FacePool | None = None,
        database_url: str | None = None,
    ) -> None:
        self.discord = discord_fake
        self.fal = fal_fake
        self.data_dir = data_dir
        self.face_pool = face_pool
        self.database_url = database_url  # None: the SQLite file in data_dir
        self.bot: AnchorshotBot | None = None
        self.services: Services | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._task: asyncio.Task[None] | None = None

    def settings(self, *, fal: bool = True, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "discord_token": TEST_TOKEN,
            "fal_key": FAL_TEST_KEY if fal else "",
            "data_dir": self.data_dir,
            "database_url": self.database_url or "",
            "fal_poll_interval_s": 0.05,
            "progress_edit_interval_s": 0.0,
            "notice_ttl_s": 1.0,  # public notices delete themselves quickly in tests
            "retry_backoff_base_s": 0.2,
            "log_level": "DEBUG",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    async def start(
        self,
        *,
        fal: bool = True,
        prepare: Callable[[AnchorshotBot], Awaitable[None]] | None = None,
        **overrides: Any,
    ) -> AnchorshotBot:
        """Start the bot; `prepare(bot)` runs after the services are built and before it logs in."""
        settings = self.settings(fal=fal, **overrides)
        self._stack = contextlib.AsyncExitStack()
        self.services = await self._stack.enter_async_context(
            open_services(settings, face_pool=self.face_pool)
        )
        self.bot = AnchorshotBot(self.services, guild_ready_timeout=0.05)
        await self._stack.enter_async_context(self.bot)
        if prepare is not None:
            await prepare(self.bot)
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
async def runner(fake_discord, fake_fal, tmp_path, face_pool, database_url) -> AsyncIterator[BotRunner]:
    r = BotRunner(fake_discord, fake_fal, tmp_path / "data", face_pool, database_url)
    yield r
    await r.stop()
    assert_no_secrets(scan_tree_for_secrets(r.data_dir))


@pytest.fixture
async def bot(runner) -> AnchorshotBot:
    """The real bot with the fal backend, connected to both fakes."""
    return await runner.start()


class BotProcess:
    """`python -m bot` as a subprocess, pointed at the fakes through its settings."""

    def __init__(
        self,
        discord_fake: FakeDiscord,
        fal_fake: FakeFal,
        data_dir: Path,
        log_path: Path,
        database_url: str | None = None,
    ) -> None:
        self.discord = discord_fake
        self.fal = fal_fake
        self.data_dir = data_dir
        self.log_path = log_path
        self.database_url = database_url  # None: the SQLite file in data_dir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def database(self) -> Path | str:
        """Where tests read the bot's rows (`tests.e2e.helpers.read_db`): the PostgreSQL URL or the SQLite file."""
        return self.database_url or self.data_dir / "anchorshot.sqlite3"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "FAL_"))}
        env.update(
            {
                "DISCORD_TOKEN": TEST_TOKEN,
                "FAL_KEY": FAL_TEST_KEY,
                "DATA_DIR": str(self.data_dir),
                "DATABASE_URL": self.database_url or "",
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
async def bot_process(fake_discord, fake_fal, tmp_path, database_url) -> AsyncIterator[BotProcess]:
    proc = BotProcess(fake_discord, fake_fal, tmp_path / "data", tmp_path / "bot.log", database_url)

    yield proc
    proc.stop()
    output = proc.log_path.read_bytes() if proc.log_path.exists() else b""
    assert_no_secrets(
        [f"bot output (stdout+stderr): {f}" for f in find_secrets(output)],
        scan_tree_for_secrets(proc.data_dir),
    )
