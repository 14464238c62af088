"""The job engine: one queue for every kind of job, persisted in `jobs`, resumed from the table after a restart.

- The scheduler moves waiting jobs on within the global and per-user limits: remote kinds are submitted (exactly
  once), local kinds run in a thread pool with their own limit, so CPU work never blocks the loop.
- One shared poller looks at every due job each interval and starts one step per job (poll at the backend,
  post-process, deliver) as its own task, bounded by a semaphore and by its own timeout: a slow answer for one job
  never holds back another.
- Retries are persisted (`attempts`, `next_attempt_at`), with capped exponential backoff, up to the job's deadline.
- Every move checks the transition table and settles the hold in the same transaction as the final state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, cast

from bot.db import Database, Queries
from bot.jobs.kinds import (
    Fail,
    Failure,
    Ledger,
    LocalKind,
    ProgressSink,
    RemoteKind,
    Resubmit,
    Retry,
    StepError,
)
from bot.jobs.leases import Leases
from bot.jobs.models import Job, NewJob, Prepared
from bot.jobs.states import (
    AT_BACKEND,
    CANCELLABLE,
    SETTLEMENT,
    JobState,
    sources,
)
from bot.jobs.store import JobStore

log = logging.getLogger(__name__)
S = JobState
Within = Callable[[Queries, list[Job]], Awaitable[None]]  # more writes in the transaction that queues jobs
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class EngineConfig:
    poll_interval_s: float = 3.0
    max_global: int = 10
    max_per_user: int = 2
    job_timeout_s: float = (
        1800.0  # from submit to completion at the backend, and for fetching a billed result
    )
    delivery_give_up_s: float = 300.0  # a clip that cannot be posted gives up after this
    # past job_timeout_s, a job whose cancel the backend did not confirm is still polled this long (at most
    # job_timeout_s again)
    unconfirmed_cancel_grace_s: float = 300.0
    poll_concurrency: int = 8
    delivery_concurrency: int = 4
    local_concurrency: int = 2
    step_timeout_s: float = 60.0  # one poll, post-process or delivery attempt
    backoff_base_s: float = 2.0
    backoff_cap_s: float = 60.0
    progress_grace_s: float = 30.0  # a new job waits this long at most for its progress message
    # Several processes on one queue (PostgreSQL, issue #18): a job's steps run only in the process holding its
    # lease, renewed every third of this; a process that dies leaves its jobs to the others once it runs out.
    # None: one process alone (the SQLite file), no leases taken.
    lease_s: float | None = None
    # this process's place (host and shards): a run started again there adopts its jobs
    lease_identity: str = ""


class JobNotFound(Exception):
    pass


class NotCancellable(Exception):
    """The job is past the point of cancelling (or not yet at a point where a cancel can be confirmed)."""

    def __init__(self, job: Job, *, unconfirmed: bool = False) -> None:
        super().__init__(job.state)
        self.job = job
        self.unconfirmed = unconfirmed


class JobEngine:
    def __init__(
        self,
        db: Database,
        *,
        ledger: Ledger,
        backend: str,
        charge: bool = True,
        config: EngineConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.ledger = ledger
        self.backend = backend
        self.charge = charge
        self.config = config or EngineConfig()
        self.clock = clock
        self.kinds: dict[str, LocalKind | RemoteKind] = {}
        self._sinks: list[ProgressSink] = []
        self._wake = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._active: dict[int, asyncio.Task[None]] = {}
        # When each job's last step ended (monotonic): a poller pass that read the table before that saw an old state.
        self._step_ended: dict[int, float] = {}
        self._moved_to: dict[int, JobState] = {}  # the last state each running step moved its job to
        self._poll_sem = asyncio.Semaphore(self.config.poll_concurrency)
        self._deliver_sem = asyncio.Semaphore(self.config.delivery_concurrency)
        self._local_sem = asyncio.Semaphore(self.config.local_concurrency)
        self._pool = ThreadPoolExecutor(max_workers=self.config.local_concurrency, thread_name_prefix="job")
        # Several processes on one queue: this process's leases on jobs (None: one process alone, no leases).
        self.leases = (
            Leases(db, self.config.lease_s, clock, self.config.lease_identity)
            if self.config.lease_s is not None
            else None
        )

    # Kinds and lifecycle ---------------------------------------------------------------------------------
    def register(self, kind: LocalKind | RemoteKind) -> None:
        """Add a kind (bot/app.py registers every kind, before the engine starts)."""
        if kind.name in self.kinds:
            raise ValueError(f"a job kind named {kind.name!r} is registered already")
        self.kinds[kind.name] = kind

    def subscribe(self, sink: ProgressSink) -> Callable[[], None]:
        """Tell `sink` of every state change from now on; returns the call that unsubscribes it."""
        self._sinks.append(sink)
        return lambda: self.unsubscribe(sink)

    def unsubscribe(self, sink: ProgressSink) -> None:
        if sink in self._sinks:
            self._sinks.remove(sink)

    def start(self) -> None:
        """Start the scheduler and the poller (the bot does, once its chat side is loaded)."""
        if self._loops:
            return
        self._loops = [
            asyncio.create_task(self._scheduler_loop(), name="jobs-scheduler"),
            asyncio.create_task(self._poller_loop(), name="jobs-poller"),
        ]
        if self.leases is not None:
            self._loops.append(asyncio.create_task(self._lease_loop(self.leases), name="jobs-leases"))

    async def stop(self) -> None:
        tasks = self._loops + list(self._active.values())
        self._loops = []
        for task in tasks:
            task.cancel()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_S)
            for task in stuck:
                log.warning("job task %s did not stop within %.0f s", task.get_name(), STOP_TIMEOUT_S)
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.leases is not None:
            await self.leases.release_all()

    def wake(self) -> None:
        self._wake.set()

    # Queue, read, cancel ---------------------------------------------------------------------------------
    async def enqueue(
        self,
        kind: str,
        prepared: Prepared,
        *,
        guild_id: int,
        channel_id: int,
        user_id: int,
        parent_id: int | None = None,
        reply_to_message_id: int | None = None,
        within: Within | None = None,
    ) -> Job:
        """Queue a job and hold its price in one transaction (raises whatever the ledger refuses with)."""
        new = NewJob(kind, prepared, guild_id, channel_id, user_id, parent_id, reply_to_message_id)
        [job] = await self.enqueue_all([new], within=within)
        return job

    async def enqueue_all(self, new: list[NewJob], *, within: Within | None = None) -> list[Job]:
        """Queue jobs and hold their prices in ONE transaction: all of them or none (a budget that cannot hold the
        whole total refuses it all). `within(tx, jobs)` adds its own writes to that transaction (and may raise to
        undo it all), e.g. a scene recording its shots."""
        now = self.clock()

        async def body(tx: Queries) -> list[Job]:
            jobs = [await self._insert(tx, one, now) for one in new]
            if within is not None:
                await within(tx, jobs)
            return jobs

        jobs = await self.db.run(body)
        for job in jobs:
            log.info("job %d (%s) queued by %d", job.id, job.kind, job.user_id)
        return jobs

    async def _insert(self, tx: Queries, new: NewJob, now: float) -> Job:
        """One job's row and its hold (inside the caller's transaction)."""
        kind, prepared, parent_id = new.kind, new.prepared, new.parent_id
        seq = (
            await JobStore.next_seq(tx, parent_id, kind, numbered=prepared.series is not None)
            if parent_id
            else 1
        )
        number = await self._number(tx, parent_id, new.guild_id, prepared.series)
        job_id = await JobStore.insert(
            tx,
            {
                "kind": kind,
                "parent_id": parent_id,
                "seq": seq,
                "ledger_key": f"pending:{now}:{new.user_id}:{id(new)}",
                "guild_id": new.guild_id,
                "channel_id": new.channel_id,
                "user_id": new.user_id,
                "args": prepared.args,
                "outputs": {},
                "state": S.WAITING,
                "endpoint": prepared.endpoint,
                "backend": self.backend,
                "price_micros": prepared.price_micros,
                "reply_to_message_id": new.reply_to_message_id,
                "number": number,
                "created_at": now,
                "updated_at": now,
            },
        )
        key = f"{self.kinds[kind].ledger_prefix}:{job_id}"
        await JobStore.update(tx, job_id, {"ledger_key": key})
        if self.charge and prepared.price_micros > 0:  # a free job (e.g. a face score) holds nothing
            description = prepared.description.format(id=parent_id or job_id, seq=seq, number=number)
            await self.ledger.tx_hold(
                tx,
                job_key=key,
                guild_id=new.guild_id,
                user_id=new.user_id,
                amount=prepared.price_micros,
                description=description or f"{kind} #{job_id}",
            )
        job = await JobStore.get(tx, job_id)
        assert job is not None
        return job

    @staticmethod
    async def _number(tx: Queries, parent_id: int | None, guild_id: int, series: str | None) -> int | None:
        """A new job's number in its server's series (drawn in the queueing transaction: a refusal leaves no
        gap); a child in the series (a take's re-roll) shares its parent's; a job of no series has none."""
        if not series:
            return None
        if parent_id:
            return await JobStore.number_of(tx, parent_id)
        return await JobStore.next_number(tx, guild_id, series)

    async def get(self, job_id: int) -> Job | None:
        return await JobStore.get(self.db, job_id)

    async def by_result_message(self, message_id: int) -> Job | None:
        return await JobStore.by_result_message(self.db, message_id)

    async def in_states(self, *states: JobState) -> list[Job]:
        return await JobStore.in_states(self.db, states)

    async def state_counts(self, kind: str | None = None) -> dict[JobState, int]:
        """Jobs per state (of one kind, if given)."""
        return await JobStore.state_counts(self.db, kind)

    async def set_messages(self, job: Job, **message_ids: int | None) -> Job:
        """Record a job's progress or reply-target message (the chat side calls this)."""
        allowed = {"progress_message_id", "reply_to_message_id"}
        if set(message_ids) - allowed:
            raise ValueError(f"only {allowed} can be set")
        return await self._update(job, **message_ids)

    async def cancel(self, job_id: int, *, reason: str) -> Job:
        """Cancel: confirmed (and released) only when the backend confirms, or the job never reached it."""
        job = await self.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        if job.state not in CANCELLABLE:
            raise NotCancellable(job)
        asked = job.state in AT_BACKEND and bool(job.request_id)
        if asked and not await self._remote(job).cancel(job):
            raise NotCancellable(job, unconfirmed=True)
        # Only from where the job was when the backend was asked (or, not asked, still is): with several processes
        # another may send a job read here as WAITING before this move is written, and fal would keep it.
        only_from = AT_BACKEND if asked else (job.state,)
        done = await self._finish(job, S.CANCELLED, error=reason, only_from=only_from)
        if done is None:
            fresh = await self.get(job_id)
            raise NotCancellable(fresh or job, unconfirmed=True)
        return done

    async def abandon(self, job: Job, *, error: str) -> Job | None:
        """Fail a job that has not left the bot's queue (e.g. its progress message could not be posted)."""
        current = await self.get(job.id)
        if current is None or current.state is not S.WAITING:
            return None
        return await self._finish(current, S.FAILED, error=error, only_from=(S.WAITING,))

    # Moves -----------------------------------------------------------------------------------------------
    async def _update(self, job: Job, **values: object) -> Job:
        values["updated_at"] = self.clock()

        async def body(tx: Queries) -> Job | None:
            await JobStore.update(tx, job.id, values)
            return await JobStore.get(tx, job.id)

        fresh = await self.db.run(body)
        assert fresh is not None
        return fresh

    async def _move(self, job: Job, state: JobState, **values: object) -> Job | None:
        """Move `job` to `state` if the table allows it from where it is now; settle a final state's hold."""
        return await self._moved(job, state, values, admit=False)

    async def _admit(self, job: Job, state: JobState, **values: object) -> Job | None:
        """`_move` a job out of the queue (with leases: only while the limits, counted over every process,
        allow one more; else it stays queued)."""
        return await self._moved(job, state, values, admit=True)

    async def _moved(
        self,
        job: Job,
        state: JobState,
        values: dict[str, object],
        *,
        admit: bool,
        only_from: Iterable[JobState] | None = None,
    ) -> Job | None:
        """With leases, a step's move is made only while this process holds the job's lease."""
        now = self.clock()
        leases = self.leases if job.id in self._active else None  # a step's move is fenced on its lease
        admit = admit and self.leases is not None
        allowed = set(sources(state)) if only_from is None else set(sources(state)) & set(only_from)

        async def body(tx: Queries) -> Job | None:
            current = await JobStore.state_of(tx, job.id)  # (state, ledger key): the row is not decoded
            if current is None or current[0] not in allowed:
                return None
            if leases is not None and not await leases.owns(tx, job.id):
                return None  # another process took this job over: its steps are theirs now
            if admit and not await self._fits(tx, job):
                return (
                    None  # the other processes filled the limits since the scheduler's read: it stays queued
                )
            await JobStore.update(tx, job.id, {**values, "state": state, "updated_at": now})
            if state in SETTLEMENT:
                await self.ledger.tx_settle(tx, current[1], SETTLEMENT[state])
            return await JobStore.get(tx, job.id)

        fresh = await self.db.run(body)
        if fresh is None:
            return None
        if job.id in self._active:
            self._moved_to[job.id] = fresh.state
        self._notify(fresh)
        return fresh

    async def _fits(self, tx: Queries, job: Job) -> bool:
        """Whether one more in-flight job of its member fits the limits, counted over every process's jobs."""
        c = self.config
        return await JobStore.admits(
            tx, self.kinds, job.user_id, max_global=c.max_global, max_per_user=c.max_per_user
        )

    async def _finish(
        self, job: Job, state: JobState, *, error: str, only_from: Iterable[JobState] | None = None
    ) -> Job | None:
        values: dict[str, object] = {"error": error, "finished_at": self.clock()}
        done = await self._moved(job, state, values, admit=False, only_from=only_from)
        if done is not None:
            log.info("job %d %s: %s", job.id, state, error)
            self._wake.set()
        return done

    async def _retry(
        self, job: Job, reason: str, *, deadline: float, back_to: JobState | None = None
    ) -> None:
        """Try the same step later (persisted); past the deadline, give up and release."""
        now = self.clock()
        if now >= deadline:
            await self._finish(
                job, S.FAILED, error=self.kinds[job.kind].failure_text(Failure.GAVE_UP, reason)
            )
            return
        # the exponent capped: a post that may exist retries for as long as it takes (2**1024 overflows a float)
        delay = min(self.config.backoff_cap_s, self.config.backoff_base_s * 2 ** min(job.attempts, 30))
        values: dict[str, object] = {"attempts": job.attempts + 1, "next_attempt_at": now + delay}
        log.warning("job %d: %s; retrying in %.0f s", job.id, reason, delay)
        if back_to is not None:
            await self._move(job, back_to, **values)
        else:
            await self._update(job, **values)

    def _notify(self, job: Job) -> None:
        for sink in tuple(self._sinks):
            try:
                sink.job_changed(job)
            except Exception:
                log.exception("a progress sink failed for job %d", job.id)

    # Scheduler -------------------------------------------------------------------------------------------
    async def _scheduler_loop(self) -> None:
        while True:
            try:
                await self._schedule_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler pass failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(self.config.poll_interval_s, 0.2)):
                    await self._wake.wait()
            self._wake.clear()

    async def _schedule_once(self) -> None:
        now = self.clock()
        total, per_user, waiting = await JobStore.queue_view(self.db, self.kinds)
        position = 0
        for job in waiting:
            if job.kind not in self.kinds:
                continue
            if job.id in self._active:  # being sent right now: counts against the limits already
                total += 1
                per_user[job.user_id] = per_user.get(job.user_id, 0) + 1
                continue
            if (
                self.kinds[job.kind].announced
                and job.progress_message_id is None
                and now - job.created_at < self.config.progress_grace_s
            ):
                continue  # its request is still posting the progress message
            if job.next_attempt_at > now:
                continue
            if total < self.config.max_global and per_user.get(job.user_id, 0) < self.config.max_per_user:
                total += 1
                per_user[job.user_id] = per_user.get(job.user_id, 0) + 1
                step = self._submit if self.kinds[job.kind].remote else self._run_local
                self._spawn(job, step)
                continue
            position += 1
            if job.queue_position != position:
                self._notify(await self._update(job, queue_position=position))

    # Poller ----------------------------------------------------------------------------------------------
    async def _poller_loop(self) -> None:
        steps: Mapping[JobState, Callable[[Job], Coroutine[Any, Any, None]]] = {
            S.SUBMITTING: self._recover_submit,
            S.SUBMITTED: self._poll,
            S.RUNNING: self._poll,
            S.COMPLETED: self._postprocess,
            S.DOWNLOADED: self._deliver,
            S.POSTING: self._deliver,
        }
        if self.leases is not None:  # before the first pass: an earlier run's jobs are this run's at once
            try:
                await self.leases.adopt()
            except Exception:  # noqa: BLE001 - it only means waiting those leases out
                log.warning("could not adopt the leases of an earlier run in this place", exc_info=True)
        while True:
            started = time.monotonic()
            try:
                read_at = time.monotonic()
                polls: list[Job | None] = []
                due_jobs = await JobStore.due(
                    self.db,
                    steps,
                    due_by=self.clock(),
                    busy=list(self._active),
                    free_for=self.leases.owner if self.leases else None,
                )
                for due in due_jobs:
                    if due.kind not in self.kinds:
                        continue
                    step = steps[due.state]
                    if due.state is S.RUNNING and not self.kinds[due.kind].remote:
                        step = self._run_local  # a local job interrupted by a restart runs again
                    if step == self._deliver and not self.kinds[due.kind].can_deliver():
                        continue  # its chat side is not attached (yet): delivery waits, no attempt counted
                    # A job with a step running now, or one that ended since the read, is never started by this pass
                    # (_spawn_fresh refuses it now and later), so its row is not read (busy when the pass read) or not
                    # decoded; a poll keeps its slot.
                    stale = due.row is None or self._stale(due.id, read_at)
                    if step == self._poll:
                        polls.append(None if stale else due.job())
                    elif not stale:
                        self._spawn_fresh(due.job(), step, read_at)
                # Polls trickle out evenly over the interval instead of in one burst: each job is still asked once
                # an interval (after a restart too: all of them within one interval), a result is noticed after half
                # an interval on average, and neither fal nor the loop sees 500 requests at once.
                gap = self.config.poll_interval_s / max(len(polls), 1)
                for i, job in enumerate(polls):
                    wait = started + i * gap - time.monotonic()  # by the clock, so a busy loop catches up
                    if wait > 0.002:
                        await asyncio.sleep(wait)
                    if job is not None:
                        self._spawn_fresh(job, self._poll, read_at)
                self._step_ended = {k: t for k, t in self._step_ended.items() if t >= read_at}
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("poller pass failed")
            await asyncio.sleep(max(0.05, self.config.poll_interval_s - (time.monotonic() - started)))

    # Leases (several processes on one queue) ---------------------------------------------------------------
    async def _lease_loop(self, leases: Leases) -> None:
        """Renew this process's leases every third of their length; a step whose lease was lost (this process
        stalled past it and another took the job over) is stopped: its moves would be refused anyway."""
        while True:
            await asyncio.sleep(leases.lease_s / 3)
            try:
                lost = await leases.renew()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("renewing job leases failed")
                continue
            for job_id in lost:
                task = self._active.get(job_id)
                if task is not None and not task.done():
                    log.warning("job %d: another process holds its lease now; stopping its step here", job_id)
                    task.cancel()

    def _stale(self, job_id: int, read_at: float) -> bool:
        """A row read at `read_at` is stale: its job has a step running, or its last step ended since the read."""
        return job_id in self._active or self._step_ended.get(job_id, 0.0) >= read_at

    def _spawn_fresh(
        self, job: Job, step: Callable[[Job], Coroutine[Any, Any, None]], read_at: float
    ) -> None:
        """Spawn a step for a row read at `read_at`, unless it is being worked on or its last step ended since."""
        if self._stale(job.id, read_at):
            return
        self._spawn(job, step)

    def _spawn(self, job: Job, step: Callable[[Job], Coroutine[Any, Any, None]]) -> None:
        """Run one step of one job as its own task (never two at once for the same job)."""
        if job.id in self._active:
            return
        task = asyncio.create_task(self._guard(job, step), name=f"job-{job.id}-{step.__name__}")
        self._active[job.id] = task

    async def _guard(self, job: Job, step: Callable[[Job], Coroutine[Any, Any, None]]) -> None:
        self._moved_to.pop(job.id, None)
        try:
            if self.leases is not None and not await self.leases.hold(job.id):
                return  # another process holds this job: its steps run there
            await step(job)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %d: step %s failed unexpectedly", job.id, step.__name__)
        finally:
            self._active.pop(job.id, None)
            self._step_ended[job.id] = time.monotonic()
        if self._moved_to.pop(job.id, None) not in (S.COMPLETED, S.DOWNLOADED):
            return  # nothing to start at once (most steps: a poll that moved nothing); no read needed
        fresh = await self.get(job.id)
        if fresh is None or fresh.next_attempt_at > self.clock():
            return
        if fresh.state is S.COMPLETED:
            self._spawn(fresh, self._postprocess)
        elif fresh.state is S.DOWNLOADED and self.kinds[fresh.kind].can_deliver():
            self._spawn(fresh, self._deliver)

    # Steps -----------------------------------------------------------------------------------------------
    def _remote(self, job: Job) -> RemoteKind:
        kind = self.kinds[job.kind]
        assert kind.remote, f"{job.kind} is not a remote kind"
        return cast(RemoteKind, kind)

    async def _submit(self, job: Job) -> None:
        kind = self._remote(job)
        # A stop can't tell whether the backend took a job it finds in SUBMITTING (it fails then: never sent twice),
        # so a job is in SUBMITTING only while it holds a send slot, from the move to the stored request id: the
        # jobs a stop fails are at most the slots, not every job admitted and waiting for one.
        async with self._poll_sem:
            moved = await self._admit(job, S.SUBMITTING, queue_position=None)
            if moved is None:
                return
            sent = await self._send(kind, moved)
            if isinstance(sent, str):
                done = await self._move(
                    moved,
                    S.SUBMITTED,
                    request_id=sent,
                    submitted_at=self.clock(),
                    attempts=0,
                    next_attempt_at=0,
                )
                log.info("job %d submitted as %s", job.id, sent)
                if done is None:  # it ended meanwhile (a cancel, a takeover): the backend's copy goes too
                    await kind.cancel(replace(moved, request_id=sent))
                return
        if isinstance(sent, Retry):  # nothing was accepted: the same single submit, later
            deadline = moved.created_at + self.config.job_timeout_s
            await self._retry(moved, sent.message, deadline=deadline, back_to=S.WAITING)
        elif isinstance(sent, StepError):  # Fail, or Uncertain: never submitted twice blindly
            await self._finish(moved, S.FAILED, error=sent.message)
        else:
            log.error("could not submit job %d", job.id, exc_info=sent)
            await self._finish(moved, S.FAILED, error=kind.failure_text(Failure.SEND_BROKE))

    @staticmethod
    async def _send(kind: RemoteKind, job: Job) -> str | Exception:
        """The one submit: the request id, or what stopped it (handled once the slot is free again)."""
        try:
            return await kind.submit(job)
        except Exception as exc:  # noqa: BLE001 - every failure is handled by the caller, by its type
            return exc

    async def _recover_submit(self, job: Job) -> None:
        """Found in SUBMITTING with no task sending it: the bot stopped mid-submit, and the backend may have it."""
        await self._finish(
            job, S.FAILED, error=self.kinds[job.kind].failure_text(Failure.RESTARTED_WHILE_SENDING)
        )

    async def _run_local(self, job: Job) -> None:
        kind = cast(LocalKind, self.kinds[job.kind])
        moved = job if job.state is S.RUNNING else await self._admit(job, S.RUNNING, started_at=self.clock())
        if moved is None:
            return
        try:
            async with self._local_sem:
                outputs = await asyncio.get_running_loop().run_in_executor(self._pool, kind.run, moved)
        except StepError as exc:
            await self._finish(moved, S.FAILED, error=exc.message)
            return
        except Exception:
            log.exception("local job %d failed", job.id)
            await self._finish(moved, S.FAILED, error=kind.failure_text(Failure.WORK_BROKE))
            return
        await self._move(moved, S.COMPLETED, outputs={**moved.outputs, **outputs}, completed_at=self.clock())

    async def _poll(self, job: Job) -> None:
        kind = self._remote(job)
        deadline = (job.submitted_at or job.created_at) + self.config.job_timeout_s
        if self.clock() > deadline:
            # Past its deadline the job is cancelled; when the backend does not confirm (it finished just now
            # and bills the output, or did not answer) the output is still asked for, for a while, so that what
            # the backend made and billed is delivered (and charged) rather than thrown away.
            grace = min(self.config.unconfirmed_cancel_grace_s, self.config.job_timeout_s)
            if self.clock() > deadline + grace or await kind.cancel(job):
                await self._finish(job, S.FAILED, error=kind.failure_text(Failure.TIMED_OUT))
                return
            log.warning("job %d is past its deadline and its cancel was not confirmed; asking on", job.id)
            deadline += grace
        try:
            async with self._poll_sem, asyncio.timeout(self.config.step_timeout_s):
                poll = await kind.poll(job)
                outputs = await kind.collect(job) if poll.done else None
        except (Retry, TimeoutError) as exc:
            await self._retry(job, getattr(exc, "message", "no answer in time"), deadline=deadline)
            return
        except Resubmit as exc:
            await self._move(
                job,
                S.WAITING,
                args={**job.args, **exc.args_update},
                request_id=None,
                submitted_at=None,
                attempts=0,
                next_attempt_at=0,
            )
            self._wake.set()
            return
        except StepError as exc:
            await self._finish(job, S.FAILED, error=exc.message)
            return
        if job.attempts:
            job = await self._update(job, attempts=0, next_attempt_at=0)
        if outputs is not None:
            now = self.clock()
            await self._move(
                job,
                S.COMPLETED,
                outputs={**job.outputs, **outputs},
                completed_at=now,
                started_at=job.started_at or now,
            )
        elif poll.started and job.state is S.SUBMITTED:
            await self._move(job, S.RUNNING, started_at=self.clock(), queue_position=None)
        elif not poll.started and job.queue_position != poll.position:
            self._notify(await self._update(job, queue_position=poll.position))

    async def _postprocess(self, job: Job) -> None:
        kind = self.kinds[job.kind]
        deadline = (job.completed_at or job.created_at) + self.config.job_timeout_s
        try:
            async with self._deliver_sem, asyncio.timeout(self.config.step_timeout_s * 5):
                outputs = await kind.postprocess(job)
        except (Retry, TimeoutError) as exc:
            await self._retry(job, getattr(exc, "message", "no answer in time"), deadline=deadline)
            return
        except StepError as exc:
            await self._finish(job, S.FAILED, error=exc.message)
            return
        await self._move(job, S.DOWNLOADED, outputs={**job.outputs, **outputs}, attempts=0, next_attempt_at=0)

    async def _deliver(self, job: Job) -> None:
        """Post once: POSTING is written before the post; a job found POSTING looks for its post first."""
        kind = self.kinds[job.kind]
        deadline = (job.completed_at or job.created_at) + self.config.delivery_give_up_s
        async with self._deliver_sem:
            if job.state is S.DOWNLOADED:
                moved = await self._move(job, S.POSTING)
                if moved is None:
                    return
                job = moved
            else:
                try:
                    found = await self._find(kind, job)
                except Fail as exc:  # e.g. the channel is gone: nothing can be posted or found there
                    await self._finish(job, S.FAILED, error=exc.message)
                    return
                except Exception:
                    # cannot look: the outcome stays unknown, so the hold stays too, however long
                    await self._retry(job, "could not read the channel", deadline=math.inf)
                    return
                if found is not None:
                    await self._posted(kind, job, found)
                    return
            try:
                async with asyncio.timeout(self.config.step_timeout_s):
                    message_id = await kind.deliver(job)
            except Fail as exc:
                await self._finish(job, S.FAILED, error=exc.message)
                return
            except (StepError, TimeoutError, Exception) as exc:  # unknown outcome: the hold stays
                if not isinstance(exc, StepError | TimeoutError):
                    log.warning("job %d: posting failed", job.id, exc_info=True)
                if self.clock() >= deadline:
                    await self._give_up_posting(kind, job)
                else:
                    await self._retry(
                        job, getattr(exc, "message", None) or "the post failed", deadline=deadline + 3600
                    )
                return
        await self._posted(kind, job, message_id)

    async def _find(self, kind: LocalKind | RemoteKind, job: Job) -> int | None:
        try:
            async with asyncio.timeout(self.config.step_timeout_s):
                return await kind.find_delivered(job)
        except Fail:
            raise
        except Exception as exc:
            log.warning("job %d: could not look for an earlier post (%s)", job.id, type(exc).__name__)
            raise

    async def _give_up_posting(self, kind: LocalKind | RemoteKind, job: Job) -> None:
        """Past the delivery deadline: released only once the channel shows no post of it."""
        try:
            found = await self._find(kind, job)
        except Fail as exc:
            await self._finish(job, S.FAILED, error=exc.message)
            return
        except Exception:
            await self._update(job, next_attempt_at=self.clock() + self.config.backoff_cap_s)
            return  # cannot tell whether it was posted: keep the hold and look again later
        if found is not None:
            await self._posted(kind, job, found)
            return
        await self._finish(job, S.FAILED, error=kind.failure_text(Failure.UNDELIVERABLE))

    async def _posted(self, kind: LocalKind | RemoteKind, job: Job, message_id: int | None) -> None:
        done = await self._move(job, S.POSTED, result_message_id=message_id, finished_at=self.clock())
        if done is None:
            return
        log.info("job %d posted (message %s)", job.id, message_id)
        self._wake.set()
        try:
            await kind.delivered(done)
        except Exception:
            log.warning("job %d: after-delivery step failed", job.id, exc_info=True)


__all__ = ["EngineConfig", "JobEngine", "JobNotFound", "NotCancellable"]
