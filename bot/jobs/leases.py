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

    def __init__(self, db: Database, lease_s: float, clock: Callable[[], float]) -> None:
        self.db = db
        self.lease_s = lease_s
        self.clock = clock
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._held: dict[int, float] = {}

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
