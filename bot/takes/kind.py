"""The `take` job kind: Kling image-to-video from the channel's anchor. Everything else is the engine's."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bot.anchors.service import AnchorService
from bot.errors import UserError
from bot.fal.errors import FailureKind, GenerationError
from bot.fal.gateway import CancelOutcome, Gateway
from bot.fal.models import ModelSpec
from bot.jobs import Fail, Job, Poll, Resubmit, Retry, StepError, Uncertain
from bot.media.outputs import MAX_VIDEO_BYTES, BadOutput, check_video_async
from bot.media.video import VideoError, VideoTooLarge, fit_to_size
from bot.takes.models import KIND, LEDGER_PREFIX, Take
from bot.takes.ports import CannotAttach, ClipTooLarge, PostRefused, TakePublisher

log = logging.getLogger(__name__)

DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
MAX_CLIP_BYTES = MAX_VIDEO_BYTES  # a 15 s 1080p clip is tens of MB; a body past this is not a clip


def step_error(exc: GenerationError) -> StepError:
    """What the engine does with a gateway error: retry transient ones, stop on definite ones."""
    if exc.kind is FailureKind.UNKNOWN_OUTCOME:
        return Uncertain(
            "fal did not answer the submit, so it may or may not have started this take; to be sure it is "
            "never made (and billed) twice, it is not sent again. Nothing was charged; try again."
        )
    return Retry(exc.message) if exc.retryable else Fail(exc.message)


class TakeKind:
    name = KIND
    remote = True
    ledger_prefix = LEDGER_PREFIX

    def __init__(
        self,
        *,
        anchors: AnchorService,
        gateway: Gateway,
        spec: ModelSpec,
        clips_dir: Path,
    ) -> None:
        self.anchors = anchors
        self.gateway = gateway
        self.spec = spec
        self.clips_dir = clips_dir
        self.publisher: TakePublisher | None = None

    def _publisher(self) -> TakePublisher:
        if self.publisher is None:
            raise RuntimeError("the take kind has no publisher yet")
        return self.publisher

    # At fal ----------------------------------------------------------------------------------------------
    async def submit(self, job: Job) -> str:
        take = Take.of(job)
        try:
            anchor = await self.anchors.version_by_id(take.anchor_version_id)
            sha, path = await self.anchors.start_image(anchor, take.aspect_ratio)
            for attempt in (1, 2):
                ref = await self.anchors.start_image_ref(sha, path, self.gateway)
                arguments = self.spec.arguments(
                    image_url=ref,
                    prompt=take.prompt,
                    duration_s=take.duration_s,
                    audio=take.audio,
                    negative_prompt=take.negative_prompt,
                )
                try:
                    return await self.gateway.submit(take.endpoint, arguments)
                except GenerationError as exc:
                    # A refusal naming the start image: fal could not fetch the cached upload. Nothing was
                    # accepted, so one more submit with a fresh upload is not a duplicate.
                    if attempt == 2 or not self._image_refused(exc):
                        raise
                    log.info(
                        "fal could not use the upload of %s (%s); uploading again", sha[:12], exc.message
                    )
                    await self.anchors.forget_upload(sha)
        except GenerationError as exc:
            raise step_error(exc) from exc
        except UserError as exc:
            raise Fail(exc.message) from exc
        raise AssertionError("unreachable")

    def _image_refused(self, exc: GenerationError) -> bool:
        """fal refused the start image input itself (it could not fetch the cached upload)."""
        return (
            exc.kind is FailureKind.REJECTED
            and exc.field == self.spec.image_arg
            and self.gateway.needs_upload
        )

    async def poll(self, job: Job) -> Poll:
        assert job.request_id is not None
        try:
            status = await self.gateway.status(job.endpoint or self.spec.endpoint, job.request_id)
        except GenerationError as exc:
            raise step_error(exc) from exc
        if status.error is not None:  # completed with an error: fal is done with it, nothing to wait for
            await self._resubmit_if_image_refused(job, status.error)
            raise Fail(status.error.message)
        return Poll(status.state, status.position)

    async def collect(self, job: Job) -> dict[str, Any]:
        assert job.request_id is not None
        try:
            payload = await self.gateway.result(job.endpoint or self.spec.endpoint, job.request_id)
            [video, *_] = self.spec.outputs(payload)
        except GenerationError as exc:
            await self._resubmit_if_image_refused(job, exc)
            raise step_error(exc) from exc
        return {"url": video.url}

    async def _resubmit_if_image_refused(self, job: Job, exc: GenerationError) -> None:
        """fal could not fetch the cached start image: upload it afresh and submit once more (once only)."""
        if self._image_refused(exc) and not job.args.get("reuploaded"):
            await self._forget_start_image(job)
            raise Resubmit(exc.message, {"reuploaded": True}) from exc

    async def _forget_start_image(self, job: Job) -> None:
        take = Take.of(job)
        anchor = await self.anchors.version_by_id(take.anchor_version_id)
        sha, _ = await self.anchors.start_image(anchor, take.aspect_ratio)
        await self.anchors.forget_upload(sha)

    async def cancel(self, job: Job) -> bool:
        if not job.request_id:
            return True
        try:
            outcome = await self.gateway.cancel(job.endpoint or self.spec.endpoint, job.request_id)
        except GenerationError:
            log.warning("cancel of take %d at fal failed", job.id, exc_info=True)
            return False
        return outcome in (CancelOutcome.CANCELLED, CancelOutcome.NOT_FOUND)

    def run(self, job: Job) -> dict[str, Any]:
        raise NotImplementedError("takes run at fal")

    # Fetch and check -------------------------------------------------------------------------------------
    async def postprocess(self, job: Job) -> dict[str, Any]:
        """Download the clip and check it is a playable video; a refused file is deleted and fetched once more."""
        url = job.outputs.get("url")
        if not url:
            raise Fail("fal finished but returned no clip.")
        dest = self.clips_dir / f"shot-{job.id}.mp4"
        problem = ""
        for _ in (1, 2):
            try:
                await self.gateway.download(url, dest, max_bytes=MAX_CLIP_BYTES)
                problem = await check_clip(dest)
            except GenerationError as exc:
                if exc.kind is not FailureKind.BAD_OUTPUT:  # e.g. oversized body: refused like a bad file
                    raise step_error(exc) from exc
                problem = exc.message
            if not problem:
                return {"path": str(dest)}
            log.warning("take %d: downloaded file refused (%s)", job.id, problem)
            dest.unlink(missing_ok=True)
        raise Fail(f"fal's file for this take is not a playable video ({problem}).")

    # Deliver ---------------------------------------------------------------------------------------------
    async def find_delivered(self, job: Job) -> int | None:
        return await self._publisher().find_posted_clip(Take.of(job))

    async def deliver(self, job: Job) -> int:
        take = Take.of(job)
        publisher = self._publisher()
        if not take.clip_path or not Path(take.clip_path).exists():
            raise Fail("The downloaded clip file is missing from the bot's disk.")
        clip = Path(take.clip_path)
        limit = take.upload_limit_bytes or await publisher.upload_limit(take.guild_id) or DEFAULT_UPLOAD_LIMIT
        try:
            try:
                return await self._post_within(take, clip, limit)
            except ClipTooLarge:
                # Refused although under the limit we knew (e.g. the server lost its boost).
                smaller = min(DEFAULT_UPLOAD_LIMIT, int(clip.stat().st_size * 0.8))
                log.warning(
                    "take %d: upload refused as too large; fitting it under %d bytes", take.id, smaller
                )
                try:
                    return await self._post_within(take, clip, smaller)
                except ClipTooLarge:
                    return await publisher.post_link(
                        take, take.output_url or "", "Discord refused the clip as too large for this server."
                    )
            except CannotAttach:
                return await publisher.post_link(
                    take, take.output_url or "", "I may not attach files in this channel (Attach Files)."
                )
        except PostRefused as exc:
            raise Fail(f"The clip was made but could not be posted here ({exc}).") from exc
        except (ClipTooLarge, CannotAttach) as exc:
            raise Fail(f"The clip was made but could not be posted here ({exc}).") from exc

    async def _post_within(self, take: Take, clip: Path, limit: int) -> int:
        publisher = self._publisher()
        note = None
        size = clip.stat().st_size
        if size > limit:
            fitted = clip.with_name(clip.stem + "-fit.mp4")
            try:
                await fit_to_size(clip, fitted, max_bytes=int(limit * 0.97))
            except (VideoTooLarge, VideoError) as exc:
                log.warning("take %d: cannot fit %s under %d bytes: %s", take.id, clip, limit, exc)
                reason = (
                    f"The clip is {size / 1048576:.1f} MB, over this server's {limit / 1048576:.0f} MB upload "
                    "limit, and could not be shrunk to fit."
                )
                return await publisher.post_link(take, take.output_url or "", reason)
            note = (
                f"Re-encoded from {size / 1048576:.1f} MB to {fitted.stat().st_size / 1048576:.1f} MB to fit "
                f"Discord's {limit / 1048576:.0f} MB limit."
            )
            clip = fitted
        return await publisher.post_clip(take, clip, note)

    async def delivered(self, job: Job) -> None:
        await self._publisher().offer_reroll(Take.of(job))


async def check_clip(path: Path) -> str:
    """'' when the file is a playable video (container, size, first and last frames), else why not."""
    try:
        await check_video_async(path, max_bytes=MAX_CLIP_BYTES)
    except BadOutput as exc:
        return exc.detail
    return ""
