"""The one home of the steps every kind made at fal shares: submit once, poll, collect, cancel, and what a gateway
error means for the job. A kind supplies its arguments, its noun and its delivery; takes, anchor candidates, angles
and voices all stand on this.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.alerts import OPERATOR_FAULT_TEXT, Alerts
from bot.fal.errors import FailureKind, GenerationError
from bot.fal.gateway import CancelOutcome, Gateway
from bot.fal.models import model
from bot.jobs import Fail, Job, KindBase, Poll, Retry, StepError, Uncertain

log = logging.getLogger(__name__)


class FalKind(KindBase):
    """A remote kind whose work runs at fal through the gateway. Subclasses give `name`, `ledger_prefix`,
    `noun` and `arguments`, and usually `postprocess` and `deliver`; `outputs` says what to keep of a result."""

    remote = True
    gateway: Gateway
    service = "the generation service"  # how members hear of fal: "the video service", "the image service"
    alerts: Alerts | None = None  # where a fault only an operator can fix is reported
    output = "usable result"  # what a good output is, for members: "playable video", "usable image"

    # What the job sends and keeps --------------------------------------------------------------------------
    def endpoint(self, job: Job) -> str:
        return job.endpoint or ""

    async def arguments(self, job: Job) -> dict[str, Any]:
        """The JSON arguments of the job's one submit."""
        raise NotImplementedError

    def outputs(self, job: Job, payload: dict[str, Any]) -> dict[str, Any]:
        """What to keep of a finished result (by default: the output files' URLs)."""
        return {"urls": [o.url for o in model(self.endpoint(job)).outputs(payload)]}

    async def on_refused(self, job: Job, exc: GenerationError) -> None:
        """fal refused or failed the job (a poll or a result said so): raise `Resubmit` to try once more."""

    # What a gateway error means --------------------------------------------------------------------------
    def step_error(self, exc: GenerationError) -> StepError:
        """Retry transient errors, stop on definite ones; a submit never answered is never sent again. The words
        are the member's (fal's own go to the log); a fault only an operator can fix is reported to them."""
        log.info("%s: %s (%s)", self.noun, exc.message, exc.kind)
        if exc.kind is FailureKind.AUTH:
            if self.alerts is not None:
                self.alerts.report(
                    "fal",
                    f"fal refused the bot's requests ({exc.status}: {exc.message}). Check FAL_KEY, and the fal "
                    "account's balance at https://fal.ai/dashboard/billing.",
                )
            return Fail(OPERATOR_FAULT_TEXT)
        if exc.retryable:
            return Retry(f"{self.service} is having trouble")
        return (Uncertain if exc.kind is FailureKind.UNKNOWN_OUTCOME else Fail)(self.explain(exc.kind))

    def explain(self, kind: FailureKind) -> str:
        """A definite failure in plain words, with the next step."""
        service = self.service[0].upper() + self.service[1:]
        words = {
            FailureKind.UNKNOWN_OUTCOME: (
                f"{service} did not answer when this {self.noun} was sent, so it may or may not have started it; "
                "to be sure it is never made (and billed) twice, it is not sent again."
            ),
            FailureKind.REJECTED: f"{service} refused this request as invalid; try other words or options.",
            FailureKind.CONTENT_POLICY: (
                f"{service} refused this prompt or image under its content rules; try different words."
            ),
            FailureKind.GONE: f"{service} no longer had the result; it was lost on its side.",
            FailureKind.CANCELLED: f"{service} cancelled this {self.noun} on its side.",
            FailureKind.TIMEOUT: f"{service} timed out on this {self.noun}.",
            FailureKind.BAD_OUTPUT: f"{service} sent back a file that is not a {self.output}.",
        }
        return words.get(kind, f"{service} could not make this {self.noun}.")

    # The steps -------------------------------------------------------------------------------------------
    async def submit(self, job: Job) -> str:
        try:
            request_id = await self.gateway.submit(self.endpoint(job), await self.arguments(job))
        except GenerationError as exc:
            raise self.step_error(exc) from exc
        self.accepted()
        return request_id

    def accepted(self) -> None:
        """fal took a job: a fault reported for it is over."""
        if self.alerts is not None:
            self.alerts.clear("fal")

    async def poll(self, job: Job) -> Poll:
        try:
            status = await self.gateway.status(self.endpoint(job), job.request_id or "")
        except GenerationError as exc:
            raise self.step_error(exc) from exc
        if status.error is not None:  # completed with an error: fal is done with it, nothing to wait for
            if status.error.kind is FailureKind.CANCELLED and job.attempts == 0:
                # Most likely our own Cancel, confirmed by fal a moment ago and about to be recorded (by this
                # process or, with several, by the one that received the click): look again once before calling
                # it fal's doing, so the take ends as cancelled by its requester rather than as a failure.
                raise Retry(f"fal says the {self.noun} was stopped; looking once more")
            await self.on_refused(job, status.error)
            error = self.step_error(status.error)
            raise error if isinstance(error, Fail) else Fail(self.explain(status.error.kind))
        return Poll(status.state, status.position)

    async def collect(self, job: Job) -> dict[str, Any]:
        try:
            return self.outputs(job, await self.gateway.result(self.endpoint(job), job.request_id or ""))
        except GenerationError as exc:
            await self.on_refused(job, exc)
            raise self.step_error(exc) from exc

    async def cancel(self, job: Job) -> bool:
        """True only when fal confirmed the cancel (or never had the job)."""
        if not job.request_id:
            return True
        try:
            outcome = await self.gateway.cancel(self.endpoint(job), job.request_id)
        except GenerationError:
            log.warning("cancel of %s %d at fal failed", self.noun, job.id, exc_info=True)
            return False
        return outcome in (CancelOutcome.CANCELLED, CancelOutcome.NOT_FOUND)
