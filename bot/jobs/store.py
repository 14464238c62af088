"""SQL for the jobs table. Methods take a `Queries` (the database or an open transaction)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, fields

from bot.db import Queries, Row
from bot.jobs.models import Job
from bot.jobs.states import IN_FLIGHT, JobState

_COLUMNS = [f.name for f in fields(Job)]
_JSON = ("args", "outputs")
_STATES = {str(s): s for s in JobState}
if "__post_init__" in vars(Job) or "__slots__" in vars(Job):  # _job fills the instance's __dict__ itself
    raise TypeError("Job must stay a plain dataclass (no __post_init__, no slots): see _job")


def _job(row: Row) -> Job:
    """The `Job` of a `jobs` row (its JSON columns decoded): equal to `Job(**columns)`, built without the frozen
    dataclass's __init__ (which sets every field through object.__setattr__) and without a lookup by name per
    column (a linear search in sqlite3.Row): 14 us a row instead of 31 (bench/README.md, issue #15). The poller and
    the scheduler read hundreds of rows a pass."""
    keys = row.keys()
    if keys == _COLUMNS:  # SELECT * on the table: its columns are the fields, in order
        values = dict(zip(_COLUMNS, row, strict=True))
    else:
        named: dict[str, object] = {}
        for k, v in zip(keys, row, strict=True):
            named.setdefault(k, v)  # a column named twice: the first, as sqlite3.Row's lookup by name
        values = {k: named[k] if k in named else row[k] for k in _COLUMNS}  # row[k]: any case; IndexError
    for k in _JSON:
        values[k] = json.loads(values[k] or "{}")
    state = values["state"]
    values["state"] = _STATES.get(state) or JobState(state)  # JobState(): ValueError for an unknown state
    job: Job = object.__new__(Job)
    job.__dict__.update(values)
    return job


@dataclass(frozen=True, slots=True)
class Due:
    """A row the poller read: id, kind and state at once, the whole `Job` only when a step is started for it (most
    rows of a pass belong to jobs that already have a step running, e.g. face scores waiting for the worker)."""

    id: int
    kind: str
    state: JobState
    row: Row

    def job(self) -> Job:
        return _job(self.row)


def _encode(values: dict[str, object]) -> dict[str, object]:
    unknown = set(values) - set(_COLUMNS)
    if unknown:
        raise ValueError(f"unknown job columns {sorted(unknown)}")
    out = dict(values)
    for k in _JSON:
        if k in out:
            out[k] = json.dumps(out[k], sort_keys=True)
    if "state" in out:
        out["state"] = str(out["state"])
    return out


def _marks(states: Iterable[JobState]) -> tuple[str, tuple[str, ...]]:
    names = tuple(str(s) for s in states)
    return ", ".join("?" for _ in names), names


class JobStore:
    """Every query on `jobs`."""

    @staticmethod
    async def insert(q: Queries, values: dict[str, object]) -> int:
        values = _encode(values)
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        return await q.execute(f"INSERT INTO jobs({cols}) VALUES ({marks})", tuple(values.values()))  # noqa: S608

    @staticmethod
    async def get(q: Queries, job_id: int) -> Job | None:
        row = await q.fetchone("SELECT * FROM jobs WHERE id=?", (job_id,))
        return _job(row) if row else None

    @staticmethod
    async def update(q: Queries, job_id: int, values: dict[str, object]) -> None:
        values = _encode(values)
        sets = ", ".join(f"{k}=?" for k in values)
        await q.execute(f"UPDATE jobs SET {sets} WHERE id=?", (*values.values(), job_id))  # noqa: S608

    @staticmethod
    async def next_seq(q: Queries, parent_id: int, kind: str) -> int:
        """The next number among the parent's family of this kind (a take's score job does not count as a take)."""
        row = await q.fetchone(
            "SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM jobs WHERE (id=? OR parent_id=?) AND kind=?",
            (parent_id, parent_id, kind),
        )
        return int(row["n"]) if row else 2

    @staticmethod
    async def next_number(q: Queries, guild_id: int, series: str) -> int:
        """The next number of the server's series (call inside the transaction that queues the job)."""
        [row] = await q.fetchall(  # all rows read: the statement is finished before the transaction goes on
            "INSERT INTO counters(guild_id, series, value) VALUES (?, ?, 1)"
            " ON CONFLICT(guild_id, series) DO UPDATE SET value = value + 1 RETURNING value",
            (guild_id, series),
        )
        return int(row["value"])

    @staticmethod
    async def number_of(q: Queries, job_id: int) -> int | None:
        row = await q.fetchone("SELECT number FROM jobs WHERE id=?", (job_id,))
        return row["number"] if row else None

    @staticmethod
    async def by_result_message(q: Queries, message_id: int) -> Job | None:
        row = await q.fetchone("SELECT * FROM jobs WHERE result_message_id=?", (message_id,))
        return _job(row) if row else None

    @staticmethod
    async def state_of(q: Queries, job_id: int) -> tuple[JobState, str] | None:
        """(state, ledger key) of a job: what a move checks and settles, without decoding the whole row."""
        row = await q.fetchone("SELECT state, ledger_key FROM jobs WHERE id=?", (job_id,))
        return (JobState(row["state"]), str(row["ledger_key"])) if row else None

    @staticmethod
    async def due(q: Queries, states: Iterable[JobState], *, due_by: float) -> list[Due]:
        """The jobs in these states whose next attempt is due by `due_by`, by id, each decoded only when asked."""
        marks, names = _marks(states)
        rows = await q.fetchall(
            f"SELECT * FROM jobs WHERE state IN ({marks}) AND next_attempt_at <= ? ORDER BY id",  # noqa: S608
            (*names, due_by),
        )
        out = []
        for r in rows:
            state = r["state"]
            out.append(Due(r["id"], r["kind"], _STATES.get(state) or JobState(state), r))
        return out

    @staticmethod
    async def in_states(q: Queries, states: Iterable[JobState], *, due_by: float | None = None) -> list[Job]:
        marks, names = _marks(states)
        if due_by is None:
            rows = await q.fetchall(f"SELECT * FROM jobs WHERE state IN ({marks}) ORDER BY id", names)  # noqa: S608
        else:
            rows = await q.fetchall(
                f"SELECT * FROM jobs WHERE state IN ({marks}) AND next_attempt_at <= ? ORDER BY id",  # noqa: S608
                (*names, due_by),
            )
        return [_job(r) for r in rows]

    @staticmethod
    async def in_flight_counts(q: Queries, kinds: Iterable[str]) -> tuple[int, dict[int, int]]:
        """(global count, per-user counts) of jobs of these kinds past the queue and not final."""
        marks, names = _marks(IN_FLIGHT)
        kinds = tuple(kinds)
        kmarks = ", ".join("?" for _ in kinds)
        rows = await q.fetchall(
            f"SELECT user_id, COUNT(*) AS n FROM jobs WHERE state IN ({marks}) AND kind IN ({kmarks})"  # noqa: S608
            " GROUP BY user_id",
            (*names, *kinds),
        )
        per_user = {int(r["user_id"]): int(r["n"]) for r in rows}
        return sum(per_user.values()), per_user

    @staticmethod
    async def state_counts(q: Queries, kind: str | None = None) -> dict[JobState, int]:
        if kind is None:
            rows = await q.fetchall("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
        else:
            rows = await q.fetchall(
                "SELECT state, COUNT(*) AS n FROM jobs WHERE kind = ? GROUP BY state", (kind,)
            )
        return {JobState(r["state"]): int(r["n"]) for r in rows}
