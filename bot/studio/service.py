"""The anchor studio as members see it: generate, refine and angle sets, and what the buttons on a sheet do."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.anchors.models import AnchorVersion
from bot.anchors.service import AnchorService, SetResult, Upload
from bot.db import Database
from bot.errors import NotAllowed, UserError
from bot.fal.models import ModelSpec, PriceRule, megapixels, model
from bot.fal.pricing import PriceTable
from bot.jobs import Job, JobEngine, JobState, Prepared, ProgressSink
from bot.jobs.repeats import KeyedLocks, RecentRequests
from bot.media.faces import FaceReport
from bot.media.sheet import contact_sheet
from bot.money import format_usd
from bot.studio.kind import CandidatesKind
from bot.studio.models import ANGLES_KIND, CANDIDATES_KIND, STUDIO_KINDS, VIEWS
from bot.studio.ports import SheetPublisher
from bot.studio.store import AlreadyAngle, AngleStore
from bot.text import clean_text

log = logging.getLogger(__name__)

EXPIRY_S = 24 * 3600
AGAIN_DEDUP_S = 5.0  # the same member pressing Again on the same set again within this counts once
MAX_ANGLES = 3
MAX_DESCRIPTION_CHARS = 1000
MODELS = {"seedream-v4.5": "seedream-v4.5", "seedream-v5-lite": "seedream-v5-lite"}
REFINE_MODEL = "seedream-v4.5-edit"
ANGLES_MODELS = ("qwen-multiple-angles", "seedream-v4.5-edit")
PRICED_COMMANDS = (  # what /help lists, by command
    ("/anchor generate", tuple(MODELS.values())),
    ("/anchor refine", (REFINE_MODEL,)),
    ("/anchor angles make", ANGLES_MODELS),
)
QUOTE_ARGS = ("unit_micros", "megapixels")  # what a quote adds to a request's args (Again quotes afresh)
ANCHOR_RULES = (
    "Head-and-shoulders portrait of {description}. Neutral expression, looking at the camera. Plain, clean, "
    "uncluttered background. Eye-level camera, subject centred in the frame. Soft, even light. Photorealistic."
)
ANGLE_VIEWS = ("three-quarter view from the left", "three-quarter view from the right", "profile view")
ANGLES_PROMPT = (
    "The same person, same face, hair, clothes and light, seen in {views}; plain clean background, "
    "head and shoulders, one view per image."
)


class Expired(UserError):
    """The sheet is older than 24 hours: its candidates were deleted."""


class DuplicateAgain(UserError):
    """The same member pressed Again on the same set a moment ago: that one new set is on its way."""


class AlreadyChosen(UserError):
    """A candidate of this set was already made the anchor (one choice per set)."""


@dataclass(frozen=True)
class Kept:
    added: int
    total: int


class _StudioOnly:
    """An engine subscriber that hands on the changes of studio sets only."""

    def __init__(self, sink: ProgressSink) -> None:
        self.sink = sink

    def job_changed(self, job: Job) -> None:
        if job.kind in STUDIO_KINDS:
            self.sink.job_changed(job)


def wrap_description(description: str) -> str:
    return ANCHOR_RULES.format(description=description.rstrip(". "))


class StudioService:
    def __init__(
        self,
        db: Database,
        engine: JobEngine,
        *,
        kinds: list[CandidatesKind],
        anchors: AnchorService,
        prices: PriceTable,
        root: Path,
    ) -> None:
        """`kinds`: the studio's job kinds (registered with the engine by bot/app.py), whose sheets the chat side
        posts once attached."""
        self.engine, self.kinds, self.anchors, self.prices, self.root = engine, kinds, anchors, prices, root
        self.angles = AngleStore(db)
        self._recent_agains = RecentRequests(AGAIN_DEDUP_S)  # (set, member)
        # one Use or Keep of a set at a time: two clicks on one sheet at the same moment are taken one after the
        # other, so the second sees what the first did
        self._set_locks = KeyedLocks()
        self._chosen: dict[int, tuple[int, AnchorVersion]] = {}  # set -> (candidate, the version it became)

    def attach(self, publisher: SheetPublisher, sink: ProgressSink) -> Callable[[], None]:
        """Attach the chat side: `publisher` posts contact sheets (deliveries wait until it is), `sink` hears of
        every change of a studio set. Returns the call that detaches both."""
        for kind in self.kinds:
            kind.outlet.attach(publisher)
        unsubscribe = self.engine.subscribe(_StudioOnly(sink))

        def detach() -> None:
            unsubscribe()
            for kind in self.kinds:
                kind.outlet.detach(publisher)

        return detach

    def clock(self) -> float:
        """The job engine's clock: the one clock that stamps every job (tests move it to expire sets)."""
        return self.engine.clock()

    # Requests --------------------------------------------------------------------------------------------
    async def unit_price(self, spec: ModelSpec, anchor_version_id: object = None) -> tuple[int, int | None]:
        """What one image of a request costs, and the megapixels it is billed for when the model is priced per
        megapixel (None otherwise). A per-megapixel call (a qwen view) is quoted on the image it is sent: the
        anchor version's own stored image (kind.py `_anchor_ref`), whose size was recorded when it was stored."""
        if self.prices.pricing(spec).rule is not PriceRule.PER_MEGAPIXEL:
            return self.prices.quote(spec, images=1), None
        if not isinstance(anchor_version_id, int):
            raise ValueError(
                f"{spec.label} is priced per megapixel of the anchor; no anchor version was given"
            )
        version = await self.anchors.version_by_id(anchor_version_id)
        return self.view_price(spec, version), megapixels(version.width * version.height)

    def view_price(self, spec: ModelSpec, version: AnchorVersion) -> int:
        """One call of `spec` sent this anchor version's stored image (per megapixel, or per image)."""
        return self.prices.quote(spec, images=1, pixels=version.width * version.height)

    async def _enqueue(
        self, args: dict[str, object], spec: ModelSpec, *, guild_id: int, channel_id: int, user_id: int
    ) -> Job:
        count = args["count"]
        assert isinstance(count, int)
        unit, mp = await self.unit_price(spec, args.get("anchor_version_id"))
        quoted = {"unit_micros": unit} if mp is None else {"unit_micros": unit, "megapixels": mp}
        prepared = Prepared(
            args={**args, **quoted},
            price_micros=unit * count,
            endpoint=spec.endpoint,
            description=f"Anchor studio: {args['purpose']} ({count} image{'s' if count > 1 else ''})",
        )
        kind = ANGLES_KIND if spec.family == "qwen_angles" else CANDIDATES_KIND
        return await self.engine.enqueue(
            kind, prepared, guild_id=guild_id, channel_id=channel_id, user_id=user_id
        )

    async def generate(
        self,
        *,
        guild_id: int,
        channel_id: int,
        user_id: int,
        description: str,
        count: int,
        model_key: str = "seedream-v4.5",
    ) -> Job:
        text = clean_text(description, field="description", max_chars=MAX_DESCRIPTION_CHARS)
        if model_key not in MODELS:
            raise UserError(f"The model must be one of {', '.join(MODELS)}.")
        spec = model(MODELS[model_key])
        args = {"purpose": "generate", "description": text, "prompt": wrap_description(text), "count": count}
        return await self._enqueue(args, spec, guild_id=guild_id, channel_id=channel_id, user_id=user_id)

    async def refine(
        self,
        *,
        guild_id: int,
        channel_id: int,
        parent_id: int | None,
        user_id: int,
        instruction: str,
        count: int,
        name: str | None = None,
    ) -> Job:
        text = clean_text(instruction, field="instruction", max_chars=MAX_DESCRIPTION_CHARS)
        version = await self.anchors.version_of(channel_id, parent_id, name)
        args = {
            "purpose": "refine",
            "description": text,
            "prompt": text,
            "count": count,
            "anchor_version_id": version.id,
            "name": version.name,
        }
        spec = model(REFINE_MODEL)
        return await self._enqueue(args, spec, guild_id=guild_id, channel_id=channel_id, user_id=user_id)

    async def make_angles(
        self,
        *,
        guild_id: int,
        channel_id: int,
        parent_id: int | None,
        user_id: int,
        count: int,
        model_key: str = "qwen-multiple-angles",
        name: str | None = None,
    ) -> Job:
        """Views of a character's current anchor (the main one's by default): one qwen multiple-angles call per
        view, or one Seedream edit call."""
        if model_key not in ANGLES_MODELS:
            raise UserError(f"The angles model must be {' or '.join(ANGLES_MODELS)}.")
        version = await self.anchors.version_of(channel_id, parent_id, name)
        spec = model(model_key)
        if spec.family == "qwen_angles":
            views = list(VIEWS)[:count]
            prompt = "Camera turned to: " + ", ".join(f"{v} ({VIEWS[v]:g}\u00b0)" for v in views)
        else:
            views = list(ANGLE_VIEWS[:count])
            prompt = ANGLES_PROMPT.format(views=", ".join(views))
        args = {
            "purpose": "angles",
            "description": "; ".join(views),
            "prompt": prompt,
            "count": count,
            "views": views,
            "anchor_version_id": version.id,
        }
        return await self._enqueue(args, spec, guild_id=guild_id, channel_id=channel_id, user_id=user_id)

    async def again(self, job_id: int, *, user_id: int, can_manage: bool) -> Job:
        """A new set from the same request (quoted afresh, charged again, to whoever clicked). The same member
        pressing Again on the same set twice within AGAIN_DEDUP_S gets one new set (DuplicateAgain for the other)."""
        job = await self._open(job_id, user_id=user_id, can_manage=can_manage)
        key = (job_id, user_id)
        if self._recent_agains.repeat(key):
            raise DuplicateAgain("You just asked for this; the new set is on its way.")
        args = {k: v for k, v in job.args.items() if k not in QUOTE_ARGS}
        try:
            return await self._enqueue(
                args,
                model(job.endpoint or ""),
                guild_id=job.guild_id,
                channel_id=job.channel_id,
                user_id=user_id,
            )
        except BaseException:
            self._recent_agains.forget(key)  # nothing started: pressing it again is a new request
            raise

    def price_list(self, version: AnchorVersion | None = None) -> list[tuple[str, list[tuple[str, str]]]]:
        """What each studio command costs at today's prices, for /help: (command, [(model, rate)]). A rate per
        megapixel is of the anchor image sent, a view; with `version`, what a view of that anchor costs."""
        out = []
        for command, keys in PRICED_COMMANDS:
            rates = []
            for key in keys:
                spec = model(key)
                rate = self.prices.rate_text(spec)
                if self.prices.pricing(spec).rule is PriceRule.PER_MEGAPIXEL:
                    rate += " of the anchor, a view"
                    if version is not None:
                        rate += f" ({format_usd(self.view_price(spec, version))} a view of this anchor)"
                rates.append((spec.label, rate))
            out.append((command, rates))
        return out

    async def announce(self, job: Job, message_id: int) -> Job:
        """Record the request's public message (the sheet replies to it); the engine then sends the job."""
        job = await self.engine.set_messages(
            job, progress_message_id=message_id, reply_to_message_id=message_id
        )
        self.engine.wake()
        return job

    # Buttons ---------------------------------------------------------------------------------------------
    async def get(self, job_id: int) -> Job | None:
        job = await self.engine.get(job_id)
        return job if job is not None and job.kind in STUDIO_KINDS else None

    def is_expired(self, job: Job) -> bool:
        return self.clock() - (job.finished_at or job.created_at) >= EXPIRY_S

    async def _open(self, job_id: int, *, user_id: int, can_manage: bool) -> Job:
        job = await self.get(job_id)
        if job is None:
            raise UserError("Those candidates no longer exist.")
        if job.user_id != user_id and not can_manage:
            raise NotAllowed(
                "Only the person who asked for these candidates, or someone with Manage Messages, "
                "can use these buttons."
            )
        if job.state is JobState.POSTING and job.outputs.get("paths"):
            return job  # the sheet is on screen; its posted mark is a moment behind the click
        if not job.is_final:
            raise UserError("These candidates are still being made; try again in a moment.")
        if self.is_expired(job) or not job.outputs.get("paths") or job.state is not JobState.POSTED:
            await self.expire(job)
            raise Expired("These candidates expired after 24 hours and were deleted; make a new set.")
        return job

    def _candidate(self, job: Job, k: int) -> bytes:
        paths = job.outputs["paths"]
        if not 1 <= k <= len(paths) or not Path(paths[k - 1]).is_file():
            raise UserError(f"There is no candidate {k} in this set.")
        return Path(paths[k - 1]).read_bytes()

    async def use(self, job_id: int, k: int, *, user_id: int, can_manage: bool) -> SetResult:
        """Candidate k becomes the channel's new anchor version (the intake of /anchor set); once per set: a later
        click is refused with the version chosen (AlreadyChosen)."""
        async with self._set_locks.hold(job_id):
            job = await self._open(job_id, user_id=user_id, can_manage=can_manage)
            if job_id in self._chosen:
                chosen, version = self._chosen[job_id]
                raise AlreadyChosen(
                    f"Already chosen: candidate {chosen} of this set is {version.label}; /anchor history lists "
                    "the versions, /anchor use brings one back."
                )
            data = await asyncio.to_thread(self._candidate, job, k)
            result = await self.anchors.set_anchor_from_bytes(
                guild_id=job.guild_id,
                channel_id=job.channel_id,
                user_id=user_id,
                data=data,
                name=job.args.get("name"),
            )
            self._chosen[job_id] = (k, result.version)
            return result

    async def keep(self, job_id: int, ks: list[int] | None, *, user_id: int, can_manage: bool) -> Kept:
        """Keep views ks (None: all) as angles of the version they were made from; all or nothing (past 3, a view
        already kept, or one that shows no face or someone else: the same checks as /anchor angles add)."""
        async with self._set_locks.hold(job_id):
            job = await self._open(job_id, user_id=user_id, can_manage=can_manage)
            ks = ks or list(range(1, len(job.outputs["paths"]) + 1))
            datas = [await asyncio.to_thread(self._candidate, job, k) for k in ks]
            version = await self.anchors.version_by_id(job.args["anchor_version_id"])
            labels = [f"View {k}" for k in ks] if len(ks) > 1 else None
            return await self._add_angles(version, datas, user_id=user_id, labels=labels)

    async def _add_angles(
        self, version: AnchorVersion, datas: list[bytes], *, user_id: int, labels: list[str] | None = None
    ) -> Kept:
        """Add `datas` as angles of `version`, all or none: each through the intake of /anchor set and held to the
        anchor's face (its own face then stored under the angle's id), and never past MAX_ANGLES. `labels` name
        the images in a refusal when there are several."""
        if len(await self.angles.angles(version.id)) + len(datas) > MAX_ANGLES:
            raise await self._full(version.id, len(datas))
        images = [await self.anchors.prepare_image(data) for data in datas]
        await self._refuse_kept(version.id, [img.sha256 for img in images], labels)
        reports = [
            await self._angle_face(version, img.data, labels[n] if labels else None)
            for n, img in enumerate(images)
        ]
        for img in images:
            await self.anchors.write_image(img)
            await self.anchors.store.put_image(img.sha256, img.width, img.height, len(img.data), self.clock())
        shas = [img.sha256 for img in images]
        try:
            ids = await self.angles.add(version.id, shas, user_id=user_id, now=self.clock(), limit=MAX_ANGLES)
        except AlreadyAngle:  # kept meanwhile (from another sheet of this version, or an upload)
            await self._refuse_kept(version.id, shas, labels)
            raise
        if ids is None:  # filled meanwhile
            raise await self._full(version.id, len(datas))
        for angle_id, report in zip(ids, reports, strict=True):
            if report is not None and self.anchors.faces is not None:
                await self.anchors.faces.save_angle_face(version, angle_id, report)
        return Kept(len(shas), len(await self.angles.angles(version.id)))

    async def _angle_face(self, version: AnchorVersion, image: bytes, label: str | None) -> FaceReport | None:
        """The face of a would-be angle, held to the anchor's (None without face checks); UserError when it shows
        no face or another person, prefixed with `label` ("View 2") when given."""
        if self.anchors.faces is None:
            return None
        try:
            return await self.anchors.faces.check_angle(version, image)
        except UserError as exc:
            if label is None:
                raise
            raise UserError(f"{label}: {exc.message}") from None

    async def _refuse_kept(self, version_id: int, shas: list[str], labels: list[str] | None) -> None:
        """UserError when an image of `shas` is already one of the version's angles (a view kept twice)."""
        kept = await self.angles.angles(version_id)
        again = [n for n, sha in enumerate(shas) if sha in kept]
        if not again:
            return
        which = " and ".join(labels[n] for n in again) if labels else "that picture"
        raise UserError(
            f"Already kept: {which} {'are' if len(again) > 1 else 'is'} already among this anchor version's angles "
            f"({len(kept)} of {MAX_ANGLES}). Nothing changed."
        )

    async def _full(self, version_id: int, adding: int) -> UserError:
        have = len(await self.angles.angles(version_id))
        return UserError(
            f"The set is full: this anchor version has {have} of {MAX_ANGLES} angles, and "
            f"{adding} more would pass {MAX_ANGLES}. Nothing changed; clear it with "
            "/anchor angles clear first."
        )

    async def add_angle(
        self, *, channel_id: int, parent_id: int | None, user_id: int, upload: Upload, name: str | None = None
    ) -> Kept:
        """Add an uploaded photo as an angle of the character's current anchor (the intake of /anchor set, then
        the face checks: it must show the anchor's person)."""
        version = await self.anchors.version_of(channel_id, parent_id, name)
        data = await self.anchors.fetch_upload(upload)
        return await self._add_angles(version, [data], user_id=user_id)

    async def clear_angles(self, *, channel_id: int, parent_id: int | None, name: str | None = None) -> int:
        version = await self.anchors.version_of(channel_id, parent_id, name)
        return await self.angles.clear(version.id)

    async def angle_shas(self, version_id: int) -> list[str]:
        return await self.angles.angles(version_id)

    async def angles_sheet(self, version_id: int) -> bytes | None:
        """The kept angles of a version as one numbered contact sheet (None when there are none)."""
        shas = await self.angles.angles(version_id)
        if not shas:
            return None
        datas = [await asyncio.to_thread(self.anchors.image_path(s).read_bytes) for s in shas]
        return (await asyncio.to_thread(contact_sheet, datas, tile_side=256)).data

    # Expiry ----------------------------------------------------------------------------------------------
    async def expire(self, job: Job) -> bool:
        """Delete a set's candidate files (chosen ones live on as anchor images); True if there were any."""
        self._chosen.pop(job.id, None)
        folder = self.root / str(job.id)
        if not folder.exists():
            return False
        await asyncio.to_thread(shutil.rmtree, folder, True)
        log.info("candidates of set %d expired", job.id)
        return True

    async def expire_due(self) -> list[Job]:
        """Expire every posted set older than 24 hours (by the injectable clock); return those expired."""
        done: list[Job] = []
        if not self.root.exists():
            return done
        for folder in self.root.iterdir():
            job = await self.get(int(folder.name)) if folder.name.isdigit() else None
            if job is not None and job.is_final and self.is_expired(job) and await self.expire(job):
                done.append(job)
        return done
