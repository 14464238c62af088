"""Delivery at the edges found with the job-kind work (#15): nonces across databases, a deleted channel, a quiet
start and stop."""

from __future__ import annotations

import asyncio
import logging

from bot.jobs import JobState
from tests import samples
from tests.conftest import BotRunner
from tests.e2e.helpers import set_anchor, settled_totals
from tests.e2e.shots_helpers import clip_messages, run_shot, wait_posted
from tests.fakes.discord import Faults, text_of
from tests.fakes.fal_fake import Outcome


async def test_two_databases_taking_turns_in_one_channel_each_post_their_own_clip(
    fake_discord, fake_fal, tmp_path, face_pool
):
    """A restore, a fresh DATA_DIR or a staging copy reuses job ids: its clip must not be swallowed by Discord's
    nonce check (which answers a repeated nonce with the earlier message and creates nothing)."""
    first = BotRunner(fake_discord, fake_fal, tmp_path / "first", face_pool)
    second = BotRunner(fake_discord, fake_fal, tmp_path / "second", face_pool)
    turns = [(first, 1), (second, 1), (first, 2), (second, 2)]
    try:
        for n, (runner, posted) in enumerate(turns, 1):
            await runner.start()
            if posted == 1:
                await set_anchor(fake_discord, samples.portrait_png())
            await run_shot(fake_discord, f"turn {n}")
            await wait_posted(runner, fake_discord, count=posted)
            take = (await runner.services.takes.in_states(JobState.POSTED))[-1]
            clip = fake_discord.messages[take.clip_message_id]
            assert f"turn {n}" in text_of(clip), (n, text_of(clip))  # its own clip, not an earlier one
            await runner.stop()
    finally:
        await first.stop()
        await second.stop()
    clips = clip_messages(fake_discord)
    assert len(clips) == 4 and len({c["id"] for c in clips}) == 4
    assert [t for n in range(1, 5) for t in [f"turn {n}"] if any(t in text_of(c) for c in clips)] == [
        "turn 1",
        "turn 2",
        "turn 3",
        "turn 4",
    ]


async def test_a_restored_database_gets_a_new_instance_id(runner, tmp_path):
    from bot.db.backup import backup, restore

    await runner.start()
    before = runner.services.instance_id
    database = runner.services.settings.database_path
    copy = tmp_path / "copy.sqlite3"
    backup(database, copy)
    await runner.stop()
    restore(copy, database, force=True)
    await runner.start()
    assert runner.services.instance_id != before and len(runner.services.instance_id) == 8


async def test_a_take_whose_channel_is_deleted_ends_at_once_and_releases(
    bot, runner, fake_discord, fake_fal, caplog
):
    """Deleted while generating: looking for an earlier post (and posting) answer 404 Unknown Channel (10003): a
    definite answer, so the take ends (one log line, no stack trace), the hold is released, nothing retries."""
    await set_anchor(fake_discord, samples.portrait_png())
    fake_fal.script(Outcome.hold())
    await run_shot(fake_discord, "the room is about to go")
    take = await fake_discord.wait_for(
        lambda: _take_in(runner, JobState.SUBMITTED, JobState.RUNNING), timeout=15
    )
    assert await settled_totals(runner, fake_discord) == (0, take.price_micros)
    # The first post gets no answer a bot can trust (503), so the take then looks for it before posting again.
    fake_discord.faults.fail(Faults.CREATE, status=503, when=lambda r: r.files)
    fake_discord.delete_channel(fake_discord.channel_id)
    caplog.clear()
    fake_fal.release()
    ended = await fake_discord.wait_for(
        lambda: _take_in(runner, JobState.FAILED, JobState.POSTED), timeout=20
    )
    assert ended.state is JobState.FAILED and "channel" in (ended.error or "")
    assert await settled_totals(runner, fake_discord) == (0, 0)
    requests = len(fake_discord.requests)
    await asyncio.sleep(1.0)  # nothing keeps retrying: no more requests for it
    assert len(fake_discord.requests) == requests
    gone = [
        r
        for r in caplog.records
        if "gone" in r.getMessage() and r.levelno >= logging.INFO and r.name != "bot.jobs.engine"
    ]
    assert len(gone) == 1 and gone[0].exc_info is None  # one line, no stack trace
    assert not any(r.exc_info and "10003" in str(r.exc_info[1]) for r in caplog.records)


async def _take_in(runner, *states):
    takes = await runner.services.takes.in_states(*states)
    return takes[0] if takes else None


async def test_a_clean_start_and_stop_log_nothing_a_user_would_take_for_a_fault(runner, caplog):
    caplog.set_level(logging.INFO)
    await runner.start()
    await asyncio.sleep(0.5)  # the face worker warms up in the background
    await runner.stop()
    faults = [
        f"{r.name} {r.levelname}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.WARNING and not r.name.startswith("tests")
    ]
    assert faults == []
