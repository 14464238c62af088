"""Wiring: build every service from the settings (no discord here)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp

from bot.anchors.service import AnchorService
from bot.budget.service import BudgetService
from bot.consistency.advice import prompt_advice
from bot.consistency.kind import FaceScoreKind
from bot.consistency.pool import FacePool
from bot.consistency.service import ConsistencyService, ScoreSettings
from bot.db.database import Database
from bot.db.kv import KeyValueStore
from bot.fal import models as fal_models
from bot.fal.dryrun import DryRunGateway
from bot.fal.gateway import FalGateway, Gateway
from bot.fal.models import endpoint_spec
from bot.fal.pricing import PriceTable
from bot.housekeeping import ClipSweeper
from bot.jobs import EngineConfig, JobEngine
from bot.money import usd_to_micros
from bot.settings import Settings
from bot.studio.service import StudioService
from bot.takes.kind import TakeKind
from bot.takes.service import TakeService


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
    started_at: float = field(default_factory=time.time)
    sweeper: ClipSweeper | None = None
    studio: StudioService | None = None


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
    )


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    """Open the database and HTTP session, build the services, and close everything on exit."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    fal_models.configure(settings.fal_model_ids)
    spec = endpoint_spec(settings.fal_endpoint)
    db = Database(settings.database_path)
    await db.open()
    http = aiohttp.ClientSession()
    gateway: Gateway
    if settings.dry_run:
        gateway = DryRunGateway(settings.media_dir / "dry-run")
    else:
        gateway = FalGateway(
            settings.fal_key.get_secret_value().strip(),
            session=http,
            max_concurrency=settings.fal_max_concurrency,
        )
    anchors = AnchorService(
        db, settings.media_dir, session=http, upload_lifetime_s=settings.fal_upload_lifetime_s
    )
    budget = BudgetService(
        db,
        default_limit_micros=usd_to_micros(settings.default_budget_usd),
        period=settings.budget_period,
        max_limit_micros=usd_to_micros(settings.max_budget_usd),
    )
    jobs = JobEngine(
        db, ledger=budget, backend=gateway.name, charge=not settings.dry_run, config=engine_config(settings)
    )
    studio = StudioService(
        db,
        jobs,
        anchors=anchors,
        gateway=gateway,
        prices=PriceTable(settings.price_overrides),
        root=settings.media_dir / "candidates",
    )
    takes = TakeService(
        jobs,
        TakeKind(anchors=anchors, gateway=gateway, spec=spec, clips_dir=settings.media_dir / "clips"),
        anchors=anchors,
        prices=PriceTable(settings.price_overrides),
        default_duration_s=settings.default_duration_s,
        angles=studio,
        advise=prompt_advice,
    )
    consistency = ConsistencyService(
        db,
        engine=jobs,
        takes=takes,
        anchors=anchors,
        pool=FacePool(settings.face_workers),
        settings=ScoreSettings(
            threshold=settings.face_match_threshold,
            frames=settings.face_score_frames,
            auto_reroll_default=settings.auto_reroll_default,
        ),
    )
    jobs.register(FaceScoreKind(consistency))
    anchors.faces = consistency  # consistency reads anchors, anchors ask it for face checks: wired once built
    takes.kind.after_posted.append(consistency.take_posted)
    consistency.start()
    sweeper = ClipSweeper(
        settings.media_dir / "clips",
        retention_days=settings.clip_retention_days,
        interval_s=settings.housekeeping_interval_s,
    )
    sweeper.start()
    try:
        yield Services(
            settings=settings,
            db=db,
            kv=KeyValueStore(db),
            gateway=gateway,
            anchors=anchors,
            budget=budget,
            jobs=jobs,
            takes=takes,
            http=http,
            consistency=consistency,
            sweeper=sweeper,
            studio=studio,
        )
    finally:
        await sweeper.stop()
        await jobs.stop()
        await consistency.stop()
        await gateway.close()
        await http.close()
        await db.close()
