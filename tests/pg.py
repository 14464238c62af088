"""A throwaway PostgreSQL cluster for the tests, and a fresh database per test.

`pg_cluster` (session scope) starts one cluster per pytest process, so one per xdist worker: `initdb` into a
temporary directory, `pg_ctl start` on 127.0.0.1 at a free port, durability off (fsync, synchronous_commit,
full_page_writes). It is stopped (`pg_ctl stop -m immediate`) and its directory removed at the end of the session,
on interpreter exit (atexit) should the session end without its teardown, and by a small watchdog process should
the pytest process die without either (SIGKILL, or an xdist worker leaving through os._exit when its controller
is killed). `pg_url` (function scope) is the DSN of a database of its own made for the test (CREATE DATABASE ...
TEMPLATE template0) and dropped after it.

`initdb` and `pg_ctl` refuse to run as root; when the tests run as root they run as the `postgres` user
(`runuser`, else `su`), which then owns the cluster's directory.

ANCHORSHOT_TEST_DATABASE_URL=postgresql://user:pass@host:port/db uses that server instead of starting one (each
test still gets a database of its own on it, so the user must be allowed to CREATE DATABASE). Without it and
without `initdb` on PATH, the tests that need PostgreSQL are skipped.

Registered for the whole suite by `pytest_plugins` in tests/conftest.py; mark such tests `@pytest.mark.postgres`.
"""

from __future__ import annotations

import atexit
import contextlib
import inspect
import os
import pwd
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import pytest
import pytest_asyncio

ENV_URL = "ANCHORSHOT_TEST_DATABASE_URL"
SKIP_REASON = (
    "PostgreSQL is not installed here (no initdb on PATH); set ANCHORSHOT_TEST_DATABASE_URL to use a server"
)
SERVER_USER = "postgres"  # the OS user the cluster runs as when the tests run as root
DB_PREFIX = "anchorshot_test_"

# Settings for a cluster that only lives as long as a test session: no durability, room for many connections.
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
}
START_TIMEOUT_S = 60
PORT_ATTEMPTS = 5


def unavailable_reason() -> str | None:
    """Why a cluster can't be had here (None when it can): no server URL given and no `initdb` to make one."""
    if os.environ.get(ENV_URL):
        return None
    if shutil.which("initdb") is None:
        return SKIP_REASON
    if shutil.which("pg_ctl") is None:
        return (
            "PostgreSQL is incomplete here (initdb but no pg_ctl on PATH); set ANCHORSHOT_TEST_DATABASE_URL"
        )
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (another process may take it before us)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _conf_value(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class PgCluster:
    """One PostgreSQL cluster in a directory of its own: `start(base_dir)`, `dsn`, `stop()`.

    `base_dir` holds the data directory (`data/`), the server log (`postgres.log`) and the Unix socket; `stop()`
    removes it. `PgCluster.existing(url)` wraps a server started elsewhere: `start` and `stop` do nothing."""

    def __init__(self) -> None:
        self.base_dir: Path | None = None
        self.port: int | None = None
        self._dsn: str | None = None
        self._external = False
        self._owner_pid = os.getpid()  # a forked child never stops its parent's cluster
        self._lock = threading.Lock()
        self._watchdog: subprocess.Popen[bytes] | None = None

    @classmethod
    def existing(cls, url: str) -> PgCluster:
        cluster = cls()
        cluster._dsn = url
        cluster._external = True
        return cluster

    @property
    def dsn(self) -> str:
        """The superuser's DSN to the `postgres` database, e.g. postgresql://postgres@127.0.0.1:PORT/postgres."""
        if self._dsn is None:
            raise RuntimeError("the PostgreSQL cluster is not running")
        return self._dsn

    @property
    def data_dir(self) -> Path:
        if self.base_dir is None:
            raise RuntimeError("the PostgreSQL cluster was never started")
        return self.base_dir / "data"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / "postgres.log"

    # ------------------------------------------------------------------ starting

    def start(self, base_dir: Path) -> str:
        """initdb into `base_dir`/data and start the server on a free port; returns the DSN. On failure nothing is
        left running and `base_dir` is removed."""
        if self._external:
            return self.dsn
        if self.base_dir is not None:
            raise RuntimeError(f"this cluster was already started in {self.base_dir}")
        initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise RuntimeError(SKIP_REASON)
        self.base_dir = base_dir = Path(base_dir).resolve()
        try:
            self._prepare_dirs(base_dir)
            self._start_watchdog()
            self._run(
                [initdb, "-D", str(self.data_dir), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]
                + ["--locale=C"],
            )
            self._configure()
            self._start_on_free_port(pg_ctl)
        except BaseException:
            self.stop()
            raise
        return self.dsn

    def _prepare_dirs(self, base_dir: Path) -> None:
        base_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(mode=0o700)
        if os.geteuid() != 0:
            return
        try:
            user = pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise RuntimeError(
                f"the tests run as root and initdb refuses root, but there is no {SERVER_USER!r} user to run it as"
            ) from None
        for path in (base_dir, self.data_dir):
            os.chown(path, user.pw_uid, user.pw_gid)
        base_dir.chmod(0o755)
        # The server user must be able to reach base_dir: every parent needs others' search (x) permission.
        for parent in base_dir.parents:
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)

    def _configure(self) -> None:
        settings = dict(SETTINGS, unix_socket_directories=str(self.data_dir.parent))
        lines = ["", "# anchorshot tests (tests/pg.py)"] + [
            f"{k} = {_conf_value(v)}" for k, v in settings.items()
        ]
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n".join(lines) + "\n")

    def _start_on_free_port(self, pg_ctl: str) -> None:
        for _ in range(PORT_ATTEMPTS):
            port = free_port()
            self.log_path.unlink(missing_ok=True)
            result = self._run(
                [pg_ctl, "-D", str(self.data_dir), "-l", str(self.log_path), "-o", f"-p {port}"]
                + ["-w", "-t", str(START_TIMEOUT_S), "start"],
                check=False,
            )
            if result.returncode == 0:
                self.port = port
                self._dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
                return
            log = self._log_tail()
            if "Address already in use" not in log:
                raise RuntimeError(f"pg_ctl start failed ({result.returncode}): {result.stdout}\n{log}")
            self._kill_postmaster()  # it should be gone already; never leave one behind before retrying
        raise RuntimeError(f"no free port for PostgreSQL after {PORT_ATTEMPTS} attempts:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def _run(self, cmd: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `cmd` as the server user (as is when not root), in base_dir (a directory it can enter)."""
        if os.geteuid() == 0:
            if runuser := shutil.which("runuser"):
                cmd = [runuser, "-u", SERVER_USER, "--", *cmd]
            else:
                cmd = ["su", SERVER_USER, "-s", "/bin/sh", "-c", shlex.join(cmd)]
        result = subprocess.run(
            cmd,
            cwd=self.base_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=START_TIMEOUT_S + 30,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"{shlex.join(cmd)} failed ({result.returncode}):\n{result.stdout[-3000:]}")
        return result

    # ------------------------------------------------------------------ stopping

    def stop(self) -> None:
        """Stop the server at once (no checkpoint: its data is thrown away) and remove base_dir. Idempotent; does
        nothing in a process other than the one that made the cluster (e.g. a forked child at its exit)."""
        if self._external or os.getpid() != self._owner_pid:
            return
        with self._lock:
            if self.base_dir is None:
                return
            try:
                pid = self._postmaster_pid()
                pg_ctl = shutil.which("pg_ctl")
                if pid is not None and pg_ctl is not None:
                    with contextlib.suppress(Exception):
                        self._run(
                            [pg_ctl, "-D", str(self.data_dir), "stop", "-m", "immediate", "-w"], check=False
                        )
                self._kill_postmaster()
                if pid is not None:
                    _wait_gone(pid)
            finally:
                shutil.rmtree(self.base_dir, ignore_errors=True)
                self.base_dir = self.port = self._dsn = None
                self._stop_watchdog()

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def _kill_postmaster(self) -> None:
        kill_postmaster(str(self.data_dir))

    def _start_watchdog(self) -> None:
        """A process of its own session that waits for EOF on its stdin, i.e. for this process to close the pipe
        or to die in any way (SIGKILL, os._exit: an xdist worker whose controller was killed exits so, skipping
        atexit), and then stops the postmaster and removes base_dir."""
        script = inspect.getsource(kill_postmaster) + _WATCHDOG_MAIN
        self._watchdog = subprocess.Popen(
            [sys.executable, "-I", "-c", script, str(self.data_dir), str(self.base_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,  # out of the terminal's process group: Ctrl-C doesn't stop it before its job
        )

    def _stop_watchdog(self) -> None:
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is None:
            return
        assert watchdog.stdin is not None
        watchdog.stdin.close()  # EOF: it finds nothing left to stop and exits
        try:
            watchdog.wait(10)
        except subprocess.TimeoutExpired:
            watchdog.kill()
            watchdog.wait()


def kill_postmaster(data_dir: str) -> None:
    """SIGQUIT (PostgreSQL's immediate shutdown) to the postmaster named in `data_dir`/postmaster.pid, then wait
    (10 s at most, then SIGKILL) until it has gone: it removes that file as it exits. Nothing when the file is
    absent or names a process that isn't postgres (a stale file, its pid reused). The watchdog runs this function's
    source on its own, so it uses nothing but what it imports."""
    import os
    import signal
    import time

    pid_file = os.path.join(data_dir, "postmaster.pid")
    try:
        with open(pid_file) as f:
            pid = int(f.readline())
    except (OSError, ValueError):
        return
    try:
        with open(f"/proc/{pid}/comm") as f:
            if f.read().strip() != "postgres":
                return
    except FileNotFoundError:
        if os.path.exists("/proc/self"):
            return  # no such process
    try:
        os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + 10
        while os.path.exists(pid_file):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                break
            os.kill(pid, 0)  # ProcessLookupError once it is gone (e.g. killed before it removed the file)
            time.sleep(0.02)
    except (ProcessLookupError, PermissionError):
        pass


_WATCHDOG_MAIN = """
import shutil, signal, sys

signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
sys.stdin.buffer.read()
kill_postmaster(sys.argv[1])
shutil.rmtree(sys.argv[2], ignore_errors=True)
"""


def _wait_gone(pid: int, timeout_s: float = 5.0) -> None:
    """Wait until `pid` has left the process table. The postmaster pg_ctl started is a child of init (pg_ctl
    detaches it), so once it exits it stays a zombie until init reaps it; `pgrep postgres` would still list it."""
    proc = Path(f"/proc/{pid}")
    deadline = time.monotonic() + timeout_s
    while proc.exists() and time.monotonic() < deadline:
        time.sleep(0.01)


# ---------------------------------------------------------------------- databases


def database_dsn(dsn: str, database: str) -> str:
    """`dsn` pointing at `database` instead (user, password, host, port and query kept)."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + quote(database, safe="")))


def database_name(dsn: str) -> str:
    return unquote(urlsplit(dsn).path.lstrip("/"))


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def create_database(dsn: str) -> str:
    """Make a new, empty database with a unique name on `dsn`'s server and return its DSN."""
    import asyncpg

    name = f"{DB_PREFIX}{uuid.uuid4().hex}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"CREATE DATABASE {_quote_ident(name)} TEMPLATE template0")
    finally:
        await conn.close()
    return database_dsn(dsn, name)


async def drop_database(dsn: str, database: str) -> None:
    """Drop `database` (the DSN create_database returned) through `dsn`'s connection, ending its sessions first."""
    import asyncpg

    name = database_name(database)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        force = " WITH (FORCE)" if conn.get_server_version().major >= 13 else ""
        await conn.execute(f"DROP DATABASE IF EXISTS {_quote_ident(name)}{force}")
    finally:
        await conn.close()


async def table_counts(conn: Any) -> dict[str, int]:
    """Rows in every table of the connection's schema (schema_migrations left out), by table name."""
    names = [
        r[0]
        for r in await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            " AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations'"
        )
    ]
    return {n: int(await conn.fetchval(f"SELECT COUNT(*) FROM {_quote_ident(n)}")) for n in names}  # noqa: S608


# ---------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """The session's PostgreSQL server: ANCHORSHOT_TEST_DATABASE_URL's, else a cluster started for this process
    (one per xdist worker). Skips the test when neither can be had."""
    url = os.environ.get(ENV_URL)
    if url:
        yield PgCluster.existing(url)
        return
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    cluster = PgCluster()
    atexit.register(cluster.stop)  # should the session end without this fixture's teardown
    try:
        cluster.start(Path(tempfile.mkdtemp(prefix="anchorshot-pg-")))
        yield cluster
    finally:
        cluster.stop()
        atexit.unregister(cluster.stop)


@pytest_asyncio.fixture
async def pg_url(pg_cluster: PgCluster) -> AsyncIterator[str]:
    """The DSN of a fresh, empty database of this test's own; dropped after the test."""
    url = await create_database(pg_cluster.dsn)
    try:
        yield url
    finally:
        await drop_database(pg_cluster.dsn, url)
