"""The `candidates` job kind: one Seedream call (text-to-image or edit of the anchor) with `num_images`.

Generate, refine and angles are all this kind (its args say which); the shared fal steps are in remote.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bot.anchors.service import AnchorService
from bot.fal.errors import GenerationError
from bot.fal.gateway import Gateway
from bot.fal.models import model
from bot.jobs import Fail, Job
from bot.media.outputs import MAX_IMAGE_BYTES, check_image
from bot.media.sheet import contact_sheet
from bot.studio.ports import HoldReducer
from bot.studio.remote import FalImageSteps
from bot.takes.kind import step_error

KIND = "candidates"


class CandidatesKind(FalImageSteps):
    name = KIND
    ledger_prefix = "studio"

    def __init__(self, *, anchors: AnchorService, gateway: Gateway, ledger: HoldReducer, root: Path) -> None:
        self.anchors, self.gateway, self.ledger, self.root = anchors, gateway, ledger, root

    async def submit(self, job: Job) -> str:
        inputs: dict[str, Any] = {"prompt": job.args["prompt"], "num_images": job.args["count"]}
        try:
            if job.args.get("anchor_version_id"):  # an edit of the anchor (refine, angles)
                version = await self.anchors.version_by_id(job.args["anchor_version_id"])
                path = self.anchors.image_path(version.sha256)
                inputs["image_urls"] = [
                    await self.anchors.start_image_ref(version.sha256, path, self.gateway)
                ]
            return await self.gateway.submit(
                job.endpoint or "", model(job.endpoint or "").arguments(**inputs)
            )
        except GenerationError as exc:
            raise step_error(exc) from exc

    async def postprocess(self, job: Job) -> dict[str, Any]:
        """Download every candidate at once; keep the good ones; release the hold of the rest; make the sheet."""
        folder = self.root / str(job.id)
        folder.mkdir(parents=True, exist_ok=True)

        async def fetch(n: int, url: str | None) -> Path | None:
            dest = folder / f"candidate-{n}.img"
            if not url:
                return None
            try:
                await self.gateway.download(url, dest, max_bytes=MAX_IMAGE_BYTES)
                await asyncio.to_thread(check_image, dest)
            except Exception:  # a missing or broken candidate is neither delivered nor charged
                dest.unlink(missing_ok=True)
                return None
            return dest

        urls = (job.outputs.get("urls") or [])[: job.args["count"]]
        paths = [str(p) for p in await asyncio.gather(*(fetch(n, u) for n, u in enumerate(urls, 1))) if p]
        if not paths:
            raise Fail("fal returned no usable image; nothing was charged.")
        if len(paths) < job.args["count"]:
            await self.ledger.reduce_hold(job.ledger_key, len(paths) * job.args["unit_micros"])
        sheet = await asyncio.to_thread(contact_sheet, [Path(p).read_bytes() for p in paths])
        (folder / "sheet.png").write_bytes(sheet.data)
        return {"paths": paths, "missing": job.args["count"] - len(paths), "sheet": str(folder / "sheet.png")}
