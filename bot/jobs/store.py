"""SQL for the jobs table. Methods take a `Queries` (the database or an open transaction)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, fields

from bot.db import ROW_ID_MAX, Database, Queries, Row, SqliteDatabase
from bot.jobs.models import Job
from bot.jobs.states import IN_FLIGHT, UNFINISHED, JobState

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
    keys = list(row.keys())  # a list from sqlite3.Row, an iterator from asyncpg's Record
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
    """A due job as the poller reads it: id, kind and state; its whole row only if its job was not busy (`row` is
    None otherwise), decoded into a `Job` only when a step is started for it."""

    id: int
    kind: str
    state: JobState
    row: Row | None

    def job(self) -> Job:
        assert self.row is not None, "the row of a busy job is not read"
        return _job(self.row)


_IN_CHUNK = 500  # ids per `id IN (...)` (SQLite allows 32766 variables)


def _due_rows(
    conn: sqlite3.Connection, where: str, params: tuple[object, ...], busy: frozenset[int]
) -> list[Due]:
    """On the reader's thread, from one snapshot: id, kind, state of every due job; whole rows only for the others."""
    conn.execute("BEGIN")
    try:
        light = conn.execute(f"SELECT id, kind, state FROM jobs WHERE {where} ORDER BY id", params).fetchall()  # noqa: S608
        need = [r[0] for r in light if r[0] not in busy]
        rows: dict[int, Row] = {}
        for i in range(0, len(need), _IN_CHUNK):
            chunk = need[i : i + _IN_CHUNK]
            sql = f"SELECT * FROM jobs WHERE id IN ({', '.join('?' for _ in chunk)})"  # noqa: S608
            rows.update((r[0], r) for r in conn.execute(sql, chunk))
    finally:
        conn.execute("COMMIT")
    return [Due(i, k, _STATES.get(s) or JobState(s), rows.get(i)) for i, k, s in light]


async def _due_rows_async(
    q: Queries, where: str, params: tuple[object, ...], busy: frozenset[int]
) -> list[Due]:
    """`_due_rows` for a backend without a reader thread (PostgreSQL): the same reads, from one snapshot."""
    light = await q.fetchall(f"SELECT id, kind, state FROM jobs WHERE {where} ORDER BY id", params)  # noqa: S608
    need = [r[0] for r in light if r[0] not in busy]
    rows: dict[int, Row] = {}
    for i in range(0, len(need), _IN_CHUNK):
        chunk = need[i : i + _IN_CHUNK]
        sql = f"SELECT * FROM jobs WHERE id IN ({', '.join('?' for _ in chunk)})"  # noqa: S608
        rows.update((r[0], r) for r in await q.fetchall(sql, chunk))
    return [Due(i, k, _STATES.get(s) or JobState(s), rows.get(i)) for i, k, s in light]


def _in_flight_sql(kinds: Iterable[str]) -> tuple[str, tuple[object, ...]]:
    marks, names = _marks(IN_FLIGHT)
    kinds = tuple(kinds)
    kmarks = ", ".join("?" for _ in kinds)
    return (
        f"SELECT user_id, COUNT(*) AS n FROM jobs WHERE state IN ({marks}) AND kind IN ({kmarks})"  # noqa: S608
        " GROUP BY user_id",
        (*names, *kinds),
    )


def _queue_rows(
    conn: sqlite3.Connection, counts_sql: str, counts_params: tuple[object, ...], waiting: str
) -> tuple[list[Row], list[Row]]:
    conn.execute("BEGIN")
    try:
        counts = conn.execute(counts_sql, counts_params).fetchall()
        rows = conn.execute("SELECT * FROM jobs WHERE state = ? ORDER BY id", (waiting,)).fetchall()
    finally:
        conn.execute("COMMIT")
    return counts, rows


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
        return await q.insert(f"INSERT INTO jobs({cols}) VALUES ({marks})", tuple(values.values()))  # noqa: S608

    @staticmethod
    async def get(q: Queries, job_id: int) -> Job | None:
        if not 0 < job_id <= ROW_ID_MAX:
            return None
        row = await q.fetchone("SELECT * FROM jobs WHERE id=?", (job_id,))
        return _job(row) if row else None

    @staticmethod
    async def update(q: Queries, job_id: int, values: dict[str, object]) -> None:
        values = _encode(values)
        sets = ", ".join(f"{k}=?" for k in values)
        await q.execute(f"UPDATE jobs SET {sets} WHERE id=?", (*values.values(), job_id))  # noqa: S608

    @staticmethod
    async def next_seq(q: Queries, parent_id: int, kind: str, *, numbered: bool = False) -> int:
        """The next number among the parent's family: of the jobs numbered in a series (the takes of a shot,
        whatever kind made its first: a storyboard's part too), else of this kind (a take's score job does not
        count as a take)."""
        row = await q.fetchone(
            "SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM jobs WHERE (id=? OR parent_id=?)"
            " AND (CASE WHEN ? THEN number IS NOT NULL ELSE kind=? END)",
            (parent_id, parent_id, numbered, kind),
        )
        return int(row["n"]) if row else 2

    @staticmethod
    async def next_number(q: Queries, guild_id: int, series: str) -> int:
        """The next number of the server's series (call inside the transaction that queues the job)."""
        [row] = await q.fetchall(  # all rows read: the statement is finished before the transaction goes on
            "INSERT INTO counters(guild_id, series, value) VALUES (?, ?, 1)"
            " ON CONFLICT(guild_id, series) DO UPDATE SET value = counters.value + 1 RETURNING value",
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
    async def due(
        db: Database,
        states: Iterable[JobState],
        *,
        due_by: float,
        busy: Iterable[int] = (),
        free_for: str | None = None,
    ) -> list[Due]:
        """The jobs in these states whose next attempt is due by `due_by`, by id (one read, one snapshot); the
        rows of `busy` jobs (a step running) are not read at all, the others are decoded only when asked.

        With 500 face scores waiting for the one face worker (RUNNING, each with its step running), a pass read
        and decoded 500 rows every poll interval for the minutes they take: about 18 ms of CPU; now 1 ms."""
        marks, names = _marks(states)
        where = f"state IN ({marks}) AND next_attempt_at <= ?"
        params: tuple[object, ...] = (*names, due_by)
        if free_for is not None:  # not leased by another process (or its lease ran out)
            where += " AND (lease_owner IS NULL OR lease_owner = ? OR lease_until < ?)"
            params = (*params, free_for, due_by)
        if isinstance(db, SqliteDatabase):
            rows: list[Due] = await db.read(_due_rows, where, params, frozenset(busy))
            return rows
        async with db.snapshot() as q:
            return await _due_rows_async(q, where, params, frozenset(busy))

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
        sql, params = _in_flight_sql(kinds)
        per_user = {int(r["user_id"]): int(r["n"]) for r in await q.fetchall(sql, params)}
        return sum(per_user.values()), per_user

    @staticmethod
    async def queue_view(db: Database, kinds: Iterable[str]) -> tuple[int, dict[int, int], list[Job]]:
        """What a scheduler pass reads, in one round trip and one snapshot: `in_flight_counts` and the waiting jobs
        (by id). The scheduler runs after every job that ends or is queued; two reads a pass were two trips."""
        sql, params = _in_flight_sql(kinds)
        if isinstance(db, SqliteDatabase):
            counts, waiting = await db.read(_queue_rows, sql, params, str(JobState.WAITING))
        else:
            async with db.snapshot() as q:
                counts = await q.fetchall(sql, params)
                waiting = await q.fetchall(
                    "SELECT * FROM jobs WHERE state = ? ORDER BY id", (str(JobState.WAITING),)
                )
        per_user = {int(user): int(n) for user, n in counts}
        return sum(per_user.values()), per_user, [_job(r) for r in waiting]

    # Leases (several processes on one queue, issue #18) -----------------------------------------------------
    @staticmethod
    async def claim(q: Queries, job_id: int, owner: str, *, until: float, now: float) -> bool:
        """Take (or renew) a job's lease unless another process holds one that has not run out."""
        return (
            await q.changed(
                "UPDATE jobs SET lease_owner = ?, lease_until = ? WHERE id = ?"
                " AND (lease_owner IS NULL OR lease_owner = ? OR lease_until < ?)",
                (owner, until, job_id, owner, now),
            )
            == 1
        )

    @staticmethod
    async def renew(q: Queries, owner: str, *, until: float) -> set[int]:
        """Renew every lease `owner` holds on an unfinished job; return those jobs' ids (a lease taken over by
        another process is not among them)."""
        marks, names = _marks(UNFINISHED)
        rows = await q.fetchall(
            f"UPDATE jobs SET lease_until = ? WHERE lease_owner = ? AND state IN ({marks}) RETURNING id",  # noqa: S608
            (until, owner, *names),
        )
        return {int(r[0]) for r in rows}

    @staticmethod
    async def taken_from(q: Queries, owner: str, job_ids: Iterable[int]) -> set[int]:
        """Which of these jobs another process holds now (a job that ended is not among them)."""
        ids = list(job_ids)
        if not ids:
            return set()
        marks = ", ".join("?" for _ in ids)
        rows = await q.fetchall(
            f"SELECT id FROM jobs WHERE id IN ({marks}) AND lease_owner IS NOT NULL AND lease_owner <> ?",  # noqa: S608
            (*ids, owner),
        )
        return {int(r[0]) for r in rows}

    @staticmethod
    async def expire_leases_of(q: Queries, prefix: str, *, but: str) -> int:
        """End now the leases whose owner name starts with `prefix` (an earlier run of a process), but `but`'s."""
        return await q.changed(
            "UPDATE jobs SET lease_until = 0 WHERE lease_owner IS NOT NULL AND substr(lease_owner, 1, ?) = ?"
            " AND lease_owner <> ?",
            (len(prefix), prefix, but),
        )

    @staticmethod
    async def release_leases(q: Queries, owner: str) -> int:
        """Give up every lease `owner` holds (a clean stop: another process may go on at once)."""
        return await q.changed(
            "UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?", (owner,)
        )

    @staticmethod
    async def lease_owner(q: Queries, job_id: int) -> str | None:
        row = await q.fetchone("SELECT lease_owner FROM jobs WHERE id = ?", (job_id,))
        return row[0] if row else None

    @staticmethod
    async def admits(
        q: Queries, kinds: Iterable[str], user_id: int, *, max_global: int, max_per_user: int
    ) -> bool:
        """Whether one more job of `user_id` fits the in-flight limits, counted over every process's jobs."""
        sql, params = _in_flight_sql(kinds)
        per_user = {int(r[0]): int(r[1]) for r in await q.fetchall(sql, params)}
        return sum(per_user.values()) < max_global and per_user.get(user_id, 0) < max_per_user

    @staticmethod
    async def state_counts(q: Queries, kind: str | None = None) -> dict[JobState, int]:
        if kind is None:
            rows = await q.fetchall("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
        else:
            rows = await q.fetchall(
                "SELECT state, COUNT(*) AS n FROM jobs WHERE kind = ? GROUP BY state", (kind,)
            )
        return {JobState(r["state"]): int(r["n"]) for r in rows}
