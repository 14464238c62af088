"""The `candidates` job kind: one Seedream call (text-to-image or edit) with `num_images`, shown as one sheet."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bot.anchors.service import AnchorService
from bot.fal.errors import GenerationError
from bot.fal.gateway import CancelOutcome, Gateway
from bot.fal.models import model
from bot.jobs import Fail, Job, Poll
from bot.media.outputs import MAX_IMAGE_BYTES, check_image
from bot.media.sheet import contact_sheet
from bot.studio.ports import HoldReducer, SheetPublisher
from bot.takes.kind import step_error

KIND = "candidates"


class CandidatesKind:
    name = KIND
    remote = True
    ledger_prefix = "studio"

    def __init__(self, *, anchors: AnchorService, gateway: Gateway, ledger: HoldReducer, root: Path) -> None:
        self.anchors, self.gateway, self.ledger, self.root = anchors, gateway, ledger, root
        self.publisher: SheetPublisher | None = None

    async def submit(self, job: Job) -> str:
        a = job.args
        inputs: dict[str, Any] = {"prompt": a["prompt"], "num_images": a["count"]}
        try:
            if a.get("anchor_version_id"):  # an edit of the anchor (refine, angles)
                version = await self.anchors.version_by_id(a["anchor_version_id"])
                path = self.anchors.image_path(version.sha256)
                inputs["image_urls"] = [
                    await self.anchors.start_image_ref(version.sha256, path, self.gateway)
                ]
            return await self.gateway.submit(
                job.endpoint or "", model(job.endpoint or "").arguments(**inputs)
            )
        except GenerationError as exc:
            raise step_error(exc) from exc

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
            return await self.gateway.cancel(job.endpoint or "", job.request_id) in (
                CancelOutcome.CANCELLED,
                CancelOutcome.NOT_FOUND,
            )
        except GenerationError:
            return False

    def run(self, job: Job) -> dict[str, Any]:
        raise NotImplementedError("candidates are made at fal")

    async def postprocess(self, job: Job) -> dict[str, Any]:
        """Download every candidate at once; keep the good ones; release the hold of the rest; make the sheet."""
        folder = self.root / str(job.id)
        folder.mkdir(parents=True, exist_ok=True)
        urls = job.outputs.get("urls") or []

        async def fetch(n: int, url: str) -> Path | None:
            dest = folder / f"candidate-{n}.img"
            try:
                await self.gateway.download(url, dest, max_bytes=MAX_IMAGE_BYTES)
                await asyncio.to_thread(check_image, dest)
            except Exception:  # a missing or broken candidate is not delivered, nor charged
                dest.unlink(missing_ok=True)
                return None
            return dest

        found = await asyncio.gather(*(fetch(n, u) for n, u in enumerate(urls[: job.args["count"]], 1)))
        paths = [str(p) for p in found if p is not None]
        if not paths:
            raise Fail("fal returned no usable image; nothing was charged.")
        if len(paths) < job.args["count"]:
            await self.ledger.reduce_hold(job.ledger_key, len(paths) * job.args["unit_micros"])
        datas = [Path(p).read_bytes() for p in paths]
        sheet = await asyncio.to_thread(contact_sheet, datas)
        (folder / "sheet.png").write_bytes(sheet.data)
        return {"paths": paths, "missing": job.args["count"] - len(paths), "sheet": str(folder / "sheet.png")}

    async def find_delivered(self, job: Job) -> int | None:
        assert self.publisher is not None
        return await self.publisher.find_sheet(job)

    async def deliver(self, job: Job) -> int:
        assert self.publisher is not None
        if not Path(job.outputs.get("sheet", "")).is_file():
            raise Fail("The candidates are missing from the bot's disk.")
        return await self.publisher.post_sheet(job)

    async def delivered(self, job: Job) -> None:
        return None
