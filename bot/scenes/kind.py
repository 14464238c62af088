"""The `scene_export` job kind: a LOCAL kind that joins a scene's kept takes in shot order into one mp4.

run (a worker thread): FFmpeg re-encodes the takes to one size, frame rate and audio layout and joins them (the
work is FFmpeg's, in its own process: the event loop is never held). postprocess: check the video. deliver: post it
within the channel's upload limit (made smaller when it must be). Free: nothing is held or charged.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from bot.jobs import Fail, Failure, Job, KindBase, Outlet
from bot.media.outputs import MAX_VIDEO_BYTES, BadOutput, check_video
from bot.media.video import VideoError, VideoTooLarge, concat, fit_to_size
from bot.scenes.models import EXPORT_KIND
from bot.scenes.ports import ExportPublisher
from bot.takes.ports import ClipTooLarge
from bot.text import human_size

log = logging.getLogger(__name__)
EXPORT_MAX_BYTES = 4 * MAX_VIDEO_BYTES  # ten 15 s takes of 1080p


class ExportKind(KindBase):
    name = EXPORT_KIND
    ledger_prefix = "export"
    noun = "export"

    def __init__(self, exports_dir: Path) -> None:
        self.exports_dir = exports_dir
        self.outlet: Outlet[ExportPublisher] = Outlet("scene exports")

    def can_deliver(self) -> bool:
        return self.outlet.attached

    def failure_text(self, failure: Failure, reason: str = "") -> str:
        if failure is Failure.WORK_BROKE:
            return "The scene's takes could not be joined into one video."
        return super().failure_text(failure, reason)

    def run(self, job: Job) -> dict[str, Any]:
        """Join the kept takes (their files, in shot order) into one video: FFmpeg in its own process."""
        clips = [Path(p) for p in job.args["clips"]]
        missing = [n for n, p in zip(job.args["positions"], clips, strict=True) if not p.is_file()]
        if missing:
            raise Fail(
                f"The kept takes of shot{'s' if len(missing) > 1 else ''} {_numbers(missing)} are no longer on the bot's disk."
            )
        out = self.exports_dir / f"scene-{job.args['scene_id']}-export-{job.id}.mp4"
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            info = asyncio.run(concat(clips, out))
        except VideoError as exc:
            log.warning("export %d: %s", job.id, exc)
            raise Fail("The scene's takes could not be joined into one video.") from exc
        return {"path": str(out), "seconds": info.duration_s}

    async def postprocess(self, job: Job) -> dict[str, Any]:
        try:
            await asyncio.to_thread(check_video, Path(job.outputs["path"]), max_bytes=EXPORT_MAX_BYTES)
        except BadOutput as exc:
            raise Fail(f"The exported video is not playable ({exc.detail}).") from exc
        return {}

    async def find_delivered(self, job: Job) -> int | None:
        return await self.outlet.get().find_export(job)

    async def deliver(self, job: Job) -> int:
        """Post the video, made smaller when it is over the channel's upload limit."""
        publisher = self.outlet.get()
        video = Path(job.outputs["path"])
        limit = await publisher.upload_limit(job.guild_id)
        note = None
        if video.stat().st_size > limit:
            fitted = video.with_name(video.stem + "-fit.mp4")
            try:
                await fit_to_size(video, fitted, max_bytes=int(limit * 0.97))
            except (VideoTooLarge, VideoError) as exc:
                raise Fail(
                    f"The exported video is {human_size(video.stat().st_size)}, over this server's "
                    f"{human_size(limit)} upload limit, and could not be made small enough."
                ) from exc
            note = f"Made smaller ({human_size(video.stat().st_size)} \u2192 {human_size(fitted.stat().st_size)}) to fit this server's {human_size(limit)} upload limit."
            video = fitted
        try:
            return await publisher.post_export(job, video, note)
        except ClipTooLarge as exc:
            raise Fail("Discord refused the exported video as too large for this server.") from exc


def _numbers(positions: list[int]) -> str:
    return ", ".join(str(p) for p in positions)
