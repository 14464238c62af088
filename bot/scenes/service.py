"""Scenes as members see them: start and end, shots queued in order (one at a time, from a quoted plan, or as a
storyboard in one call), continue a shot from the last one's kept take, keep a take, show and export.

Every write that must happen once rides in the transaction that queues the jobs (`JobEngine.enqueue_all`'s
`within`): a shot's row with its first take, a plan's confirmation with all of its takes, a storyboard part with
its reserved shot. So a restart at any moment leaves each confirmed shot queued exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bot.anchors.models import named_in
from bot.anchors.service import AnchorService, Upload
from bot.db import Database, IntegrityError, Queries
from bot.errors import NotAllowed, UserError
from bot.jobs import Job, JobEngine, JobState, NewJob, Outlet, Prepared
from bot.media.frames import frame_at, last_frame
from bot.media.sheet import MAX_SHOTS, storyboard_sheet
from bot.money import format_usd
from bot.scenes.kind import ExportKind
from bot.scenes.models import EXPORT_KIND, PLAN_TTL_S, Plan, Scene, SceneShot
from bot.scenes.plan import check_sent_shots, parse_plan
from bot.scenes.ports import ExportPublisher
from bot.scenes.store import AlreadyDone, SceneStore, TakeStats
from bot.takes.models import PART_KIND, STORYBOARD_KIND, Take
from bot.takes.ports import TakePublisher
from bot.takes.service import Announce, TakeRequest, TakeService
from bot.text import clean_text

log = logging.getLogger(__name__)
MAX_NAME_CHARS = 80


@dataclass(frozen=True)
class ShotReport:
    shot: SceneShot
    kept: Take | None
    stats: TakeStats | None


@dataclass(frozen=True)
class SceneReport:
    scene: Scene
    shots: list[ShotReport]
    storyboard_spend: int

    @property
    def spend(self) -> int:
        return self.storyboard_spend + sum(s.stats.spent for s in self.shots if s.stats)

    @property
    def tried(self) -> int:
        return sum(s.stats.tried for s in self.shots if s.stats)


class SceneService:
    def __init__(
        self,
        db: Database,
        engine: JobEngine,
        *,
        takes: TakeService,
        anchors: AnchorService,
        storyboard: Outlet[TakePublisher],
        export: ExportKind,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`storyboard`: where the storyboard kind posts (bot/app.py registers it); `export`: the export kind. Their
        chat side attaches through `attach`."""
        self.store = SceneStore(db)
        self.engine, self.takes, self.anchors, self.clock = engine, takes, anchors, clock
        self.storyboard_outlet, self.export_kind = storyboard, export
        self._tasks: set[asyncio.Task[None]] = set()

    def attach(self, takes: TakePublisher, exports: ExportPublisher) -> Callable[[], None]:
        """Attach the chat side: storyboards are posted like takes, exports by `exports`. Returns the detach."""
        self.storyboard_outlet.attach(takes)
        self.export_kind.outlet.attach(exports)

        def detach() -> None:
            self.storyboard_outlet.detach(takes)
            self.export_kind.outlet.detach(exports)

        return detach

    # Scenes ----------------------------------------------------------------------------------------------
    async def start(self, *, guild_id: int, channel_id: int, user_id: int, name: str) -> Scene:
        clean = clean_text(name, field="scene name", max_chars=MAX_NAME_CHARS)
        open_now = await self.store.open_scene(channel_id)
        if open_now is not None:
            raise UserError(
                f"\u201c{open_now.name}\u201d is open in this channel (started by <@{open_now.started_by}>); end it "
                "with /scene end before starting another."
            )
        try:
            scene_id = await self.store.start(
                guild_id=guild_id, channel_id=channel_id, name=clean, user_id=user_id, now=self.clock()
            )
        except IntegrityError:  # started meanwhile by someone else
            return await self.start(guild_id=guild_id, channel_id=channel_id, user_id=user_id, name=name)
        scene = await self.store.scene(scene_id)
        assert scene is not None
        return scene

    async def end(self, channel_id: int, *, user_id: int, can_manage: bool) -> Scene:
        scene = await self.store.open_scene(channel_id)
        if scene is None:
            raise UserError("No scene is open in this channel; /scene list shows the earlier ones.")
        if scene.started_by != user_id and not can_manage:
            raise NotAllowed(
                f"Only <@{scene.started_by}>, who started \u201c{scene.name}\u201d, or a moderator (Manage Messages) "
                "can end it."
            )
        await self.store.end(scene.id, user_id=user_id, now=self.clock())
        ended = await self.store.scene(scene.id)
        assert ended is not None
        return ended

    async def find(self, channel_id: int, name: str | None) -> Scene:
        """A scene of the channel by name, else the open one, else the newest."""
        if name:
            found = await self.store.by_name(channel_id, name.strip())
            if found is None:
                raise UserError(
                    f"This channel has no scene called \u201c{name.strip()[:80]}\u201d; see /scene list."
                )
            return found
        found = await self.store.open_scene(channel_id) or await self.store.newest(channel_id)
        if found is None:
            raise UserError("This channel has no scene yet; start one with /scene start.")
        return found

    async def scenes(self, channel_id: int) -> list[tuple[Scene, int, int]]:
        """The channel's scenes, newest first: (scene, shots, spend)."""
        out = []
        for scene in await self.store.in_channel(channel_id):
            report = await self.report(scene)
            out.append((scene, len(report.shots), report.spend))
        return out

    async def open_scene(self, channel_id: int) -> Scene | None:
        return await self.store.open_scene(channel_id)

    async def scene(self, scene_id: int) -> Scene | None:
        return await self.store.scene(scene_id)

    # One shot --------------------------------------------------------------------------------------------
    async def shoot(
        self,
        req: TakeRequest,
        *,
        continue_: bool = False,
        continue_from: int | None = None,
        end_upload: Upload | None = None,
        announce: Announce | None = None,
    ) -> tuple[Take, list[str]]:
        """A /shot: a new shot of the channel's open scene (if any), continued from the last shot's kept take when
        asked (or from the kept take `continue_from`: its Continue button), landing on an uploaded frame when given.
        Returns the take and notes for the member."""
        scene = await self.store.open_scene(req.channel_id)
        notes: list[str] = []
        if (continue_ or continue_from) and scene is None:
            raise UserError("Continuing starts a shot of the open scene, and this channel has none.")
        if (continue_ or continue_from) and scene is not None:
            req, note = await self._continued(req, scene, continue_from)
            notes.extend(note)
        if end_upload is not None:
            data = await self.anchors.fetch_upload(end_upload)
            req = replace(req, end_sha=await self.anchors.store_frame(data, uploaded=True))
        if scene is None:
            return await self.takes.request(req, announce=announce), notes
        req = replace(req, scene_id=scene.id, scene_name=scene.name, notes=(*req.notes, *notes))
        take = await self.takes.request(req, announce=announce, within=self._adds_shot(scene.id, req))
        return take, notes

    def _adds_shot(self, scene_id: int, req: TakeRequest) -> Callable[[Queries, list[Job]], Awaitable[None]]:
        async def within(tx: Queries, jobs: list[Job]) -> None:
            [job] = jobs
            await SceneStore.add_shots(
                tx, scene_id, [(job.id, req.prompt, int(job.args["duration_s"]))], self.clock()
            )

        return within

    async def _continued(
        self, req: TakeRequest, scene: Scene, from_take: int | None
    ) -> tuple[TakeRequest, list[str]]:
        """The request starting from the last frame of the previous shot's kept take (or of the kept take
        `from_take`), decoded here in a worker thread."""
        shots = await self.store.shots(scene.id)
        if from_take is not None:
            shots = [s for s in shots if s.kept_take_id == from_take]
            if not shots:
                raise UserError("That take is not kept any more; keep it (or another) to continue from it.")
        if not shots:
            raise UserError(
                f"\u201c{scene.name}\u201d has no shot yet to continue from; make its first shot without continue:."
            )
        previous = shots[-1]
        if previous.kept_take_id is None:
            raise UserError(
                f"Shot {previous.position} of \u201c{scene.name}\u201d has no kept take to continue from; keep one "
                "(\u2705 or Keep on its clip) first. Nothing was charged."
            )
        kept = await self.takes.get(previous.kept_take_id)
        if kept is None or not kept.clip_path or not Path(kept.clip_path).is_file():
            raise UserError(
                f"The kept take of shot {previous.position} is no longer on the bot's disk; keep another."
            )
        frame = await asyncio.to_thread(last_frame, Path(kept.clip_path))
        sha = await self.anchors.store_frame(frame)
        notes = []
        if not await self.takes.has_angles(req.channel_id, req.parent_channel_id):
            notes.append(
                "This shot starts from the last frame, not the anchor, and the anchor has no angles: the face may "
                "drift from shot to shot. A moderator can add angles with /anchor angles make."
            )
        return replace(req, start_sha=sha, continues=previous.position), notes

    # Keep ------------------------------------------------------------------------------------------------
    async def keep(
        self, take_id: int, *, user_id: int, can_manage: bool
    ) -> tuple[SceneShot, Take, int | None]:
        """Keep a take for its shot; returns the shot, the take, and the take it replaces (if one was kept)."""
        take = await self.takes.get(take_id)
        if take is None or take.scene_id is None:
            raise UserError("That take is not part of a scene; start one with /scene start.")
        shot = await self.store.shot_of_take(self.store.db, take.root_id)
        scene = await self.store.scene(take.scene_id)
        if shot is None or scene is None:
            raise UserError("That take's shot is not part of a scene any more.")
        if user_id not in (take.user_id, scene.started_by) and not can_manage:
            raise NotAllowed(
                "Only the member who asked for this take, the scene's starter or a moderator can keep it."
            )
        if take.state is not JobState.POSTED:
            raise UserError(f"{take.label} has no clip to keep yet.")
        previous = await self.store.keep(shot.id, take.id, user_id=user_id, now=self.clock())
        kept = await self.store.shot(shot.id)
        assert kept is not None
        return kept, take, previous

    # Show and export -------------------------------------------------------------------------------------
    async def report(self, scene: Scene) -> SceneReport:
        shots = await self.store.shots(scene.id)
        stats = await self.store.take_stats([s.take_id for s in shots if s.take_id])
        reports = []
        for shot in shots:
            kept = await self.takes.get(shot.kept_take_id) if shot.kept_take_id else None
            reports.append(ShotReport(shot, kept, stats.get(shot.take_id) if shot.take_id else None))
        return SceneReport(scene, reports, await self.store.storyboard_spend(scene.id))

    async def storyboard(self, report: SceneReport) -> bytes | None:
        """The kept takes' middle frames in shot order, numbered (an empty tile where nothing is kept): a PNG,
        decoded and drawn in a worker thread; None for a scene with no shots yet. A scene longer than a sheet
        shows its first shots and how many more (`sheet_shots`)."""
        if not report.shots:
            return None
        return await asyncio.to_thread(_storyboard_png, report)

    async def export(self, scene: Scene, *, user_id: int) -> tuple[Job, list[SceneShot]]:
        """Queue the export of the kept takes in shot order (free); returns the job and the shots left out."""
        report = await self.report(scene)
        kept = [(r.shot, r.kept) for r in report.shots if r.kept is not None and r.kept.clip_path]
        left_out = [r.shot for r in report.shots if r.kept is None or not r.kept.clip_path]
        if not kept:
            raise UserError(
                f"\u201c{scene.name}\u201d has no kept take to export yet; keep one (\u2705) on each shot."
            )
        args = {
            "scene_id": scene.id,
            "name": scene.name,
            "clips": [t.clip_path for _, t in kept if t is not None],
            "positions": [s.position for s, _ in kept],
            "take_ids": [t.id for _, t in kept if t is not None],
            "seconds": sum(t.duration_s for _, t in kept if t is not None),
            "left_out": [[s.position, s.prompt] for s in left_out],
            "tried": report.tried,
            "spend": report.spend,
        }
        job = await self.engine.enqueue(
            EXPORT_KIND,
            Prepared(args=args, price_micros=0, description=f"Export of {scene.name}"),
            guild_id=scene.guild_id,
            channel_id=scene.channel_id,
            user_id=user_id,
        )
        self.engine.wake()
        return job, left_out

    # Plans -----------------------------------------------------------------------------------------------
    async def plan(
        self,
        *,
        guild_id: int,
        channel_id: int,
        user_id: int,
        text: str,
        one_call: bool,
        audio: bool,
        parent_channel_id: int | None = None,
    ) -> Plan:
        """Read and quote a plan (nothing is held or sent until Confirm): each shot checked as a /shot is, with
        its own characters, and priced as Confirm will hold it (a voiced character's shot at the voice rate)."""
        scene = await self.store.open_scene(channel_id)
        if scene is None:
            raise UserError("Plans are shots of a scene: start one first with /scene start name:<name>.")
        spec = self.takes.spec
        shots = parse_plan(
            text, default_s=self.takes.default_duration_s, durations_s=spec.durations_s, one_call=one_call
        )
        if one_call and not spec.supports_multi_prompt:
            raise UserError(f"{spec.label} makes one shot a call; plan without one_call.")
        audio = audio and spec.supports_audio
        now = self.clock()
        draft = Plan(
            0,
            scene.id,
            guild_id,
            channel_id,
            user_id,
            tuple(shots),
            one_call,
            audio,
            0,
            now,
            now + PLAN_TTL_S,
            None,
        )
        _, price = await self._plan_args(draft, parent_channel_id, user_id, scene)
        plan = await self.store.plan(await self.store.add_plan(replace(draft, price_micros=price)))
        assert plan is not None
        return plan

    async def _plan_args(
        self, plan: Plan, parent_channel_id: int | None, user_id: int, scene: Scene
    ) -> tuple[list[dict[str, object]], int]:
        """The checked arguments of a plan's takes (one a shot; one for a storyboard, its cast the characters any
        of its shots names) and their total price."""

        def request(prompt: str, duration_s: int | None, cast_text: str | None = None) -> TakeRequest:
            return TakeRequest(
                guild_id=plan.guild_id,
                channel_id=plan.channel_id,
                parent_channel_id=parent_channel_id,
                user_id=user_id,
                prompt=prompt,
                duration_s=duration_s,
                audio=plan.audio,
                scene_id=scene.id,
                scene_name=scene.name,
                cast_text=cast_text,
            )

        if not plan.one_call:
            shots = [await self.takes.request_args(request(s.prompt, s.duration_s)) for s in plan.shots]
            return shots, sum(self.takes.prepared(a).price_micros for a in shots)
        every = "\n".join(
            s.prompt for s in plan.shots
        )  # the storyboard's cast: whoever any of its shots names
        base = await self.takes.request_args(request(plan.shots[0].prompt, None, cast_text=every))
        sent = [
            [str(self.takes.shot_args(base, s.prompt, s.duration_s)["sent_prompt"] or s.prompt), s.duration_s]
            for s in plan.shots
        ]
        check_sent_shots([str(prompt) for prompt, _ in sent])
        args = {
            **base,
            "prompt": " | ".join(s.prompt for s in plan.shots),
            "sent_prompt": None,
            "duration_s": plan.seconds,
            "multi_prompt": [[s.prompt, s.duration_s] for s in plan.shots],
            "multi_sent": sent,
            "plan_id": plan.id,
            "parent_channel_id": parent_channel_id,  # its parts read their own cast where it was planned
        }
        return [args], self.takes.quote(plan.seconds, plan.audio, voice=bool(base.get("voice")))

    async def kept_clips(self) -> set[Path]:
        """The clip files of every kept take: the retention sweep leaves them (scenes are exported, continued
        and shown from them, however old)."""
        paths: set[Path] = set()
        for take_id in await self.store.kept_take_ids():
            take = await self.takes.get(take_id)
            if take is not None and take.clip_path:
                paths.add(Path(take.clip_path))
        return paths

    async def get_plan(self, plan_id: int) -> Plan | None:
        return await self.store.plan(plan_id)

    async def confirm(
        self, plan_id: int, *, user_id: int, parent_channel_id: int | None, message_id: int | None
    ) -> list[Job]:
        """Hold the whole quote at once and queue the plan's takes (or its storyboard), once."""
        plan = await self.store.plan(plan_id)
        if plan is None:
            raise UserError("That plan no longer exists.")
        if plan.user_id != user_id:
            raise NotAllowed("Only the member who made this plan can confirm it.")
        if plan.confirmed_at is not None:
            raise UserError("This plan is confirmed already; its shots are on their way.")
        if self.clock() >= plan.expires_at:
            raise UserError(
                "This plan expired after 10 minutes; nothing was held. Plan it again with /scene plan."
            )
        scene = await self.store.scene(plan.scene_id)
        if scene is None or not scene.open:
            raise UserError("The scene of this plan has ended; nothing was held.")
        args, price = await self._plan_args(plan, parent_channel_id, user_id, scene)
        if price != plan.price_micros:  # the cast or a voice changed since the quote: never hold another sum
            raise UserError(
                f"This plan now costs {format_usd(price)}, not the {format_usd(plan.price_micros)} it was quoted "
                "(a character or a voice changed since); nothing was held. Plan it again with /scene plan."
            )
        new = self._plan_jobs(plan, args, message_id)
        try:
            jobs = await self.engine.enqueue_all(new, within=self._confirms(plan))
        except AlreadyDone:
            raise UserError("This plan is confirmed already; its shots are on their way.") from None
        return jobs

    def _plan_jobs(self, plan: Plan, args: list[dict[str, object]], message_id: int | None) -> list[NewJob]:
        where = {"guild_id": plan.guild_id, "channel_id": plan.channel_id, "user_id": plan.user_id}
        if plan.one_call:
            prepared = Prepared(
                args={**args[0], "plan_id": plan.id},
                price_micros=plan.price_micros,
                endpoint=self.takes.spec.endpoint,
                description=f"Storyboard of {len(plan.shots)} shots",
            )
            return [NewJob(STORYBOARD_KIND, prepared, reply_to_message_id=message_id, **where)]
        return [
            NewJob(self.takes.kind.name, self.takes.prepared(a), reply_to_message_id=message_id, **where)
            for a in args
        ]

    def _confirms(self, plan: Plan) -> Callable[[Queries, list[Job]], Awaitable[None]]:
        """The writes of a confirmation, in the transaction that queues its jobs: the plan marked confirmed (once)
        and its shots appended to the scene (a storyboard's reserved until its parts are cut)."""

        async def within(tx: Queries, jobs: list[Job]) -> None:
            await SceneStore.confirm(tx, plan.id, self.clock())
            if plan.one_call:
                reserved = [(None, s.prompt, s.duration_s) for s in plan.shots]
                await SceneStore.add_shots(
                    tx, plan.scene_id, reserved, self.clock(), storyboard_id=jobs[0].id
                )
            else:
                rows = [(j.id, s.prompt, s.duration_s) for j, s in zip(jobs, plan.shots, strict=True)]
                await SceneStore.add_shots(tx, plan.scene_id, rows, self.clock())

        return within

    async def announce(self, jobs: list[Job], message_id: int | None) -> None:
        """After a confirmation: each take gets its progress message (in reply to the plan); a storyboard's is the
        plan's message itself (its clip is posted in reply to it)."""
        for job in jobs:
            if job.kind == STORYBOARD_KIND:
                await self.engine.set_messages(
                    job, progress_message_id=message_id, reply_to_message_id=message_id
                )
            else:
                await self.takes.announce(job)
        self.engine.wake()

    # Storyboard parts ------------------------------------------------------------------------------------
    def job_changed(self, job: Job) -> None:
        """An engine subscriber: a storyboard just posted is cut into its shots' first takes; one that failed or
        was cancelled leaves no shot of it behind (they would wait for parts for good)."""
        if job.kind != STORYBOARD_KIND:
            return
        if job.state is JobState.POSTED:
            task = asyncio.create_task(self._parts_quietly(job.id), name=f"parts-of-{job.id}")
        elif job.state in (JobState.FAILED, JobState.CANCELLED):
            task = asyncio.create_task(self._drop_quietly(job.id), name=f"drop-shots-of-{job.id}")
        else:
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drop_quietly(self, storyboard_id: int) -> None:
        try:
            if n := await self.store.drop_reserved(storyboard_id):
                log.info("storyboard %d ended without its clip: %d planned shot(s) removed", storyboard_id, n)
        except Exception:
            log.exception("could not remove the shots of storyboard %d", storyboard_id)

    async def _parts_quietly(self, storyboard_id: int) -> None:
        try:
            await self.make_parts(storyboard_id)
        except Exception:
            log.exception("could not queue the parts of storyboard %d", storyboard_id)

    async def make_parts(self, storyboard_id: int) -> int:
        """Queue a posted storyboard's parts, each the free first take of its reserved shot; idempotent. Returns how
        many were queued now."""
        job = await self.engine.get(storyboard_id)
        if job is None or job.state is not JobState.POSTED:
            return 0
        shots = await self.store.storyboard_shots(job.id)
        parts = list(job.outputs.get("parts") or [])
        queued = 0
        for k, (shot, path) in enumerate(zip(shots, parts, strict=False), 1):
            if shot.take_id is not None:
                continue  # cut and queued before a restart
            args = await self._part_args(job, shot)
            args["cut_from"] = {
                "path": path,
                "storyboard": job.id,
                "part": k,
                "reroll_price_micros": self._reroll_price(args),
            }
            new = NewJob(
                PART_KIND,
                self.takes.prepared(args, free=True),
                job.guild_id,
                job.channel_id,
                job.user_id,
                reply_to_message_id=job.result_message_id,
            )
            try:
                await self.engine.enqueue_all([new], within=_fills(shot.id))
                queued += 1
            except AlreadyDone:
                continue
        if queued:
            self.engine.wake()
        return queued

    async def _part_args(self, board: Job, shot: SceneShot) -> dict[str, object]:
        """A part's take arguments as a /shot of its own prompt has them, so that its re-roll is one: the characters
        its prompt names (not the whole storyboard's), its prompt as sent numbered for them, a voice only when one
        of them speaks; the storyboard's options, anchor and scene. Its length is the part's own (a part may be
        shorter than any take made alone: it is asked at the default length and set after). When its prompt can no
        longer be read so (an @Name taken out of the cast since the storyboard was confirmed, the anchor gone), the
        storyboard's characters that it names stand in: the part the storyboard paid for is never lost."""
        a = board.args
        parent = a.get("parent_channel_id")
        negative, limit, auto = a.get("negative_prompt"), a.get("upload_limit_bytes"), a.get("auto_reroll")
        scene_id, scene_name = a.get("scene_id"), a.get("scene_name")
        req = TakeRequest(
            guild_id=board.guild_id,
            channel_id=board.channel_id,
            parent_channel_id=parent if isinstance(parent, int) else None,
            user_id=board.user_id,
            prompt=shot.prompt,
            aspect_ratio=str(a.get("aspect_ratio") or "anchor"),
            audio=bool(a.get("audio")),
            negative_prompt=negative if isinstance(negative, str) else None,
            upload_limit_bytes=limit if isinstance(limit, int) else None,
            auto_reroll=auto if isinstance(auto, bool) else None,
            scene_id=scene_id if isinstance(scene_id, int) else None,
            scene_name=scene_name if isinstance(scene_name, str) else None,
        )
        try:
            args = await self.takes.request_args(req)
        except UserError as exc:
            log.warning(
                "storyboard %d, shot %d: its own cast cannot be read (%s)", board.id, shot.id, exc.message
            )
            args = self._named_of_board(a, shot)
        else:  # an anchor set since the storyboard: the part is what the storyboard was made from
            if not _same_versions(args, a):
                args = self._named_of_board(a, shot)
        return {**args, "duration_s": shot.duration_s}

    def _named_of_board(self, board_args: dict[str, Any], shot: SceneShot) -> dict[str, object]:
        """A part's arguments from its storyboard's: the storyboard's characters its prompt names (with their
        versions, references and voices), a voice only when one of them has one."""
        every = [m for m in board_args.get("cast") or [] if isinstance(m, dict)]
        named = named_in(shot.prompt, [str(m["name"]) for m in every]).names
        own = [m for n in named for m in every if m["name"] == n]
        base: dict[str, object] = {k: v for k, v in board_args.items() if k not in _BOARD_ONLY}
        if own:
            base["cast"] = own
            base["voice"] = bool(base.get("audio")) and any(m.get("voice_id") for m in own)
        return {**base, **self.takes.shot_args(base, shot.prompt, shot.duration_s)}

    def _reroll_price(self, args: dict[str, object]) -> int | None:
        """What a re-roll of the part is charged (a take of its length, sound and voice), or None when it cannot
        be re-rolled alone (shorter than any take the model makes)."""
        if args["duration_s"] not in self.takes.spec.durations_s:
            return None
        return self.takes.prepared(args).price_micros

    async def sweep(self) -> int:
        """Parts a restart skipped (between a storyboard's posting and its parts being queued), and the shots of
        storyboards that ended without a clip while nothing listened."""
        queued = 0
        for job in await self.engine.in_states(JobState.POSTED):
            if job.kind == STORYBOARD_KIND:
                queued += await self.make_parts(job.id)
        await self.store.drop_reserved_of_ended()
        return queued

    def start_background(self) -> None:
        task = asyncio.create_task(self._sweep_quietly(), name="storyboard-sweep")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sweep_quietly(self) -> None:
        try:
            if n := await self.sweep():
                log.info("queued %d storyboard part(s) missed before the restart", n)
        except Exception:
            log.exception("storyboard sweep failed")

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()


def sheet_shots(report: SceneReport) -> tuple[list[ShotReport], int]:
    """The shots a scene's storyboard picture shows, and how many it leaves out. A scene has no cap on its shots
    and a sheet holds MAX_SHOTS tiles: a longer scene shows its first MAX_SHOTS - 1 shots (where its story starts,
    in the order /scene show lists them) and a last tile counting the rest ("+ 107 more shots"); /scene export
    joins every kept take all the same."""
    if len(report.shots) <= MAX_SHOTS:
        return list(report.shots), 0
    shown = report.shots[: MAX_SHOTS - 1]
    return shown, len(report.shots) - len(shown)


def _storyboard_png(report: SceneReport) -> bytes:
    shots, more = sheet_shots(report)
    frames: list[bytes | None] = []
    for r in shots:
        kept = r.kept
        frame = None
        if kept is not None and kept.clip_path and Path(kept.clip_path).is_file():
            try:
                frame = frame_at(Path(kept.clip_path), kept.duration_s / 2)
            except Exception:  # a clip damaged on disk shows an empty tile; the rest of the report stands
                log.warning("could not read a frame of take %d for its scene's storyboard", kept.id)
        frames.append(frame)
    return storyboard_sheet(frames, [str(r.shot.position) for r in shots], more=more)


def _same_versions(part: dict[str, object], board: dict[str, object]) -> bool:
    """Whether a part's arguments, read now, use the anchor versions its storyboard was made from (the start
    anchor's, and each of its characters' that the storyboard also carried)."""
    if part.get("anchor_version_id") != board.get("anchor_version_id"):
        return False
    made = {m["name"]: m["version_id"] for m in _members(board)}
    return all(made.get(m["name"], m["version_id"]) == m["version_id"] for m in _members(part))


def _members(args: dict[str, object]) -> list[dict[str, Any]]:
    cast = args.get("cast")
    return [m for m in cast if isinstance(m, dict)] if isinstance(cast, list) else []


# What a storyboard's arguments hold for the whole call, never one of its parts.
_BOARD_ONLY = frozenset(
    {"cast", "voice", "multi_prompt", "multi_sent", "plan_id", "parent_channel_id", "advice", "reuploaded"}
)


def _fills(shot_id: int) -> Callable[[Queries, list[Job]], Awaitable[None]]:
    async def within(tx: Queries, jobs: list[Job]) -> None:
        await SceneStore.fill_shot(tx, shot_id, jobs[0].id)

    return within


__all__ = ["SceneReport", "SceneService", "ShotReport", "sheet_shots"]
