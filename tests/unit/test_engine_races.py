"""The engine's moves against what another process (or the chat service) does meanwhile: a cancel or an abandon
decided on a row another process has since sent to fal, a send whose job was taken over, a post whose channel
cannot be read. Each is a real JobEngine on a real database (both backends); a second handle on the same database
stands for the second process, and its writer is held busy to let the other process's write land first."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from bot.db import Database
from bot.db.postgres import PostgresDatabase
from bot.fal.gateway import CancelOutcome, Status
from bot.jobs import Job, JobEngine, JobState, NotCancellable, Poll, Uncertain
from bot.jobs.kinds import QUEUED
from bot.jobs.store import JobStore
from bot.kinds.fal import FalKind
from tests.backends import database_for
from tests.both_backends import both_backends  # noqa: F401  (every test here on both backends)
from tests.unit.test_jobs import FAST, FakeLedger, RemoteKind, _queue, _until

S = JobState
LEASED = dataclasses.replace(FAST, lease_s=30)


class CancelRecordingKind(RemoteKind):
    """A remote kind that records which request ids it was asked to cancel."""

    def __init__(self) -> None:
        super().__init__()
        self.cancelled: list[str | None] = []

    async def cancel(self, job: Job) -> bool:
        self.cancelled.append(job.request_id)
        return self.cancel_confirms


def _writer(db: Database) -> asyncio.Lock:
    """The lock a handle's writes queue on (held: its next write waits, as behind a busy writer)."""
    return db._writing if isinstance(db, PostgresDatabase) else db._lock  # type: ignore[attr-defined]


async def _two_processes(database: Database, database_url: str | None, tmp_path: Any) -> tuple[Any, ...]:
    other = database_for(database_url, tmp_path / "test.sqlite3")
    await other.open()
    a = JobEngine(database, ledger=FakeLedger(), backend="test", config=LEASED)
    ka = CancelRecordingKind()
    a.register(ka)
    b = JobEngine(other, ledger=a.ledger, backend="test", config=LEASED)
    kb = CancelRecordingKind()
    b.register(kb)
    ka.polls["c"] = [Poll(QUEUED, 1)] * 1000
    return other, a, ka, b, kb


async def test_a_cancel_decided_on_a_waiting_row_does_not_end_a_job_another_process_sent(
    database, database_url, tmp_path
):
    """B reads the job WAITING (nothing to ask fal) and its write waits; A sends the job meanwhile. B's cancel
    must not then end the job and release its hold while fal runs it: it is refused, and A's job goes on."""
    other, a, ka, b, kb = await _two_processes(database, database_url, tmp_path)
    job = await _queue(a, tag="c")
    writer = _writer(other)
    await writer.acquire()
    try:
        cancel = asyncio.create_task(b.cancel(job.id, reason="Cancelled by the requester."))
        await asyncio.sleep(0.1)  # B has read the row
        a.start()
        sent = await _until(a, job.id, S.SUBMITTED, S.RUNNING)
    finally:
        writer.release()
    try:
        refused = False
        await cancel
    except NotCancellable:
        refused = True
    row = await a.get(job.id)
    await a.stop()
    await other.close()
    assert refused and row is not None and row.state in (S.SUBMITTED, S.RUNNING), row
    assert a.ledger.holds[row.ledger_key] == "held" and sent.request_id == row.request_id


async def test_an_abandon_decided_on_a_waiting_row_does_not_fail_a_job_another_process_sent(
    database, database_url, tmp_path
):
    other, a, ka, b, kb = await _two_processes(database, database_url, tmp_path)
    job = await _queue(a, tag="c")
    writer = _writer(other)
    await writer.acquire()
    try:
        abandon = asyncio.create_task(b.abandon(job, error="could not post the progress message"))
        await asyncio.sleep(0.1)
        a.start()
        await _until(a, job.id, S.SUBMITTED, S.RUNNING)
    finally:
        writer.release()
    out = await abandon
    row = await a.get(job.id)
    await a.stop()
    await other.close()
    assert out is None and row is not None and row.state in (S.SUBMITTED, S.RUNNING)
    assert a.ledger.holds[row.ledger_key] == "held"


class SlowGateway:
    """fal as FalKind sees it: the submit answers when the test lets it; every cancel is recorded (and confirmed)."""

    name = "stub"
    needs_upload = False
    dry_run = False

    def __init__(self) -> None:
        self.answer = asyncio.Event()
        self.submitted: list[str] = []
        self.cancelled: list[str] = []

    async def submit(self, endpoint: str, arguments: dict[str, Any], *, webhook_url: str | None = None) -> str:
        await self.answer.wait()
        self.submitted.append(f"fal-{len(self.submitted) + 1}")
        return self.submitted[-1]

    async def status(self, endpoint: str, request_id: str) -> Status:
        return Status("queued", position=1)

    async def cancel(self, endpoint: str, request_id: str) -> CancelOutcome:
        self.cancelled.append(request_id)
        return CancelOutcome.CANCELLED


class GatewayKind(FalKind):
    name = "gatewaykind"
    ledger_prefix = "gw"
    noun = "widget"

    def __init__(self, gateway: SlowGateway) -> None:
        self.gateway = gateway  # type: ignore[assignment]

    async def arguments(self, job: Job) -> dict[str, Any]:
        return {"prompt": "x"}


async def test_a_send_whose_job_was_taken_over_cancels_what_fal_accepted(database, database_url, tmp_path):
    """A's send outlives its lease; B takes the job over and fails it (restarted while sending: released). When
    fal then answers A's send, A's move is fenced, and the request fal accepted is cancelled at fal by its id."""
    other = database_for(database_url, tmp_path / "test.sqlite3")
    await other.open()
    gateway = SlowGateway()
    a = JobEngine(database, ledger=FakeLedger(), backend="test", config=LEASED)
    a.register(GatewayKind(gateway))
    b = JobEngine(other, ledger=a.ledger, backend="test", config=LEASED)
    b.register(GatewayKind(gateway))
    job = await _queue(a, "gatewaykind")
    a.start()
    try:
        await _until(a, job.id, S.SUBMITTING)
        now = a.clock()  # A stalls past its lease: B's claim succeeds, as its poller's would then
        assert await JobStore.claim(database, job.id, b.leases.owner, until=now + 60, now=now + 31)
        b.start()
        await _until(b, job.id, S.FAILED)
        gateway.answer.set()
        async with asyncio.timeout(5):
            while not gateway.cancelled:
                await asyncio.sleep(0.01)
    finally:
        await a.stop()
        await b.stop()
        await other.close()
    assert gateway.submitted == ["fal-1"] and gateway.cancelled == ["fal-1"]


class StoredThenBlindKind(RemoteKind):
    """The post is stored but answered with an error; then the channel cannot be read (a long outage)."""

    async def deliver(self, job: Job) -> int:
        self.posts.append(job.id)
        raise Uncertain("503 from the chat service after it stored the message")

    async def find_delivered(self, job: Job) -> int | None:
        raise RuntimeError("503 Service Unavailable")


async def test_a_post_whose_channel_cannot_be_read_keeps_its_hold_however_long(database):
    """A post that may exist is never released on a timer: its hold stays until the channel can be read."""
    now = [1_000_000.0]
    config = dataclasses.replace(FAST, backoff_cap_s=0.05)
    engine = JobEngine(database, ledger=FakeLedger(), backend="test", config=config, clock=lambda: now[0])
    kind = StoredThenBlindKind()
    engine.register(kind)
    engine.start()
    try:
        job = await _queue(engine)
        await _until(engine, job.id, S.POSTING)
        for _ in range(40):  # over an hour past the delivery deadline, two minutes at a time
            now[0] += 120
            await asyncio.sleep(0.05)
        row = await engine.get(job.id)
    finally:
        await engine.stop()
    assert kind.posts == [job.id] and row is not None and row.state is S.POSTING
    assert engine.ledger.holds[row.ledger_key] == "held"


async def test_a_step_retried_for_days_waits_the_cap_between_tries(database):
    """A post whose channel stays unreadable retries without end (see above): however many attempts it has made,
    the next waits the backoff cap (the doubling's exponent is capped: 2.0 * 2**1024 overflows a float)."""
    now = [1_000_000.0]
    engine = JobEngine(database, ledger=FakeLedger(), backend="test", config=FAST, clock=lambda: now[0])
    engine.register(RemoteKind())
    job = await _queue(engine)
    await JobStore.update(database, job.id, {"attempts": 5000})
    stale = await engine.get(job.id)
    assert stale is not None
    await engine._retry(stale, "could not read the channel", deadline=float("inf"))
    row = await engine.get(job.id)
    assert row is not None and row.attempts == 5001 and row.next_attempt_at == now[0] + FAST.backoff_cap_s
