"""Job leases: several processes on one queue (PostgreSQL, issue #18).

A job's steps run only in the process that holds its lease. The process takes it before a step (a lease it holds
with more than half its time left needs no write), renews all of its leases every third of their length, and gives
them up on a clean stop so another process goes on at once. A process that dies stops renewing: once its leases
run out, the others' pollers see its jobs as free and take them over, as a restart would. A step's moves are
fenced on the lease (`owns`), so a process that stalled past its lease cannot move a job another one took.
Times are wall-clock (`time.time`): the machines' clocks must agree to well within the lease.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Callable

from bot.db import Database, Queries
from bot.jobs.store import JobStore

log = logging.getLogger(__name__)


class Leases:
    """This process's leases: its name on them, and which jobs it holds until when (as last written)."""

    def __init__(self, db: Database, lease_s: float, clock: Callable[[], float], identity: str = "") -> None:
        self.db = db
        self.lease_s = lease_s
        self.clock = clock
        # `identity` names the process's place (its host and shards): a process started again in the same place
        # is its predecessor's successor (none given: a random one, no successor). The pid and a random part tell
        # the runs apart.
        self.identity = identity or f"{socket.gethostname()}/{secrets.token_hex(3)}"
        self.owner = f"{self.identity}:{os.getpid()}:{secrets.token_hex(3)}"
        self._held: dict[int, float] = {}

    async def adopt(self) -> int:
        """At start: the leases an earlier run in the same place left (it crashed, or was killed) run out now,
        rather than after their time: two live runs never share a place (one host does not run a shard twice),
        and if they did, the fenced moves would still let only the new holder move a job."""
        taken = await JobStore.expire_leases_of(self.db, self.identity + ":", but=self.owner)
        if taken:
            log.info("took over %d jobs left by an earlier run of this process (%s)", taken, self.identity)
        return taken

    async def hold(self, job_id: int) -> bool:
        """Take (or keep) the job's lease before a step; False while another process holds it."""
        now = self.clock()
        if self._held.get(job_id, 0.0) - now > self.lease_s / 2:
            return True
        if not await JobStore.claim(self.db, job_id, self.owner, until=now + self.lease_s, now=now):
            self._held.pop(job_id, None)
            return False
        self._held[job_id] = now + self.lease_s
        return True

    async def renew(self) -> set[int]:
        """Renew every lease held on an unfinished job; return the jobs another process holds now (this one
        stalled past their lease). A job that ended is merely forgotten."""
        until = self.clock() + self.lease_s
        kept = await JobStore.renew(self.db, self.owner, until=until)
        gone = set(self._held) - kept
        self._held = dict.fromkeys(kept, until)
        return await JobStore.taken_from(self.db, self.owner, gone) if gone else set()

    async def owns(self, tx: Queries, job_id: int) -> bool:
        """Inside a move's transaction: whether this process still holds the job's lease."""
        return await JobStore.lease_owner(tx, job_id) == self.owner

    async def release_all(self) -> None:
        """Give every lease up (a clean stop); if the database is gone already, they simply run out."""
        self._held = {}
        try:
            released = await JobStore.release_leases(self.db, self.owner)
        except Exception as exc:
            log.warning(
                "could not release the job leases (%s); they run out in %.0f s",
                exc,
                self.lease_s,
            )
            return
        log.info("released %d job leases for the other processes", released)
