"""The `angles` job kind: one qwen multiple-angles call per view (¾ left, ¾ right, profile) of the anchor.

The engine sends a job once and knows one request id, so this kind joins the views' ids into one ("a,b,c"); a view
fal refuses (at the submit or in its result) is left out and not charged while the others are delivered. Download, sheet and delivery are the
candidates kind's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bot.fal.errors import GenerationError
from bot.fal.models import model
from bot.jobs import Fail, Job, Poll
from bot.jobs.kinds import DONE, QUEUED, STARTED
from bot.studio.kind import CandidatesKind
from bot.studio.models import ANGLES_KIND, VIEWS


class AnglesKind(CandidatesKind):
    name = ANGLES_KIND
    noun = "set of angles"

    async def submit(self, job: Job) -> str:
        """Send the views in order. When one is not accepted after others were, the set is the views fal holds: the
        rest are neither made nor charged (`postprocess` releases their share). Cancelling the accepted ones and
        sending the set again would make fal run a view twice whenever a cancel is not confirmed."""
        ids: list[str] = []
        try:
            ref = await self._anchor_ref(job)
            for view in job.args["views"]:
                args = model(self.endpoint(job)).arguments(image_urls=[ref], horizontal_angle=VIEWS[view])
                ids.append(await self.gateway.submit(self.endpoint(job), args))
        except GenerationError as exc:
            if not ids:
                raise self.step_error(exc) from exc
        self.accepted()
        return ",".join(ids)

    async def poll(self, job: Job) -> Poll:
        states = []
        for request_id in (job.request_id or "").split(","):
            try:
                status = await self.gateway.status(self.endpoint(job), request_id)
            except GenerationError as exc:
                raise self.step_error(exc) from exc
            states.append(DONE if status.error is not None else status.state)
        if all(s == DONE for s in states):
            return Poll(DONE)
        return Poll(STARTED if any(s != QUEUED for s in states) else QUEUED)

    async def collect(self, job: Job) -> dict[str, Any]:
        urls = []
        for request_id in (job.request_id or "").split(","):
            try:
                payload = await self.gateway.result(self.endpoint(job), request_id)
                urls.append(model(self.endpoint(job)).outputs(payload)[0].url)
            except GenerationError as exc:
                if exc.retryable:
                    raise self.step_error(exc) from exc
                urls.append(None)  # this view was refused: not delivered, not charged
        if not any(urls):
            raise Fail("The image service made none of the views.")
        return {"urls": urls}

    async def cancel(self, job: Job) -> bool:
        ids = (job.request_id or "").split(",")
        results = [await super().cancel(replace(job, request_id=i)) for i in ids if i]
        return all(results)
