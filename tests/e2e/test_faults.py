"""Issue #8's engine rules, each proved end to end by making the fake fal or the fake Discord misbehave on cue."""

from __future__ import annotations

import asyncio

import pytest

from bot.jobs import JobState
from tests import faces_samples as fs
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
from tests.fakes.discord import (
    ADD_REACTIONS,
    ADMINISTRATOR,
    ALL_PERMISSIONS,
    ATTACH_FILES,
    EMBED_LINKS,
    MANAGE_MESSAGES,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    SEND_MESSAGES_IN_THREADS,
    USE_APPLICATION_COMMANDS,
    VIEW_CHANNEL,
    Faults,
    text_of,
)
from tests.fakes.fal_fake import Outcome

PRICE = 560_000


async def _totals(runner, fake, user="alice"):
    return await settled_totals(runner, fake, user)


async def _final_progress(fake, timeout=30.0):
    [progress] = progress_messages(fake)
    return await fake.wait_for(
        lambda: (
            (m := fake.messages[int(progress["id"])]) and ("Failed" in text_of(m) or is_posted_line(m)) and m
        ),
        timeout,
    )


async def _settled(runner, take_id=1, timeout=30.0):
    async with asyncio.timeout(timeout):
        while True:
            take = await runner.services.takes.get(take_id)
            if take is not None and take.is_final:
                return take
            await asyncio.sleep(0.05)


# Outputs are checked before anyone pays ----------------------------------------------------------------------
async def test_a_download_that_is_not_a_video_is_fetched_again_then_posted(
    bot, runner, fake_discord, fake_fal
):
    await set_anchor(fake_discord, samples.portrait_png())
    fake_fal.break_downloads("html", 1)
    await run_shot(fake_discord, "an error page first")
    [clip] = await wait_clips(fake_discord, 1)
    assert clip["_files"][0].data[4:8] == b"ftyp"
    assert await _totals(runner, fake_discord) == (PRICE, 0)


async def test_a_bad_output_twice_fails_releases_and_deletes_the_file(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png())
    fake_fal.break_downloads("truncated", 2)
    await run_shot(fake_discord, "truncated twice")
    final = await _final_progress(fake_discord)
    assert "not a playable video" in text_of(final) and "Nothing was charged" in text_of(final)
    assert clip_messages(fake_discord) == []
    assert await _totals(runner, fake_discord) == (0, 0)
    clips_dir = runner.services.settings.media_dir / "clips"
    assert not clips_dir.exists() or list(clips_dir.iterdir()) == []


# One fal job per take --------------------------------------------------------------------------------------
async def test_a_submit_fal_never_answered_is_not_sent_again(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png())
    fake_fal.reset_after_submit()  # fal creates the job, then the connection drops before the answer
    await run_shot(fake_discord, "accepted but unanswered")
    final = await _final_progress(fake_discord)
    assert "not sent again" in text_of(final) and "Nothing was charged" in text_of(final)
    await asyncio.sleep(0.5)  # many poll intervals: nothing may send it again
    assert len(fake_fal.submissions) == 1
    assert await _totals(runner, fake_discord) == (0, 0)


# A billed clip is never thrown away for a transient reason ---------------------------------------------------
async def test_transient_errors_on_submit_status_result_and_download_are_retried(
    bot, runner, fake_discord, fake_fal
):
    await set_anchor(fake_discord, samples.portrait_png())
    fake_fal.fail_next("submit", 1, status=503)  # refused before anything was created
    fake_fal.fail_next("status", 2, status=503)
    fake_fal.fail_result_once(500)
    fake_fal.break_downloads("cut", 1)
    await run_shot(fake_discord, "through every hiccup")
    [clip] = await wait_clips(fake_discord, 1, timeout=60)
    assert clip["_files"][0].data[4:8] == b"ftyp"
    assert len(fake_fal.submissions) == 1
    assert await _totals(runner, fake_discord) == (PRICE, 0)


# One slow job never delays another -------------------------------------------------------------------------
async def test_a_slow_status_answer_for_one_take_does_not_hold_back_anothers_clip(
    bot, runner, fake_discord, fake_fal
):
    await set_anchor(fake_discord, samples.portrait_png())
    bob = fake_discord.add_member("bob")
    fake_fal.script(Outcome.hold(), Outcome.complete(queued_polls=0, progress_polls=0))
    await run_shot(fake_discord, "the slow one")
    await fake_discord.wait_for(lambda: fake_fal.submissions and fake_fal.submissions[0].held)
    fake_fal.slow_next("status", 8.0)  # the held take's next status answer takes 8 s
    await asyncio.sleep(0.2)
    await run_shot(fake_discord, "the quick one", user=bob)
    [clip] = await wait_clips(fake_discord, 1, timeout=7)  # well before the slow answer comes back
    assert "the quick one" in text_of(clip)
    fake_fal.release()
    await wait_clips(fake_discord, 2, timeout=60)


async def test_progress_changes_only_with_the_state_not_with_every_poll(bot, runner, fake_discord, fake_fal):
    """#10, #19: a take polled 40 times and moved through 7 states is edited once: from "making the clip" (with a
    <t:R> tag clients tick themselves, so no edit for the time) straight to the line that points at its clip."""
    await set_anchor(fake_discord, samples.portrait_png())
    fake_fal.script(Outcome.complete(queued_polls=2, progress_polls=40))
    answer = await run_shot(fake_discord, "a long generation")
    assert "Making the clip" in text_of(answer) and "<t:" in text_of(answer)
    await wait_clips(fake_discord, 1, timeout=60)
    [progress] = progress_messages(fake_discord)
    path = f"/channels/{fake_discord.channel_id}/messages/{progress['id']}"
    await fake_discord.wait_for(lambda: is_posted_line(fake_discord.messages[int(progress["id"])]))
    await asyncio.sleep(0.3)
    edits = [r for r in fake_discord.requests if r.method == "PATCH" and r.path == path]
    assert len(edits) == 1 and "is posted" in str(edits[0].json), [str(r.json) for r in edits]


# Cancel means cancelled ------------------------------------------------------------------------------------
async def test_a_cancel_fal_does_not_confirm_leaves_the_take_running_and_charged(
    bot, runner, fake_discord, fake_fal
):
    await set_anchor(fake_discord, samples.portrait_png())
    fake_fal.script(Outcome.hold())
    await run_shot(fake_discord, "cannot stop this")
    await fake_discord.wait_for(lambda: fake_fal.submissions and fake_fal.submissions[0].held)
    [progress] = progress_messages(fake_discord)
    progress = await fake_discord.wait_for(
        lambda: (m := fake_discord.messages[int(progress["id"])]) and m["components"] and m
    )
    fake_fal.refuse_next_cancel(500)
    it = await fake_discord.click(
        int(progress["id"]), progress["components"][0]["components"][0]["custom_id"]
    )
    reply = await it.wait_reply()
    assert "could not be cancelled yet" in text_of(reply) and reply["_ephemeral"]
    assert (await runner.services.takes.get(1)).state in (JobState.SUBMITTED, JobState.RUNNING)
    assert await _totals(runner, fake_discord) == (0, PRICE)
    fake_fal.release()
    await wait_clips(fake_discord, 1)
    assert await _totals(runner, fake_discord) == (PRICE, 0)


# Posted exactly once ---------------------------------------------------------------------------------------
async def test_a_clip_discord_stored_but_answered_with_an_error_is_posted_once(
    bot, runner, fake_discord, fake_fal
):
    await set_anchor(fake_discord, samples.portrait_png())
    rule = fake_discord.faults.store_then_fail(when=lambda r: r.files, status=503)
    await run_shot(fake_discord, "stored, then 503")
    take = await _settled(runner)
    assert rule.hits == 1
    await asyncio.sleep(0.5)
    [clip] = clip_messages(fake_discord)
    assert take.state is JobState.POSTED and take.clip_message_id == int(clip["id"])
    assert await _totals(runner, fake_discord) == (PRICE, 0)


async def test_after_a_crash_in_a_busy_channel_the_clip_is_found_not_posted_again(
    runner, fake_discord, fake_fal
):
    await runner.start()
    await set_anchor(fake_discord, samples.portrait_png())
    fake_fal.script(Outcome.hold())
    await run_shot(fake_discord, "busy channel")
    await fake_discord.wait_for(lambda: fake_fal.submissions and fake_fal.submissions[0].held)
    [progress] = progress_messages(fake_discord)
    await fake_discord.faults.busy_channel(count=300, after=int(progress["id"]), dispatch=False)
    fake_fal.release()
    [clip] = await wait_clips(fake_discord, 1)
    await wait_posted(runner, fake_discord)
    await unrecord_post(runner)  # a crash between Discord storing the clip and the bot recording it
    await runner.stop()
    await runner.start()
    take = await _settled(runner)
    assert take.state is JobState.POSTED and take.clip_message_id == int(clip["id"])
    assert len(clip_messages(fake_discord)) == 1
    assert await _totals(runner, fake_discord) == (PRICE, 0)


async def test_without_attach_files_the_clip_is_posted_as_a_link(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png())
    fake_discord.bot_permissions = (
        VIEW_CHANNEL
        | SEND_MESSAGES
        | SEND_MESSAGES_IN_THREADS
        | EMBED_LINKS
        | READ_MESSAGE_HISTORY
        | ADD_REACTIONS
        | MANAGE_MESSAGES
        | USE_APPLICATION_COMMANDS
    )
    await run_shot(fake_discord, "no attach files")
    take = await _settled(runner)
    assert take.state is JobState.POSTED, take.error
    posted = fake_discord.messages[take.clip_message_id]
    assert (
        posted["_files"] == [] and "Attach Files" in text_of(posted) and fake_fal.base_url in text_of(posted)
    )
    assert await _totals(runner, fake_discord) == (PRICE, 0)


WITHOUT_HISTORY = ALL_PERMISSIONS & ~ADMINISTRATOR & ~READ_MESSAGE_HISTORY


async def test_without_read_message_history_the_posts_are_plain_not_replies(bot, runner, fake_discord, fake_fal):
    """Discord refuses a reply from a bot that may not read the channel's history (403 160002): where its
    permissions say so, the progress message and the clip are posted without the reply, and the clip is paid once."""
    await set_anchor(fake_discord, samples.portrait_png())
    fake_discord.bot_permissions = WITHOUT_HISTORY
    await run_shot(fake_discord, "no history")
    take = await _settled(runner)
    assert take.state is JobState.POSTED, take.error
    [clip] = clip_messages(fake_discord)
    assert clip.get("message_reference") is None
    assert fake_discord.requests_to("POST", "/channels/{channel_id}/messages", status=403) == []
    assert await _totals(runner, fake_discord) == (PRICE, 0)


async def test_a_reply_discord_refuses_is_posted_plain_and_paid_once(bot, runner, fake_discord, fake_fal):
    """The same when the bot's permissions changed without its knowing (a missed update): the refused reply is
    posted again plain, once, and its channel gets no reply from then on."""
    await set_anchor(fake_discord, samples.portrait_png())
    fake_discord.default_guild._bot_permissions = WITHOUT_HISTORY  # Discord's answer, not the bot's cache
    await run_shot(fake_discord, "history taken away")
    take = await _settled(runner)
    assert take.state is JobState.POSTED, take.error
    [clip] = clip_messages(fake_discord)
    assert clip.get("message_reference") is None
    refused = fake_discord.requests_to("POST", "/channels/{channel_id}/messages", status=403)
    assert refused and {r.json.get("message_reference") is not None for r in refused} == {True}
    assert await _totals(runner, fake_discord) == (PRICE, 0)


async def test_without_send_messages_shot_is_refused_before_anyone_pays(bot, runner, fake_discord, fake_fal):
    """/shot's answer needs no channel permission, but its clip does: refuse at once, queue and charge nothing."""
    await set_anchor(fake_discord, samples.portrait_png())
    fake_discord.bot_permissions = (
        VIEW_CHANNEL | EMBED_LINKS | ATTACH_FILES | READ_MESSAGE_HISTORY | USE_APPLICATION_COMMANDS
    )
    answer = await run_shot(fake_discord, "nowhere to post")
    assert "Send Messages" in text_of(answer) and answer["_ephemeral"]
    assert fake_fal.submissions == [] and progress_messages(fake_discord) == []
    assert await runner.services.takes.in_states(*JobState) == []
    assert await _totals(runner, fake_discord) == (0, 0)


async def test_a_clip_that_cannot_be_posted_gives_up_within_minutes_and_releases(
    runner, fake_discord, fake_fal
):
    await runner.start(delivery_give_up_s=1.0)
    await set_anchor(fake_discord, samples.portrait_png())
    fake_discord.faults.fail(Faults.CREATE, times=1000, status=503, when=lambda r: r.files)
    await run_shot(fake_discord, "Discord is down for clips")
    final = await _final_progress(fake_discord)
    assert "could not be posted here" in text_of(final) and "Nothing was charged" in text_of(final)
    assert clip_messages(fake_discord) == []
    assert await _totals(runner, fake_discord) == (0, 0)


# Nothing invisible is sent or charged ----------------------------------------------------------------------
async def test_a_prompt_of_invisible_characters_is_never_sent_or_charged(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png())
    answer = await run_shot(fake_discord, "\u200b\u200d\u2060\ufeff\u200e")
    assert "empty" in text_of(answer) and answer["_ephemeral"]
    assert fake_fal.submissions == [] and progress_messages(fake_discord) == []
    assert await _totals(runner, fake_discord) == (0, 0)


async def test_a_scored_take_costs_at_most_four_discord_requests(runner, fake_discord, fake_fal, tmp_path):
    """#10, #15, #19: at most 4 Discord requests per take, its face verdict included, for 7 state changes and about
    50 polls: /shot is answered with the progress message itself (one callback), which shows one text until the
    clip is posted; the clip (pinging its requester); the progress message's one edit to a line pointing at it;
    the verdict, one edit of the clip's embed. The bot adds no re-roll reaction of its own by default."""
    await runner.start(progress_edit_interval_s=1.0)
    await set_anchor(fake_discord, samples.png_bytes(fs.centred_portrait()))
    fake_fal.script(
        Outcome.complete(
            queued_polls=2, progress_polls=40, video=fs.anchor_clip(tmp_path / "a.mp4").read_bytes()
        )
    )
    since = len(fake_discord.requests)
    await run_shot(fake_discord, "merged edits")
    [clip] = await wait_clips(fake_discord, 1, timeout=60)
    [progress] = progress_messages(fake_discord)
    await fake_discord.wait_for(lambda: is_posted_line(fake_discord.messages[int(progress["id"])]))
    verdict = await fake_discord.wait_for(
        lambda: "face match" in text_of(fake_discord.messages[int(clip["id"])]), timeout=60
    )
    assert verdict
    await asyncio.sleep(1.5)  # nothing more is sent once the take is done
    edits = fake_discord.requests_to("PATCH /channels/{channel_id}/messages/{message_id}", since=since)
    assert sorted(r.path.rsplit("/", 1)[1] for r in edits) == sorted([progress["id"], clip["id"]])
    sent = [r for r in fake_discord.requests[since:] if r.method != "GET"]
    assert len(sent) == 4 and fake_discord.reactions.get(int(clip["id"])) is None, [r.path for r in sent]


async def test_a_shot_whose_interaction_expired_still_gets_one_progress_message(
    bot, runner, fake_discord, fake_fal
):
    """A stalled bot answers /shot after Discord's 3 s: the answer is refused (10062), so the take's progress
    message is posted in the channel instead; the take goes on and is charged once, for its clip."""
    await set_anchor(fake_discord, samples.portrait_png())
    fake_discord.response_deadline = 0.0  # every answer from now on comes too late
    await fake_discord.slash("shot", prompt="late answer")
    [clip] = await wait_clips(fake_discord, 1)
    [progress] = progress_messages(fake_discord)
    assert progress["_via"] == "channel" and clip["message_reference"]["message_id"] == progress["id"]
    assert fake_discord.requests_to(Faults.CALLBACK, status=404)
    assert await _totals(runner, fake_discord) == (PRICE, 0)


@pytest.mark.parametrize("drop", [False, True], ids=["5xx", "dropped"])
async def test_an_answer_discord_kept_but_did_not_confirm_is_the_progress_message(
    bot, runner, fake_discord, fake_fal, drop
):
    """Discord keeps /shot's answer but its reply is lost (a 500, whose re-send is refused as already
    acknowledged; or a dropped connection): the answer it kept is the take's progress message, edited to the end
    and linking the clip, not a take abandoned under a message that says it is being made."""
    await set_anchor(fake_discord, samples.portrait_png())
    fake_discord.faults.store_then_fail(route=Faults.CALLBACK, status=500, drop=drop)
    await fake_discord.slash("shot", prompt="an answer without a reply")
    [clip] = await wait_clips(fake_discord, 1)
    take = await _settled(runner)
    assert take.state is JobState.POSTED, take.error
    [progress] = progress_messages(fake_discord)
    assert progress["_via"] != "channel" and int(progress["id"]) == take.progress_message_id
    await fake_discord.wait_for(lambda: is_posted_line(fake_discord.messages[int(progress["id"])]))
    assert len(fake_fal.submissions) == 1 and await _totals(runner, fake_discord) == (PRICE, 0)


async def test_a_clip_fal_finished_as_its_deadline_passed_is_posted_not_thrown_away(
    runner, fake_discord, fake_fal
):
    """At the deadline the bot cancels; fal answers ALREADY_COMPLETED (the clip exists and is billed): the bot
    asks on for the result and posts it, charged once, instead of failing a take fal made."""
    await runner.start(fal_job_timeout_s=1, retry_backoff_base_s=1.5)
    await set_anchor(fake_discord, samples.portrait_png())
    fake_fal.script(Outcome.hold(then=Outcome.complete(queued_polls=0, progress_polls=0)))  # done when released
    await run_shot(fake_discord, "finished at the last moment")
    [sub] = await fake_discord.wait_for(lambda: [s for s in fake_fal.submissions if s.held])
    fake_fal.fail_next("status", 1, status=503)  # the poll that would see COMPLETED in time gets no answer
    fake_fal.release(sub.request_id)
    take = await _settled(runner)
    assert take.state is JobState.POSTED, take.error
    assert fake_fal.request_counts.get("cancel") and not sub.cancelled
    assert len(clip_messages(fake_discord)) == 1 and await _totals(runner, fake_discord) == (PRICE, 0)
