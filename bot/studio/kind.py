"""The `candidates` job kind: one Seedream call (text-to-image or edit of the anchor) with `num_images`.

Generate, refine and angles are all this kind (its args say which); the fal steps are bot/kinds/fal.py's.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bot.alerts import Alerts
from bot.anchors.service import AnchorService
from bot.fal.gateway import Gateway
from bot.fal.models import model
from bot.jobs import Fail, Job, Outlet
from bot.kinds.fal import FalKind
from bot.media.outputs import MAX_IMAGE_BYTES, check_image
from bot.media.sheet import contact_sheet
from bot.studio.models import CANDIDATES_KIND
from bot.studio.ports import HoldReducer, SheetPublisher


class CandidatesKind(FalKind):
    name = CANDIDATES_KIND
    ledger_prefix = "studio"
    noun = "set of images"
    announced = True  # its progress (request) message is posted right after it is queued
    service = "the image service"
    output = "usable image"

    def __init__(
        self,
        *,
        anchors: AnchorService,
        gateway: Gateway,
        ledger: HoldReducer,
        root: Path,
        alerts: Alerts | None = None,
    ) -> None:
        self.anchors, self.gateway, self.ledger, self.root, self.alerts = (
            anchors,
            gateway,
            ledger,
            root,
            alerts,
        )
        self.outlet: Outlet[SheetPublisher] = Outlet("anchor studio sheets")

    def can_deliver(self) -> bool:
        return self.outlet.attached

    async def arguments(self, job: Job) -> dict[str, Any]:
        inputs: dict[str, Any] = {"prompt": job.args["prompt"], "num_images": job.args["count"]}
        if job.args.get("anchor_version_id"):  # an edit of the anchor (refine, angles)
            inputs["image_urls"] = [await self._anchor_ref(job)]
        return model(self.endpoint(job)).arguments(**inputs)

    async def _anchor_ref(self, job: Job) -> str:
        """The anchor version's own stored image, as fal reads it. A per-megapixel model (qwen angles) is quoted on
        this very image's recorded size (StudioService.unit_price): send another image, and quote that one."""
        version = await self.anchors.version_by_id(job.args["anchor_version_id"])
        path = self.anchors.image_path(version.sha256)
        return await self.anchors.start_image_ref(version.sha256, path, self.gateway)

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
            raise Fail("The image service sent back no usable image.")
        if len(paths) < job.args["count"]:
            await self.ledger.reduce_hold(job.ledger_key, len(paths) * job.args["unit_micros"])
        sheet = await asyncio.to_thread(contact_sheet, [Path(p).read_bytes() for p in paths])
        (folder / "sheet.png").write_bytes(sheet.data)
        return {"paths": paths, "missing": job.args["count"] - len(paths), "sheet": str(folder / "sheet.png")}

    async def find_delivered(self, job: Job) -> int | None:
        return await self.outlet.get().find_sheet(job)

    async def deliver(self, job: Job) -> int:
        if not Path(job.outputs.get("sheet") or "").is_file():
            raise Fail("The images were made, but their files went missing from the bot's disk.")
        return await self.outlet.get().post_sheet(job)
