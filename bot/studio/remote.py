"""The steps every image kind at fal shares: poll, collect the image URLs, cancel, post via the sheet publisher."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.fal.errors import GenerationError
from bot.fal.gateway import CancelOutcome, Gateway
from bot.fal.models import model
from bot.jobs import Job, Poll
from bot.jobs.kinds import Fail
from bot.studio.ports import SheetPublisher
from bot.takes.kind import step_error


class FalImageSteps:
    remote = True
    gateway: Gateway
    publisher: SheetPublisher | None = None

    async def poll(self, job: Job) -> Poll:
        try:
            status = await self.gateway.status(job.endpoint or "", job.request_id or "")
        except GenerationError as exc:
            raise step_error(exc) from exc
        if status.error is not None:
            raise Fail(status.error.message)
        return Poll(status.state, status.position)

    async def collect(self, job: Job) -> dict[str, Any]:
        try:
            payload = await self.gateway.result(job.endpoint or "", job.request_id or "")
            return {"urls": [o.url for o in model(job.endpoint or "").outputs(payload)]}
        except GenerationError as exc:
            raise step_error(exc) from exc

    async def cancel(self, job: Job) -> bool:
        if not job.request_id:
            return True
        try:
            outcome = await self.gateway.cancel(job.endpoint or "", job.request_id)
        except GenerationError:
            return False
        return outcome in (CancelOutcome.CANCELLED, CancelOutcome.NOT_FOUND)

    def run(self, job: Job) -> dict[str, Any]:
        raise NotImplementedError("made at fal")

    async def find_delivered(self, job: Job) -> int | None:
        assert self.publisher is not None
        return await self.publisher.find_sheet(job)

    async def deliver(self, job: Job) -> int:
        assert self.publisher is not None
        if not Path(job.outputs.get("sheet") or "").is_file():
            raise Fail("The images are missing from the bot's disk; nothing was charged.")
        return await self.publisher.post_sheet(job)

    async def delivered(self, job: Job) -> None:
        return None
