"""The `angles` job kind: one qwen multiple-angles call per view (¾ left, ¾ right, profile) of the anchor.

The engine sends a job once and knows one request id, so this kind joins the views' ids into one ("a,b,c"); a view
fal refuses is left out (and not charged) while the others are delivered. Download, sheet and delivery are the
candidates kind's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bot.fal.errors import GenerationError
from bot.fal.models import model
from bot.jobs import Fail, Job, Poll, Retry
from bot.jobs.kinds import DONE, QUEUED, STARTED
from bot.studio.kind import CandidatesKind
from bot.takes.kind import step_error

ANGLES_KIND = "angles"
VIEWS: dict[str, float] = {"three-quarter left": 315, "three-quarter right": 45, "profile": 90}


class AnglesKind(CandidatesKind):
    name = ANGLES_KIND

    async def submit(self, job: Job) -> str:
        version = await self.anchors.version_by_id(job.args["anchor_version_id"])
        path = self.anchors.image_path(version.sha256)
        ids: list[str] = []
        try:
            ref = await self.anchors.start_image_ref(version.sha256, path, self.gateway)
            for view in job.args["views"]:
                args = model(job.endpoint or "").arguments(image_urls=[ref], horizontal_angle=VIEWS[view])
                ids.append(await self.gateway.submit(job.endpoint or "", args))
        except GenerationError as exc:
            for request_id in ids:  # all views or none: stop the ones already sent
                await self.cancel(replace(job, request_id=request_id))
            raise step_error(exc) from exc
        return ",".join(ids)

    async def poll(self, job: Job) -> Poll:
        states = []
        for request_id in (job.request_id or "").split(","):
            try:
                status = await self.gateway.status(job.endpoint or "", request_id)
            except GenerationError as exc:
                raise step_error(exc) from exc
            states.append(DONE if status.error is not None else status.state)
        if all(s == DONE for s in states):
            return Poll(DONE)
        return Poll(STARTED if any(s != QUEUED for s in states) else QUEUED)

    async def collect(self, job: Job) -> dict[str, Any]:
        urls = []
        for request_id in (job.request_id or "").split(","):
            try:
                payload = await self.gateway.result(job.endpoint or "", request_id)
                urls.append(model(job.endpoint or "").outputs(payload)[0].url)
            except GenerationError as exc:
                if exc.retryable:
                    raise Retry(exc.message) from exc
                urls.append(None)  # this view was refused: not delivered, not charged
        if not any(urls):
            raise Fail("fal made none of the views; nothing was charged.")
        return {"urls": urls}

    async def cancel(self, job: Job) -> bool:
        ids = (job.request_id or "").split(",")
        results = [await super().cancel(replace(job, request_id=i)) for i in ids if i]
        return all(results)
