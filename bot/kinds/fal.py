"""The one home of the steps every kind made at fal shares: submit once, poll, collect, cancel, and what a gateway
error means for the job. A kind supplies its arguments, its noun and its delivery; takes, anchor candidates, angles
and voices all stand on this.
"""

from __future__ import annotations

import logging
from typing import Any

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
        """Retry transient errors, stop on definite ones; a submit never answered is never sent again."""
        if exc.kind is FailureKind.UNKNOWN_OUTCOME:
            return Uncertain(
                f"{self.service.capitalize()} did not answer when this {self.noun} was sent, so it may or may "
                "not have started it; to be sure it is never made (and billed) twice, it is not sent again. Nothing was "
                "charged; try again."
            )
        return Retry(exc.message) if exc.retryable else Fail(exc.message)

    # The steps -------------------------------------------------------------------------------------------
    async def submit(self, job: Job) -> str:
        try:
            return await self.gateway.submit(self.endpoint(job), await self.arguments(job))
        except GenerationError as exc:
            raise self.step_error(exc) from exc

    async def poll(self, job: Job) -> Poll:
        try:
            status = await self.gateway.status(self.endpoint(job), job.request_id or "")
        except GenerationError as exc:
            raise self.step_error(exc) from exc
        if status.error is not None:  # completed with an error: fal is done with it, nothing to wait for
            await self.on_refused(job, status.error)
            raise Fail(status.error.message)
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
