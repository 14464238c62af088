"""Shots: a prompt and the channel's anchor become a clip, through a queue that survives restarts.

Every state change (waiting, submitted, running, completed, downloaded, posted, failed, cancelled) is one row
update, in the same transaction as its ledger entry where there is one. The engine runs two loops: a scheduler
that moves waiting shots to the backend within the per-user and global limits, and one shared poller that asks
the backend about every shot in flight at an interval of seconds. Deliveries run as tasks. On start-up the same
loops pick up whatever the database says is unfinished.

The engine talks to Discord only through the `ShotPublisher` port, which the shots cog implements.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bot.anchors.service import ASPECT_RATIOS, AnchorService
from bot.budget.service import BudgetService
from bot.db import Database
from bot.errors import NotAllowed, UserError
from bot.fal.gateway import GenerationError, Generator
from bot.fal.models import EndpointSpec
from bot.fal.pricing import PriceTable
from bot.media.video import VideoError, VideoTooLarge, fit_to_size
from bot.money import format_usd
from bot.takes.models import FINAL_STATES, IN_FLIGHT_STATES, Shot, shot_job_key
from bot.takes.store import ShotStore

log = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 2500
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
DELIVERY_ATTEMPTS = 4
DELIVERY_BACKOFF_S = (2.0, 6.0, 18.0)  # waits between delivery attempts
REROLL_DEDUP_S = 5.0  # the same member re-rolling the same clip again within this counts once
STOP_TIMEOUT_S = 10.0
PROGRESS_GRACE_S = 30.0  # a new shot waits this long at most for its progress message before it is scheduled


class ClipTooLarge(Exception):
    """Discord refused the clip as too large (413), whatever limit the bot believed."""


class DuplicateReroll(UserError):
    """The same member re-rolled the same clip a moment ago; this one counts as the same."""


class ShotPublisher(Protocol):
    """What the engine needs from the chat side (the shots cog implements it with discord.py)."""

    async def show_progress(self, shot: Shot) -> int | None:
        """Create or edit the shot's public progress message; return its id."""

    async def post_clip(self, shot: Shot, clip: Path, note: str | None) -> int:
        """Post the clip as an attachment in reply to the shot's reply target; return the message id.

        Raises ClipTooLarge when the chat refuses the file for its size.
        """

    async def post_link(self, shot: Shot, url: str, reason: str) -> int:
        """Post a link to the clip instead of the file; return the message id."""

    async def offer_reroll(self, shot: Shot) -> None:
        """Add the re-roll reaction to a posted clip (after it is recorded, so a click always finds it)."""

    async def find_posted_clip(self, shot: Shot) -> int | None:
        """After a restart: the id of a clip message already posted for this shot, if any."""

    async def upload_limit(self, guild_id: int) -> int:
        """The guild's upload limit per attachment in bytes."""


@dataclass(frozen=True)
class ShotRequest:
    """What someone asked for with /shot (already parsed from Discord)."""

    guild_id: int
    channel_id: int
    parent_channel_id: int | None
    user_id: int
    prompt: str
    duration_s: int | None = None
    aspect_ratio: str = "anchor"
    audio: bool = False
    negative_prompt: str | None = None
    upload_limit_bytes: int | None = None


class ShotService:
    """The shot queue, poller and delivery."""

    def __init__(
        self,
        db: Database,
        *,
        anchors: AnchorService,
        budget: BudgetService,
        generator: Generator,
        spec: EndpointSpec,
        prices: PriceTable,
        clips_dir: Path,
        default_duration_s: int = 5,
        max_per_user: int = 2,
        max_global: int = 10,
        poll_interval_s: float = 3.0,
        progress_interval_s: float = 4.0,
        job_timeout_s: float = 1800.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.store = ShotStore(db)
        self.anchors = anchors
        self.budget = budget
        self.generator = generator
        self.spec = spec
        self.prices = prices
        self.clips_dir = clips_dir
        self.default_duration_s = default_duration_s
        self.max_per_user = max_per_user
        self.max_global = max_global
        self.poll_interval_s = poll_interval_s
        self.progress_interval_s = progress_interval_s
        self.job_timeout_s = job_timeout_s
        self.clock = clock
        self.publisher: ShotPublisher | None = None
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._delivering: dict[int, asyncio.Task[None]] = {}
        self._last_progress: dict[int, tuple[float, str]] = {}
        self._recent_rerolls: dict[tuple[int, int], float] = {}

    @property
    def dry_run(self) -> bool:
        return self.generator.name == "dry-run"

    # Lifecycle -------------------------------------------------------------------------------------------
    def start(self, publisher: ShotPublisher) -> None:
        """Start the scheduler and poller; they resume every unfinished shot."""
        self.publisher = publisher
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self._scheduler_loop(), name="shots-scheduler"),
            asyncio.create_task(self._poller_loop(), name="shots-poller"),
            asyncio.create_task(self._resume_deliveries(), name="shots-resume"),
        ]

    async def stop(self) -> None:
        """Stop the loops (the database keeps every state for the next start)."""
        tasks = self._tasks + list(self._delivering.values())
        self._tasks = []
        for task in tasks:
            task.cancel()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_S)
            for task in stuck:
                log.warning("shot task %s did not stop within %.0f s", task.get_name(), STOP_TIMEOUT_S)

    # Requests --------------------------------------------------------------------------------------------
    def quote(self, duration_s: int, audio: bool) -> int:
        """What a clip of this length costs at list price."""
        return self.prices.quote(self.spec, duration_s=duration_s, audio=audio)

    def _validate(self, req: ShotRequest) -> tuple[str, int, str, bool, str | None]:
        prompt = req.prompt.strip()
        if not prompt:
            raise UserError("The prompt is empty; describe what the character does in this shot.")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise UserError(
                f"The prompt is {len(prompt):,} characters; keep it to {MAX_PROMPT_CHARS:,} or fewer."
            )
        duration = req.duration_s if req.duration_s is not None else self.default_duration_s
        if duration not in self.spec.durations_s:
            allowed = self.spec.durations_s
            span = (
                f"{allowed[0]} to {allowed[-1]} seconds"
                if list(allowed) == list(range(allowed[0], allowed[-1] + 1))
                else " or ".join(str(d) for d in allowed) + " seconds"
            )
            raise UserError(f"{self.spec.label} makes clips of {span}; {duration} s is not one of them.")
        aspect = req.aspect_ratio or "anchor"
        if aspect != "anchor" and aspect not in ASPECT_RATIOS:
            raise UserError("The aspect ratio must be anchor, 16:9, 9:16 or 1:1.")
        negative = (req.negative_prompt or "").strip() or None
        if negative and len(negative) > MAX_PROMPT_CHARS:
            raise UserError(f"The negative prompt is too long; keep it to {MAX_PROMPT_CHARS:,} characters.")
        audio = bool(req.audio) and self.spec.supports_audio
        return prompt, duration, aspect, audio, negative

    async def request(self, req: ShotRequest) -> Shot:
        """Check everything, then queue a shot and hold its price in one transaction."""
        prompt, duration, aspect, audio, negative = self._validate(req)
        anchor = await self.anchors.resolve(req.channel_id, req.parent_channel_id)
        price = self.quote(duration, audio)
        return await self._queue(
            guild_id=req.guild_id,
            channel_id=req.channel_id,
            user_id=req.user_id,
            values={
                "prompt": prompt,
                "negative_prompt": negative,
                "duration_s": duration,
                "aspect_ratio": aspect,
                "audio": int(audio),
                "anchor_version_id": anchor.id,
                "price_micros": price,
                "upload_limit_bytes": req.upload_limit_bytes,
            },
            root=None,
        )

    async def reroll(self, shot_id: int, *, user_id: int, upload_limit_bytes: int | None = None) -> Shot:
        """A new take of a shot: same prompt, options and anchor version, charged to `user_id`."""
        original = await self.store.get(shot_id)
        if original is None:
            raise UserError("That shot no longer exists.")
        if original.clip_message_id is None:
            raise UserError("That take has no clip yet; re-roll a posted clip.")
        now = time.monotonic()
        self._recent_rerolls = {k: t for k, t in self._recent_rerolls.items() if now - t < REROLL_DEDUP_S}
        key = (shot_id, user_id)
        if key in self._recent_rerolls:
            raise DuplicateReroll("You just re-rolled this clip; that take is on its way.")
        self._recent_rerolls[key] = now
        return await self._queue(
            guild_id=original.guild_id,
            channel_id=original.channel_id,
            user_id=user_id,
            values={
                "prompt": original.prompt,
                "negative_prompt": original.negative_prompt,
                "duration_s": original.duration_s,
                "aspect_ratio": original.aspect_ratio,
                "audio": original.audio,
                "anchor_version_id": original.anchor_version_id,
                "price_micros": self.quote(original.duration_s, bool(original.audio)),
                "upload_limit_bytes": upload_limit_bytes or original.upload_limit_bytes,
                "reply_to_message_id": original.clip_message_id,
            },
            root=original,
        )

    async def _queue(
        self, *, guild_id: int, channel_id: int, user_id: int, values: dict[str, object], root: Shot | None
    ) -> Shot:
        now = self.clock()
        price = int(values["price_micros"])  # type: ignore[call-overload]
        async with self.db.transaction() as conn:
            take = await ShotStore.tx_next_take(conn, root.root_id) if root else 1
            shot_id = await ShotStore.tx_insert(
                conn,
                {
                    **values,
                    "guild_id": guild_id,
                    "channel_id": channel_id,
                    "user_id": user_id,
                    "root_shot_id": root.root_id if root else None,
                    "take": take,
                    "endpoint": self.spec.endpoint,
                    "backend": self.generator.name,
                    "state": "waiting",
                    "created_at": now,
                    "updated_at": now,
                },
            )
            if not self.dry_run:
                await self.budget.tx_hold(
                    conn,
                    job_key=shot_job_key(shot_id),
                    guild_id=guild_id,
                    user_id=user_id,
                    amount=price,
                    description=f"Shot #{root.root_id if root else shot_id} take {take}",
                )
            shot = await ShotStore.tx_get(conn, shot_id)
        assert shot is not None
        log.info("shot %d queued by %d (take %d, %s)", shot.id, user_id, take, format_usd(price))
        try:
            progress_id = await self._publisher().show_progress(shot)
        except Exception:
            log.exception("could not post the progress message of shot %d", shot.id)
            await self._finish(
                shot, "failed", error="I could not post in this channel; check my permissions."
            )
            raise UserError(
                "I could not post in this channel; give me Send Messages, Embed Links and Attach Files here."
            ) from None
        if progress_id is not None:
            shot = await self._update(
                shot,
                progress_message_id=progress_id,
                reply_to_message_id=shot.reply_to_message_id or progress_id,
            )
        self._wake.set()
        return shot

    async def cancel(self, shot_id: int, *, user_id: int, can_manage: bool) -> Shot:
        """Cancel a shot that has not finished: at fal too, and release its hold."""
        shot = await self.store.get(shot_id)
        if shot is None:
            raise UserError("That shot no longer exists.")
        if shot.user_id != user_id and not can_manage:
            raise NotAllowed(
                "Only the person who asked for this shot, or someone with Manage Messages, can cancel it."
            )
        if shot.state not in ("waiting", "submitted", "running"):
            raise UserError(f"Shot #{shot.root_id} is already {shot.state}; there is nothing to cancel.")
        if (
            shot.request_id
            and shot.state in ("submitted", "running")
            and not await self.generator.cancel(shot.endpoint, shot.request_id)
        ):
            raise UserError(
                f"Shot #{shot.root_id} is already finished at fal; the clip will be posted in a moment."
            )
        done = await self._finish(
            shot,
            "cancelled",
            error="Cancelled by the requester." if shot.user_id == user_id else "Cancelled by a moderator.",
            only_from=("waiting", "submitted", "running"),
        )
        if done is None:
            raise UserError("That shot finished while you were cancelling it.")
        return done

    # Queries ---------------------------------------------------------------------------------------------
    async def get(self, shot_id: int) -> Shot | None:
        return await self.store.get(shot_id)

    async def by_clip_message(self, message_id: int) -> Shot | None:
        return await self.store.by_clip_message(message_id)

    async def counts(self) -> tuple[int, int]:
        """(waiting in the bot's queue, in flight at the backend or being delivered)."""
        states = await self.store.state_counts()
        return states.get("waiting", 0), sum(states.get(s, 0) for s in IN_FLIGHT_STATES)

    # State changes ---------------------------------------------------------------------------------------
    def _publisher(self) -> ShotPublisher:
        if self.publisher is None:
            raise RuntimeError("the shot engine has not been started")
        return self.publisher

    async def _update(self, shot: Shot, **values: object) -> Shot:
        values["updated_at"] = self.clock()
        async with self.db.transaction() as conn:
            await ShotStore.tx_update(conn, shot.id, values)
            fresh = await ShotStore.tx_get(conn, shot.id)
        assert fresh is not None
        return fresh

    async def _transition(
        self,
        shot: Shot,
        state: str,
        *,
        only_from: tuple[str, ...],
        settle: str | None = None,
        **values: object,
    ) -> Shot | None:
        """Move a shot to `state` if it is still in one of `only_from`; settle its hold in the same transaction."""
        now = self.clock()
        async with self.db.transaction() as conn:
            current = await ShotStore.tx_get(conn, shot.id)
            if current is None or current.state not in only_from:
                return None
            await ShotStore.tx_update(conn, shot.id, {**values, "state": state, "updated_at": now})
            if settle:
                await self.budget.tx_settle(conn, shot.job_key, settle)
            fresh = await ShotStore.tx_get(conn, shot.id)
        return fresh

    async def _finish(
        self, shot: Shot, state: str, *, error: str, only_from: tuple[str, ...] | None = None
    ) -> Shot | None:
        """Fail or cancel a shot: release its hold, say so in the progress message."""
        allowed = only_from or tuple(s for s in ("waiting",) + IN_FLIGHT_STATES)
        done = await self._transition(
            shot, state, only_from=allowed, settle="release", error=error, finished_at=self.clock()
        )
        if done is not None:
            log.info("shot %d %s: %s", shot.id, state, error)
            await self._progress(done, force=True)
            self._wake.set()
        return done

    async def _progress(self, shot: Shot, *, force: bool = False) -> None:
        """Edit the progress message, at most every progress_interval_s unless the state changed."""
        if self.publisher is None:
            return
        key = f"{shot.state}:{shot.queue_position}"
        last = self._last_progress.get(shot.id)
        now = time.monotonic()
        if not force and last is not None:
            changed = last[1] != key
            if not changed and now - last[0] < self.progress_interval_s:
                return
            if changed and now - last[0] < min(1.0, self.progress_interval_s):
                return
        self._last_progress[shot.id] = (now, key)
        try:
            message_id = await self.publisher.show_progress(shot)
        except Exception:
            log.warning("could not update the progress of shot %d", shot.id, exc_info=True)
            return
        if shot.progress_message_id is None and message_id is not None:
            # The first progress message of a shot resumed after a crash: remember it, or every update posts anew.
            await self._update(
                shot,
                progress_message_id=message_id,
                reply_to_message_id=shot.reply_to_message_id or message_id,
            )
        if shot.is_final:
            self._last_progress.pop(shot.id, None)

    # Scheduler -------------------------------------------------------------------------------------------
    async def _scheduler_loop(self) -> None:
        while True:
            try:
                await self._schedule_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("shot scheduler pass failed")
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that races the wake-up.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(self.poll_interval_s, 1.0)):
                    await self._wake.wait()
            self._wake.clear()

    async def _schedule_once(self) -> None:
        total, per_user = await self.store.in_flight_counts()
        waiting = await self.store.by_states(("waiting",))
        position = 0
        now = self.clock()
        for shot in waiting:
            if shot.progress_message_id is None and now - shot.created_at < PROGRESS_GRACE_S:
                continue  # its /shot is still posting the progress message; the next pass takes it
            if total < self.max_global and per_user.get(shot.user_id, 0) < self.max_per_user:
                if await self._submit(shot):
                    total += 1
                    per_user[shot.user_id] = per_user.get(shot.user_id, 0) + 1
                continue
            position += 1
            if shot.queue_position != position:
                shot = await self._update(shot, queue_position=position)
            await self._progress(shot)

    async def _submit(self, shot: Shot) -> bool:
        try:
            anchor = await self.anchors.version_by_id(shot.anchor_version_id)
            sha, path = await self.anchors.start_image(anchor, shot.aspect_ratio)
            request_id = await self._submit_with_image(shot, sha, path)
        except (GenerationError, UserError) as exc:
            await self._finish(shot, "failed", error=exc.message)
            return False
        except Exception:
            log.exception("could not submit shot %d", shot.id)
            await self._finish(
                shot, "failed", error="Something went wrong on the bot's side before fal got the shot."
            )
            return False
        done = await self._transition(
            shot,
            "submitted",
            only_from=("waiting",),
            request_id=request_id,
            submitted_at=self.clock(),
            queue_position=None,
        )
        if done is None:  # cancelled while we were submitting
            await self.generator.cancel(shot.endpoint, request_id)
            return False
        log.info("shot %d submitted to %s as %s", shot.id, self.generator.name, request_id)
        await self._progress(done, force=True)
        return True

    async def _submit_with_image(self, shot: Shot, sha: str, path: Path) -> str:
        """Submit with the start image's fal URL; if fal says it cannot use that image, upload afresh once."""
        for attempt in (1, 2):
            image_ref = await self.anchors.start_image_ref(sha, path, self.generator)
            arguments = self.spec.arguments(
                image_url=image_ref,
                prompt=shot.prompt,
                duration_s=shot.duration_s,
                audio=bool(shot.audio),
                negative_prompt=shot.negative_prompt,
            )
            try:
                return await self.generator.submit(shot.endpoint, arguments)
            except GenerationError as exc:
                image_problem = exc.kind == "rejected" and self.spec.image_arg in exc.message
                if attempt == 2 or not image_problem or not self.generator.needs_upload:
                    raise
                log.info(
                    "fal could not use the cached upload of %s (%s); uploading again", sha[:12], exc.message
                )
                await self.anchors.forget_upload(sha)
        raise AssertionError("unreachable")

    # Poller ----------------------------------------------------------------------------------------------
    async def _poller_loop(self) -> None:
        while True:
            try:
                shots = await self.store.by_states(("submitted", "running"))
                if shots:
                    await asyncio.gather(*(self._poll(s) for s in shots))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("shot poller pass failed")
            await asyncio.sleep(self.poll_interval_s)

    async def _poll(self, shot: Shot) -> None:
        assert shot.request_id is not None
        if shot.submitted_at and self.clock() - shot.submitted_at > self.job_timeout_s:
            await self.generator.cancel(shot.endpoint, shot.request_id)
            await self._finish(
                shot,
                "failed",
                error=f"fal did not finish within {int(self.job_timeout_s // 60)} minutes; cancelled.",
            )
            return
        try:
            status = await self.generator.status(shot.endpoint, shot.request_id)
        except GenerationError as exc:
            if exc.retryable:
                log.warning("status of shot %d: %s", shot.id, exc)
                return
            if exc.kind != "gone":  # stop the job at fal too, so nothing is billed for a shot we give up on
                await self.generator.cancel(shot.endpoint, shot.request_id)
            await self._finish(shot, "failed", error=exc.message)
            return
        if status.state == "queued":
            if shot.queue_position != status.position:
                shot = await self._update(shot, queue_position=status.position)
            await self._progress(shot)
            return
        if status.state == "running":
            if shot.state != "running":
                moved = await self._transition(
                    shot, "running", only_from=("submitted",), started_at=self.clock(), queue_position=None
                )
                if moved is None:
                    return
                shot = moved
                await self._progress(shot, force=True)
            else:
                await self._progress(shot)
            return
        if status.error or status.error_type:
            await self._finish(shot, "failed", error=_completed_error_words(status.error, status.error_type))
            return
        try:
            url = await self.generator.result_video_url(shot.endpoint, shot.request_id)
        except GenerationError as exc:
            if exc.retryable and exc.kind == "network":
                return
            await self._finish(shot, "failed", error=exc.message)
            return
        moved = await self._transition(
            shot,
            "completed",
            only_from=("submitted", "running"),
            output_url=url,
            completed_at=self.clock(),
            started_at=shot.started_at or self.clock(),
        )
        if moved is not None:
            self._spawn_delivery(moved)

    # Delivery --------------------------------------------------------------------------------------------
    async def _resume_deliveries(self) -> None:
        for shot in await self.store.by_states(("completed", "downloaded")):
            self._spawn_delivery(shot, resumed=True)

    def _spawn_delivery(self, shot: Shot, *, resumed: bool = False) -> None:
        if shot.id in self._delivering and not self._delivering[shot.id].done():
            return
        task = asyncio.create_task(self._deliver(shot, resumed=resumed), name=f"deliver-{shot.id}")
        self._delivering[shot.id] = task
        task.add_done_callback(lambda _t, sid=shot.id: self._delivering.pop(sid, None))

    async def _deliver(self, shot: Shot, *, resumed: bool) -> None:
        for attempt in range(1, DELIVERY_ATTEMPTS + 1):
            try:
                await self._deliver_once(shot, resumed=resumed)
                return
            except asyncio.CancelledError:
                raise
            except GenerationError as exc:
                if not exc.retryable or attempt == DELIVERY_ATTEMPTS:
                    await self._finish(
                        shot, "failed", error=exc.message, only_from=("completed", "downloaded")
                    )
                    return
                log.warning("delivery of shot %d failed (%s); retrying", shot.id, exc)
            except Exception:
                log.exception("delivery of shot %d failed (attempt %d)", shot.id, attempt)
                if attempt == DELIVERY_ATTEMPTS:
                    await self._finish(
                        shot,
                        "failed",
                        error="The clip was made but could not be posted here.",
                        only_from=("completed", "downloaded"),
                    )
                    return
                resumed = True  # the post may have landed before the error: look before posting again
            await asyncio.sleep(DELIVERY_BACKOFF_S[min(attempt, len(DELIVERY_BACKOFF_S)) - 1])
            shot = await self.store.get(shot.id) or shot

    async def _deliver_once(self, shot: Shot, *, resumed: bool) -> None:
        publisher = self._publisher()
        if shot.state == "completed":
            assert shot.output_url is not None
            dest = self.clips_dir / f"shot-{shot.id}.mp4"
            await self.generator.download(shot.output_url, dest, max_bytes=2 * 1024**3)
            moved = await self._transition(shot, "downloaded", only_from=("completed",), clip_path=str(dest))
            if moved is None:
                return
            shot = moved
        if shot.state != "downloaded":
            return
        if resumed:
            existing = await publisher.find_posted_clip(shot)
            if existing is not None:
                await self._mark_posted(shot, existing)
                return
        assert shot.clip_path is not None
        clip = Path(shot.clip_path)
        if not clip.exists():
            raise GenerationError("gone", "The downloaded clip file is missing from the bot's disk.")
        limit = shot.upload_limit_bytes or await publisher.upload_limit(shot.guild_id) or DEFAULT_UPLOAD_LIMIT
        try:
            message_id = await self._post_within(shot, clip, limit)
        except ClipTooLarge:
            # The chat refused the file although it was under the limit we knew (e.g. the server lost its boost).
            smaller = min(DEFAULT_UPLOAD_LIMIT, int(clip.stat().st_size * 0.8))
            log.warning("shot %d: upload refused as too large; fitting it under %d bytes", shot.id, smaller)
            try:
                message_id = await self._post_within(shot, clip, smaller)
            except ClipTooLarge:
                message_id = await publisher.post_link(
                    shot, shot.output_url or "", "Discord refused the clip as too large for this server."
                )
        await self._mark_posted(shot, message_id)

    async def _post_within(self, shot: Shot, clip: Path, limit: int) -> int:
        """Post the clip, re-encoded first if it is over `limit`; post a link if it cannot be made to fit."""
        publisher = self._publisher()
        note = None
        size = clip.stat().st_size
        if size > limit:
            fitted = clip.with_name(clip.stem + "-fit.mp4")
            try:
                await fit_to_size(clip, fitted, max_bytes=int(limit * 0.97))
            except (VideoTooLarge, VideoError) as exc:
                log.warning("shot %d: cannot fit %s under %d bytes: %s", shot.id, clip, limit, exc)
                reason = (
                    f"The clip is {size / 1048576:.1f} MB, over this server's {limit / 1048576:.0f} MB upload "
                    "limit, and could not be shrunk to fit."
                )
                return await publisher.post_link(shot, shot.output_url or "", reason)
            note = (
                f"Re-encoded from {size / 1048576:.1f} MB to {fitted.stat().st_size / 1048576:.1f} MB to fit "
                f"Discord's {limit / 1048576:.0f} MB limit."
            )
            clip = fitted
        return await publisher.post_clip(shot, clip, note)

    async def _mark_posted(self, shot: Shot, message_id: int) -> None:
        done = await self._transition(
            shot,
            "posted",
            only_from=("downloaded",),
            settle="capture",
            clip_message_id=message_id,
            finished_at=self.clock(),
        )
        if done is not None:
            log.info("shot %d posted as message %d", shot.id, message_id)
            await self._progress(done, force=True)
            try:
                await self._publisher().offer_reroll(done)
            except Exception:
                log.warning("could not offer a re-roll on shot %d", shot.id, exc_info=True)
        self._wake.set()


def _completed_error_words(error: str | None, error_type: str | None) -> str:
    """Plain words for a job that fal reports COMPLETED with an error."""
    kind = (error_type or "").lower()
    if "content_policy" in kind or "content_policy" in (error or "").lower():
        return "fal refused this prompt or image under its content policy. Try a different prompt."
    if kind == "client_cancelled":
        return "The job was cancelled at fal."
    if "timeout" in kind:
        return "fal timed out on this job. Try again."
    text = " ".join((error or "").split())[:200]
    return f"fal could not make this clip ({text or kind or 'no details'})."


__all__ = ["FINAL_STATES", "ClipTooLarge", "DuplicateReroll", "ShotPublisher", "ShotRequest", "ShotService"]
