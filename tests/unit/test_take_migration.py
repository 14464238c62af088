"""A database made by the code before the job engine (schema 4, rows written with that code's SQL) upgrades in
place: every take moves into `jobs` with its id, messages, state and outputs, so its hold `shot:{id}` still matches."""

from __future__ import annotations

import sqlite3

from bot.budget.service import BudgetService
from bot.db import SqliteDatabase
from bot.jobs import JobState
from bot.jobs.store import JobStore
from bot.takes.models import Take

# The shots rows exactly as the previous ShotStore.tx_insert/tx_update wrote them.
ROWS = [
    dict(
        id=1,
        guild_id=10,
        channel_id=20,
        user_id=30,
        root_shot_id=None,
        take=1,
        prompt="she smiles",
        negative_prompt="blur",
        duration_s=5,
        aspect_ratio="anchor",
        audio=1,
        anchor_version_id=1,
        endpoint="fal-ai/kling-video/v3/pro/image-to-video",
        backend="fal",
        price_micros=840_000,
        state="posted",
        request_id="req-1",
        queue_position=None,
        progress_message_id=101,
        reply_to_message_id=101,
        clip_message_id=102,
        upload_limit_bytes=10_485_760,
        output_url="https://fal.media/1.mp4",
        clip_path="/data/media/clips/shot-1.mp4",
        error=None,
        created_at=1.0,
        submitted_at=2.0,
        started_at=3.0,
        completed_at=4.0,
        finished_at=5.0,
        updated_at=5.0,
    ),
    dict(
        id=2,
        guild_id=10,
        channel_id=20,
        user_id=31,
        root_shot_id=1,
        take=2,
        prompt="she smiles",
        negative_prompt=None,
        duration_s=10,
        aspect_ratio="16:9",
        audio=0,
        anchor_version_id=1,
        endpoint="fal-ai/kling-video/v3/pro/image-to-video",
        backend="fal",
        price_micros=1_120_000,
        state="running",
        request_id="req-2",
        queue_position=None,
        progress_message_id=103,
        reply_to_message_id=102,
        clip_message_id=None,
        upload_limit_bytes=None,
        output_url=None,
        clip_path=None,
        error=None,
        created_at=6.0,
        submitted_at=7.0,
        started_at=8.0,
        completed_at=None,
        finished_at=None,
        updated_at=8.0,
    ),
    dict(
        id=3,
        guild_id=10,
        channel_id=20,
        user_id=30,
        root_shot_id=None,
        take=1,
        prompt="waits",
        negative_prompt=None,
        duration_s=3,
        aspect_ratio="1:1",
        audio=0,
        anchor_version_id=1,
        endpoint="fal-ai/kling-video/v3/pro/image-to-video",
        backend="fal",
        price_micros=336_000,
        state="failed",
        request_id=None,
        queue_position=2,
        progress_message_id=None,
        reply_to_message_id=None,
        clip_message_id=None,
        upload_limit_bytes=None,
        output_url=None,
        clip_path=None,
        error="fal refused it",
        created_at=9.0,
        submitted_at=None,
        started_at=None,
        completed_at=None,
        finished_at=10.0,
        updated_at=10.0,
    ),
]


async def test_shots_made_by_the_old_code_move_into_jobs_with_nothing_lost(tmp_path):
    path = tmp_path / "old.sqlite3"
    old = SqliteDatabase(path)
    await old.open(up_to=4)
    await old.execute(
        "INSERT INTO images(sha256, width, height, size_bytes, created_at) VALUES ('ab', 600, 800, 1000, 0)"
    )
    await old.execute(
        "INSERT INTO anchor_versions(id, guild_id, channel_id, version, sha256, set_by, set_at, width, height,"
        " source_format) VALUES (1, 10, 20, 1, 'ab', 30, 0, 600, 800, 'PNG')"
    )
    for row in ROWS:
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        await old.execute(f"INSERT INTO shots({cols}) VALUES ({marks})", tuple(row.values()))  # noqa: S608
    budget = BudgetService(old, default_limit_micros=10_000_000, period="month", max_limit_micros=100_000_000)
    await budget.hold(
        job_key="shot:2", guild_id=10, user_id=31, amount=1_120_000, description="Shot #1 take 2"
    )
    await old.close()

    new = SqliteDatabase(path)
    await new.open()
    try:
        tables = {
            r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        assert "shots" not in tables
        for row in ROWS:
            job = await JobStore.get(new, row["id"])
            assert job is not None and job.kind == "take" and job.ledger_key == f"shot:{row['id']}"
            take = Take.of(job)
            assert take.state is JobState(row["state"])
            assert take.take == row["take"] and take.root_id == (row["root_shot_id"] or row["id"])
            assert take.audio is bool(row["audio"])
            assert take.clip_message_id == row["clip_message_id"]
            assert take.output_url == row["output_url"] and take.clip_path == row["clip_path"]
            assert job.completed_at == row["completed_at"] and job.updated_at == row["updated_at"]
            for name in (
                "guild_id",
                "channel_id",
                "user_id",
                "prompt",
                "negative_prompt",
                "duration_s",
                "aspect_ratio",
                "anchor_version_id",
                "upload_limit_bytes",
                "endpoint",
                "backend",
                "price_micros",
                "request_id",
                "queue_position",
                "progress_message_id",
                "reply_to_message_id",
                "error",
                "created_at",
                "submitted_at",
                "started_at",
                "finished_at",
            ):
                assert getattr(take, name) == row[name], name
        # the old hold still settles through the new row's key
        budget = BudgetService(
            new, default_limit_micros=10_000_000, period="month", max_limit_micros=100_000_000
        )
        job = await JobStore.get(new, 2)
        assert job is not None and await budget.release(job.ledger_key)
        # and new jobs number on after the old ones
        assert await JobStore.next_seq(new, 1, "take") == 3
    finally:
        await new.close()
