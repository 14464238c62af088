"""Consistency: the anchor's face at anchor time, a face score for every posted take, automatic re-rolls.

- Anchor time (`check_anchor`): `faces.face_checks` runs in the shared process pool; its checks join the anchor
  checklist and the face's embedding is stored with the version (or an angle: `angle_id`).
- Angle time (`check_angle`, then `save_angle_face` once the angle has its id): an angle of an anchor that shows a
  face must show one too, and the same person's (nearer than the score threshold); it is refused otherwise.
- After a take is posted, `ensure_score` queues one `face_score` job (a LOCAL kind, parent = the take), at most one
  per take (a unique index), and `sweep` queues any a crash skipped. The score is free (price 0).
- A drifted take with auto re-roll on is re-rolled once (a unique index on `auto_reroll_of`), charged to its
  requester; a take with no face visible never is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.anchors.models import AnchorVersion, CheckItem, Level
from bot.anchors.service import AnchorService
from bot.consistency.models import SCORE_KIND, CastRecord, CastScore, StoredScore, VersionRecord
from bot.consistency.pool import FacePool
from bot.consistency.ports import ScorePublisher
from bot.consistency.store import ConsistencyStore
from bot.consistency.wording import anchor_face_checks, stored_verdict_text
from bot.db import Database, IntegrityError
from bot.errors import UserError
from bot.jobs import Job, JobEngine, JobState, Outlet, Prepared
from bot.media import faces
from bot.takes.models import TAKE_KINDS, Take
from bot.takes.service import TakeService

log = logging.getLogger(__name__)
SWEEP_WINDOW_S = 24 * 3600  # takes posted this long before a start still get their score


@dataclass(frozen=True)
class ScoreSettings:
    threshold: float = faces.DEFAULT_THRESHOLD
    frames: int = 8
    auto_reroll_default: bool = False


def _items(checks: list[dict[str, str]]) -> list[CheckItem]:
    # The anchor checklist has no "fail": a failed face check is shown as a warning (an anchor is never refused
    # for its face; shots still work, they just cannot be scored).
    return [
        CheckItem(c["title"], Level.WARN if c["level"] == "fail" else Level(c["level"]), c["text"])
        for c in checks
    ]


def _whose(version: AnchorVersion) -> str:
    return f"{version.name}'s anchor" if version.name else "the anchor"


def _no_face_text(report: faces.FaceReport, version: AnchorVersion) -> str:
    if report.count > 1:
        return (
            f"That picture shows {report.count} faces of a size, so I can't tell which is the one in "
            f"{_whose(version)}. Crop it to that one person and add it again; nothing changed."
        )
    return (
        f"I found no face in that picture, and an angle is another view of the face in {_whose(version)}. A "
        "three-quarter view works best (a full profile often shows too little of the face to be found); nothing "
        "changed."
    )


def _stranger_text(distance: float, threshold: float, version: AnchorVersion) -> str:
    alike, needed = faces.similarity_percent(distance), faces.similarity_percent(threshold)
    return (
        f"The face in that picture doesn't look like the one in {_whose(version)} ({alike}% alike; the same "
        f"person scores over {needed}%). An angle must show the same person; nothing changed."
    )


class ConsistencyService:
    def __init__(
        self,
        db: Database,
        *,
        engine: JobEngine,
        takes: TakeService,
        anchors: AnchorService,
        pool: FacePool,
        settings: ScoreSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = ConsistencyStore(db)
        self.db = db
        self.engine = engine
        self.takes = takes
        self.anchors = anchors
        self.pool = pool
        self.settings = settings or ScoreSettings()
        self.clock = clock
        self._status: tuple[bool, str] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.outlet: Outlet[ScorePublisher] = Outlet("face verdicts")

    def attach(self, publisher: ScorePublisher) -> Callable[[], None]:
        """Attach the chat side that shows verdicts (score deliveries wait until it is); returns the detach."""
        self.outlet.attach(publisher)
        return lambda: self.outlet.detach(publisher)

    # Engine status ---------------------------------------------------------------------------------------
    async def engine_status(self) -> tuple[bool, str]:
        """(on, words) for /status: asked of the face worker once (it loads the models), then remembered."""
        if self._status is None:
            try:
                self._status = await self.pool.run(faces.face_engine_status)
            except Exception as exc:  # the worker itself could not start
                self._status = (False, f"face checks off: the face worker did not start ({exc})")
        return self._status

    # Anchor time -----------------------------------------------------------------------------------------
    async def check_anchor(
        self, version: AnchorVersion, image: bytes, *, angle_id: int | None = None
    ) -> list[CheckItem]:
        """Find the faces of an anchor (or angle) image, store its embedding, and return the face checks.

        Studio's generate/angles call this for every new image. Never raises for a face problem."""
        try:
            report = await self.pool.run(faces.face_checks, image)
        except faces.FaceEngineUnavailable as exc:
            return [CheckItem("Face checks", Level.INFO, f"Face checks are off: {exc}")]
        except Exception:
            log.exception("face checks of anchor version %d failed", version.id)
            return [CheckItem("Face checks", Level.INFO, "The face checks could not run on this image.")]
        return _items(await self._put_face(version, angle_id, report))

    async def _put_face(
        self, version: AnchorVersion, angle_id: int | None, report: faces.FaceReport
    ) -> list[dict[str, str]]:
        checks = [{"title": c.title, "level": c.level, "text": c.text} for c in anchor_face_checks(report)]
        await self.store.put_face(
            version.id,
            angle_id,
            face_count=report.count,
            embedding=report.embedding,
            checks=checks,
            now=self.clock(),
            box=report.face.box if report.face is not None else None,
        )
        return checks

    async def check_angle(self, version: AnchorVersion, image: bytes) -> faces.FaceReport | None:
        """The face of an image offered as an angle of `version`, held against the anchor's own. Raises UserError
        (nothing is stored) when the anchor shows a face and the image shows none, or clearly another person's.
        None when the face checks are off or could not run: the angle is taken as it is, as before them."""
        try:
            report = await self.pool.run(faces.face_checks, image)
        except faces.FaceEngineUnavailable:
            return None
        except Exception:
            log.exception("face checks of an angle of anchor version %d failed", version.id)
            return None
        anchor = await self._anchor_embedding(version)
        if anchor is None:  # a drawing, a mask, a crowd: no one face to hold the angle to
            return report
        if report.embedding is None:
            raise UserError(_no_face_text(report, version))
        distance = faces.face_distance(
            faces.embedding_from_bytes(report.embedding), faces.embedding_from_bytes(anchor)
        )
        if distance >= self.settings.threshold:
            raise UserError(_stranger_text(distance, self.settings.threshold, version))
        return report

    async def save_angle_face(self, version: AnchorVersion, angle_id: int, report: faces.FaceReport) -> None:
        """Store the face `check_angle` found, under the angle's id: the version's takes are scored against it."""
        await self._put_face(version, angle_id, report)

    async def _anchor_embedding(self, version: AnchorVersion) -> bytes | None:
        """The embedding of the version's own face (found now when the version predates face checks)."""
        stored = [f for f in await self.store.faces(version.id) if f.angle_id is None]
        if not stored:
            await self.anchor_checks(version)
            stored = [f for f in await self.store.faces(version.id) if f.angle_id is None]
        return stored[0].embedding if stored else None

    async def face_box(self, version: AnchorVersion) -> tuple[int, int, int, int] | None:
        """The box of the version's face found at intake (looked for now when the version predates it)."""
        looked, box = await self.store.face_box(version.id)
        if looked and box is None:
            stored = await self.store.faces(version.id)
            if any(f.angle_id is None and f.embedding is not None for f in stored):
                looked = False  # a face stored before boxes were: find it again for its box
        if not looked:
            data = await asyncio.to_thread(self.anchors.image_path(version.sha256).read_bytes)
            await self.check_anchor(version, data)
            _, box = await self.store.face_box(version.id)
        return box

    async def anchor_checks(self, version: AnchorVersion) -> list[CheckItem]:
        """The stored face checks of a version (computed now when the version predates them)."""
        for face in await self.store.faces(version.id):
            if face.angle_id is None:
                return _items(face.checks)
        data = await asyncio.to_thread(self.anchors.image_path(version.sha256).read_bytes)
        return await self.check_anchor(version, data)

    async def embeddings(self, version_id: int) -> list[bytes]:
        """The anchor's and its angles' embeddings (computing the anchor's when it predates this feature)."""
        stored = await self.store.faces(version_id)
        if not any(f.angle_id is None for f in stored):
            await self.anchor_checks(await self.anchors.version_by_id(version_id))
            stored = await self.store.faces(version_id)
        return [f.embedding for f in stored if f.embedding is not None]

    async def record(self, version_id: int) -> VersionRecord:
        return await self.store.record(version_id)

    # Channel setting -------------------------------------------------------------------------------------
    async def auto_reroll_default(self, channel_id: int) -> bool:
        own = await self.store.auto_reroll(channel_id)
        return self.settings.auto_reroll_default if own is None else own

    async def set_auto_reroll(self, guild_id: int, channel_id: int, on: bool) -> None:
        await self.store.set_auto_reroll(guild_id, channel_id, on, self.clock())

    # Scores ----------------------------------------------------------------------------------------------
    def job_changed(self, job: Job) -> None:
        """An engine subscriber: a take just posted gets its score queued (without holding up anything)."""
        if job.kind in TAKE_KINDS and job.state is JobState.POSTED:
            self.take_posted(job)

    def take_posted(self, job: Job) -> None:
        """Queue the take's score in the background."""
        task = asyncio.create_task(self._ensure_quietly(job.id), name=f"score-for-{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ensure_quietly(self, take_id: int) -> None:
        try:
            await self.ensure_score(take_id)
        except Exception:
            log.exception("could not queue the face score of take %d", take_id)

    async def no_score_reason(self, take: Take) -> str | None:
        """Why the take's clip will carry no face verdict (shown once on it), or None when it will be scored."""
        if self._status is not None and not self._status[0]:
            return "not checked: face checks are off on this bot right now."
        stored = await self.store.faces(take.anchor_version_id)
        if stored and not any(f.embedding is not None for f in stored):
            return "not checked: the anchor shows no single clear face (see /anchor show)."
        return None

    async def ensure_score(self, take_id: int) -> Job | None:
        """Queue the take's one score job unless it has one (safe to call any number of times)."""
        if await ConsistencyStore.score_job_of(self.db, take_id) is not None:
            return None
        take = await self.takes.get(take_id)
        if (
            take is None
            or take.state is not JobState.POSTED
            or not take.clip_path
            or not take.clip_message_id
        ):
            return None
        args = await self._score_args(take)
        if args is None:
            log.info("take %d: its anchor has no face to compare with; not scored", take_id)
            return None
        prepared = Prepared(args=args, price_micros=0, description="Face score of shot #{id}")
        try:
            job = await self.engine.enqueue(
                SCORE_KIND,
                prepared,
                guild_id=take.guild_id,
                channel_id=take.channel_id,
                user_id=take.user_id,
                parent_id=take.id,
                reply_to_message_id=take.clip_message_id,
            )
        except IntegrityError:  # queued meanwhile by another caller: one score per take
            return None
        job = await self.engine.set_messages(job, progress_message_id=take.clip_message_id)
        self.engine.wake()
        return job

    async def _score_args(self, take: Take) -> dict[str, object] | None:
        """What a take is scored against: its anchor's face, or each named character's (those with a face)."""
        args: dict[str, object] = {
            "take_id": take.id,
            "clip_path": take.clip_path,
            "anchor_version_id": take.anchor_version_id,
            "threshold": self.settings.threshold,
            "frames": self.settings.frames,
        }
        if take.cast:
            cast = []
            for position, member in enumerate(take.cast, 1):
                embeddings = await self.embeddings(member.version_id)
                if embeddings:
                    cast.append(
                        {
                            "character_id": member.character_id,
                            "name": member.name,
                            "position": position,
                            "embeddings": [e.hex() for e in embeddings],
                        }
                    )
            args["cast"] = cast
            return args if cast else None
        embeddings = await self.embeddings(take.anchor_version_id)
        args["embeddings"] = [e.hex() for e in embeddings]
        return args if embeddings else None

    async def sweep(self) -> int:
        """Queue the scores a crash skipped (between a take's posting and its score job); return how many."""
        since = self.clock() - SWEEP_WINDOW_S
        queued = 0
        for take_id in await self.store.unscored_takes(since, str(JobState.POSTED)):
            if await self.ensure_score(take_id) is not None:
                queued += 1
        return queued

    def start(self) -> None:
        for coro, name in ((self._sweep_quietly(), "score-sweep"), (self.engine_status(), "face-warmup")):
            task = asyncio.create_task(coro, name=name)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def status_words(self) -> str:
        """For /status, at once: what the face worker said when it started (it starts with the bot)."""
        return self._status[1] if self._status else "face checks: the face worker is starting"

    async def _sweep_quietly(self) -> None:
        try:
            n = await self.sweep()
            if n:
                log.info("queued %d face score(s) missed before the restart", n)
        except Exception:
            log.exception("face score sweep failed")

    async def stop(self) -> None:
        """Stop the background tasks (the face pool stays: `close_pool` ends it)."""
        for task in list(self._tasks):
            task.cancel()

    async def save_score(self, job: Job) -> StoredScore:
        o = job.outputs
        score = StoredScore(
            take_id=int(job.args["take_id"]),
            anchor_version_id=int(job.args["anchor_version_id"]),
            verdict=o["verdict"],
            score=o.get("score"),
            median_distance=o.get("median_distance"),
            frames_sampled=int(o["frames_sampled"]),
            frames_with_face=int(o["frames_with_face"]),
            frames_matching=int(o["frames_matching"]),
            threshold=float(o["threshold"]),
            cast=await self._cast_scores(job),
        )
        await self.store.put_score(score, self.clock())
        await self.store.put_cast_scores(score.take_id, list(score.cast), self.clock())
        return score

    async def _cast_scores(self, job: Job) -> tuple[CastScore, ...]:
        """The score against each named character; a take about one character scores against its anchor's."""
        o = job.outputs
        if o.get("cast"):
            return tuple(CastScore(**c) for c in o["cast"])
        who = await self.store.version_character(int(job.args["anchor_version_id"]))
        if who is None:
            return ()
        return (
            CastScore(
                character_id=who[0],
                name=who[1],
                position=1,
                verdict=o["verdict"],
                score=o.get("score"),
                frames_matching=int(o["frames_matching"]),
                frames_sampled=int(o["frames_sampled"]),
            ),
        )

    async def cast_record(self, character_id: int) -> CastRecord:
        return await self.store.cast_record(character_id)

    async def wants_auto_reroll(self, take: Take) -> bool:
        if take.auto_reroll_of is not None:  # an automatic re-roll is never re-rolled again
            return False
        if take.auto_reroll is not None:
            return take.auto_reroll
        return await self.auto_reroll_default(take.channel_id)

    async def auto_reroll(self, take: Take) -> Take:
        """The take's one automatic re-roll (the one queued before, if any). Raises BudgetExceeded."""
        existing = await ConsistencyStore.auto_reroll_of(self.db, take.id)
        if existing is not None:
            found = await self.takes.get(existing)
            assert found is not None
            return found
        try:
            return await self.takes.reroll(take.id, user_id=take.user_id, auto_reroll_of=take.id)
        except IntegrityError:
            found = await self.takes.get(await ConsistencyStore.auto_reroll_of(self.db, take.id) or 0)
            assert found is not None
            return found

    async def verdict_of(self, take_id: int) -> str | None:
        """A take's face verdict in words, once it is scored."""
        score = await self.store.score(take_id)
        return stored_verdict_text(score) if score is not None else None

    async def score_of(self, take_id: int) -> StoredScore | None:
        return await self.store.score(take_id)


__all__ = ["ConsistencyService", "ScoreSettings"]
