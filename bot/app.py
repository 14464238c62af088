"""Wiring: the one place that builds every service and registers every kind of job (no discord here).

`open_services` opens the database and the HTTP session, builds the services and registers the job kinds with the
engine; nothing runs yet. The bot calls `Services.start()` once its chat side is loaded (setup_hook) and
`Services.stop()` when it closes; leaving `open_services` stops and closes everything.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bot.alerts import Alerts
from bot.anchors.service import AnchorService
from bot.budget.service import BudgetService
from bot.consistency.advice import prompt_advice
from bot.consistency.kind import FaceScoreKind
from bot.consistency.pool import FacePool
from bot.consistency.service import ConsistencyService, ScoreSettings
from bot.db import Database, open_database
from bot.db.kv import KeyValueStore
from bot.fal import models as fal_models
from bot.fal.dryrun import DryRunGateway
from bot.fal.gateway import FalGateway, Gateway
from bot.fal.models import endpoint_spec
from bot.fal.pricing import PriceTable
from bot.housekeeping import ClipSweeper
from bot.jobs import EngineConfig, JobEngine, LocalKind, RemoteKind
from bot.money import usd_to_micros
from bot.scenes.kind import ExportKind
from bot.scenes.service import SceneService
from bot.settings import Settings
from bot.studio.angles import AnglesKind
from bot.studio.kind import CandidatesKind
from bot.studio.service import StudioService
from bot.takes.kind import TakeKind
from bot.takes.service import TakeService
from bot.takes.storyboard import PartKind, StoryboardKind
from bot.voices.kind import VoiceKind
from bot.voices.service import VoiceService
from bot.voices.store import VoiceStore

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything the cogs use, owned by `open_services`."""

    settings: Settings
    db: Database
    kv: KeyValueStore
    gateway: Gateway
    anchors: AnchorService
    budget: BudgetService
    jobs: JobEngine
    takes: TakeService
    http: aiohttp.ClientSession
    consistency: ConsistencyService
    studio: StudioService
    sweeper: ClipSweeper
    alerts: Alerts
    scenes: SceneService
    voices: VoiceService
    instance_id: str  # random, once per database: keeps message nonces apart between databases
    started_at: float = field(default_factory=time.time)

    def start(self) -> None:
        """Start the background work: the job engine, the face warm-up and score sweep, the clip sweeper."""
        self.jobs.start()
        self.consistency.start()
        self.scenes.start_background()
        self.sweeper.start()

    async def stop(self) -> None:
        """Stop the background work (safe to call twice)."""
        await self.sweeper.stop()
        await self.jobs.stop()
        await self.consistency.stop()
        await self.scenes.stop()


def lease_identity(settings: Settings) -> str:
    """Where this process runs, for its job leases: the host and the shards (a run started again in the same place
    takes its predecessor's jobs on at once instead of after JOB_LEASE_S)."""
    shards = ",".join(str(i) for i in settings.shard_ids) if settings.shard_ids else "all"
    return f"{socket.gethostname()}/shards-{shards}"


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        poll_interval_s=settings.fal_poll_interval_s,
        max_global=settings.max_shots_global,
        max_per_user=settings.max_shots_per_user,
        job_timeout_s=settings.fal_job_timeout_s,
        delivery_give_up_s=settings.delivery_give_up_s,
        poll_concurrency=settings.poll_concurrency,
        delivery_concurrency=settings.delivery_concurrency,
        local_concurrency=settings.local_job_concurrency,
        step_timeout_s=settings.step_timeout_s,
        backoff_base_s=settings.retry_backoff_base_s,
        backoff_cap_s=settings.retry_backoff_cap_s,
        # One SQLite file has one process; on PostgreSQL every process works the queue, each job under a lease.
        lease_s=settings.job_lease_s if settings.postgres_url else None,
        lease_identity=lease_identity(settings),
    )


def make_gateway(settings: Settings, http: aiohttp.ClientSession) -> Gateway:
    if settings.dry_run:
        return DryRunGateway(settings.media_dir / "dry-run")
    return FalGateway(
        settings.fal_key.get_secret_value().strip(),
        session=http,
        max_concurrency=settings.fal_max_concurrency,
    )


@asynccontextmanager
async def open_services(settings: Settings, *, face_pool: FacePool | None = None) -> AsyncIterator[Services]:
    """Open the database and HTTP session, build the services and register the kinds; close all on exit.

    `face_pool`: a face worker pool to use instead of a new one (tests share one across bots)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    fal_models.configure(settings.fal_model_ids)
    db = open_database(settings.postgres_url, settings.database_path)
    await db.open()
    http = aiohttp.ClientSession()
    gateway = make_gateway(settings, http)
    pool = face_pool or FacePool(settings.face_workers)
    try:
        services = await build_services(settings, db, http, gateway, pool)
        try:
            yield services
        finally:
            await services.stop()
    finally:
        if face_pool is None:
            await asyncio.to_thread(pool.shutdown)
        await gateway.close()
        await http.close()
        await db.close()


def make_sweeper(settings: Settings, clips_dir: Path, scenes: SceneService) -> ClipSweeper:
    """Old clips go after CLIP_RETENTION_DAYS; a scene's kept takes stay as long as the scene."""
    return ClipSweeper(
        clips_dir,
        retention_days=settings.clip_retention_days,
        interval_s=settings.housekeeping_interval_s,
        keep=scenes.kept_clips,
    )


async def build_services(
    settings: Settings, db: Database, http: aiohttp.ClientSession, gateway: Gateway, pool: FacePool
) -> Services:
    """Every service, and every kind of job registered with the engine (here and nowhere else)."""
    prices = PriceTable(settings.price_overrides)
    anchors = AnchorService(
        db, settings.media_dir, session=http, upload_lifetime_s=settings.fal_upload_lifetime_s
    )
    budget = make_budget(settings, db)
    jobs = JobEngine(
        db, ledger=budget, backend=gateway.name, charge=not settings.dry_run, config=engine_config(settings)
    )
    alerts = Alerts()
    take_kind = make_take_kind(settings, anchors, gateway, alerts)
    studio = make_studio(settings, db, jobs, anchors, gateway, budget, prices, alerts)
    takes = TakeService(
        jobs,
        take_kind,
        anchors=anchors,
        prices=prices,
        default_duration_s=settings.default_duration_s,
        angles=studio,
        advise=prompt_advice,
    )
    consistency = ConsistencyService(
        db, engine=jobs, takes=takes, anchors=anchors, pool=pool, settings=score_settings(settings)
    )
    anchors.faces = consistency  # consistency reads anchors, anchors ask it for face checks: wired once built
    takes.auto_reroll_default = consistency.auto_reroll_default  # the same cycle: a take says if it re-rolls
    scenes, scene_kinds = make_scenes(settings, db, jobs, takes, take_kind, gateway, alerts)
    voices = make_voices(settings, db, jobs, anchors, gateway, prices, http, alerts)
    takes.voices = voices  # a shot with sound that names a voiced character carries its voice
    takes.max_cast = settings.cast_per_shot
    for kind in (take_kind, *studio.kinds, FaceScoreKind(consistency), *scene_kinds, voices.kind):
        jobs.register(kind)
    jobs.subscribe(consistency)  # a posted take queues its face score
    jobs.subscribe(scenes)  # a posted storyboard is cut into its shots' takes
    kv = KeyValueStore(db)
    return Services(
        settings=settings,
        db=db,
        kv=kv,
        gateway=gateway,
        anchors=anchors,
        budget=budget,
        jobs=jobs,
        takes=takes,
        http=http,
        consistency=consistency,
        studio=studio,
        sweeper=make_sweeper(settings, take_kind.clips_dir, scenes),
        instance_id=await kv.instance_id(),
        alerts=alerts,
        scenes=scenes,
        voices=voices,
    )


def make_take_kind(
    settings: Settings,
    anchors: AnchorService,
    gateway: Gateway,
    alerts: Alerts,
    kind: type[TakeKind] = TakeKind,
) -> TakeKind:
    return kind(
        anchors=anchors,
        gateway=gateway,
        spec=endpoint_spec(settings.fal_endpoint),
        clips_dir=settings.media_dir / "clips",
        timeout_minutes=settings.fal_job_timeout_s // 60,
        alerts=alerts,
    )


def make_studio(
    settings: Settings,
    db: Database,
    jobs: JobEngine,
    anchors: AnchorService,
    gateway: Gateway,
    budget: BudgetService,
    prices: PriceTable,
    alerts: Alerts,
) -> StudioService:
    """The anchor studio with its kinds (anchor candidates, angles), registered by the caller."""
    root = settings.media_dir / "candidates"
    kinds = [
        k(anchors=anchors, gateway=gateway, ledger=budget, root=root, alerts=alerts)
        for k in (CandidatesKind, AnglesKind)
    ]
    return StudioService(db, jobs, kinds=kinds, anchors=anchors, prices=prices, root=root)


def make_scenes(
    settings: Settings,
    db: Database,
    jobs: JobEngine,
    takes: TakeService,
    take_kind: TakeKind,
    gateway: Gateway,
    alerts: Alerts,
) -> tuple[SceneService, tuple[LocalKind | RemoteKind, ...]]:
    """Scenes and their kinds: a storyboard (several shots in one call), its parts, the export."""
    storyboard = make_take_kind(settings, take_kind.anchors, gateway, alerts, StoryboardKind)
    export = ExportKind(settings.media_dir / "exports")
    scenes = SceneService(
        db, jobs, takes=takes, anchors=take_kind.anchors, storyboard=storyboard.outlet, export=export
    )
    return scenes, (storyboard, PartKind(take_kind), export)


def make_voices(
    settings: Settings,
    db: Database,
    jobs: JobEngine,
    anchors: AnchorService,
    gateway: Gateway,
    prices: PriceTable,
    http: aiohttp.ClientSession,
    alerts: Alerts,
) -> VoiceService:
    """Voices and their kind (create-voice), registered by the caller."""
    kind = VoiceKind(
        store=VoiceStore(db), gateway=gateway, samples_dir=settings.media_dir / "voices", alerts=alerts
    )
    return VoiceService(db, jobs, kind, anchors=anchors, prices=prices, session=http)


def make_budget(settings: Settings, db: Database) -> BudgetService:
    return BudgetService(
        db,
        default_limit_micros=usd_to_micros(settings.default_budget_usd),
        period=settings.budget_period,
        max_limit_micros=usd_to_micros(settings.max_budget_usd),
    )


def score_settings(settings: Settings) -> ScoreSettings:
    return ScoreSettings(
        threshold=settings.face_match_threshold,
        frames=settings.face_score_frames,
        auto_reroll_default=settings.auto_reroll_default,
    )
