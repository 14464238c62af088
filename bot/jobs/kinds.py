"""What a kind of job is: the `JobKind` protocol, the answers a step can give, and the ports the engine uses.

A kind says how to submit, poll, collect, post-process and deliver one job; the engine owns the order of those
steps, the states, retries, timeouts, concurrency and the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.db import Queries
from bot.jobs.models import Job


class StepError(Exception):
    """A step did not succeed; `message` is plain words for the channel."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Retry(StepError):
    """Transient (429, 5xx, reset, timeout): nothing is lost; try the same step again later."""


class Fail(StepError):
    """Definite: the job cannot succeed; it fails and its hold is released."""


class Uncertain(StepError):
    """The step may have taken effect (a submit or a post sent but never answered)."""


class Resubmit(StepError):
    """The backend could not use an input (e.g. an expired upload): queue the job again with `args` updated."""

    def __init__(self, message: str, args: dict[str, Any]) -> None:
        super().__init__(message)
        self.args_update = args


# A backend's own words for where a job stands (fal's queue states); not job states.
QUEUED, STARTED, DONE = "queued", "running", "completed"  # backend-words


@dataclass(frozen=True)
class Poll:
    state: str  # QUEUED, STARTED or DONE
    position: int | None = None

    @property
    def done(self) -> bool:
        return self.state == DONE

    @property
    def started(self) -> bool:
        return self.state == STARTED


@dataclass(frozen=True)
class Prepared:
    """A request validated into the kind's arguments and a quote."""

    args: dict[str, Any]
    price_micros: int
    endpoint: str | None = None
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class JobKind(Protocol):
    """One kind of job. Remote kinds implement submit/poll/collect/cancel; local kinds implement `run`."""

    name: str
    remote: bool
    ledger_prefix: str

    async def submit(self, job: Job) -> str:
        """Send the job to the backend exactly once; return its request id (raise Uncertain if unanswered)."""

    async def poll(self, job: Job) -> Poll: ...

    async def collect(self, job: Job) -> dict[str, Any]:
        """Fetch the finished result and return the outputs to keep (URLs, ids)."""

    async def cancel(self, job: Job) -> bool:
        """Ask the backend to stop; True only when it confirmed (or never had the job)."""

    def run(self, job: Job) -> dict[str, Any]:
        """Local kinds: do the work (in a worker thread) and return the outputs."""

    async def postprocess(self, job: Job) -> dict[str, Any]:
        """Download, check and fit the outputs; return what to add to them."""

    async def deliver(self, job: Job) -> int:
        """Post the result; return the message id. Uncertain/Retry keep the job posting; Fail ends it."""

    async def find_delivered(self, job: Job) -> int | None:
        """The message already posted for this job, if any (after a crash or an unanswered post)."""

    async def delivered(self, job: Job) -> None:
        """After the job is recorded as posted (e.g. add a reaction)."""


class Ledger(Protocol):
    """The holds the engine settles (the budget feature implements it)."""

    async def tx_hold(
        self, conn: Queries, *, job_key: str, guild_id: int, user_id: int, amount: int, description: str
    ) -> None: ...

    async def tx_settle(self, conn: Queries, job_key: str, kind: str) -> bool: ...


class ProgressSink(Protocol):
    """Told of every state change; must not block (the chat side queues and throttles its own edits)."""

    def job_changed(self, job: Job) -> None: ...
