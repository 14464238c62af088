"""The job engine on its own: states and transitions, a tiny local kind, persisted retries, exactly-once rules."""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.db import Queries
from bot.jobs import (
    FINAL,
    EngineConfig,
    Fail,
    Failure,
    Job,
    JobEngine,
    JobState,
    KindBase,
    LocalKind,
    NotCancellable,
    Poll,
    Prepared,
    Retry,
    Uncertain,
)
from bot.jobs import (
    RemoteKind as RemoteKindProtocol,
)
from bot.jobs.kinds import DONE, QUEUED, STARTED
from bot.jobs.states import TRANSITIONS, sources
from tests.both_backends import both_backends  # noqa: F401  (every test here on both backends)

ROOT = Path(__file__).resolve().parents[2]
S = JobState
FAST = EngineConfig(poll_interval_s=0.02, backoff_base_s=0.05, backoff_cap_s=0.2, progress_grace_s=0)


class FakeLedger:
    def __init__(self) -> None:
        self.holds: dict[str, str] = {}

    async def tx_hold(
        self, conn: Queries, *, job_key: str, guild_id: int, user_id: int, amount: int, description: str
    ) -> None:
        self.holds[job_key] = "held"

    async def tx_settle(self, conn: Queries, job_key: str, kind: str) -> bool:
        if self.holds.get(job_key) != "held":
            return False
        self.holds[job_key] = {"capture": "captured", "release": "released"}[kind]
        return True


class Sink:
    def __init__(self) -> None:
        self.seen: list[tuple[int, JobState]] = []

    def job_changed(self, job: Job) -> None:
        self.seen.append((job.id, job.state))


# The smallest kind there is: local, dry-run only, 10 lines (the closing note counts them).
class EchoKind(KindBase):
    name = "echo"
    ledger_prefix = "echo"

    def run(self, job: Job) -> dict[str, Any]:
        return {"text": job.args["text"].upper()}

    async def deliver(self, job: Job) -> int:
        self.posted = job.outputs["text"]
        return 4242 + job.id


class RemoteKind(KindBase):
    """A remote kind whose every answer a test can script."""

    name = "remote"
    remote = True
    ledger_prefix = "shot"
    noun = "widget"

    def __init__(self) -> None:
        self.submits = 0
        self.submit_error: Exception | None = None
        self.polls: dict[str, list[Any]] = {}
        self.cancel_confirms = True
        self.deliver_errors: list[Exception] = []
        self.posts: list[int] = []
        self.slow: set[str] = set()

    async def submit(self, job: Job) -> str:
        self.submits += 1
        if self.submit_error:
            err, self.submit_error = self.submit_error, None
            raise err
        return f"req-{job.id}"

    async def poll(self, job: Job) -> Poll:
        if job.args.get("tag") in self.slow:
            await asyncio.sleep(30)
        script = self.polls.get(job.args.get("tag", ""), [])
        answer = script.pop(0) if script else Poll(DONE)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def collect(self, job: Job) -> dict[str, Any]:
        return {"url": f"https://fal.example/{job.id}.mp4"}

    async def cancel(self, job: Job) -> bool:
        return self.cancel_confirms

    async def postprocess(self, job: Job) -> dict[str, Any]:
        return {"path": f"/tmp/{job.id}.mp4"}

    async def deliver(self, job: Job) -> int:
        if self.deliver_errors:
            err = self.deliver_errors.pop(0)
            if isinstance(err, Uncertain):
                self.posts.append(job.id)  # stored by the chat, answered with an error
            raise err
        self.posts.append(job.id)
        return 1000 + job.id

    async def find_delivered(self, job: Job) -> int | None:
        return 1000 + job.id if job.id in self.posts else None


@pytest.fixture
async def db(database):
    """The test's database: the SQLite file and, marked `postgres`, a PostgreSQL database (tests/backends.py)."""
    return database


@pytest.fixture
async def engine(db):
    eng = JobEngine(db, ledger=FakeLedger(), backend="test", config=FAST)
    eng.register(EchoKind())
    eng.register(RemoteKind())
    yield eng
    await eng.stop()


@pytest.fixture
def sink(engine):
    seen = Sink()
    engine.subscribe(seen)
    return seen


async def _until(engine: JobEngine, job_id: int, *states: JobState, timeout: float = 10.0) -> Job:
    async with asyncio.timeout(timeout):
        while True:
            job = await engine.get(job_id)
            if job is not None and job.state in states:
                return job
            await asyncio.sleep(0.01)


async def _queue(engine: JobEngine, kind: str = "remote", **args: Any) -> Job:
    return await engine.enqueue(
        kind, Prepared(args=args, price_micros=100), guild_id=1, channel_id=2, user_id=3
    )


def test_every_state_has_a_row_in_the_table():
    assert set(TRANSITIONS) == set(JobState)
    assert {S.POSTED, S.FAILED, S.CANCELLED} == FINAL
    assert sources(S.POSTED) == (S.POSTING,)  # posted only after POSTING was written


def test_no_state_name_is_written_as_a_literal_outside_the_states_module():
    names = "|".join(s.value for s in JobState)
    literal = re.compile(rf"""["']({names})["']""")
    # states.py defines them; bot/fal speaks fal's own queue words and error kinds, which are not job states.
    allowed = {ROOT / "bot/jobs/states.py"}
    offenders = [
        f"{p.relative_to(ROOT)}:{n}"
        for base in ("bot", "cogs")
        for p in sorted((ROOT / base).rglob("*.py"))
        if p not in allowed and not str(p).startswith(str(ROOT / "bot/fal"))
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if literal.search(line) and "# backend-words" not in line
    ]
    assert offenders == []


async def test_a_local_kind_runs_in_the_pool_and_is_delivered_and_captured(engine, sink):
    engine.start()
    job = await _queue(engine, "echo", text="hi")
    done = await _until(engine, job.id, S.POSTED, S.FAILED)
    assert (
        done.state is S.POSTED and done.outputs == {"text": "HI"} and done.result_message_id == 4242 + job.id
    )
    assert engine.ledger.holds == {f"echo:{job.id}": "captured"}
    assert [s for i, s in sink.seen if i == job.id] == [
        S.RUNNING,
        S.COMPLETED,
        S.DOWNLOADED,
        S.POSTING,
        S.POSTED,
    ]
    assert len(inspect.getsource(EchoKind).splitlines()) <= 10
    assert isinstance(EchoKind(), LocalKind) and isinstance(RemoteKind(), RemoteKindProtocol)


async def test_transient_poll_errors_are_retried_with_persisted_backoff(engine):
    kind = engine.kinds["remote"]
    kind.polls["a"] = [Retry("fal is busy (503)"), Retry("fal is busy (503)"), Poll(STARTED)]
    engine.start()
    job = await _queue(engine, tag="a")
    seen_attempts = 0
    async with asyncio.timeout(10):
        while (row := await engine.get(job.id)).state is not S.POSTED:
            seen_attempts = max(seen_attempts, row.attempts)
            await asyncio.sleep(0.005)
    assert seen_attempts >= 1  # on the row, not in memory
    assert row.attempts == 0 and kind.submits == 1
    assert engine.ledger.holds[row.ledger_key] == "captured"


async def test_unknown_submit_outcome_fails_and_releases_without_a_second_submit(engine):
    kind = engine.kinds["remote"]
    kind.submit_error = Uncertain("fal did not answer; not sent again")
    engine.start()
    job = await _queue(engine)
    done = await _until(engine, job.id, S.FAILED, S.POSTED)
    assert done.state is S.FAILED and kind.submits == 1
    assert engine.ledger.holds[done.ledger_key] == "released"


async def test_transient_submit_goes_back_to_the_queue(engine):
    kind = engine.kinds["remote"]
    kind.submit_error = Retry("fal said 503 and took nothing")
    engine.start()
    job = await _queue(engine)
    done = await _until(engine, job.id, S.FAILED, S.POSTED)
    assert done.state is S.POSTED and kind.submits == 2


async def test_a_job_found_submitting_after_a_restart_is_not_submitted_again(engine, db):
    kind = engine.kinds["remote"]
    job = await _queue(engine)
    await db.execute("UPDATE jobs SET state=? WHERE id=?", (S.SUBMITTING.value, job.id))
    engine.start()
    done = await _until(engine, job.id, S.FAILED, S.POSTED)
    assert done.state is S.FAILED and kind.submits == 0
    assert engine.ledger.holds[done.ledger_key] == "released"


class StuckSubmitKind(RemoteKind):
    """Every submit waits until the test lets it through (a slow backend)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def submit(self, job: Job) -> str:
        await self.gate.wait()
        return await super().submit(job)


async def test_only_jobs_holding_a_send_slot_are_marked_as_being_sent(db):
    """A stop fails what it finds being sent (the backend may have it); a job still waiting for one of the send
    slots is left in the queue, so a stop in a burst of sends costs at most the slots' jobs, not all admitted."""
    config = EngineConfig(
        poll_interval_s=0.02, progress_grace_s=0, max_per_user=10, max_global=10, poll_concurrency=2
    )
    first = JobEngine(db, ledger=FakeLedger(), backend="test", config=config)
    first.register(StuckSubmitKind())
    first.start()
    jobs = [await _queue(first) for _ in range(5)]

    async def states() -> Counter[JobState]:
        return Counter([(await first.get(j.id)).state for j in jobs])

    async with asyncio.timeout(10):
        while (await states())[S.SUBMITTING] < 2:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)  # ten poll intervals: time enough for the other three to be moved, were they
    assert await states() == {S.WAITING: 3, S.SUBMITTING: 2}
    await first.stop()  # as a SIGKILL would leave them: the two being sent, three in the queue
    second = JobEngine(db, ledger=FakeLedger(), backend="test", config=config)
    again = RemoteKind()
    second.register(again)
    second.start()
    try:
        done = [await _until(second, j.id, S.FAILED, S.POSTED) for j in jobs]
    finally:
        await second.stop()
    assert Counter(j.state for j in done) == {S.POSTED: 3, S.FAILED: 2} and again.submits == 3


async def test_unconfirmed_cancel_is_refused_and_the_job_carries_on(engine):
    kind = engine.kinds["remote"]
    kind.cancel_confirms = False
    kind.polls["c"] = [Poll(STARTED)] * 5
    engine.start()
    job = await _queue(engine, tag="c")
    await _until(engine, job.id, S.RUNNING)
    with pytest.raises(NotCancellable) as caught:
        await engine.cancel(job.id, reason="stop")
    assert caught.value.unconfirmed
    done = await _until(engine, job.id, S.POSTED, S.FAILED)
    assert engine.ledger.holds[done.ledger_key] == "captured"


async def test_confirmed_cancel_releases(engine):
    kind = engine.kinds["remote"]
    kind.polls["c"] = [Poll(QUEUED, 3)] * 50
    engine.start()
    job = await _queue(engine, tag="c")
    await _until(engine, job.id, S.SUBMITTED)
    done = await engine.cancel(job.id, reason="stop")
    assert done.state is S.CANCELLED and engine.ledger.holds[done.ledger_key] == "released"


async def test_a_post_stored_but_answered_with_an_error_is_recorded_once(engine):
    kind = engine.kinds["remote"]
    kind.deliver_errors = [Uncertain("500 from the chat")]
    engine.start()
    job = await _queue(engine)
    done = await _until(engine, job.id, S.POSTED, S.FAILED)
    assert kind.posts == [job.id] and done.result_message_id == 1000 + job.id
    assert engine.ledger.holds[done.ledger_key] == "captured"


async def test_a_definite_post_refusal_fails_and_releases(engine):
    kind = engine.kinds["remote"]
    kind.deliver_errors = [Fail("not allowed here")]
    engine.start()
    job = await _queue(engine)
    done = await _until(engine, job.id, S.FAILED, S.POSTED)
    assert done.state is S.FAILED and engine.ledger.holds[done.ledger_key] == "released"


async def test_one_slow_status_answer_does_not_hold_back_another_jobs_clip(engine):
    kind = engine.kinds["remote"]
    kind.slow.add("slow")
    engine.start()
    slow = await _queue(engine, tag="slow")
    fast = await _queue(engine, tag="fast")
    done = await _until(engine, fast.id, S.POSTED, timeout=5)
    assert done.state is S.POSTED
    assert (await engine.get(slow.id)).state in (S.SUBMITTED, S.RUNNING)


class TickerKind(RemoteKind):
    """A remote kind that never finishes and notes when each job is polled."""

    name = "ticker"

    def __init__(self) -> None:
        super().__init__()
        self.asked: dict[int, list[float]] = {}

    async def poll(self, job: Job) -> Poll:
        self.asked.setdefault(job.id, []).append(asyncio.get_running_loop().time())
        return Poll(STARTED)


async def test_polls_trickle_over_the_interval_and_each_job_is_asked_once_an_interval(db):
    """#10: no burst of every job's status request at once; and never more than one per job per interval."""
    interval, n = 0.4, 8
    engine = JobEngine(
        db,
        ledger=FakeLedger(),
        backend="test",
        config=EngineConfig(poll_interval_s=interval, progress_grace_s=0, max_per_user=n),
    )
    kind = TickerKind()
    engine.register(kind)
    engine.start()
    try:
        jobs = [await _queue(engine, "ticker", tag=str(i)) for i in range(n)]
        for job in jobs:
            await _until(engine, job.id, S.RUNNING)
        window_start = asyncio.get_running_loop().time()
        await asyncio.sleep(interval * 5)
    finally:
        await engine.stop()
    # Each job: at most one poll an interval over the window (and it is polled).
    for job in jobs:
        seen = [t for t in kind.asked[job.id] if t >= window_start]
        assert 1 <= len(seen) <= 5 + 1, seen
    # One pass: the jobs' polls are spread over the interval (a burst would ask all 8 within milliseconds).
    firsts = sorted(min(t for t in kind.asked[job.id] if t >= window_start + interval) for job in jobs)
    assert firsts[-1] - firsts[0] >= interval / 4, firsts


async def test_any_number_of_subscribers_hear_every_change_until_they_unsubscribe(engine):
    first, second = Sink(), Sink()
    engine.subscribe(first)
    unsubscribe = engine.subscribe(second)
    engine.start()
    job = await _queue(engine, "echo", text="a")
    await _until(engine, job.id, S.POSTED)
    assert [s for _, s in first.seen] == [s for _, s in second.seen] and first.seen[-1] == (job.id, S.POSTED)
    unsubscribe()
    unsubscribe()  # twice is harmless
    later = await _queue(engine, "echo", text="b")
    await _until(engine, later.id, S.POSTED)
    assert any(i == later.id for i, _ in first.seen) and not any(i == later.id for i, _ in second.seen)


class UnattachedKind(EchoKind):
    """A local kind whose chat side comes and goes."""

    name = "unattached"
    attached = False

    def can_deliver(self) -> bool:
        return self.attached


async def test_delivery_waits_for_the_chat_side_without_burning_attempts(db):
    engine = JobEngine(db, ledger=FakeLedger(), backend="test", config=FAST)
    kind = UnattachedKind()
    engine.register(kind)
    engine.start()
    try:
        job = await _queue(engine, "unattached", text="wait")
        await _until(engine, job.id, S.DOWNLOADED)
        await asyncio.sleep(FAST.poll_interval_s * 20)  # many poller passes
        held = await engine.get(job.id)
        assert held.state is S.DOWNLOADED and held.attempts == 0
        kind.attached = True  # the cog loads
        done = await _until(engine, job.id, S.POSTED)
    finally:
        await engine.stop()
    assert done.result_message_id == 4242 + job.id and engine.ledger.holds[done.ledger_key] == "captured"


async def test_a_kind_may_post_nothing_of_its_own(engine):
    class EditKind(EchoKind):
        name = "edit"

        async def deliver(self, job: Job) -> None:
            return None  # e.g. an edit of another job's message

    engine.register(EditKind())
    engine.start()
    job = await _queue(engine, "edit", text="x")
    done = await _until(engine, job.id, S.POSTED)
    assert done.result_message_id is None and engine.ledger.holds[done.ledger_key] == "captured"


async def test_what_the_engine_ends_a_job_for_is_worded_by_its_kind(engine, db):
    job = await _queue(engine)
    await db.execute("UPDATE jobs SET state=? WHERE id=?", (S.SUBMITTING.value, job.id))
    engine.start()
    done = await _until(engine, job.id, S.FAILED)
    assert done.error == RemoteKind().failure_text(Failure.RESTARTED_WHILE_SENDING)
    assert "widget" in done.error


def _strings_but_docstrings(source: str) -> list[str]:
    tree = ast.parse(source)
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
    ]


def test_the_engine_names_no_kind_and_no_backend_in_its_words():
    """Every sentence a member reads comes from a kind: no string of the engine says 'clip', 'fal', 'take'..."""
    words = re.compile(r"\b(clips?|fal|takes?|shots?|videos?|images?|voices?)\b", re.IGNORECASE)
    for path in sorted((ROOT / "bot/jobs").glob("*.py")):
        found = [s for s in _strings_but_docstrings(path.read_text(encoding="utf-8")) if words.search(s)]
        assert found == [], path.name
    assert words.search("The clip was made") and not words.search("The {noun} was made")


class BlockedKind(EchoKind):
    """A local kind whose work waits until the test lets it go (like face scores queued behind one worker)."""

    name = "blocked"

    def __init__(self) -> None:
        self.go = threading.Event()

    def run(self, job: Job) -> dict[str, Any]:
        self.go.wait(10)
        return {"text": "done"}


async def test_the_poller_decodes_no_row_of_a_job_whose_step_is_running(db, monkeypatch):
    """#15: jobs waiting for the local pool are read every pass; their rows are not decoded (only started steps)."""
    from bot.jobs import store

    config = EngineConfig(poll_interval_s=0.02, progress_grace_s=0, max_per_user=10, max_global=10)
    engine = JobEngine(db, ledger=FakeLedger(), backend="test", config=config)
    kind = BlockedKind()
    engine.register(kind)
    engine.start()
    try:
        jobs = [await _queue(engine, "blocked", text=str(i)) for i in range(6)]
        for job in jobs:
            await _until(engine, job.id, S.RUNNING)
        decoded: list[int] = []
        real = store._job

        def counting(row: Any) -> Job:
            decoded.append(row["id"])
            return real(row)

        monkeypatch.setattr(store, "_job", counting)
        due = await store.JobStore.due(db, (S.RUNNING,), due_by=engine.clock())
        assert [d.id for d in due] == [j.id for j in jobs] and {d.state for d in due} == {S.RUNNING}
        assert decoded == []  # reading them decodes nothing
        await asyncio.sleep(config.poll_interval_s * 10)  # many poller passes over the six RUNNING rows
        assert decoded == []
        kind.go.set()
        for job in jobs:
            assert (await _until(engine, job.id, S.POSTED)).outputs == {"text": "done"}
    finally:
        kind.go.set()
        await engine.stop()


async def test_several_jobs_are_queued_and_held_all_or_none(engine, db):
    """enqueue_all: one transaction for every job's row and hold, and the caller's own writes with them."""
    from bot.jobs import NewJob

    class Refusing(FakeLedger):
        async def tx_hold(self, conn, *, job_key, guild_id, user_id, amount, description):
            if amount > 500:
                raise RuntimeError("over budget")
            await super().tx_hold(
                conn,
                job_key=job_key,
                guild_id=guild_id,
                user_id=user_id,
                amount=amount,
                description=description,
            )

    engine.ledger = Refusing()
    seen: list[list[int]] = []

    async def within(tx, jobs):
        seen.append([j.id for j in jobs])

    def new(price: int) -> NewJob:
        return NewJob("remote", Prepared(args={}, price_micros=price), guild_id=1, channel_id=2, user_id=3)

    jobs = await engine.enqueue_all([new(100), new(200)], within=within)
    assert [j.price_micros for j in jobs] == [100, 200] and seen == [[j.id for j in jobs]]
    with pytest.raises(RuntimeError):
        await engine.enqueue_all([new(100), new(900)])  # the second cannot be held: neither is queued
    with pytest.raises(ValueError):

        async def refuse(tx, jobs):
            raise ValueError("the caller's check failed")

        await engine.enqueue_all([new(100)], within=refuse)
    assert [j.id for j in await engine.in_states(*JobState)] == [j.id for j in jobs]
