"""Several shots in one call: the `storyboard` kind (one Kling take with `multi_prompt`, cut locally at the planned
durations) and the `part` kind (each cut part, a free first take of its own shot, posted like any take).

A storyboard is priced as one take of its total length and charged when its whole clip is posted; its parts cost
nothing. A part is a take like any other from then on: re-rolled (as a normal take of its shot), kept, scored.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from bot.jobs import Fail, Job, KindBase
from bot.media.cuts import CutPlanError, cut_async
from bot.media.video import VideoError
from bot.takes.kind import DEFAULT_UPLOAD_LIMIT, TakeKind, check_clip
from bot.takes.models import PART_KIND, STORYBOARD_KIND, Take
from bot.takes.ports import CannotAttach, ChannelGone, ClipTooLarge, PostRefused
from bot.text import human_size

log = logging.getLogger(__name__)


class StoryboardKind(TakeKind):
    """A take whose submit carries `multi_prompt`; its clip is cut into the planned parts before it is posted."""

    name = STORYBOARD_KIND
    ledger_prefix = STORYBOARD_KIND
    noun = "storyboard"

    async def postprocess(self, job: Job) -> dict[str, Any]:
        """Download and check the clip (as a take), then cut it at the planned durations (in a worker thread)."""
        outputs = await super().postprocess(job)
        take = Take.of(job)
        folder = self.clips_dir / f"storyboard-{job.id}"
        seconds = [float(s) for _, s in take.multi_prompt]
        try:
            parts = await cut_async(Path(outputs["path"]), seconds, folder, stem=f"storyboard-{job.id}-part")
        except (CutPlanError, VideoError) as exc:
            log.warning("storyboard %d: could not cut its clip (%s)", job.id, exc)
            raise Fail("The storyboard was made, but its clip could not be cut into its shots.") from exc
        return {**outputs, "parts": [str(p) for p in parts]}

    async def find_delivered(self, job: Job) -> int | None:
        return await self.outlet.get().find_storyboard(Take.of(job))

    async def deliver(self, job: Job) -> int:
        """Post the storyboard with its whole clip when the server takes a file that large, else without it: its
        shots follow as their own takes, each fitted to the limit as any take is, so nothing is lost."""
        take = Take.of(job)
        if not take.clip_path or not Path(take.clip_path).exists():
            raise Fail(
                "The storyboard was made, but its file went missing from the bot's disk before it was posted."
            )
        publisher = self.outlet.get()
        clip = Path(take.clip_path)
        try:
            limit = (
                take.upload_limit_bytes or await publisher.upload_limit(take.guild_id) or DEFAULT_UPLOAD_LIMIT
            )
            size = clip.stat().st_size
            if size > limit:
                note = f"The whole clip ({human_size(size)}) is over this server's {human_size(limit)} upload limit"
                return await publisher.post_storyboard(take, None, f"{note}; its shots follow one by one.")
            try:
                return await publisher.post_storyboard(take, clip)
            except (ClipTooLarge, CannotAttach):
                note = "Discord would not take the whole clip here; its shots follow one by one."
                return await publisher.post_storyboard(take, None, note)
        except ChannelGone as exc:
            raise self._gone(job, exc) from exc
        except PostRefused as exc:
            raise Fail(
                "The storyboard was made, but Discord would not let me post it here; a moderator may check my "
                "permissions in this channel (Send Messages, Embed Links)."
            ) from exc

    async def delivered(self, job: Job) -> None:
        return None  # no re-roll reaction on a storyboard: its parts are re-rolled one by one


class PartKind(KindBase):
    """One cut part of a storyboard: a local job that takes its part's file, checks it and posts it as a take."""

    name = PART_KIND
    ledger_prefix = "shot"
    noun = "take"

    def __init__(self, takes: TakeKind) -> None:
        self.takes = takes  # posting, finding and the words are a take's

    def can_deliver(self) -> bool:
        return self.takes.can_deliver()

    def run(self, job: Job) -> dict[str, Any]:
        """Move the part cut by the storyboard to this take's own clip file (a worker thread)."""
        source = Path((job.args.get("cut_from") or {}).get("path") or "")
        dest = self.takes.clips_dir / f"shot-{job.id}.mp4"
        if not dest.exists():
            if not source.is_file():
                raise Fail(
                    "This part of the storyboard went missing from the bot's disk before it was posted."
                )
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
        return {"path": str(dest)}

    async def postprocess(self, job: Job) -> dict[str, Any]:
        problem = await check_clip(Path(job.outputs["path"]))
        if problem:
            raise Fail(f"This part of the storyboard is not a playable video ({problem}).")
        return {}

    async def find_delivered(self, job: Job) -> int | None:
        return await self.takes.find_delivered(job)

    async def deliver(self, job: Job) -> int:
        return await self.takes.deliver(job)

    async def delivered(self, job: Job) -> None:
        await self.takes.delivered(job)
