"""Takes: a prompt and the channel's anchor become a clip. Requests are checked here; the job engine does the rest.

The engine (bot/jobs) owns the queue, states, retries, polling, delivery order and the ledger; the take kind
(bot/takes/kind.py) says how a take is submitted to fal, fetched, checked and posted.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from bot.anchors.models import CastMember, ShotCast, element_names
from bot.anchors.service import ASPECT_RATIOS, AnchorService
from bot.errors import NotAllowed, UserError
from bot.fal.models import ModelSpec
from bot.fal.pricing import PriceTable
from bot.jobs import FINAL, Job, JobEngine, JobNotFound, JobState, NotCancellable, Prepared
from bot.jobs.engine import Within
from bot.jobs.repeats import RecentRequests
from bot.money import format_usd
from bot.takes.cast import (
    MAX_ANGLE_REFS,
    Member,
    NeedsConsent,
    cast_members,
    needs_elements,
    refuse_unsupported,
)
from bot.takes.cast import notes as cast_notes
from bot.takes.elements import element_prompt
from bot.takes.kind import TakeKind
from bot.takes.models import KIND, SERIES, TAKE_KINDS, Take
from bot.takes.ports import AngleSource, TakePublisher, TakeSink, VoiceSource
from bot.text import clean_text

log = logging.getLogger(__name__)
S = JobState

MAX_PROMPT_CHARS = 2500
MAX_CAST_PER_SHOT = 3  # Kling's guides say 3 elements; fal's schema states no maximum (CAST_PER_SHOT setting)
REROLL_DEDUP_S = 5.0  # the same member re-rolling the same clip again within this counts once


# How a finished take's state reads in a sentence ("Shot 4 · take 1 is already posted").
_WORDS = {S.POSTED: "already posted", S.FAILED: "already over (it failed)", S.CANCELLED: "already cancelled"}


class DuplicateReroll(UserError):
    """The same member re-rolled the same clip a moment ago; this one counts as the same."""


@dataclass(frozen=True)
class TakeRequest:
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
    auto_reroll: bool | None = None  # None: the channel's default
    scene_id: int | None = None  # a shot of this scene
    start_sha: str | None = None  # starts from this frame (a stored image) instead of the anchor
    end_sha: str | None = None  # lands on this frame
    continues: int | None = None  # the scene shot (position) whose kept take's last frame it starts from
    scene_name: str | None = None
    notes: tuple[str, ...] = ()  # shown with the advice on the progress message (e.g. why the face may drift)
    start: str | None = (
        None  # the cast member whose anchor the shot starts from (default: the main character)
    )
    plain: bool = False  # go on without what the endpoint cannot send (characters as elements, voices)
    cast_text: str | None = (
        None  # the text whose names are the cast (a storyboard: all its shots), else the prompt
    )


Announce = Callable[[Take], Awaitable[int]]  # posts a take's progress message, returns its id


class _TakesOnly:
    """An engine subscriber that hands on the changes of takes only, as `Take`s."""

    def __init__(self, sink: TakeSink) -> None:
        self.sink = sink

    def job_changed(self, job: Job) -> None:
        if job.kind == KIND:
            self.sink.take_changed(Take.of(job))


class TakeService:
    """Takes as members see them: request, re-roll, cancel, look up."""

    def __init__(
        self,
        engine: JobEngine,
        kind: TakeKind,
        *,
        anchors: AnchorService,
        prices: PriceTable,
        default_duration_s: int = 5,
        angles: AngleSource | None = None,
        advise: Callable[[str], list[str]] | None = None,
    ) -> None:
        """`angles`: the kept angles of an anchor version (the studio), sent as Kling `elements`; `advise`: prompt
        advice shown on the progress message (bot/consistency), which never blocks a take."""
        self.engine = engine
        self.kind = kind
        self.anchors = anchors
        self.prices = prices
        self.default_duration_s = default_duration_s
        self._recent_rerolls = RecentRequests(REROLL_DEDUP_S)  # (take, member)
        self.angles = angles
        self.advise = advise
        self.voices: VoiceSource | None = None  # the characters' voices (bot/voices), wired once built
        self.max_cast = MAX_CAST_PER_SHOT
        # The channel's auto re-roll default (bot/consistency), wired once both services are built.
        self.auto_reroll_default: Callable[[int], Awaitable[bool]] | None = None

    @property
    def spec(self) -> ModelSpec:
        return self.kind.spec

    @property
    def dry_run(self) -> bool:
        return not self.engine.charge

    # The chat side -------------------------------------------------------------------------------------
    def attach(self, publisher: TakePublisher, sink: TakeSink) -> Callable[[], None]:
        """Attach the chat side: `publisher` posts takes, `sink` hears of every change of a take. Returns the
        call that detaches both (deliveries then wait for the next attach)."""
        self.kind.outlet.attach(publisher)
        unsubscribe = self.engine.subscribe(_TakesOnly(sink))

        def detach() -> None:
            unsubscribe()
            self.kind.outlet.detach(publisher)

        return detach

    # Requests --------------------------------------------------------------------------------------------
    def quote(self, duration_s: int, audio: bool, *, voice: bool = False) -> int:
        return self.prices.quote(self.spec, duration_s=duration_s, audio=audio, voice=voice)

    def _validate(self, req: TakeRequest) -> tuple[str, int, str, bool, str | None]:
        # Invisible and format characters go before the empty check: such a prompt is never sent or charged.
        prompt = clean_text(req.prompt, field="prompt", max_chars=MAX_PROMPT_CHARS)
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
        negative = None
        if req.negative_prompt and req.negative_prompt.strip():
            negative = clean_text(req.negative_prompt, field="negative prompt", max_chars=MAX_PROMPT_CHARS)
        audio = bool(req.audio) and self.spec.supports_audio
        return prompt, duration, aspect, audio, negative

    def prepared(self, args: dict[str, object], *, free: bool = False) -> Prepared:
        """A take's request for the engine: priced by its length, sound and voice (or free: a storyboard part),
        numbered as a shot of its server."""
        duration, audio = args["duration_s"], args["audio"]
        assert isinstance(duration, int) and isinstance(audio, bool)
        return Prepared(
            args=args,
            price_micros=0 if free else self.quote(duration, audio, voice=bool(args.get("voice"))),
            endpoint=self.spec.endpoint,
            description="Shot {number} \u00b7 take {seq}",
            series=SERIES,
        )

    async def request(
        self, req: TakeRequest, *, announce: Announce | None = None, within: Within | None = None
    ) -> Take:
        """Check everything, then queue a take and hold its price in one transaction (with `within`'s writes).

        `announce` posts the take's progress message and returns its id (the Discord side answers the command with
        it, one request instead of three); by default the publisher posts it in the channel."""
        args = await self.request_args(req)
        job = await self.engine.enqueue(
            KIND,
            self.prepared(args),
            guild_id=req.guild_id,
            channel_id=req.channel_id,
            user_id=req.user_id,
            within=within,
        )
        return await self._announce(job, announce)

    async def request_args(self, req: TakeRequest) -> dict[str, object]:
        """A checked request's arguments: the options, who it shows (the start anchor, the named characters with
        their angles or face crops and voices), the scene."""
        prompt, duration, aspect, audio, negative = self._validate(req)
        shot = await self.anchors.cast.for_shot(
            req.channel_id,
            req.parent_channel_id,
            req.cast_text or prompt,
            start=req.start,
            limit=self.max_cast,
        )
        anchor = shot.start.version
        args: dict[str, object] = {
            "negative_prompt": negative,
            "aspect_ratio": aspect,
            "audio": audio,
            "anchor_version_id": anchor.id,
            "anchor_version": anchor.version,
            "anchor_name": anchor.name,
            "anchor_shape": anchor.shape,
            "upload_limit_bytes": req.upload_limit_bytes,
            "auto_reroll": await self._auto_reroll(req.auto_reroll, req.channel_id),
        }
        cast_notes = await self._cast_args(args, shot, req, audio)
        for key in ("scene_id", "start_sha", "end_sha", "continues", "scene_name"):
            if getattr(req, key) is not None:
                args[key] = getattr(req, key)
        shot_args = self.shot_args(args, prompt, duration)
        extra = [*cast_notes, *req.notes]
        if extra:
            advice = shot_args.get("advice")
            shot_args["advice"] = [*(advice if isinstance(advice, list) else []), *extra]
        return {**args, **shot_args}

    async def _cast_args(
        self, args: dict[str, object], shot: ShotCast, req: TakeRequest, audio: bool
    ) -> list[str]:
        """Add who the take shows to `args` (the cast form, or the anchor's angles as always); return the notes
        for the progress message."""
        members = cast_members(shot)
        voices = await self._voices(shot, audio, req.plain)
        if not req.plain:
            refuse_unsupported(self.spec, shot, bool(voices))
        if req.plain or not needs_elements(shot, bool(voices)):
            if self.angles is not None and self.spec.supports_elements:
                shas = await self.angles.angle_shas(shot.start.version.id)
                if shas:
                    args["angle_shas"] = shas
            return []
        cast = [await self._member(m, voices.get(m.character.id)) for m in members]
        args["cast"] = [m.as_args() for m in cast]
        args["voice"] = bool(voices)
        return cast_notes(cast, audio)

    async def _voices(self, shot: ShotCast, audio: bool, plain: bool) -> dict[int, str]:
        """The voices of the characters the take shows (only with sound on)."""
        if not audio or self.voices is None or plain:
            return {}
        return await self.voices.voice_ids([m.character.id for m in cast_members(shot)])

    async def preflight(self, req: TakeRequest) -> None:
        """Refuse before anything is held what the endpoint cannot send (NeedsConsent: characters as elements, a
        voice), and every other problem of the request (an unknown @Name, too many characters, no anchor)."""
        prompt, _duration, _aspect, audio, _negative = self._validate(req)
        shot = await self.anchors.cast.for_shot(
            req.channel_id, req.parent_channel_id, prompt, start=req.start, limit=self.max_cast
        )
        if not req.plain:
            refuse_unsupported(self.spec, shot, bool(await self._voices(shot, audio, req.plain)))

    async def _member(self, member: CastMember, voice_id: str | None) -> Member:
        angles = await self.angles.angle_shas(member.version.id) if self.angles is not None else []
        if angles:
            refs, crop, whole = tuple(angles[:MAX_ANGLE_REFS]), False, False
        else:
            ref, crop = await self.anchors.element_reference(member.version)
            refs, whole = (ref,), not crop
        return Member(
            member.character.id,
            member.name,
            member.version.id,
            refs,
            crop=crop,
            voice_id=voice_id,
            whole=whole,
        )

    def shot_args(self, base: Mapping[str, object], prompt: str, duration_s: int) -> dict[str, object]:
        """What differs from shot to shot of one request: the prompt (as sent: the characters as @ElementN when
        elements go along), its length and the advice on it."""
        args: dict[str, object] = {"prompt": prompt, "duration_s": duration_s, "sent_prompt": None}
        cast = base.get("cast")
        if isinstance(cast, list) and cast:
            args["sent_prompt"] = element_names(prompt, [str(m["name"]) for m in cast])
            if len(cast) == 1:  # a take about one character: "the character" is it too
                args["sent_prompt"] = element_prompt(str(args["sent_prompt"]), None)
        elif base.get("angle_shas"):
            name = base.get("anchor_name")
            args["sent_prompt"] = element_prompt(prompt, name if isinstance(name, str) else None)
        sent = args["sent_prompt"]
        if isinstance(sent, str) and len(sent) > MAX_PROMPT_CHARS:  # fal refuses it, and bills the refusal
            raise UserError(
                f"With each character written as the video model's tag (@Element1…) the prompt comes to "
                f"{len(sent):,} characters, over the {MAX_PROMPT_CHARS:,} it takes; shorten it a little."
            )
        if self.advise is not None:
            try:
                args["advice"] = self.advise(prompt)
            except Exception:  # advice never blocks a shot
                log.exception("prompt advice failed")
        return args

    async def has_angles(self, channel_id: int, parent_channel_id: int | None) -> bool:
        """Whether the channel's anchor has kept angles (they carry the face when a shot starts elsewhere)."""
        anchor = await self.anchors.resolve(channel_id, parent_channel_id)
        return bool(self.angles is not None and await self.angles.angle_shas(anchor.id))

    async def _auto_reroll(self, asked: bool | None, channel_id: int) -> bool:
        """Whether a drifted take is re-rolled once: as asked, else the channel's default (known when queued, so
        the progress message can say so and the price of the one more take)."""
        if asked is not None:
            return asked
        return await self.auto_reroll_default(channel_id) if self.auto_reroll_default else False

    async def reroll(
        self,
        take_id: int,
        *,
        user_id: int,
        upload_limit_bytes: int | None = None,
        auto_reroll_of: int | None = None,
        from_message_id: int | None = None,
    ) -> Take:
        """A new take of a shot: same prompt, options and anchor version, charged to `user_id`.

        `auto_reroll_of` marks the one automatic re-roll of a drifted take (unique per take in the database).
        `from_message_id`: the clip message the member re-rolled from (a button on it); a take still POSTING has its
        clip on Discord a moment before it is recorded, so a click in that moment counts."""
        original = await self.get(take_id)
        if original is None:
            raise UserError("That shot no longer exists.")
        clip_id = original.clip_message_id or (from_message_id if original.state is S.POSTING else None)
        if clip_id is None:
            if original.state in (S.FAILED, S.CANCELLED):
                raise UserError(f"{original.label} has no clip; press Try again on it for a new take.")
            raise UserError(f"{original.label} has no clip yet; re-roll it once its clip is posted.")
        self._refuse_unmakeable(original)
        self._once_in_a_moment(take_id, user_id, automatic=auto_reroll_of is not None)
        extra: dict[str, object] = {"auto_reroll_of": auto_reroll_of} if auto_reroll_of is not None else {}
        if auto_reroll_of is not None:
            extra["auto_reroll"] = False  # an automatic re-roll is never re-rolled again
        return await self._again(original, user_id, clip_id, extra, upload_limit_bytes)

    async def try_again(self, take_id: int, *, user_id: int, upload_limit_bytes: int | None = None) -> Take:
        """A failed or cancelled take made again: a new take of the same shot, charged only if it is posted."""
        original = await self.get(take_id)
        if original is None:
            raise UserError("That shot no longer exists.")
        if original.state not in (S.FAILED, S.CANCELLED):
            raise UserError(f"{original.label} did not fail; there is nothing to try again.")
        self._refuse_unmakeable(original)
        self._once_in_a_moment(take_id, user_id)
        reply_to = original.progress_message_id or original.reply_to_message_id
        return await self._again(original, user_id, reply_to, {"retry_of": original.id}, upload_limit_bytes)

    def _refuse_unmakeable(self, original: Take) -> None:
        """A shot cut from a storyboard may be shorter than any take the model makes alone (a 2 s part): it cannot
        be made again as a take of its own, so it is refused before anything is held."""
        durations = self.spec.durations_s
        if original.duration_s not in durations:
            raise UserError(
                f"{original.label} is {original.duration_s} s, cut from a storyboard; {self.spec.label} makes takes "
                f"of {durations[0]} to {durations[-1]} s, so this shot can't be made again alone. Plan it again "
                "with /shot or /scene plan."
            )

    def _once_in_a_moment(self, take_id: int, user_id: int, *, automatic: bool = False) -> None:
        """The same member asking again for the same take within a few seconds counts once."""
        key = (take_id, user_id)
        if automatic:
            self._recent_rerolls.note(key)
        elif self._recent_rerolls.repeat(key):
            raise DuplicateReroll("You just asked for this; that take is on its way.")

    async def _again(
        self,
        original: Take,
        user_id: int,
        reply_to: int | None,
        extra: dict[str, object],
        upload_limit_bytes: int | None,
    ) -> Take:
        """A new take of `original`'s shot with the same prompt, options, anchor version and angles."""
        args: dict[str, object] = {
            "prompt": original.prompt,
            "negative_prompt": original.negative_prompt,
            "duration_s": original.duration_s,
            "aspect_ratio": original.aspect_ratio,
            "audio": original.audio,
            "anchor_version_id": original.anchor_version_id,
            "anchor_version": original.anchor_version,
            "anchor_name": original.anchor_name,
            "anchor_shape": original.anchor_shape,
            "upload_limit_bytes": upload_limit_bytes or original.upload_limit_bytes,
            "auto_reroll": await self._auto_reroll(original.auto_reroll, original.channel_id),
            "scene_id": original.scene_id,
            "scene_name": original.scene_name,
            "start_sha": original.start_sha,
            "end_sha": original.end_sha,
            **extra,
        }
        if original.angle_shas:  # the same version and the same angles
            args["angle_shas"] = list(original.angle_shas)
            args["sent_prompt"] = original.sent_prompt
        if original.cast:  # the same characters, versions, references and voices
            args["cast"] = [m.as_args() for m in original.cast]
            args["voice"] = original.voice
            args["sent_prompt"] = original.sent_prompt
        if original.advice:
            args["advice"] = list(original.advice)
        job = await self.engine.enqueue(
            KIND,
            self.prepared(args),
            guild_id=original.guild_id,
            channel_id=original.channel_id,
            user_id=user_id,
            parent_id=original.root_id,
            reply_to_message_id=reply_to,
        )
        return await self._announce(job)

    async def announce(self, job: Job) -> Take:
        """Post the progress message of a take queued elsewhere (a confirmed plan's) and let it start."""
        return await self._announce(job)

    async def _announce(self, job: Job, announce: Announce | None = None) -> Take:
        """Post the take's one progress message and record it; the scheduler waits for it."""
        take = Take.of(job)
        log.info(
            "take %d queued by %d (take %d, %s)",
            take.id,
            take.user_id,
            take.take,
            format_usd(take.price_micros),
        )
        try:
            progress_id = await (announce or self.kind.outlet.get().create_progress)(take)
        except Exception:
            log.exception("could not post the progress message of take %d", take.id)
            await self.engine.abandon(job, error="I could not post in this channel; check my permissions.")
            raise UserError(
                "I could not post in this channel; give me Send Messages, Embed Links and Attach Files here."
            ) from None
        job = await self.engine.set_messages(
            job, progress_message_id=progress_id, reply_to_message_id=job.reply_to_message_id or progress_id
        )
        self.engine.wake()
        return Take.of(job)

    async def record_progress_message(self, take: Take, message_id: int) -> None:
        """A take resumed after a crash got its progress message late: remember it."""
        job = await self.engine.get(take.id)
        if job is not None and job.progress_message_id is None:
            await self.engine.set_messages(
                job, progress_message_id=message_id, reply_to_message_id=job.reply_to_message_id or message_id
            )

    async def cancel(self, take_id: int, *, user_id: int, can_manage: bool) -> Take:
        """Cancel a take: confirmed (and released) only when fal confirms, or it never reached fal."""
        take = await self.get(take_id)
        if take is None:
            raise UserError("That shot no longer exists.")
        if take.user_id != user_id and not can_manage:
            raise NotAllowed(
                "Only the person who asked for this shot, or someone with Manage Messages, can cancel it."
            )
        reason = "Cancelled by the requester." if take.user_id == user_id else "Cancelled by a moderator."
        try:
            return Take.of(await self.engine.cancel(take_id, reason=reason))
        except JobNotFound:
            raise UserError("That shot no longer exists.") from None
        except NotCancellable as exc:
            now = Take.of(exc.job)
            if exc.unconfirmed or now.state is S.SUBMITTING:
                raise UserError(
                    f"{now.label} could not be cancelled yet: the video service has not confirmed that it stopped "
                    "(it may have finished already). It carries on; if the clip arrives it is posted and charged."
                ) from None
            state = _WORDS.get(now.state, "already being posted")
            raise UserError(f"{now.label} is {state}; there is nothing to cancel.") from None

    # Queries ---------------------------------------------------------------------------------------------
    async def get(self, take_id: int) -> Take | None:
        """A take (or a storyboard part, which is a take of its own shot) by id."""
        job = await self.engine.get(take_id)
        return Take.of(job) if job is not None and job.kind in TAKE_KINDS else None

    async def by_clip_message(self, message_id: int) -> Take | None:
        job = await self.engine.by_result_message(message_id)
        return Take.of(job) if job is not None and job.kind in TAKE_KINDS else None

    async def in_states(self, *states: JobState) -> list[Take]:
        return [Take.of(j) for j in await self.engine.in_states(*states) if j.kind in TAKE_KINDS]

    async def counts(self) -> tuple[int, int]:
        """Takes (not studio sets or face scores): (waiting in the bot's queue, at the backend or being delivered)."""
        states = await self.engine.state_counts(KIND)
        waiting = states.get(S.WAITING, 0)
        return waiting, sum(n for s, n in states.items() if s is not S.WAITING and s not in FINAL)


__all__ = ["DuplicateReroll", "NeedsConsent", "TakeRequest", "TakeService"]
