"""Scale bench (issues #10, #15): N takes in flight, measured end to end against floors measured in the same run.

Run: .venv/bin/python bench/scale.py [--takes 500] [--quick]
     .venv/bin/python bench/scale.py --database auto|postgresql://... [--processes 2] [--baseline SQLITE.json]

The bot runs as `python -m bot` (through bench/looplag.py, which adds an event-loop lag probe) against the fake
Discord and the fake fal on 127.0.0.1, and is driven ONLY through their protocols: slash commands over the fake
gateway, fal over the fake's HTTP. Results come from the fakes' records (and nothing from the engine's internals),
so the bench keeps working when the take engine changes. Phases, in order:

  A. floor bot (bench/floor_bot.py): the command storm against a bare discord.py bot;
  B. the bot: anchors in several channels, N `/shot`s from several members (fal holds every job IN_PROGRESS);
  C. the command storm while the N takes are at fal (`/status`, and `/anchor clear` from a member without Manage
     Messages, which the bot refuses before touching its database);
  D. SIGKILL, start again: time until fal has seen a status request for every take;
  E. fal releases all N together: COMPLETED -> result fetched, COMPLETED -> clip posted, delivered exactly once;
     then every take's face score (issue #15): the anchors are a real portrait and the clips show that face, so each
     posted take runs its `face_score` job in the bot's niced face worker and its verdict is an edit of the clip;
  F. floors: bench/floor_http.py doing the same HTTP per take; a bare client re-polling N jobs; bench/floor_face.py
     scoring the same clip directly in a bare process (the floor for the face worker's CPU per take);
  G. ledger: BudgetService holds, 50 members at once, vs plain sqlite3 (same schema and statements);
  H. re-encode of the 15 MiB 1080p clip (bench/run.py's measurement).

Bot CPU is utime + stime of the bot's own process (/proc/<pid>/stat); the face worker, its child, is read from its
own /proc entry. The lag probe is paused while the clips are scored (see bench/looplag.py). `--profile DIR` runs
py-spy on the bot in each phase (bench/profile_top.py reads the files; one file per process with several).

PostgreSQL (issue #18): `--database auto` starts a throwaway cluster (tests/pg.py), `--database URL` uses that server;
each run gets a fresh database (bench/scale_pg.py). `--processes N` starts N bot processes as shards 0..N-1 of N on
it, with a guild on each shard (the channels spread over them, every member in each, the storm's commands alternating
over them); the restart kills and starts them all. Bot CPU is then the sum over the N processes (and their face
workers, each process's own); the server's CPU is reported beside it when it runs on this machine. The ledger is
BudgetService on PostgresDatabase against plain asyncpg, 50 members at once and one at a time. `--baseline` names a
SQLite run's JSON to compare CPU per take with (issue #18: within 1.5x).

Prints a table (ratios first) and writes it as JSON to bench/results/scale-<date>.json. Timing is never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import io
import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import faces_samples  # noqa: E402
from tests.fakes.discord import DEFAULT_MEMBER_PERMS, FakeDiscord, shard_of, text_of  # noqa: E402
from tests.fakes.fal_fake import FakeFal, Outcome  # noqa: E402

TOKEN = "MTAwMDAwMDAwMDAwMDAwMDAwMQ.GfakeX.fake-token-for-tests-only_abcdefghij"
TAKE_RE = re.compile(r"bench-take-(\d+)")
DEADLINE_S = 3.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

# figure key -> (label, goal text from issue #10, goal test on the bot's value, unit)
FIGURES: dict[str, tuple[str, str]] = {
    "status_worst_s": ("worst /status answer (s)", "< 1 s"),
    "status_missed": ("commands that missed the 3 s deadline", "0"),
    "status_worst_delivery_s": ("worst /status answer, N clips being delivered (s)", "< 1 s"),
    "status_missed_delivery": ("  missed the deadline, N clips being delivered", "0"),
    "stall_outside_s": ("worst loop stall, no-DB command answer (s)", "< 0.25 s"),
    "stall_probe_s": ("worst loop stall, in-process probe (s)", "< 0.25 s"),
    "stall_probe_delivery_s": ("  the same, N clips being delivered (s)", "< 0.25 s"),
    "completed_to_fetch_median_s": ("COMPLETED -> result fetched, median of N (s)", "~half a poll (1.5 s)"),
    "completed_to_fetch_s": ("  the same, last of N (s)", "~one poll (3 s)"),
    "completed_to_post_s": ("COMPLETED -> clip posted, last of N (s)", "< 10 s"),
    "cpu_per_take_ms": ("bot CPU per take, to its verdict (ms)", "<= 5x floor (#15)"),
    "cpu_per_take_to_post_ms": ("  the same, to its clip (#10's window) (ms)", "< 30 ms (#10)"),
    "unscored_takes": ("takes without their face verdict", "0"),
    "score_lag_median_s": ("clip posted -> verdict shown, median of N (s)", "-"),
    "score_lag_last_s": ("  the same, last of N (s)", "-"),
    "worker_cpu_per_take_ms": ("face worker CPU per take (ms)", "-"),
    "discord_per_take": ("Discord requests per take", "<= 4"),
    "discord_edits_per_take": ("  of them edits", "state changes only"),
    "fal_per_take": ("fal requests per take", "-"),
    "fal_status_per_interval": ("fal status GETs per take per poll interval", "<= 1"),
    "ledger_holds_per_s": ("ledger holds/s, 50 members at once", ">= 2000, zero overspend"),
    "restart_s": ("restart -> all N polled again (s)", "< 5 s"),
    "reencode_x_length": ("re-encode 15 MiB 1080p 5 s: wall / clip length", "<= 1x, one pass"),
}
GOALS = {
    "status_worst_s": lambda v: v < 1.0,
    "status_missed": lambda v: v == 0,
    "status_worst_delivery_s": lambda v: v < 1.0,
    "status_missed_delivery": lambda v: v == 0,
    "stall_probe_delivery_s": lambda v: v < 0.25,
    "stall_outside_s": lambda v: v < 0.25,
    "stall_probe_s": lambda v: v < 0.25,
    "completed_to_post_s": lambda v: v < 10.0,
    "cpu_per_take_to_post_ms": lambda v: v < 30.0,
    "unscored_takes": lambda v: v == 0,
    "discord_per_take": lambda v: v <= 4,
    "fal_status_per_interval": lambda v: v <= 1.05,
    "ledger_holds_per_s": lambda v: v >= 2000,
    "restart_s": lambda v: v < 5.0,
    "reencode_x_length": lambda v: v <= 1.0,
}


# On PostgreSQL (issue #18), after the figures above: the ledger one hold at a time, and the server's CPU.
PG_FIGURES: dict[str, tuple[str, str]] = {
    "ledger_seq_holds_per_s": ("ledger holds/s, one at a time", ">= 2000, zero overspend"),
    "db_cpu_per_take_ms": ("PostgreSQL server CPU per take, to its verdict (ms)", "-"),
    "db_cpu_per_take_to_post_ms": ("  the same, to its clip (ms)", "-"),
}
# With --baseline (a SQLite run's JSON): CPU per take against that run's (the floor column).
BASELINE_FIGURES: dict[str, tuple[str, str]] = {
    "cpu_vs_sqlite_ms": ("bot CPU per take to its verdict, vs SQLite run (ms)", "<= 1.5x SQLite (#18)"),
    "cpu_to_post_vs_sqlite_ms": ("  the same, to its clip, vs SQLite run (ms)", "<= 1.5x SQLite (#18)"),
    "cpu_with_db_to_post_vs_sqlite_ms": ("  bot + PostgreSQL, to its clip, vs SQLite (ms)", "-"),
}
GOALS["ledger_seq_holds_per_s"] = lambda v: v >= 2000

HIGHER_IS_BETTER = {"ledger_holds_per_s", "ledger_seq_holds_per_s"}
RATIO_GOALS = {  # met when bot / floor is at most this
    "cpu_per_take_ms": 5.0,  # issue #15
    "cpu_vs_sqlite_ms": 1.5,  # issue #18
    "cpu_to_post_vs_sqlite_ms": 1.5,
}
LABELS = {**FIGURES, **PG_FIGURES, **BASELINE_FIGURES}


class StampedList(list):
    """The fake Discord's request log with the time each request was recorded (after it was answered)."""

    def __init__(self, items: list) -> None:
        super().__init__(items)
        self.stamps: dict[int, float] = {}

    def append(self, item: Any) -> None:
        self.stamps[id(item)] = time.monotonic()
        super().append(item)

    def stamp(self, item: Any) -> float:
        return self.stamps[id(item)]


def scale_pg() -> Any:
    """bench/scale_pg.py (PostgreSQL: asyncpg, tests/pg.py), imported only when a run uses it."""
    sys.path.insert(0, str(ROOT / "bench"))
    import scale_pg as module

    return module


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children_of(pid: int) -> dict[int, str]:
    """pid -> command line of every live child process of `pid` (scanned from /proc)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != pid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                out[int(entry)] = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return out


def face_workers_cpu(pid: int) -> dict[int, float]:
    """pid -> utime + stime of each face worker of the bot `pid`: its multiprocessing spawn children (the
    resource tracker is a child too, and left out). A child's CPU is never in its parent's own utime/stime."""
    out = {}
    for child, cmdline in children_of(pid).items():
        if "spawn_main" in cmdline:
            with contextlib.suppress(OSError, ValueError, IndexError):
                out[child] = proc_cpu_s(child)
    return out


def lag_between(path: Path | list[Path], t0: float, t1: float) -> float | None:
    """The worst event-loop lag the probe saw in windows ending within [t0, t1 + one window] (of any of the
    processes, given a list of their probes' files)."""
    worst = None
    for p in path if isinstance(path, list) else [path]:
        if not p.exists():
            continue
        for line in p.read_text().splitlines():
            with contextlib.suppress(ValueError):
                rec = json.loads(line)
                if t0 <= rec["t"] <= t1 + 0.3:
                    worst = max(worst or 0.0, rec["max"])
    return worst


class Child:
    """A subprocess (the bot or the floor bot) pointed at the fakes, with the loop-lag probe."""

    def __init__(self, name: str, target: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.target = target
        self.env = env
        self.log = workdir / f"{name}.log"
        self.lag = workdir / f"{name}.lag.jsonl"
        self.proc: subprocess.Popen[bytes] | None = None
        self.spawned_at = 0.0

    def spawn(self) -> None:
        with self.log.open("ab") as log:
            self.spawned_at = time.monotonic()
            self.proc = subprocess.Popen(  # noqa: ASYNC220
                [sys.executable, str(ROOT / "bench" / "looplag.py"), str(self.lag), *self.target],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu(self) -> float:
        return proc_cpu_s(self.pid)

    def dead(self) -> str | None:
        """What the child said before it exited, or None while it runs."""
        if self.proc is not None and self.proc.poll() is not None:
            return f"{self.name} exited: {self.log.read_text()[-3000:]}"
        return None

    def pause_probe(self) -> None:
        """Stop bench/looplag.py's probe in the child (SIGUSR1) until resume_probe (SIGUSR2)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGUSR1)

    def resume_probe(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGUSR2)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Bots:
    """The bot: one process, or N processes (shards 0..N-1 of N on one PostgreSQL database), measured as one. CPU
    is the sum over the processes; a probe's lag the worst of theirs; the restart kills and starts them all."""

    def __init__(self, children: list[Child]) -> None:
        self.children = children
        self.name = children[0].name if len(children) == 1 else f"{len(children)} bot processes"

    def spawn(self) -> None:
        for child in self.children:
            child.spawn()

    @property
    def spawned_at(self) -> float:
        return min(child.spawned_at for child in self.children)

    @property
    def pid(self) -> int:
        return self.children[0].pid

    @property
    def pids(self) -> list[int]:
        return [child.pid for child in self.children]

    @property
    def lag(self) -> list[Path]:
        return [child.lag for child in self.children]

    def cpu(self) -> float:
        return sum(child.cpu() for child in self.children)

    def cpu_each(self) -> list[float]:
        return [child.cpu() for child in self.children]

    def face_workers_cpu(self) -> dict[int, float]:
        out: dict[int, float] = {}
        for pid in self.pids:
            out.update(face_workers_cpu(pid))
        return out

    def dead(self) -> str | None:
        for child in self.children:
            if (said := child.dead()) is not None:
                return said
        return None

    def pause_probe(self) -> None:
        for child in self.children:
            child.pause_probe()

    def resume_probe(self) -> None:
        for child in self.children:
            child.resume_probe()

    def kill(self) -> None:
        for child in self.children:
            child.kill()

    def stop(self) -> None:
        for child in self.children:
            child.stop()


def threads_cpu(pid: int) -> dict[int, float]:
    """OS thread id -> utime + stime of each thread of `pid` (/proc/<pid>/task)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            out[int(tid)] = _task_cpu_s(pid, int(tid))
    return out


def _task_cpu_s(pid: int, tid: int) -> float:
    with open(f"/proc/{pid}/task/{tid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Profile:
    """py-spy on the bot for one phase at a time (--profile DIR): `py-spy record -r 100 -f raw --threads
    --nonblocking` (idle samples off, py-spy's default), one collapsed-stacks file per phase; and each thread's
    exact CPU in the phase from /proc/<pid>/task, named by `py-spy dump` (<phase>.threads.json). py-spy's own
    samples count a thread waiting for the GIL as busy; the /proc figures do not. With several bot processes, one
    py-spy each: <phase>.p<k>.txt for process k."""

    def __init__(self, out_dir: Path | None) -> None:
        self.out_dir = out_dir
        # one per process: (py-spy, pid, file stem, the process's threads' CPU at the start)
        self.spies: list[tuple[subprocess.Popen[bytes], int, str, dict[int, float]]] = []
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)

    def start(self, pid: int | list[int], phase: str) -> None:
        if self.out_dir is None:
            return
        self.stop()
        pids = pid if isinstance(pid, list) else [pid]
        spy = Path(sys.executable).with_name("py-spy")
        for k, one in enumerate(pids):
            stem = phase if len(pids) == 1 else f"{phase}.p{k}"
            command = [
                str(spy),
                "record",
                "-p",
                str(one),
                "-r",
                "100",
                "-f",
                "raw",
                "--threads",
                "--nonblocking",
            ]
            log = (self.out_dir / f"{stem}.log").open("wb")
            before = threads_cpu(one)
            proc = subprocess.Popen(  # noqa: ASYNC220
                [*command, "-o", str(self.out_dir / f"{stem}.txt")], stdout=log, stderr=subprocess.STDOUT
            )
            self.spies.append((proc, one, stem, before))

    def stop(self) -> None:
        spies, self.spies = self.spies, []
        for proc, pid, stem, before in spies:
            if self.out_dir is not None:
                with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                    after = threads_cpu(pid)
                    spy = Path(sys.executable).with_name("py-spy")
                    dump = subprocess.run(  # noqa: ASYNC221
                        [str(spy), "dump", "-p", str(pid), "--nonblocking"],
                        capture_output=True,
                        text=True,
                        timeout=60,
                    ).stdout
                    names = {
                        int(m[1]): m[2] for m in re.finditer(r'^Thread (\d+) \([^)]*\): "(.*)"$', dump, re.M)
                    }
                    cpu = {
                        f"{names.get(tid, '?')} [{tid}]": round(v - before.get(tid, 0.0), 3)
                        for tid, v in after.items()
                    }
                    (self.out_dir / f"{stem}.threads.json").write_text(
                        json.dumps(dict(sorted(cpu.items(), key=lambda kv: -kv[1])), indent=1) + "\n"
                    )
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


def child_env(discord: FakeDiscord, fal: FakeFal, data_dir: Path, **extra: str) -> dict[str, str]:
    own = ("DISCORD_", "FAL_", "MAX_SHOTS", "DATABASE_URL", "SHARD_", "JOB_LEASE_S")  # the bench sets these
    env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    env.update(
        {
            "DISCORD_TOKEN": TOKEN,
            "FAL_KEY": "test-key",
            "DATA_DIR": str(data_dir),
            "DISCORD_API_BASE": f"{discord.base_url}/api/v10",
            "DISCORD_GATEWAY_URL": discord.base_url.replace("http://", "ws://") + "/",
            "FAL_QUEUE_URL": f"{fal.base_url}/queue/",
            "FAL_REST_URL": f"{fal.base_url}/rest",
            "FAL_CDN_URL": f"{fal.base_url}/cdn",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


async def wait_until(
    pred: Any, timeout: float, what: str, child: Child | Bots | None = None, every: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if child is not None and (said := child.dead()) is not None:
            raise RuntimeError(said)
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(every)


async def start_child(discord: FakeDiscord, child: Child | Bots, commands: set[str]) -> None:
    identified = discord.identify_count
    child.spawn()
    shards = len(child.children) if isinstance(child, Bots) else 1
    await wait_until(
        lambda: discord.identify_count >= identified + shards, 60, f"{child.name} to connect", child
    )

    def synced() -> bool:
        names = {c["name"] for cmds in discord.synced_commands.values() for c in cmds}
        return commands <= names

    await wait_until(synced, 60, f"{child.name}'s commands", child)


# ------------------------------------------------------------------------------------------- command storm


def callback_times(discord: FakeDiscord) -> dict[int, float]:
    """interaction id -> when its first callback arrived (answered or refused as too late)."""
    out: dict[int, float] = {}
    stamps: StampedList = discord.requests  # type: ignore[assignment]
    for req in stamps:
        m = re.fullmatch(r"/interactions/(\d+)/[^/]+/callback", req.path)
        if m and req.method == "POST":
            iid = int(m[1])
            if iid not in out:
                out[iid] = stamps.stamp(req)
    return out


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def storm(
    discord: FakeDiscord,
    user: int,
    count: int,
    rate: float,
    stop: Any = None,
    min_count: int = 0,
    channels: list[int] | None = None,
) -> dict:
    """Fire up to `count` commands at `rate` a second (or until `stop()` is true, after at least `min_count`),
    alternating /status and the no-DB /anchor clear; answer latency as the fake sees it: dispatch -> first
    callback. `channels`: each pair of commands in the next of them (one per shard's guild), else all in the
    default channel."""
    t0 = time.monotonic()
    tasks = []
    for i in range(count):
        if stop is not None and i >= min_count and stop():
            break
        await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
        cmd = "status" if i % 2 == 0 else "anchor clear"
        where = {} if channels is None else {"channel_id": channels[(i // 2) % len(channels)]}
        tasks.append(asyncio.create_task(discord.slash(cmd, user=user, **where)))
    inters = await asyncio.gather(*tasks)
    fired = [(i.command, i) for i in inters]
    t1 = time.monotonic()
    ids = {i.id for _, i in fired}
    # Wait for every answer, or until it can only be a miss.
    with contextlib.suppress(TimeoutError):
        await wait_until(lambda: ids <= set(callback_times(discord)), DEADLINE_S + 30, "answers")
    cbs = callback_times(discord)
    lat: dict[str, list[float]] = {"status": [], "anchor clear": []}
    by_channel: dict[str, list[float]] = {}  # /status answers per channel (per shard's process with several)
    missed = unanswered = 0
    for cmd, inter in fired:
        at = cbs.get(inter.id)
        if at is None:
            unanswered += 1
            missed += 1
            lat[cmd].append(float("inf"))
            continue
        latency = at - inter.dispatched_at
        lat[cmd].append(latency)
        if cmd == "status":
            by_channel.setdefault(str(inter.channel_id), []).append(latency)
        if latency > DEADLINE_S or not inter.acknowledged:
            missed += 1
    nodb = lat["anchor clear"]
    return {
        "t0": t0,
        "t1": t1,
        "commands": len(fired),
        "rate_per_s": rate,
        "ids": ids,
        "status_worst_s": max(lat["status"]),
        "status_p99_s": p99(lat["status"]),
        "status_median_s": statistics.median(lat["status"]),
        "nodb_worst_s": max(nodb) if nodb else None,
        "nodb_p99_s": p99(nodb) if nodb else None,
        "nodb_median_s": statistics.median(nodb) if nodb else None,
        "missed": missed,
        "unanswered": unanswered,
        "status_by_channel": {
            cid: {"worst_s": max(v), "p99_s": p99(v), "median_s": statistics.median(v)}
            for cid, v in by_channel.items()
        }
        if channels is not None
        else None,
    }


def lag_phases(
    path: Path | list[Path], phases: dict[str, tuple[float, float]]
) -> dict[str, dict[str, float | None]]:
    """Worst and 99th-percentile loop lag (over 0.25 s windows) the probe saw in each phase (in any process)."""
    recs = []
    for p in path if isinstance(path, list) else [path]:
        if p.exists():
            for line in p.read_text().splitlines():
                with contextlib.suppress(ValueError):
                    recs.append(json.loads(line))
    out: dict[str, dict[str, float | None]] = {}
    for name, (a, b) in phases.items():
        maxima = [r["max"] for r in recs if a <= r["t"] <= b + 0.3]
        out[name] = {"worst_s": max(maxima) if maxima else None, "p99_s": p99(maxima) if maxima else None}
    return out


# ------------------------------------------------------------------------------------------- takes


def clip_posts(discord: FakeDiscord) -> dict[int, list[float]]:
    """take index -> times a clip (an mp4 attachment) for it was posted, from the fake's request log."""
    out: dict[int, list[float]] = {}
    stamps: StampedList = discord.requests  # type: ignore[assignment]
    for req in stamps:
        if req.method not in ("POST", "PATCH") or req.status is None or req.status >= 300:
            continue
        if not any(f.filename.endswith(".mp4") for f in req.files):
            continue
        m = TAKE_RE.search(json.dumps(req.json))
        if m:
            out.setdefault(int(m[1]), []).append(stamps.stamp(req))
    return out


def clip_messages_per_take(discord: FakeDiscord, channels: list[int]) -> dict[int, int]:
    """take index -> clip messages that exist in the channels (what members see)."""
    out: dict[int, int] = {}
    for cid in channels:
        for msg in discord.channel_messages(cid):
            if any(a["filename"].endswith(".mp4") for a in msg.get("attachments", [])):
                m = TAKE_RE.search(text_of(msg))
                if m:
                    out[int(m[1])] = out.get(int(m[1]), 0) + 1
    return out


class VerdictWatch:
    """When each take's face verdict was shown: the first edit of its clip message after the clip was posted (the
    bot edits a posted clip only to show its verdict; what the edit looks like is the chat side's business, so it
    is not read). Built once every clip is posted; scans the fake's request log incrementally (scoring can take
    minutes)."""

    def __init__(self, discord: FakeDiscord, channels: list[int], posts: dict[int, list[float]]) -> None:
        self.discord = discord
        self.posted_at = {take: min(times) for take, times in posts.items()}
        self.clip_of: dict[str, int] = {}  # clip message id -> take index
        for cid in channels:
            for msg in discord.channel_messages(cid):
                if any(a["filename"].endswith(".mp4") for a in msg.get("attachments", [])):
                    m = TAKE_RE.search(text_of(msg))
                    if m:
                        self.clip_of[str(msg["id"])] = int(m[1])
        self.seen = 0
        self.shown: dict[int, float] = {}  # take index -> its verdict edit
        self.edits = 0  # edits of clip messages after their post, in all (more than one per take: a repeat)

    def update(self) -> int:
        stamps: StampedList = self.discord.requests  # type: ignore[assignment]
        new = stamps[self.seen :]
        self.seen += len(new)
        for req in new:
            if req.method != "PATCH" or req.status is None or req.status >= 300 or req.files:
                continue
            take = self.clip_of.get(str(req.params.get("message_id")))
            at = stamps.stamp(req)
            if take is None or at < self.posted_at.get(take, float("inf")):
                continue
            self.edits += 1
            self.shown.setdefault(take, at)
        return len(self.shown)


def bot_scores(db_path: Path) -> dict:
    """What the bot's database says about the scores (read after the bot stopped): face_score jobs per state,
    take_scores rows per verdict, and takes posted without a score row."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        jobs = dict(conn.execute("SELECT state, COUNT(*) FROM jobs WHERE kind='face_score' GROUP BY state"))
        verdicts = dict(conn.execute("SELECT verdict, COUNT(*) FROM take_scores GROUP BY verdict"))
        unscored = conn.execute(
            "SELECT COUNT(*) FROM jobs t WHERE t.kind='take' AND t.state='posted'"
            " AND NOT EXISTS (SELECT 1 FROM take_scores s WHERE s.take_id=t.id)"
        ).fetchone()[0]
        takes_posted = conn.execute(
            "SELECT COUNT(*) FROM jobs WHERE kind='take' AND state='posted'"
        ).fetchone()[0]
    finally:
        conn.close()
    return {
        "face_score_jobs": jobs,
        "take_scores": verdicts,
        "takes_posted": takes_posted,
        "posted_takes_without_score_row": unscored,
    }


def take_of(fal: FakeFal) -> dict[str, int]:
    out = {}
    for sub in fal.submissions:
        m = TAKE_RE.search(json.dumps(sub.arguments))
        if m and sub.state != "REJECTED":
            out[sub.request_id] = int(m[1])
    return out


def classify_discord(req: Any) -> str:
    path, method = req.path, req.method
    if re.fullmatch(r"/interactions/\d+/[^/]+/callback", path):
        return "create"  # an answer (a message, or "thinking")
    if "/reactions/" in path:
        return "reaction"
    if method == "POST" and (path.endswith("/messages") or re.fullmatch(r"/webhooks/\d+/[^/]+", path)):
        return "create"
    if method == "PATCH":
        return "edit"
    if method == "DELETE":
        return "delete"
    if method == "GET" and "/messages" in path:
        return "read"
    if path.startswith(("/users/@me", "/gateway", "/applications", "/oauth2")) or "/commands" in path:
        return "startup"
    return "other"


def shard_guilds(discord: FakeDiscord, shards: int) -> list[Any]:
    """One guild per shard of `shards` (the default guild on its own, the others added with every user so far as
    members and a new owner each), in shard order."""
    by_shard = {shard_of(discord.guild_id, shards): discord.default_guild}
    for k in range(shards):
        if k not in by_shard:
            by_shard[k] = discord.add_guild(f"bench-shard-{k}", shard=(k, shards))
    return [by_shard[k] for k in range(shards)]


async def run_takes(args: argparse.Namespace, work: Path, pg: tuple[Any, str] | None = None) -> dict:
    """Phases A-F. `pg`: (bench/scale_pg.py's Server, the URL of this run's fresh database) to run the bot on
    PostgreSQL, else SQLite in its data folder."""
    n = args.takes
    procs = args.processes
    discord = FakeDiscord()
    await discord.start()
    discord.requests = StampedList(discord.requests)
    fal = FakeFal()
    await fal.start()
    # Every take's clip: the anchor's own face with a camera move (tests/faces_samples.anchor_clip, 640x480, 2 s,
    # 53 KB), so each face score does its full work (8 frames decoded, detected, landmarked and embedded) and
    # comes out a match; with --clip plain, the fake's default small clip, where the worker finds no face.
    clip_bytes = faces_samples.anchor_clip(work / "anchor.mp4").read_bytes() if args.clip == "face" else None
    fal.default = Outcome.hold(then=Outcome.complete(video=clip_bytes))
    members = [
        discord.add_member(f"member{i}", permissions=DEFAULT_MEMBER_PERMS) for i in range(args.members)
    ]
    storm_channels: list[int] | None = None  # one process: every storm command in the default channel
    admin_of: dict[int, int] = {}  # channel -> who sets its anchor, when not the default guild's alice
    if procs == 1:
        channels = [discord.channel_id] + [
            discord.add_text_channel(f"takes-{i}") for i in range(args.channels - 1)
        ]
        prober = discord.add_member("prober", permissions=DEFAULT_MEMBER_PERMS)  # no Manage Messages
    else:
        # A guild on each shard, the channels spread over them (take i in channel i % channels: the takes split
        # evenly over the shards); every member (and the prober, without Manage Messages) in every guild.
        prober = discord.add_member("prober", permissions=DEFAULT_MEMBER_PERMS)
        guilds = shard_guilds(discord, procs)
        channels = []
        for i in range(args.channels):
            g = guilds[i % procs]
            channels.append(g.channel_id if i < procs else g.add_text_channel(f"takes-{i}"))
            if g is not discord.default_guild:
                admin_of[channels[-1]] = g.owner_id
        storm_channels = [g.channel_id for g in guilds]
    res: dict[str, Any] = {"takes": n, "members": args.members, "channels": args.channels, "processes": procs}
    if storm_channels is not None:
        res["storm_channel_shard"] = {str(cid): k for k, cid in enumerate(storm_channels)}
    children: list[Child] = []
    profile = Profile(args.profile)
    try:
        # A. floor bot
        floor = Child(
            "floor_bot", [str(ROOT / "bench" / "floor_bot.py")], child_env(discord, fal, work), work
        )
        children.append(floor)
        await start_child(discord, floor, {"status", "anchor"})
        await asyncio.sleep(1.0)
        s = await storm(discord, prober, args.commands, args.rate, channels=storm_channels)
        s["probe_worst_s"] = lag_between(floor.lag, s["t0"], s["t1"])
        floor.stop()
        res["floor_storm"] = {k: v for k, v in s.items() if k != "ids"}
        print(f"floor storm: {res['floor_storm']}", flush=True)

        # B. the bot, N takes
        data = work / "data"
        env = child_env(
            discord,
            fal,
            data,
            MAX_SHOTS_GLOBAL=str(n + 50),
            MAX_SHOTS_PER_USER=str(n + 50),
            DEFAULT_BUDGET_USD="1000000",
            MAX_BUDGET_USD="100000000",
            FAL_POLL_INTERVAL_S=str(args.poll),
            **({"DATABASE_URL": pg[1]} if pg is not None else {}),
            **({"JOB_LEASE_S": str(args.lease)} if args.lease else {}),
        )
        if procs == 1:
            bot = Bots([Child("bot", ["-m", "bot"], env, work)])
        else:
            shard_env = {"SHARD_COUNT": str(procs)}
            bot = Bots(
                [
                    Child(f"bot-{k}", ["-m", "bot"], {**env, **shard_env, "SHARD_IDS": str(k)}, work)
                    for k in range(procs)
                ]
            )
        children.extend(bot.children)
        await start_child(discord, bot, {"shot", "status", "anchor"})
        if procs == 1:
            await wait_until(lambda: discord.connected.is_set(), 30, "the bot to be ready", bot)
        else:
            await wait_until(
                lambda: sum(1 for x in discord.sessions if x.connected) >= procs, 30, "every shard ready", bot
            )
        server_cpu = pg[0].server_cpu if pg is not None else (lambda: None)
        await asyncio.sleep(1.0)
        buf = io.BytesIO()
        faces_samples.centred_portrait().save(buf, format="PNG")
        anchor_png = work / "anchor.png"
        anchor_png.write_bytes(buf.getvalue())
        # A real portrait, set like a member does: its face is what every take is scored on.
        for cid in channels:
            att = discord.make_attachment("anchor.png", buf.getvalue(), content_type="image/png")
            who = {"user": admin_of[cid]} if cid in admin_of else {}
            inter = await discord.slash("anchor set", channel_id=cid, image=att, **who)
            reply = await inter.wait_reply(lambda m: bool(text_of(m)), timeout=120)
            if "One face" not in text_of(reply):
                raise RuntimeError(f"the anchor's face was not found: {text_of(reply)[:500]}")
        # The bot's CPU with nothing to do (engine passes, gateway heartbeat), with the lag probe's 100 wake-ups a
        # second and with the probe paused: the probe is the bench's instrument, not the bot's work.
        idle_s = 1.0 if args.quick else 5.0
        profile.start(bot.pids, "0-idle")
        cpu_idle0 = bot.cpu()
        await asyncio.sleep(idle_s)
        cpu_idle1 = bot.cpu()
        bot.pause_probe()
        await asyncio.sleep(idle_s)
        cpu_idle2 = bot.cpu()
        bot.resume_probe()
        res["bot_idle_cpu_ms_per_s"] = (cpu_idle1 - cpu_idle0) / idle_s * 1000
        res["bot_idle_cpu_ms_per_s_probe_paused"] = (cpu_idle2 - cpu_idle1) / idle_s * 1000
        profile.stop()
        print(
            f"anchors set; bot idle CPU {res['bot_idle_cpu_ms_per_s']:.1f} ms/s "
            f"({res['bot_idle_cpu_ms_per_s_probe_paused']:.1f} with the lag probe paused); sending takes",
            flush=True,
        )
        profile.start(bot.pids, "1-submit")
        cpu0, t_first, srv0 = bot.cpu(), time.monotonic(), server_cpu()
        shots: dict[int, Any] = {}

        async def fire(i: int) -> None:
            shots[i] = await discord.slash(
                "shot",
                user=members[i % len(members)],
                channel_id=channels[i % len(channels)],
                prompt=f"bench-take-{i:04d}: the character turns to the camera and smiles",
            )

        t0 = time.monotonic()
        for i in range(n):
            await asyncio.sleep(max(0.0, t0 + i / args.shot_rate - time.monotonic()))
            asyncio.create_task(fire(i))  # noqa: RUF006
        await wait_until(lambda: len(shots) == n, 120, "the /shot commands to go out")
        # A /shot whose answer missed the deadline made no take: send it again (counted).
        await asyncio.sleep(DEADLINE_S + 1)
        refired = 0
        for i, inter in list(shots.items()):
            if not inter.acknowledged:
                refired += 1
                await fire(i)
        res["shot_refired"] = refired

        def at_fal() -> bool:
            subs = [s for s in fal.submissions if s.state != "REJECTED"]
            return len(subs) >= n and all(s.status_times for s in subs)

        await wait_until(at_fal, args.timeout, f"{n} takes at fal, each polled", bot)
        t_a, cpu_a, pt_a, srv_a = time.monotonic(), bot.cpu(), time.process_time(), server_cpu()
        profile.stop()
        cbs = callback_times(discord)
        shot_lat = [cbs[i.id] - i.dispatched_at if i.id in cbs else float("inf") for i in shots.values()]
        res["shot_answer_worst_s"] = max(shot_lat)
        res["shot_answer_median_s"] = statistics.median(shot_lat)
        res["submit_phase_s"] = t_a - t_first
        print(f"{n} takes at fal after {t_a - t_first:.1f} s; storm", flush=True)

        # C. storm while N are in flight
        s = await storm(discord, prober, args.commands, args.rate, channels=storm_channels)
        s["probe_worst_s"] = lag_between(bot.lag, s["t0"], s["t1"])
        t_b, cpu_b, pt_b, srv_b = time.monotonic(), bot.cpu(), time.process_time(), server_cpu()
        profile.start(bot.pids, "2-in-flight")
        storm_ids = s.pop("ids")
        res["bot_storm"] = s
        print(f"bot storm: {s}", flush=True)

        # D. restart
        await asyncio.sleep(args.poll * 1.5)  # every take has been polled since the storm
        t_kill, cpu_kill, srv_kill = time.monotonic(), bot.cpu(), server_cpu()
        # How the work split over the processes: each one's CPU at the checkpoints (reset by the restart).
        res["cpu_per_process_s"] = {"before_restart": bot.cpu_each()}
        profile.stop()
        bot.kill()
        await asyncio.sleep(0.5)
        bot.spawn()
        spawned = bot.spawned_at
        subs = [s for s in fal.submissions if s.state != "REJECTED"]
        await wait_until(
            lambda: all(s.status_times and s.status_times[-1] >= spawned for s in subs),
            args.timeout,
            "every take polled after the restart",
            bot,
        )
        t_c, srv_c = time.monotonic(), server_cpu()
        cpu_c = bot.cpu()
        res["cpu_per_process_s"]["restart_to_all_polled"] = bot.cpu_each()
        workers_c = bot.face_workers_cpu()
        res["restart_s"] = t_c - spawned
        print(f"restart: all polled after {res['restart_s']:.2f} s", flush=True)

        # E. release all together
        # ... with the same command storm going on until the last clip is posted (at least 2 s of it)
        all_posted = False
        profile.start(bot.pids, "3-delivery")
        pt_rel = time.process_time()
        fal.release()
        t_rel = min(s.released_at for s in subs if s.released_at is not None)
        delivery_storm = asyncio.create_task(
            storm(
                discord,
                prober,
                10**6,
                args.rate,
                stop=lambda: all_posted,
                min_count=int(2 * args.rate),
                channels=storm_channels,
            )
        )
        await wait_until(lambda: len(clip_posts(discord)) >= n, args.timeout, "every clip posted", bot)
        all_posted = True
        t_d, cpu_d, pt_d, srv_d = time.monotonic(), bot.cpu(), time.process_time(), server_cpu()
        res["cpu_per_process_s"]["restart_to_last_post"] = bot.cpu_each()
        # Scoring takes minutes with nothing else going on: the lag probe (12-14 ms of the bot's CPU a second on
        # this VM) is paused for it, so the bot is not charged for the instrument (loop stalls are not a figure here).
        bot.pause_probe()
        profile.start(bot.pids, "4-scoring")
        print(f"all {n} clips posted {t_d - t_rel:.1f} s after release; waiting for the verdicts", flush=True)
        verdicts = VerdictWatch(discord, channels, clip_posts(discord))
        # One niced worker scores the clips one after another (about 1.3 s of CPU each for the face clip).
        await wait_until(
            lambda: verdicts.update() >= n,
            args.timeout + 10.0 * n,
            "every take's face verdict",
            bot,
            every=0.25,
        )
        t_v, cpu_v, srv_v = time.monotonic(), bot.cpu(), server_cpu()
        res["cpu_per_process_s"]["restart_to_last_verdict"] = bot.cpu_each()
        workers_v = bot.face_workers_cpu()
        profile.stop()
        print(f"all {n} verdicts shown {t_v - t_d:.1f} s after the last clip", flush=True)
        # How busy this process (both fakes and the commands) was: near 1.0 would make the fakes the bottleneck.
        res["harness_cpu_share"] = {
            "storm": (pt_b - pt_a) / (t_b - t_a),
            "delivery": (pt_d - pt_rel) / max(1e-9, t_d - t_rel),
        }
        ds = await delivery_storm
        storm_ids |= ds.pop("ids")
        res["delivery_storm"] = ds
        print(f"delivery storm: {ds}", flush=True)
        res["lag_phases"] = lag_phases(
            bot.lag,
            {
                "submit": (t_first, t_a),
                "storm": (t_a, t_b),
                "in_flight_quiet": (t_b, t_kill),
                "restart": (spawned, t_c),
                "delivery": (t_rel, t_d),
            },
        )
        print(f"loop lag by phase: {res['lag_phases']}", flush=True)
        await asyncio.sleep(max(2.0, args.poll))  # a duplicate gets every chance to appear
        verdicts.update()
        posts = clip_posts(discord)
        fetched = [s.result_fetched_at for s in subs if s.result_fetched_at is not None]
        res["completed_to_fetch_s"] = max(fetched) - t_rel if len(fetched) == len(subs) else None
        res["completed_to_fetch_median_s"] = statistics.median(fetched) - t_rel if fetched else None
        res["completed_to_post_s"] = max(min(p) for p in posts.values()) - t_rel
        res["completed_to_post_median_s"] = statistics.median(min(p) for p in posts.values()) - t_rel
        per_take = clip_messages_per_take(discord, channels)
        res["delivered"] = len(per_take)
        res["delivered_exactly_once"] = sorted(per_take) == list(range(n)) and all(
            c == 1 for c in per_take.values()
        )
        res["duplicate_posts"] = sum(len(p) - 1 for p in posts.values())
        res["fal_duplicate_runs"] = len(fal.duplicate_runs())

        # Scores: every take's verdict shown once, clip posted -> verdict shown, the face worker's CPU.
        lags = [at - min(posts[k]) for k, at in verdicts.shown.items() if k in posts]
        res["verdicts_shown"] = len(verdicts.shown)
        res["verdict_edits"] = verdicts.edits
        res["score_lag_median_s"] = statistics.median(lags) if lags else None
        res["score_lag_last_s"] = max(lags) if lags else None
        res["last_post_to_last_verdict_s"] = t_v - t_d
        res["release_to_last_verdict_s"] = t_v - t_rel
        res["face_workers"] = {"at_restart": workers_c, "at_last_verdict": workers_v}
        worker_cpu = sum(v - workers_c.get(pid, 0.0) for pid, v in workers_v.items())
        res["worker_cpu_s"] = worker_cpu
        res["worker_cpu_per_take_ms"] = worker_cpu / n * 1000

        # CPU: first submit -> last post, without the command storm and the restart (those are measured above).
        # The delivery phase had commands too: take off their cost, estimated from the in-flight storm (its CPU less
        # the CPU rate of the quiet in-flight stretch after it, per command).
        quiet_rate = (cpu_kill - cpu_b) / max(1e-9, t_kill - t_b)
        per_command = max(0.0, (cpu_b - cpu_a) - quiet_rate * (t_b - t_a)) / max(1, s["commands"])
        delivery = max(0.0, (cpu_d - cpu_c) - per_command * ds["commands"])
        busy = (cpu_a - cpu0) + (cpu_kill - cpu_b) + delivery
        res["cpu_per_take_to_post_ms"] = busy / n * 1000  # issue #10's window: first /shot to last clip
        scoring = cpu_v - cpu_d  # last clip -> last verdict (no commands then)
        res["cpu_per_take_ms"] = (busy + scoring) / n * 1000  # issue #15: to the last verdict
        res["cpu_per_command_ms"] = per_command * 1000
        if srv0 is not None:
            # The same windows for the PostgreSQL server (the storm's commands taken off the same way).
            assert None not in (srv_a, srv_b, srv_kill, srv_c, srv_d, srv_v)
            srv_quiet = (srv_kill - srv_b) / max(1e-9, t_kill - t_b)
            srv_command = max(0.0, (srv_b - srv_a) - srv_quiet * (t_b - t_a)) / max(1, s["commands"])
            srv_busy = (
                (srv_a - srv0) + (srv_kill - srv_b) + max(0.0, (srv_d - srv_c) - srv_command * ds["commands"])
            )
            res["db_cpu_per_take_to_post_ms"] = srv_busy / n * 1000
            res["db_cpu_per_take_ms"] = (srv_busy + srv_v - srv_d) / n * 1000
            res["db_cpu_per_command_ms"] = srv_command * 1000
            res["db_cpu_windows_s"] = {
                "submit": srv_a - srv0,
                "storm": srv_b - srv_a,
                "in_flight_quiet": srv_kill - srv_b,
                "restart_kill_to_all_polled": srv_c - srv_kill,
                "release_to_last_post_with_commands": srv_d - srv_c,
                "last_post_to_last_verdict": srv_v - srv_d,
            }
        res["cpu_windows_s"] = {
            "submit": cpu_a - cpu0,
            "storm": cpu_b - cpu_a,
            "in_flight_quiet": cpu_kill - cpu_b,
            "restart_process_start_to_all_polled": cpu_c,
            "release_to_last_post_with_commands": cpu_d - cpu_c,
            "release_to_last_post_less_commands": delivery,
            "last_post_to_last_verdict": scoring,
        }
        res["cpu_window_lengths_s"] = {
            "submit": t_a - t_first,
            "in_flight_quiet": t_kill - t_b,
            "release_to_last_post": t_d - t_c,
            "last_post_to_last_verdict": t_v - t_d,
        }
        windows = [(t_first, t_a), (t_b, t_kill), (t_c, t_d)]

        def in_windows(t: float) -> bool:
            return any(a <= t <= b for a, b in windows)

        status_in_windows = sum(1 for t, k in fal.request_log if k == "status" and in_windows(t))
        res["floor_status_per_take"] = max(1, round(status_in_windows / n))

        # Discord requests per take: everything from the first /shot to the last post but the storm's commands
        # and the bot's own start-up.
        stamps: StampedList = discord.requests  # type: ignore[assignment]
        kinds: dict[str, int] = {}
        routes: dict[str, int] = {}
        storm_marks = {str(i) for i in storm_ids}
        for req in stamps:
            if not t_first <= stamps.stamp(req) <= t_v + max(2.0, args.poll):
                continue
            m = re.search(r"/interactions/(\d+)/", req.path)
            if m and m[1] in storm_marks:
                continue
            if req.path.startswith("/webhooks/") and any(
                inter.token in req.path for inter in discord.interactions.values() if inter.id in storm_ids
            ):
                continue
            kind = classify_discord(req)
            kinds[kind] = kinds.get(kind, 0) + 1
            if kind != "startup":
                route = f"{req.method} {req.route or req.path}"
                routes[route] = routes.get(route, 0) + 1
        kinds.pop("startup", None)
        res["discord_requests"] = kinds
        res["discord_requests_by_route"] = routes  # the verdicts are edits of clip messages: `verdict_edits`
        res["discord_per_take"] = sum(kinds.values()) / n
        res["discord_edits_per_take"] = kinds.get("edit", 0) / n

        # fal requests per take and per poll interval
        fal_kinds: dict[str, int] = {}
        for t, k in fal.request_log:
            if t_first <= t <= t_d:
                fal_kinds[k] = fal_kinds.get(k, 0) + 1
        res["fal_requests"] = fal_kinds
        res["fal_per_take"] = sum(fal_kinds.values()) / n
        polled_time = 0.0
        status_total = 0
        for s_ in subs:
            end = s_.completed_at or t_d
            for a, b in windows:
                polled_time += max(0.0, min(b, end) - max(a, s_.submitted_at))
            status_total += sum(1 for t in s_.status_times if in_windows(t))
        res["fal_status_per_interval"] = status_total / (polled_time / args.poll) if polled_time else None
        res["fal_errors"] = list(fal.errors)
        res["discord_server_errors"] = list(discord.server_errors)
        bot.stop()
        if pg is not None:
            res["scores"] = await scale_pg().bot_scores(pg[1])
        else:
            res["scores"] = bot_scores(data / "anchorshot.sqlite3")
        res["unscored_takes"] = n - min(
            res["verdicts_shown"],
            res["scores"]["face_score_jobs"].get("posted", 0),
            sum(res["scores"]["take_scores"].values()),
        )
        print(f"scores: {res['scores']}", flush=True)

        # F. floors for the HTTP work and the restart
        clip = work / "clip.mp4"
        video_url = subs[0].output_url
        assert video_url is not None
        clip.write_bytes(fal._outputs[video_url][0])
        spec_takes = [
            {
                "status_url": f"{fal.queue_url}{s_.app_path}/requests/{s_.request_id}/status",
                "result_url": f"{fal.queue_url}{s_.app_path}/requests/{s_.request_id}",
                "video_url": s_.output_url,
                "channel_id": channels[k % len(channels)],
            }
            for k, s_ in enumerate(subs)
        ]
        spec = {
            "mode": "traffic",
            "fal": fal.base_url,
            "discord_api": f"{discord.base_url}/api/v10",
            "token": TOKEN,
            "takes": spec_takes,
            "status_per_take": res["floor_status_per_take"],
            "clip_path": str(clip),
        }
        floor_cpu = []
        for _ in range(args.floor_repeat):
            out = await floor_http(spec, work)
            floor_cpu.append(out["cpu_s"] / n * 1000)
        res["floor_cpu_per_take_ms"] = statistics.median(floor_cpu)
        res["floor_cpu_samples_ms"] = floor_cpu
        restart_floor = []
        for _ in range(args.floor_repeat):
            t_spawn = time.monotonic()
            await floor_http({**spec, "mode": "restart"}, work)
            restart_floor.append(
                max(next(t for t in s_.status_times if t >= t_spawn) for s_ in subs) - t_spawn
            )
        res["floor_restart_s"] = statistics.median(restart_floor)
        # The face worker's floor: the same score of the same clip, called directly in a bare process.
        face = await floor_face(anchor_png, clip, 1 if args.quick else 5)
        res["floor_face_cpu_ms"] = statistics.median(face["cpu_s"]) * 1000
        res["floor_face_samples_ms"] = [v * 1000 for v in face["cpu_s"]]
        res["floor_face_verdict"] = face["verdict"]
    finally:
        profile.stop()
        for child in children:
            child.stop()
        await discord.close()
        await fal.close()
    return res


async def floor_http(spec: dict, work: Path) -> dict:
    path = work / "floor_spec.json"
    path.write_text(json.dumps(spec))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bench" / "floor_http.py"), str(path), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"floor_http failed ({proc.returncode})")
    return json.loads(out.decode().strip().splitlines()[-1])


async def floor_face(anchor_png: Path, clip: Path, repeat: int) -> dict:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "bench" / "floor_face.py"),
        str(anchor_png),
        str(clip),
        str(repeat),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"floor_face failed ({proc.returncode})")
    return json.loads(out.decode().strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------- ledger


def hold_sql() -> list[str]:
    """bot/budget/store.py's statements for a hold: the one read of what it is checked against, the two inserts."""
    from bot.budget.store import LedgerStore

    return [LedgerStore._HOLD_FACTS, LedgerStore._INSERT_HOLD, LedgerStore._JOURNAL_HOLD]


async def bench_ledger(work: Path, members: int, rounds: int, per_member_limit: int) -> dict:
    """Holds per second with `members` members holding at once, through BudgetService, against plain sqlite3 with
    the same schema and the same statements (bot/budget/store.py's). Each member's limit is `per_member_limit`
    holds; every member asks for more, so zero overspend is checked on the way."""
    from bot.budget.service import BudgetService
    from bot.db import SqliteDatabase
    from bot.errors import UserError
    from bot.settings import BudgetPeriod

    amount = 560_000
    db = SqliteDatabase(work / "ledger.sqlite3")
    await db.open()
    budget = BudgetService(
        db, default_limit_micros=amount * per_member_limit, period=BudgetPeriod.MONTH, max_limit_micros=10**13
    )
    attempts = per_member_limit + max(1, per_member_limit // 4)
    ok = refused = 0
    t0 = time.perf_counter()
    for r in range(attempts):

        async def one(u: int, r: int = r) -> bool:
            try:
                await budget.hold(job_key=f"j{u}-{r}", guild_id=1, user_id=u, amount=amount, description="b")
                return True
            except UserError:
                return False

        got = await asyncio.gather(*(one(u) for u in range(members)))
        ok += sum(got)
        refused += len(got) - sum(got)
    elapsed = time.perf_counter() - t0
    period = budget.current_period()
    await db.close()
    with sqlite3.connect(work / "ledger.sqlite3") as conn:
        held = dict(conn.execute("SELECT user_id, SUM(amount) FROM holds GROUP BY user_id").fetchall())
    overspend = sum(1 for v in held.values() if v > amount * per_member_limit)

    # floor: the same statements in plain sqlite3, one BEGIN IMMEDIATE transaction per hold
    floor_path = work / "ledger-floor.sqlite3"
    fdb = SqliteDatabase(floor_path)
    await fdb.open()
    await fdb.close()
    conn = sqlite3.connect(floor_path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    statements = hold_sql()
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    limit = amount * per_member_limit
    fok = 0
    t1 = time.perf_counter()
    for r in range(attempts):
        for u in range(members):
            key = f"j{u}-{r}"
            conn.execute("BEGIN IMMEDIATE")
            facts = conn.execute(statements[0], {"k": key, "g": 1, "u": u, "p": period}).fetchone()
            user_limit = facts["user_limit"] if facts["user_limit"] is not None else limit
            if amount <= user_limit - facts["spent"] - facts["held"]:
                now = time.time()
                conn.execute(statements[1], (key, 1, u, period, amount, "b", now))
                conn.execute(statements[2], (1, u, period, amount, key, "b", now))
                fok += 1
            conn.execute("COMMIT")
    felapsed = time.perf_counter() - t1
    conn.close()
    total = attempts * members
    return {
        "members": members,
        "attempts": total,
        "granted": ok,
        "refused": refused,
        "overspent_members": overspend,
        "holds_per_s": total / elapsed,
        "floor_holds_per_s": total / felapsed,
        "floor_granted": fok,
    }


# ------------------------------------------------------------------------------------------- re-encode


async def bench_reencode(work: Path, repeat: int) -> dict | None:
    sys.path.insert(0, str(ROOT / "bench"))
    import run  # bench/run.py

    if repeat <= 0:  # skipped (the smoke test): only check the measurement is still there
        assert callable(run.measure_fit)
        return None
    fit = await run.measure_fit(work, repeat)
    return {
        "wall_s": statistics.median(fit["samples"]),
        "samples_s": fit["samples"],
        "passes": fit["passes"],
        "clip_s": fit["duration_s"],
        "result_mib": fit["result_mib"],
    }


# ------------------------------------------------------------------------------------------- table


def build_table(res: dict, baseline: dict[str, float] | None = None) -> list[dict]:
    """The figures against their floors; on PostgreSQL PG_FIGURES follow, and with a SQLite baseline
    BASELINE_FIGURES."""
    t, ld, re_ = res["takes"], res["ledger"], res.get("reencode")
    fs, bs = t["floor_storm"], t["bot_storm"]
    rows: dict[str, tuple[Any, Any]] = {
        "status_worst_s": (bs["status_worst_s"], fs["status_worst_s"]),
        "status_missed": (bs["missed"], fs["missed"]),
        "status_worst_delivery_s": (t["delivery_storm"]["status_worst_s"], fs["status_worst_s"]),
        "status_missed_delivery": (t["delivery_storm"]["missed"], fs["missed"]),
        "stall_outside_s": (bs["nodb_worst_s"], fs["nodb_worst_s"]),
        "stall_probe_s": (bs["probe_worst_s"], fs["probe_worst_s"]),
        "stall_probe_delivery_s": (t["lag_phases"]["delivery"]["worst_s"], fs["probe_worst_s"]),
        "completed_to_fetch_median_s": (t["completed_to_fetch_median_s"], res["poll_s"] / 2),
        "completed_to_fetch_s": (t["completed_to_fetch_s"], res["poll_s"]),
        "completed_to_post_s": (t["completed_to_post_s"], None),
        "cpu_per_take_ms": (t["cpu_per_take_ms"], t["floor_cpu_per_take_ms"]),
        "cpu_per_take_to_post_ms": (t["cpu_per_take_to_post_ms"], t["floor_cpu_per_take_ms"]),
        "unscored_takes": (t["unscored_takes"], 0),
        "score_lag_median_s": (t["score_lag_median_s"], None),
        "score_lag_last_s": (t["score_lag_last_s"], None),
        "worker_cpu_per_take_ms": (t["worker_cpu_per_take_ms"], t["floor_face_cpu_ms"]),
        "discord_per_take": (t["discord_per_take"], 2),
        "discord_edits_per_take": (t["discord_edits_per_take"], 0),
        "fal_per_take": (t["fal_per_take"], None),
        "fal_status_per_interval": (t["fal_status_per_interval"], 1),
        "ledger_holds_per_s": (ld["holds_per_s"], ld["floor_holds_per_s"]),
        "restart_s": (t["restart_s"], t["floor_restart_s"]),
        "reencode_x_length": ((re_["wall_s"] / re_["clip_s"], 1.0) if re_ else (None, 1.0)),
    }
    if "seq_holds_per_s" in ld:  # PostgreSQL
        rows["ledger_seq_holds_per_s"] = (ld["seq_holds_per_s"], ld["floor_seq_holds_per_s"])
        rows["db_cpu_per_take_ms"] = (t.get("db_cpu_per_take_ms"), None)
        rows["db_cpu_per_take_to_post_ms"] = (t.get("db_cpu_per_take_to_post_ms"), None)
    if baseline is not None:
        rows["cpu_vs_sqlite_ms"] = (t["cpu_per_take_ms"], baseline["cpu_per_take_ms"])
        rows["cpu_to_post_vs_sqlite_ms"] = (t["cpu_per_take_to_post_ms"], baseline["cpu_per_take_to_post_ms"])
        with_db = t.get("db_cpu_per_take_to_post_ms")
        rows["cpu_with_db_to_post_vs_sqlite_ms"] = (
            t["cpu_per_take_to_post_ms"] + with_db if with_db is not None else None,
            baseline["cpu_per_take_to_post_ms"],
        )
    table = []
    for key, (bot, floor) in rows.items():
        label, goal = LABELS[key]
        ratio = None
        if isinstance(bot, int | float) and isinstance(floor, int | float) and floor and bot != float("inf"):
            ratio = floor / bot if key in HIGHER_IS_BETTER else bot / floor  # times the floor's cost
        met = GOALS[key](bot) if key in GOALS and isinstance(bot, int | float) else None
        if key.startswith("completed_to_fetch") and isinstance(bot, int | float) and floor:
            met = bot <= 1.2 * floor  # a poll's spacing, plus the time to ask
        if key in RATIO_GOALS:
            met = ratio <= RATIO_GOALS[key] if ratio is not None else None
        if key == "ledger_holds_per_s" and met is not None:
            met = met and ld["overspent_members"] == 0
        if key == "ledger_seq_holds_per_s" and met is not None:
            met = met and ld["seq_overspent_members"] == 0
        if key == "reencode_x_length" and met is not None and re_:
            met = met and all(p == 1 for p in re_["passes"])
        table.append(
            {
                "figure": key,
                "label": label,
                "bot": bot,
                "floor": floor,
                "ratio": ratio,
                "goal": goal,
                "met": met,
            }
        )
    return table


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        if v == float("inf"):
            return "never"
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def print_table(table: list[dict]) -> None:
    print(f"\n{'ratio':>8}  {'figure':<46} {'bot':>10} {'floor':>10}  {'goal':<24} met")
    for row in table:
        ratio = f"{row['ratio']:.1f}x" if row["ratio"] is not None else "-"
        print(
            f"{ratio:>8}  {row['label']:<46} {fmt(row['bot']):>10} {fmt(row['floor']):>10}  {row['goal']:<24} "
            f"{fmt(row['met'])}" + (f" ({row['met_runs']} runs)" if row.get("met_runs") else "")
        )


def median_table(tables: list[list[dict]]) -> list[dict]:
    """One row per figure: the median over runs of bot, floor and ratio; met by the median, and in how many runs."""
    out = []
    for rows in zip(*tables, strict=True):
        first = rows[0]

        def med(key: str, rows: tuple[dict, ...] = rows) -> Any:
            values = [
                r[key] for r in rows if isinstance(r[key], int | float) and not isinstance(r[key], bool)
            ]
            return statistics.median(values) if values else None

        mets = [r["met"] for r in rows if r["met"] is not None]
        bot = med("bot")
        met = GOALS[first["figure"]](bot) if first["figure"] in GOALS and bot is not None else None
        if (
            first["figure"] in ("ledger_holds_per_s", "ledger_seq_holds_per_s", "reencode_x_length")
            and met is not None
        ):
            met = met and all(mets)  # zero overspend / one pass in every run
        floor = med("floor")
        if first["figure"].startswith("completed_to_fetch") and bot is not None and floor:
            met = bot <= 1.2 * floor  # as in build_table
        ratio = med("ratio")
        if first["figure"] in RATIO_GOALS:
            met = ratio <= RATIO_GOALS[first["figure"]] if ratio is not None else None
        out.append(
            {
                **{k: first[k] for k in ("figure", "label", "goal")},
                "bot": bot,
                "floor": floor,
                "ratio": ratio,
                "met": met,
                "met_runs": f"{sum(mets)}/{len(mets)}" if mets else None,
                "bot_runs": [r["bot"] for r in rows],
            }
        )
    return out


async def one_run(args: argparse.Namespace, server: Any = None) -> dict:
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as d:
        work = Path(d)
        res: dict[str, Any] = {"load_before": os.getloadavg(), "poll_s": args.poll}
        if server is None:
            res["takes"] = await run_takes(args, work)
            res["ledger"] = await bench_ledger(work, 50, args.ledger_rounds, args.ledger_rounds)
        else:
            url = await server.fresh_database()
            try:
                res["takes"] = await run_takes(args, work, (server, url))
            finally:
                await server.drop(url)
            res["ledger"] = await scale_pg().bench_ledger(server, 50, args.ledger_rounds)
        print(f"ledger: {res['ledger']}", flush=True)
        res["reencode"] = await bench_reencode(work, args.reencode_repeat)
        print(f"re-encode: {res['reencode']}", flush=True)
    res["load_after"] = os.getloadavg()
    res["wall_s"] = time.time() - started
    res["table"] = build_table(res, baseline_cpu(args.baseline))
    return res


def baseline_cpu(path: Path | None) -> dict[str, float] | None:
    """CPU per take of a SQLite run (its JSON's median table): the figures issue #18 compares with."""
    if path is None:
        return None
    rows = {row["figure"]: row for row in json.loads(path.read_text())["table"]}
    return {
        "cpu_per_take_ms": rows["cpu_per_take_ms"]["bot"],
        "cpu_per_take_to_post_ms": rows["cpu_per_take_to_post_ms"]["bot"],
    }


async def main_async(args: argparse.Namespace) -> dict:
    res: dict[str, Any] = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "args": {k: v for k, v in vars(args).items() if k != "out"},
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "runs": [],
    }
    server = None
    if args.database:
        server = scale_pg().Server(args.database)
        await server.start()
        res["database"] = server.describe()
        print(f"database: {res['database']}", flush=True)
    try:
        for k in range(args.runs):
            if args.runs > 1:
                print(f"--- run {k + 1} of {args.runs}", flush=True)
            run_res = await one_run(args, server)
            res["runs"].append(run_res)
            print_table(run_res["table"])
    finally:
        if server is not None:
            server.stop()
    res["table"] = median_table([r["table"] for r in res["runs"]])
    return res


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--takes", type=int, default=500, help="takes in flight at once (default 500)")
    p.add_argument(
        "--quick", action="store_true", help="small numbers everywhere (CI): 40 commands, 1 s poll"
    )
    p.add_argument("--commands", type=int, help="commands fired during the storm (default 1000)")
    p.add_argument("--rate", type=float, default=20.0, help="storm commands per second (default 20)")
    p.add_argument("--shot-rate", type=float, default=25.0, help="/shot commands per second (default 25)")
    p.add_argument("--members", type=int, default=10)
    p.add_argument("--channels", type=int, default=4)
    p.add_argument(
        "--clip",
        choices=("face", "plain"),
        default="face",
        help="fal's clip: the anchor's face (default: every score does its full work) or the fake's small clip",
    )
    p.add_argument(
        "--poll", type=float, help="FAL_POLL_INTERVAL_S for the bot (default 3, the bot's default)"
    )
    p.add_argument("--timeout", type=float, default=1200.0, help="give up on a phase after this long (s)")
    p.add_argument("--ledger-rounds", type=int, help="holds each of the 50 members may make (default 40)")
    p.add_argument("--reencode-repeat", type=int, help="re-encode runs (0: skip; default 3, quick 1)")
    p.add_argument("--floor-repeat", type=int, help="runs of each HTTP floor (default 3, quick 1)")
    p.add_argument("--runs", type=int, default=1, help="repeat the whole run; the table gives medians")
    p.add_argument(
        "--database",
        metavar="auto|URL",
        help="run the bot on PostgreSQL (issue #18): 'auto' starts a throwaway cluster (tests/pg.py), a "
        "postgresql:// URL uses that server (its user may CREATE DATABASE); a fresh database each run. "
        "Default: SQLite in the bot's data folder",
    )
    p.add_argument(
        "--processes",
        type=int,
        default=1,
        help="bot processes, as shards 0..N-1 of N, a guild on each (needs --database; default 1, unsharded)",
    )
    p.add_argument("--lease", type=float, help="JOB_LEASE_S for the bot (default: the bot's, 30 s)")
    p.add_argument(
        "--baseline",
        type=Path,
        help="a SQLite run's JSON: CPU per take is compared with its (issue #18: within 1.5x)",
    )
    p.add_argument("--out", type=Path, help="JSON file (default bench/results/scale-<date>.json)")
    p.add_argument(
        "--profile",
        type=Path,
        help="py-spy the bot in each phase (submit, in flight, delivery, scoring) into this folder; "
        "timings taken with it are not comparable",
    )
    args = p.parse_args(argv)
    if args.processes < 1:
        p.error("--processes must be at least 1")
    if args.processes > 1 and not args.database:
        p.error("several processes need --database: the SQLite file is one process's")
    if args.processes > args.channels:
        p.error("--channels must be at least --processes (a channel in each shard's guild)")
    q = args.quick
    args.commands = args.commands or (40 if q else 1000)
    args.poll = args.poll or (1.0 if q else 3.0)
    args.ledger_rounds = args.ledger_rounds or (8 if q else 40)
    args.reencode_repeat = args.reencode_repeat if args.reencode_repeat is not None else (1 if q else 3)
    args.floor_repeat = args.floor_repeat or (1 if q else 3)
    if q:
        args.timeout = min(args.timeout, 120.0)
    res = asyncio.run(main_async(args))
    if args.runs > 1:
        print(f"\nmedians of {args.runs} runs:")
        print_table(res["table"])
    for k, run_res in enumerate(res["runs"], 1):
        t = run_res["takes"]
        print(
            f"run {k}: {t['delivered']}/{t['takes']} takes delivered, exactly once: {t['delivered_exactly_once']}; "
            f"{t['verdicts_shown']} verdicts shown ({t['verdict_edits']} verdict edits), "
            f"{t['scores']['face_score_jobs'].get('posted', 0)} face_score jobs posted, "
            f"{sum(t['scores']['take_scores'].values())} take_scores rows {t['scores']['take_scores']}; "
            f"load average {run_res['load_before'][0]:.1f} before, {run_res['load_after'][0]:.1f} after; "
            f"{run_res['wall_s']:.0f} s"
        )
    out = args.out or ROOT / "bench" / "results" / f"scale-{dt.date.today().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, default=str) + "\n")
    print(f"written to {out}")
    return res


if __name__ == "__main__":
    main()
