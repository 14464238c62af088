"""Job leases (issue #18): two engines (two processes' worth) on one database share one queue. Each job's steps
run in one engine at a time; an engine that stops renewing leaves its jobs to the other once the lease runs out; a
clean stop hands them over at once; a step's moves are fenced on the lease; the in-flight limits hold over both.
Run on the SQLite file (the SQL is the same) and on PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses

from bot.jobs import EngineConfig, JobEngine, JobState, Poll
from bot.jobs.kinds import STARTED
from bot.jobs.store import JobStore
from tests.both_backends import both_backends  # noqa: F401  (every test here on both backends)
from tests.unit.test_jobs import FAST, FakeLedger, RemoteKind, _queue, _until

S = JobState
LEASED = dataclasses.replace(FAST, lease_s=0.6)


def _engine(database, config: EngineConfig = LEASED) -> tuple[JobEngine, RemoteKind]:
    engine = JobEngine(database, ledger=FakeLedger(), backend="test", config=config)
    kind = RemoteKind()
    engine.register(kind)
    return engine, kind


async def test_two_engines_run_each_job_once(database):
    (a, ka), (b, kb) = _engine(database), _engine(database)
    jobs = [await _queue(a, tag=f"t{i}") for i in range(12)]
    a.start()
    b.start()
    try:
        done = [await _until(a, j.id, S.POSTED, S.FAILED) for j in jobs]
    finally:
        await a.stop()
        await b.stop()
    assert {j.state for j in done} == {S.POSTED}
    assert ka.submits + kb.submits == 12  # each job submitted once, by one of them
    assert sorted(ka.posts + kb.posts) == sorted(j.id for j in jobs)  # each posted once


async def test_a_dead_engines_job_is_taken_over_after_its_lease_and_a_clean_stop_hands_over_at_once(database):
    (a, ka), (b, kb) = _engine(database), _engine(database)
    ka.polls["slow"] = [Poll(STARTED)] * 1000  # a keeps polling it: running at the backend
    job = await _queue(a, tag="slow")
    a.start()
    await _until(a, job.id, S.RUNNING)
    assert await JobStore.lease_owner(database, job.id) == a.leases.owner
    for task in a._loops + list(a._active.values()):  # a "dies": nothing renews or releases its lease
        task.cancel()
    await asyncio.gather(*a._loops, *a._active.values(), return_exceptions=True)
    a._loops = []
    b.start()
    try:
        await asyncio.sleep(0.3)  # within the lease: b leaves the job alone
        assert await JobStore.lease_owner(database, job.id) == a.leases.owner and kb.posts == []
        done = await _until(b, job.id, S.POSTED, timeout=5)  # after it: b takes the job over and finishes it
        assert kb.posts == [job.id] and ka.posts == [] and done.lease_owner == b.leases.owner
        assert ka.submits + kb.submits == 1  # taken over at the backend, not submitted again
        # A clean stop releases: a second engine goes on at once, even with a lease that would last a minute.
        kb.polls["slow2"] = [Poll(STARTED)] * 1000
        slow = await _queue(b, tag="slow2")
        await _until(b, slow.id, S.RUNNING)
    finally:
        await b.stop()
    assert await JobStore.lease_owner(database, slow.id) is None
    c, kc = _engine(database, dataclasses.replace(FAST, lease_s=60))
    c.start()
    try:
        kc.polls["slow2"] = []
        await _until(c, slow.id, S.POSTED, timeout=5)
    finally:
        await c.stop()
    assert kc.posts == [slow.id]


async def test_a_step_whose_lease_another_engine_took_moves_nothing(database):
    (a, _ka), (b, _kb) = _engine(database), _engine(database)
    job = await _queue(a, tag="fenced")
    a._active[job.id] = asyncio.get_running_loop().create_future()  # as if a's step were running
    assert await a.leases.hold(job.id)
    now = a.clock()
    # b takes it over (a's lease ran out): a's step may not move it any more
    assert await JobStore.claim(database, job.id, b.leases.owner, until=now + 60, now=now + 1)
    assert await a._move(job, S.SUBMITTING) is None
    assert (await a.get(job.id)).state is S.WAITING
    a._active.pop(job.id).cancel()


async def test_the_in_flight_limit_holds_over_both_engines(database):
    config = dataclasses.replace(LEASED, max_global=2, max_per_user=2)
    (a, ka), (b, kb) = _engine(database, config), _engine(database, config)
    for kind in (ka, kb):
        kind.polls = {f"t{i}": [Poll(STARTED)] * 20 for i in range(8)}
    jobs = [await _queue(a, tag=f"t{i}") for i in range(8)]
    a.start()
    b.start()
    most = 0
    try:
        async with asyncio.timeout(20):
            while True:
                counts = await JobStore.state_counts(database)
                most = max(most, sum(n for s, n in counts.items() if s not in (S.WAITING, S.POSTED)))
                if counts.get(S.POSTED, 0) == len(jobs):
                    break
                await asyncio.sleep(0.005)
    finally:
        await a.stop()
        await b.stop()
    assert most <= 2 and ka.submits + kb.submits == 8


async def test_a_run_started_again_in_the_same_place_takes_its_predecessors_jobs_at_once(database):
    """A process killed and started again (same host, same shards) does not wait out its own old leases; a
    process elsewhere still does."""
    long = dataclasses.replace(FAST, lease_s=60, lease_identity="host-a/shards-0")
    a, ka = _engine(database, long)
    ka.polls["slow"] = [Poll(STARTED)] * 1000
    job = await _queue(a, tag="slow")
    a.start()
    await _until(a, job.id, S.RUNNING)
    for task in a._loops + list(a._active.values()):  # killed: nothing renews or releases
        task.cancel()
    await asyncio.gather(*a._loops, *a._active.values(), return_exceptions=True)
    a._loops = []
    elsewhere, kb = _engine(database, dataclasses.replace(long, lease_identity="host-b/shards-1"))
    elsewhere.start()
    await asyncio.sleep(0.3)
    await elsewhere.stop()
    assert kb.posts == [] and await JobStore.lease_owner(database, job.id) == a.leases.owner
    again, kc = _engine(database, long)  # the same place, a new run
    kc.polls["slow"] = []
    again.start()
    try:
        await _until(again, job.id, S.POSTED, timeout=5)
    finally:
        await again.stop()
    assert kc.posts == [job.id] and kc.submits == 0  # carried on at the backend, not sent again
