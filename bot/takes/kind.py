"""The `take` job kind: Kling image-to-video from the channel's anchor. Everything else is the engine's."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bot.alerts import Alerts
from bot.anchors.models import AnchorVersion
from bot.anchors.service import AnchorService
from bot.errors import UserError
from bot.fal.errors import FailureKind, GenerationError
from bot.fal.gateway import Gateway
from bot.fal.models import ModelSpec
from bot.jobs import Fail, Failure, Job, Outlet, Resubmit
from bot.kinds.fal import FalKind
from bot.media.outputs import MAX_VIDEO_BYTES, BadOutput, check_video_async
from bot.media.video import VideoError, VideoTooLarge, fit_to_size
from bot.takes.cast import Member
from bot.takes.models import KIND, LEDGER_PREFIX, Take
from bot.takes.ports import CannotAttach, ChannelGone, ClipTooLarge, PostRefused, TakePublisher
from bot.text import human_size

log = logging.getLogger(__name__)

DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
MAX_CLIP_BYTES = MAX_VIDEO_BYTES  # a 15 s 1080p clip is tens of MB; a body past this is not a clip

_FAILURES = {
    Failure.TIMED_OUT: "The video service did not finish this take within {minutes} minutes, so it was cancelled.",
    Failure.UNDELIVERABLE: "The clip was made but could not be posted here.",
}


class TakeKind(FalKind):
    name = KIND
    ledger_prefix = LEDGER_PREFIX
    noun = "take"
    announced = True  # its progress (request) message is posted right after it is queued
    service = "the video service"
    output = "playable video"

    def __init__(
        self,
        *,
        anchors: AnchorService,
        gateway: Gateway,
        spec: ModelSpec,
        clips_dir: Path,
        timeout_minutes: int = 30,
        alerts: Alerts | None = None,
    ) -> None:
        self.alerts = alerts
        self.anchors = anchors
        self.gateway = gateway
        self.spec = spec
        self.clips_dir = clips_dir
        self.timeout_minutes = timeout_minutes
        self.outlet: Outlet[TakePublisher] = Outlet("takes")

    def can_deliver(self) -> bool:
        return self.outlet.attached

    def failure_text(self, failure: Failure, reason: str = "") -> str:
        if failure in _FAILURES:
            return _FAILURES[failure].format(minutes=self.timeout_minutes)
        return super().failure_text(failure, reason)

    def endpoint(self, job: Job) -> str:
        return job.endpoint or self.spec.endpoint

    # At fal ----------------------------------------------------------------------------------------------
    async def submit(self, job: Job) -> str:
        """Send once; a refusal naming the start image (fal could not fetch the cached upload) accepted nothing,
        so one more submit with a fresh upload is not a duplicate."""
        take = Take.of(job)
        try:
            anchor = await self.anchors.version_by_id(take.anchor_version_id)
            sha, path = await self._start_image(take, anchor)
            try:
                request_id = await self._submit_once(take, anchor, sha, path)
            except GenerationError as exc:
                if not self._image_refused(exc):
                    raise
                log.info("fal could not use an upload of take %d (%s); uploading again", job.id, exc.message)
                await self._forget_uploads(take, sha)
                request_id = await self._submit_once(take, anchor, sha, path)
            self.accepted()
            return request_id
        except GenerationError as exc:
            raise self.step_error(exc) from exc
        except UserError as exc:
            raise Fail(exc.message) from exc

    async def _start_image(self, take: Take, anchor: AnchorVersion) -> tuple[str, Path]:
        """The take's first frame: the previous shot's last frame when it continues one, else the anchor fitted to
        the shape asked for."""
        if take.start_sha:
            return take.start_sha, self.anchors.image_path(take.start_sha)
        return await self.anchors.start_image(anchor, take.aspect_ratio)

    async def _submit_once(self, take: Take, anchor: AnchorVersion, sha: str, path: Path) -> str:
        ref = await self.anchors.start_image_ref(sha, path, self.gateway)
        end = None
        if take.end_sha:
            end = await self.anchors.start_image_ref(
                take.end_sha, self.anchors.image_path(take.end_sha), self.gateway
            )
        arguments = self.spec.arguments(
            image_url=ref,
            prompt=None if take.multi_prompt else take.sent_prompt,
            multi_prompt=list(take.multi_sent or take.multi_prompt) or None,
            elements=await self._elements(take, anchor),
            duration_s=take.duration_s,
            audio=take.audio,
            negative_prompt=take.negative_prompt,
            end_image_url=end,
        )
        return await self.gateway.submit(take.endpoint, arguments)

    async def _elements(self, take: Take, anchor: AnchorVersion) -> list[dict[str, Any]] | None:
        """The characters as Kling's @Element1, @Element2...: each anchor as frontal image with its angles (or its
        face crop) as references and, with sound on, its voice; a take of the old form sends its anchor with its
        kept angles as @Element1."""
        if not self.spec.supports_elements:
            return None
        if take.cast:
            return [await self._element(m, take.audio) for m in take.cast]
        if not take.angle_shas:
            return None
        refs = [await self._ref(sha) for sha in (anchor.sha256, *take.angle_shas)]
        return [{"frontal_image_url": refs[0], "reference_image_urls": refs[1:]}]

    async def _element(self, member: Member, audio: bool) -> dict[str, Any]:
        version = await self.anchors.version_by_id(member.version_id)
        element: dict[str, Any] = {
            "frontal_image_url": await self._ref(version.sha256),
            "reference_image_urls": [await self._ref(sha) for sha in member.refs],
        }
        if audio and member.voice_id and self.spec.supports_voice:
            element["voice_id"] = member.voice_id
        return element

    async def _ref(self, sha: str) -> str:
        return await self.anchors.start_image_ref(sha, self.anchors.image_path(sha), self.gateway)

    def _image_refused(self, exc: GenerationError) -> bool:
        """fal refused an image input itself (it could not fetch a cached upload): the start or end image, or an
        element's frontal or reference image (their place in a list ends the error's location)."""
        image_fields = {self.spec.image_arg, "end_image_url", "frontal_image_url", "reference_image_urls"}
        return (
            exc.kind is FailureKind.REJECTED
            and (exc.field in image_fields or (exc.field or "").isdigit())
            and self.gateway.needs_upload
        )

    async def _forget_uploads(self, take: Take, start_sha: str) -> None:
        """Drop the cached fal URLs of every image the take sends, so the next submit uploads them afresh."""
        shas = {start_sha, *take.angle_shas, *(s for m in take.cast for s in m.refs)}
        if take.end_sha:
            shas.add(take.end_sha)
        for member in take.cast:
            shas.add((await self.anchors.version_by_id(member.version_id)).sha256)
        if take.angle_shas:
            shas.add((await self.anchors.version_by_id(take.anchor_version_id)).sha256)
        for sha in shas:
            await self.anchors.forget_upload(sha)

    def outputs(self, job: Job, payload: dict[str, Any]) -> dict[str, Any]:
        [video, *_] = self.spec.outputs(payload)
        return {"url": video.url}

    async def on_refused(self, job: Job, exc: GenerationError) -> None:
        """fal could not fetch the cached start image: upload it afresh and submit once more (once only)."""
        if self._image_refused(exc) and not job.args.get("reuploaded"):
            take = Take.of(job)
            anchor = await self.anchors.version_by_id(take.anchor_version_id)
            sha, _ = await self._start_image(take, anchor)
            await self._forget_uploads(take, sha)
            raise Resubmit(exc.message, {"reuploaded": True}) from exc

    # Fetch and check -------------------------------------------------------------------------------------
    async def postprocess(self, job: Job) -> dict[str, Any]:
        """Download the clip and check it is a playable video; a refused file is deleted and fetched once more."""
        url = job.outputs.get("url")
        if not url:
            raise Fail("The video service finished but sent no clip.")
        dest = self.clips_dir / f"shot-{job.id}.mp4"
        problem = ""
        for _ in (1, 2):
            try:
                await self.gateway.download(url, dest, max_bytes=MAX_CLIP_BYTES)
                problem = await check_clip(dest)
            except GenerationError as exc:
                if exc.kind is not FailureKind.BAD_OUTPUT:  # e.g. oversized body: refused like a bad file
                    raise self.step_error(exc) from exc
                problem = exc.message
            if not problem:
                return {"path": str(dest)}
            log.warning("take %d: downloaded file refused (%s)", job.id, problem)
            dest.unlink(missing_ok=True)
        log.warning("take %d: the video service's file is not a playable video (%s)", job.id, problem)
        raise Fail(self.explain(FailureKind.BAD_OUTPUT))

    # Deliver ---------------------------------------------------------------------------------------------
    async def find_delivered(self, job: Job) -> int | None:
        try:
            return await self.outlet.get().find_posted_clip(Take.of(job))
        except ChannelGone as exc:
            raise self._gone(job, exc) from exc

    def _gone(self, job: Job, exc: ChannelGone) -> Fail:
        log.info("take %d: its channel is gone (%s); ended and released", job.id, exc)
        return Fail("The channel this take was made for is gone, so the clip could not be posted.")

    async def deliver(self, job: Job) -> int:
        try:
            return await self._deliver(Take.of(job))
        except ChannelGone as exc:
            raise self._gone(job, exc) from exc

    async def _deliver(self, take: Take) -> int:
        publisher = self.outlet.get()
        if not take.clip_path or not Path(take.clip_path).exists():
            raise Fail(
                "The clip was made, but its file went missing from the bot's disk before it was posted."
            )
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
                    take,
                    take.output_url or "",
                    "I may not attach files in this channel, so here is a link (a moderator can give me Attach Files).",
                )
        except (PostRefused, ClipTooLarge, CannotAttach) as exc:
            log.warning("take %d: Discord refused its clip (%s)", take.id, exc)
            raise Fail(
                "The clip was made, but Discord would not let me post it here; a moderator may check my "
                "permissions in this channel (Send Messages, Embed Links, Attach Files)."
            ) from exc

    async def _post_within(self, take: Take, clip: Path, limit: int) -> int:
        publisher = self.outlet.get()
        note = None
        size = clip.stat().st_size
        if size > limit:
            fitted = clip.with_name(clip.stem + "-fit.mp4")
            try:
                await fit_to_size(clip, fitted, max_bytes=int(limit * 0.97))
            except (VideoTooLarge, VideoError) as exc:
                log.warning("take %d: cannot fit %s under %d bytes: %s", take.id, clip, limit, exc)
                reason = (
                    f"The clip is {human_size(size)}, over this server's {human_size(limit)} upload limit, "
                    "and could not be shrunk to fit."
                )
                return await publisher.post_link(take, take.output_url or "", reason)
            note = (
                f"Made smaller ({human_size(size)} \u2192 {human_size(fitted.stat().st_size)}) to fit this "
                f"server's {human_size(limit)} upload limit."
            )
            clip = fitted
        return await publisher.post_clip(take, clip, note)

    async def delivered(self, job: Job) -> None:
        await self.outlet.get().offer_reroll(Take.of(job))


async def check_clip(path: Path) -> str:
    """'' when the file is a playable video (container, size, first and last frames), else why not."""
    try:
        await check_video_async(path, max_bytes=MAX_CLIP_BYTES)
    except BadOutput as exc:
        return exc.detail
    return ""
