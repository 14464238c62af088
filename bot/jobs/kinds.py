"""What a kind of job is: the `LocalKind` and `RemoteKind` protocols, a base with no-op defaults, the answers a
step can give, and the ports the engine uses.

A kind says how to do, check and deliver one job, and every sentence a member reads about it; the engine owns the
order of the steps, the states, retries, timeouts, concurrency and the ledger, and names no kind and no backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

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


# A backend's own words for where a job stands (its queue states); not job states.
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


class Failure(StrEnum):
    """What the engine itself saw go wrong; the kind words it for the member (`KindBase.failure_text`)."""

    RESTARTED_WHILE_SENDING = "restarted_while_sending"  # found half-sent after a restart: never sent again
    SEND_BROKE = "send_broke"  # an unexpected error in the bot before the backend got the job
    WORK_BROKE = "work_broke"  # an unexpected error in a local kind's work
    TIMED_OUT = "timed_out"  # the backend did not finish within the job timeout (cancelled there)
    GAVE_UP = "gave_up"  # a transient error went on past the job's deadline (`reason` says which)
    UNDELIVERABLE = "undeliverable"  # the result could not be posted before the delivery deadline


class JobKind(Protocol):
    """What every kind has, local or remote."""

    name: str
    remote: bool
    ledger_prefix: str
    announced: bool  # a new job waits (a little) for its progress message to be recorded before it starts

    def can_deliver(self) -> bool:
        """False while the chat side that posts this kind's results is not attached: delivery waits for it."""

    def failure_text(self, failure: Failure, reason: str = "") -> str:
        """The sentence a member reads when the engine ends a job of this kind for `failure`."""

    async def postprocess(self, job: Job) -> dict[str, Any]:
        """Download, check and fit the outputs; return what to add to them."""

    async def deliver(self, job: Job) -> int | None:
        """Post the result; return its message id (None: nothing of its own was posted, e.g. an edit).
        Uncertain/Retry keep the job posting; Fail ends it."""

    async def find_delivered(self, job: Job) -> int | None:
        """The message already posted for this job, if any (after a crash or an unanswered post)."""

    async def delivered(self, job: Job) -> None:
        """After the job is recorded as posted (e.g. add a reaction)."""


@runtime_checkable
class LocalKind(JobKind, Protocol):
    """Work done by the bot itself, in the engine's worker threads (`remote = False`)."""

    def run(self, job: Job) -> dict[str, Any]:
        """Do the work (in a worker thread, never on the event loop) and return the outputs."""


@runtime_checkable
class RemoteKind(JobKind, Protocol):
    """Work done by a backend (`remote = True`): submitted once, polled, collected, cancellable."""

    async def submit(self, job: Job) -> str:
        """Send the job to the backend exactly once; return its request id (raise Uncertain if unanswered)."""

    async def poll(self, job: Job) -> Poll: ...

    async def collect(self, job: Job) -> dict[str, Any]:
        """Fetch the finished result and return the outputs to keep (URLs, ids)."""

    async def cancel(self, job: Job) -> bool:
        """Ask the backend to stop; True only when it confirmed (or never had the job)."""


# Generic words, for a kind that names only its `noun`; a kind overrides `failure_text` for its own.
# Generic words, for a kind that names only its `noun`; a kind overrides `failure_text` for its own. They say what
# happened; the chat side adds that nothing was charged and what the member can do next.
_GENERIC: Mapping[Failure, str] = {
    Failure.RESTARTED_WHILE_SENDING: (
        "The bot restarted while sending this {noun}, so it cannot tell whether it was started; to be sure "
        "nothing runs twice it was stopped here."
    ),
    Failure.SEND_BROKE: "Something went wrong on the bot's side before this {noun} was sent.",
    Failure.WORK_BROKE: "Something went wrong on the bot's side while making this {noun}.",
    Failure.TIMED_OUT: "This {noun} did not finish in time, so it was stopped.",
    Failure.GAVE_UP: "This {noun} was stopped after retrying for a while: {reason}.",
    Failure.UNDELIVERABLE: "The {noun} was made but could not be posted here.",
}


class KindBase:
    """No-op defaults, so a kind writes only what it does: a local kind `run` (and `deliver`), a remote kind
    its backend steps (see bot/kinds/fal.py for the fal ones)."""

    name: str
    remote = False
    ledger_prefix: str
    noun = "job"  # how members call one job of this kind ("take", "voice", "export")
    announced = False

    def can_deliver(self) -> bool:
        return True

    def failure_text(self, failure: Failure, reason: str = "") -> str:
        return _GENERIC[failure].format(noun=self.noun, reason=reason or "no answer")

    async def postprocess(self, job: Job) -> dict[str, Any]:
        return {}

    async def deliver(self, job: Job) -> int | None:
        return None

    async def find_delivered(self, job: Job) -> int | None:
        return None

    async def delivered(self, job: Job) -> None:
        return None


class Ledger(Protocol):
    """The holds the engine settles (the budget feature implements it)."""

    async def tx_hold(
        self, conn: Queries, *, job_key: str, guild_id: int, user_id: int, amount: int, description: str
    ) -> None: ...

    async def tx_settle(self, conn: Queries, job_key: str, kind: str) -> bool: ...


class ProgressSink(Protocol):
    """Told of every state change; must not block (the chat side queues and throttles its own edits)."""

    def job_changed(self, job: Job) -> None: ...
