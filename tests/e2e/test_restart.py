"""A subprocess bot killed with SIGKILL while three shots are at fal: after a restart each clip is posted once and
each user charged once."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time

from tests import samples
from tests.e2e.helpers import set_anchor, settled_totals, unrecord_post
from tests.e2e.shots_helpers import (
    clip_messages,
    is_posted_line,
    progress_messages,
    run_shot,
    wait_clips,
    wait_posted,
)
from tests.fakes.discord import DEFAULT_MEMBER_PERMS, text_of
from tests.fakes.fal_fake import Outcome


def _states(data_dir) -> list[str]:
    with sqlite3.connect(data_dir / "anchorshot.sqlite3") as conn:
        return [r[0] for r in conn.execute("SELECT state FROM jobs ORDER BY id")]


async def test_sigkill_with_three_shots_at_fal_then_restart(bot_process, fake_discord, fake_fal):
    await bot_process.start()
    await set_anchor(fake_discord, samples.portrait_png())
    bob = fake_discord.add_member("bob", permissions=DEFAULT_MEMBER_PERMS)
    carol = fake_discord.add_member("carol", permissions=DEFAULT_MEMBER_PERMS)
    fake_fal.script(Outcome.hold(), Outcome.hold(), Outcome.hold())
    for user in ("alice", bob, carol):
        answer = await run_shot(fake_discord, f"shot for {user}", user=user)
        assert "Making the clip" in text_of(answer)
    await fake_discord.wait_for(
        lambda: len(fake_fal.submissions) == 3 and all(s.held for s in fake_fal.submissions), 30
    )

    db_path = bot_process.data_dir / "anchorshot.sqlite3"

    def shot_rows() -> list[tuple[str, str | None]]:
        with sqlite3.connect(db_path) as conn:
            return conn.execute("SELECT state, request_id FROM jobs ORDER BY id").fetchall()

    # "At fal" as the bot knows it: every request id is in the database and fal reported the jobs running.
    await fake_discord.wait_for(lambda: [r[0] for r in shot_rows()] == ["running"] * 3, 30)
    bot_process.kill()
    assert {r[1] for r in shot_rows()} == {s.request_id for s in fake_fal.submissions}
    fake_fal.release()  # fal finishes the jobs while the bot is down
    assert clip_messages(fake_discord) == []

    await bot_process.start()
    clips = await wait_clips(fake_discord, 3, timeout=60)
    await asyncio.sleep(1.0)  # give a duplicate every chance to appear
    clips = clip_messages(fake_discord)
    assert len(clips) == 3
    assert sorted(c["embeds"][0]["description"] for c in clips) == sorted(
        f"shot for {u}" for u in ("alice", str(bob), str(carol))
    )
    assert len(fake_fal.submissions) == 3  # nothing was submitted twice
    bot_process.stop()

    with sqlite3.connect(db_path) as conn:
        states = conn.execute("SELECT state FROM jobs").fetchall()
        captures = conn.execute(
            "SELECT user_id, COUNT(*), SUM(amount) FROM ledger WHERE kind='capture' GROUP BY user_id"
        ).fetchall()
        open_holds = conn.execute("SELECT COUNT(*) FROM holds WHERE state='held'").fetchone()[0]
    assert [s[0] for s in states] == ["posted"] * 3
    assert sorted(captures) == sorted(
        [(fake_discord.member("alice"), 1, 560_000), (bob, 1, 560_000), (carol, 1, 560_000)]
    )
    assert open_holds == 0


async def test_a_restart_costs_no_progress_edit_for_takes_already_at_fal(bot_process, fake_discord, fake_fal):
    """#15 (scored takes at scale): a take at fal shows "Making the clip" until its clip is posted, so after a
    restart its progress message is edited once, to the line pointing at the clip, even when every state change
    is shown at once (edit interval 0): no edit says "Making the clip" again."""
    await bot_process.start()
    await set_anchor(fake_discord, samples.portrait_png())
    fake_fal.script(Outcome.hold(), Outcome.hold())
    for prompt in ("first", "second"):
        await run_shot(fake_discord, prompt)
    await fake_discord.wait_for(lambda: _states(bot_process.data_dir) == ["running"] * 2, 30)
    bot_process.kill()
    since, polls = len(fake_discord.requests), fake_fal.request_counts["status"]
    await bot_process.start(PROGRESS_EDIT_INTERVAL_S="0")
    await fake_discord.wait_for(lambda: fake_fal.request_counts["status"] >= polls + 2, 30)  # polled again
    fake_fal.release()
    await wait_clips(fake_discord, 2, timeout=60)
    progress = progress_messages(fake_discord)
    await fake_discord.wait_for(
        lambda: all(is_posted_line(fake_discord.messages[int(p["id"])]) for p in progress)
    )
    await asyncio.sleep(0.5)  # an extra edit has every chance to appear
    edits = fake_discord.requests_to("PATCH /channels/{channel_id}/messages/{message_id}", since=since)
    assert sorted(r.path.rsplit("/", 1)[1] for r in edits) == sorted(p["id"] for p in progress)
    bot_process.stop()


async def test_restart_marks_jobs_fal_no_longer_holds_as_failed_and_refunds(
    bot_process, fake_discord, fake_fal
):
    await bot_process.start()
    await set_anchor(fake_discord, samples.portrait_png())
    fake_fal.script(Outcome.hold(then=Outcome.result_gone()))
    await run_shot(fake_discord, "lost while down")
    await fake_discord.wait_for(lambda: fake_fal.submissions and fake_fal.submissions[0].held, 30)
    await fake_discord.wait_for(lambda: _states(bot_process.data_dir) == ["running"], 30)
    bot_process.kill()
    fake_fal.release()
    await bot_process.start()
    msg = await fake_discord.wait_for(
        lambda: next(
            (m for m in fake_discord.channel_messages(fake_discord.channel_id) if "Failed" in text_of(m)),
            None,
        ),
        30,
    )
    assert "no longer had the result" in text_of(msg) and "Nothing was charged" in text_of(msg)
    bot_process.stop()
    with sqlite3.connect(bot_process.data_dir / "anchorshot.sqlite3") as conn:
        kinds = [r[0] for r in conn.execute("SELECT kind FROM ledger ORDER BY id")]
    assert kinds == ["hold", "release"]


async def test_clip_posted_just_before_a_crash_is_not_posted_again(runner, fake_discord, fake_fal):
    """The bot posted the clip but died before recording it: on restart it finds the clip and charges once."""
    await runner.start()
    await set_anchor(fake_discord, samples.portrait_png())
    await run_shot(fake_discord, "posted then crashed")
    [clip] = await wait_clips(fake_discord, 1)
    await wait_posted(runner, fake_discord)
    await unrecord_post(runner)  # between the upload and its bookkeeping
    await runner.stop()

    await runner.start()
    shot = None
    for _ in range(200):
        shot = await runner.services.takes.get(1)
        if shot and shot.state == "posted":
            break
        await asyncio.sleep(0.05)
    assert shot is not None and shot.clip_message_id == int(clip["id"])
    assert len(clip_messages(fake_discord)) == 1
    view = await runner.services.budget.view(fake_discord.guild_id, fake_discord.member("alice"))
    assert (view.spent, view.held) == (560_000, 0)


async def test_shot_queued_just_before_a_crash_gets_one_progress_message(runner, fake_discord, fake_fal):
    """Killed after the shot and its hold were written but before its progress message was posted."""
    await runner.start()
    await set_anchor(fake_discord, samples.portrait_png())
    services = runner.services
    anchor = await services.anchors.resolve(fake_discord.channel_id)
    alice = fake_discord.member("alice")
    long_ago = time.time() - 120
    async with services.db.transaction() as conn:
        await conn.execute(
            "INSERT INTO jobs(id, kind, seq, ledger_key, guild_id, channel_id, user_id, args, endpoint, backend,"
            " price_micros, state, created_at, updated_at)"
            " VALUES (1, 'take', 1, 'shot:1', ?, ?, ?, ?, ?, 'fal', 560000, 'waiting', ?, ?)",
            (
                fake_discord.guild_id,
                fake_discord.channel_id,
                alice,
                json.dumps(
                    {
                        "prompt": "orphan",
                        "duration_s": 5,
                        "aspect_ratio": "anchor",
                        "audio": False,
                        "anchor_version_id": anchor.id,
                    }
                ),
                services.takes.spec.endpoint,
                long_ago,
                long_ago,
            ),
        )
        await services.budget.tx_hold(
            conn,
            job_key="shot:1",
            guild_id=fake_discord.guild_id,
            user_id=alice,
            amount=560_000,
            description="Shot #1 take 1",
        )
    await runner.stop()
    fake_fal.script(Outcome.complete(queued_polls=3, progress_polls=3))

    await runner.start()
    [clip] = await wait_clips(fake_discord, 1)
    await wait_posted(runner, fake_discord)
    progress = progress_messages(fake_discord)
    assert len(progress) == 1 and "orphan" in text_of(clip)
    assert clip["message_reference"]["message_id"] == progress[0]["id"]
    assert await settled_totals(runner, fake_discord, alice) == (560_000, 0)


async def test_answer_given_but_not_recorded_before_a_crash_is_found_not_posted_again(
    runner, fake_discord, fake_fal
):
    """/shot's answer is the take's progress message; a crash before its id is written must not give the take a
    second one: after the restart the bot finds its answer by the footer and keeps editing it."""
    await runner.start()
    await set_anchor(fake_discord, samples.portrait_png())
    fake_fal.script(Outcome.hold())
    answer = await run_shot(fake_discord, "answered, then crashed")
    await fake_discord.wait_for(lambda: fake_fal.submissions and fake_fal.submissions[0].held)
    await runner.services.db.execute("UPDATE jobs SET progress_message_id=NULL, reply_to_message_id=NULL")
    await runner.stop()
    await runner.start()
    fake_fal.release()
    [clip] = await wait_clips(fake_discord, 1)
    await wait_posted(runner, fake_discord)
    assert [m["id"] for m in progress_messages(fake_discord)] == [answer["id"]]
    take = await runner.services.takes.get(1)
    assert (
        take.progress_message_id == int(answer["id"])
        and clip["message_reference"]["message_id"] == answer["id"]
    )
    await fake_discord.wait_for(lambda: is_posted_line(fake_discord.messages[int(answer["id"])]))
    assert await settled_totals(runner, fake_discord) == (560_000, 0)
