"""/shot end to end: anchor -> fal (fake) -> clip posted in the channel, with budget, re-rolls, failures and limits."""

from __future__ import annotations

import asyncio
import io
import re

import pytest

from bot.errors import UserError
from bot.jobs import JobState
from tests import samples
from tests.both_backends import both_backends  # noqa: F401  (every test here on both backends)
from tests.e2e.helpers import original_reply, set_anchor, settled_totals
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
from tests.fakes.media_samples import large_mp4

KLING = "fal-ai/kling-video/v3/pro/image-to-video"


async def _state(runner, shot_id: int) -> str:
    shot = await runner.services.takes.get(shot_id)
    return shot.state if shot else "missing"


async def _totals(runner, fake, user="alice"):
    return await settled_totals(runner, fake, user)


async def test_shot_from_anchor_to_posted_clip(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png(), name="Mara")
    anchor = await runner.services.anchors.resolve(fake_discord.channel_id)
    stored = runner.services.anchors.image_path(anchor.sha256).read_bytes()
    fake_fal.script(Outcome.complete(queued_polls=2, progress_polls=2))

    since = len(fake_discord.requests)
    answer = await run_shot(fake_discord, "  she turns to the window and smiles  ")
    # The answer to /shot IS the progress message: public, one callback, no pings; it names the anchor version.
    assert "Making the clip" in text_of(answer) and not answer["_ephemeral"] and not answer["_pinged"]
    assert "v1 \u201cMara\u201d" in text_of(answer) and "Shot 1 \u00b7 take 1" in text_of(answer)
    [clip] = await wait_clips(fake_discord, 1)

    [sub] = fake_fal.submissions
    assert sub.endpoint == KLING
    assert sub.arguments == {
        "start_image_url": sub.arguments["start_image_url"],
        "prompt": "she turns to the window and smiles",
        "duration": "5",
        "generate_audio": False,
    }
    assert (
        fake_fal.fetch_upload(sub.arguments["start_image_url"]) == stored
    )  # byte for byte the stored anchor

    # The clip: an mp4 reply to the progress message, with the facts in its embed, pinging its requester only.
    [progress] = progress_messages(fake_discord)
    assert clip["message_reference"]["message_id"] == progress["id"]
    assert clip["_files"][0].data[4:8] == b"ftyp"
    text = text_of(clip)
    for expected in (
        "Shot 1 \u00b7 take 1",
        "Kling v3 Pro",
        "$0.56",
        "v1",
        "5 s",
        "the anchor's shape",
        "sound off",
    ):
        assert expected in text, expected
    alice = fake_discord.member("alice")
    assert (
        clip["_pinged"] and [u["id"] for u in clip["mentions"]] == [str(alice)] and clip["_via"] == "channel"
    )
    assert [str(u) for u in clip["_allowed_mentions"]["users"]] == [str(alice)]
    assert clip["_allowed_mentions"]["parse"] == []
    assert any(c["components"][0]["custom_id"].startswith("shot:reroll:") for c in clip["components"])

    # Charged once, the quoted amount; the progress message shrinks to one line pointing at the clip.
    assert await _totals(runner, fake_discord) == (560_000, 0)
    await fake_discord.wait_for(lambda: is_posted_line(fake_discord.messages[int(progress["id"])]))
    shrunk = fake_discord.messages[int(progress["id"])]
    assert (
        shrunk["components"] == [] and shrunk["content"].endswith(f"/{clip['id']}") and not shrunk["_pinged"]
    )
    # It was the answer to /shot; its edits go through the channel with the bot token (an interaction token dies
    # after 15 minutes, and a Kling take can take longer).
    assert progress["_via"] == "callback" and progress["id"] == answer["id"]
    edits = fake_discord.requests_to("PATCH /channels/{channel_id}/messages/{message_id}")
    assert any(r.path.endswith(f"/messages/{progress['id']}") for r in edits)
    assert not fake_discord.requests_to("*", "/webhooks/{app_id}/{token}/messages/{message_id}", since=since)


async def test_anchor_upload_is_cached_and_reuploaded_when_stale(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png())
    await run_shot(fake_discord, "one")
    await wait_clips(fake_discord, 1)
    await run_shot(fake_discord, "two")
    await wait_clips(fake_discord, 2)
    assert len(fake_fal.uploads) == 1
    urls = {s.arguments["start_image_url"] for s in fake_fal.submissions}
    assert len(urls) == 1
    runner.services.anchors.upload_lifetime_s = 0  # every cached URL is now too old
    await run_shot(fake_discord, "three")
    await wait_clips(fake_discord, 3)
    assert len(fake_fal.uploads) == 2


async def test_aspect_ratio_crops_a_start_image_of_that_shape(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png((768, 1024)))
    await run_shot(fake_discord, "wide", aspect_ratio="16:9", duration=3)
    await wait_clips(fake_discord, 1)
    sub = fake_fal.submissions[0]
    assert sub.arguments["duration"] == "3"
    from PIL import Image

    with Image.open(io.BytesIO(fake_fal.fetch_upload(sub.arguments["start_image_url"]))) as img:
        w, h = img.size
    assert abs(w / h - 16 / 9) < 0.01
    assert await _totals(runner, fake_discord) == (3 * 112_000, 0)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"prompt": "   "}, "prompt is empty"),
        ({"prompt": "x" * 2501}, "2,501 characters"),
        ({"prompt": "fine", "duration": 30}, "3 to 15 seconds"),
    ],
    ids=["empty", "huge", "bad-duration"],
)
async def test_bad_requests_are_refused_and_nothing_is_spent(
    bot, runner, fake_discord, fake_fal, options, expected
):
    await set_anchor(fake_discord, samples.portrait_png())
    prompt = options.pop("prompt")
    answer = await run_shot(fake_discord, prompt, **options)
    assert expected in text_of(answer) and answer["_ephemeral"]
    assert fake_fal.submissions == []
    assert await _totals(runner, fake_discord) == (0, 0)
    assert progress_messages(fake_discord) == []


async def test_no_anchor_is_refused(bot, runner, fake_discord, fake_fal):
    answer = await run_shot(fake_discord, "hello")
    assert "no anchor" in text_of(answer)
    assert fake_fal.submissions == [] and fake_fal.uploads == []


async def test_exhausted_budget_is_refused(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png())
    await runner.services.budget.set_user_limit(fake_discord.guild_id, fake_discord.member("alice"), 500_000)
    answer = await run_shot(fake_discord, "hello")
    assert "left of your $0.50 budget" in text_of(answer)
    assert fake_fal.submissions == []
    assert await _totals(runner, fake_discord) == (0, 0)


async def test_the_clip_pings_its_requester_and_a_prompt_pings_nobody(bot, runner, fake_discord, fake_fal):
    """The clip pings the member who asked for it, through allowed_mentions; a prompt naming another member, a role,
    @everyone and @here pings none of them, in any message the take leads to."""
    await set_anchor(fake_discord, samples.portrait_png())
    alice, bob = fake_discord.member("alice"), fake_discord.add_member("bob")
    role = fake_discord._member_role_id
    await run_shot(fake_discord, f"@everyone look at <@{bob}> and <@&{role}> **now** @here", user="bob")
    [clip] = await wait_clips(fake_discord, 1)
    await wait_posted(runner, fake_discord, 1)
    assert [u["id"] for u in clip["mentions"]] == [str(bob)] and clip["mention_roles"] == []
    allowed = clip["_allowed_mentions"]
    assert (
        allowed["parse"] == []
        and [str(u) for u in allowed["users"]] == [str(bob)]
        and not allowed.get("roles")
    )
    for msg in fake_discord.channel_messages(fake_discord.channel_id):
        assert msg["mention_everyone"] is False and msg["mention_roles"] == [], text_of(msg)
        assert msg["_pinged"] == (msg["id"] == clip["id"]), text_of(msg)
        assert str(alice) not in [u["id"] for u in msg["mentions"]]
    assert "\\*\\*now\\*\\*" in text_of(clip)


FAILURES = [
    (Outcome.validation_error(), "refused this request as invalid; try other words or options"),
    (Outcome.content_policy(at="submit"), "content rules; try different words"),
    (Outcome.content_policy(at="result"), "content rules; try different words"),
    (Outcome.result_gone(), "no longer had the result"),
    (
        Outcome.completed_with_error(error="GPU fell over", error_type="runner_error"),
        "could not make this take",
    ),
    (Outcome.timeout(), "timed out"),
]


@pytest.mark.parametrize(
    ("outcome", "words"),
    FAILURES,
    ids=["422", "policy-submit", "policy-result", "result-gone", "completed-error", "timeout"],
)
async def test_failures_release_the_hold_and_say_what_happened(
    bot, runner, fake_discord, fake_fal, outcome, words
):
    await set_anchor(fake_discord, samples.portrait_png())
    fake_fal.script(outcome)
    await run_shot(fake_discord, "a shot that will fail")
    [progress] = progress_messages(fake_discord)
    final = await fake_discord.wait_for(
        lambda: (m := fake_discord.messages[int(progress["id"])]) and "Failed" in text_of(m) and m
    )
    text = text_of(final)
    assert words in text and "Nothing was charged; press Try again" in text
    assert not re.search(r"\bfal\b|GPU|runner|\b422\b|FAL_KEY", text), (
        text
    )  # plain words, no vendor internals
    assert [c["components"][0]["custom_id"] for c in final["components"]] == ["shot:retry:1"]
    assert await _totals(runner, fake_discord) == (0, 0)
    assert clip_messages(fake_discord) == []
    kinds = [r.kind for r in await runner.services.budget.store.ledger_rows(fake_discord.guild_id)]
    assert kinds == ["hold", "release"]


async def test_a_5xx_on_the_result_is_retried_until_the_job_timeout_then_released(
    runner, fake_discord, fake_fal
):
    """A server error is transient: the take stays where it is and asks again, and gives up only at the timeout."""
    await runner.start(fal_job_timeout_s=4)
    await set_anchor(fake_discord, samples.portrait_png())
    fake_fal.script(Outcome.server_error(status=500))
    await run_shot(fake_discord, "fal keeps failing")
    [progress] = progress_messages(fake_discord)
    final = await fake_discord.wait_for(
        lambda: (m := fake_discord.messages[int(progress["id"])]) and "Failed" in text_of(m) and m, 30
    )
    assert "Nothing was charged" in text_of(final)
    rid = fake_fal.submissions[0].request_id
    result_gets = [p for m, p in fake_fal.requests if m == "GET" and p.endswith(f"/{rid}")]
    assert len(result_gets) >= 2, result_gets  # asked again, not given up on the first 500
    assert len(fake_fal.submissions) == 1
    assert await _totals(runner, fake_discord) == (0, 0)
    kinds = [r.kind for r in await runner.services.budget.store.ledger_rows(fake_discord.guild_id)]
    assert kinds == ["hold", "release"]


async def test_cancel_button_cancels_at_fal_and_releases(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png())
    fake_fal.script(Outcome.hold())
    bob = fake_discord.add_member("bob", permissions=DEFAULT_MEMBER_PERMS)
    await run_shot(fake_discord, "never mind")
    await fake_discord.wait_for(lambda: fake_fal.submissions and fake_fal.submissions[0].held)
    [progress] = progress_messages(fake_discord)
    progress = await fake_discord.wait_for(
        lambda: (m := fake_discord.messages[int(progress["id"])]) and m["components"] and m
    )
    custom_id = progress["components"][0]["components"][0]["custom_id"]
    assert custom_id.startswith("shot:cancel:")
    # bob is neither the requester nor a moderator
    it = await fake_discord.click(int(progress["id"]), custom_id, user=bob)
    assert "Only the person who asked" in text_of(await original_reply(it))
    assert await _totals(runner, fake_discord) == (0, 560_000)
    it = await fake_discord.click(int(progress["id"]), custom_id)
    assert "cancelled" in text_of(await original_reply(it))
    assert fake_fal.submissions[0].cancelled
    await fake_discord.wait_for(lambda: "Cancelled" in text_of(fake_discord.messages[int(progress["id"])]))
    assert await _totals(runner, fake_discord) == (0, 0)
    fake_fal.release()
    await asyncio.sleep(
        20 * runner.services.settings.fal_poll_interval_s
    )  # every chance to (wrongly) deliver
    assert clip_messages(fake_discord) == []
    assert (await runner.services.takes.get(1)).state == "cancelled"


async def test_reroll_by_reaction_is_charged_to_the_reactor(runner, fake_discord, fake_fal):
    await runner.start(reroll_reaction_hint=True)
    await set_anchor(fake_discord, samples.portrait_png())
    bob = fake_discord.add_member("bob", permissions=DEFAULT_MEMBER_PERMS)
    await run_shot(fake_discord, "first take")
    [clip] = await wait_clips(fake_discord, 1)
    clip_id = int(clip["id"])
    # the bot offers the reaction itself; its own reaction must not re-roll
    await fake_discord.wait_for(
        lambda: any(u == fake_discord.bot_user_id for _, u in fake_discord.reactions.get(clip_id, []))
    )
    # a new anchor in the channel must not change the re-roll's start image
    first_url = fake_fal.submissions[0].arguments["start_image_url"]
    await set_anchor(fake_discord, samples.portrait_png(shade=220))

    await fake_discord.react(clip_id, "🔁", user=bob)
    clips = await wait_clips(fake_discord, 2)
    take2 = clips[1]
    assert "take 2" in text_of(take2)
    assert take2["message_reference"]["message_id"] == clip["id"]
    assert len(fake_fal.submissions) == 2
    assert fake_fal.submissions[1].arguments["start_image_url"] == first_url
    assert fake_fal.submissions[1].arguments["prompt"] == "first take"
    assert await _totals(runner, fake_discord, bob) == (560_000, 0)
    assert await _totals(runner, fake_discord, "alice") == (560_000, 0)
    # the bot took bob's reaction back off so he can re-roll again
    await fake_discord.wait_for(lambda: ("🔁", bob) not in fake_discord.reactions.get(clip_id, []))


async def test_double_reaction_within_seconds_counts_once(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png())
    await run_shot(fake_discord, "only once")
    [clip] = await wait_clips(fake_discord, 1)
    clip_id = int(clip["id"])
    alice = fake_discord.member("alice")
    await wait_posted(runner, fake_discord)
    await fake_discord.react(clip_id, "🔁")
    await fake_discord.wait_for(lambda: ("🔁", alice) not in fake_discord.reactions.get(clip_id, []))
    await fake_discord.react(clip_id, "🔁")
    await wait_clips(fake_discord, 2)
    shots = [
        s for s in await runner.services.takes.in_states(*JobState) if s.state not in ("failed", "cancelled")
    ]
    assert [s.take for s in shots] == [1, 2]
    assert len(fake_fal.submissions) == 2


async def test_reroll_by_button_by_second_member(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png())
    carol = fake_discord.add_member("carol", permissions=DEFAULT_MEMBER_PERMS)
    await run_shot(fake_discord, "button take", duration=10)
    [clip] = await wait_clips(fake_discord, 1)
    custom_id = clip["components"][0]["components"][0]["custom_id"]
    it = await fake_discord.click(int(clip["id"]), custom_id, user=carol)
    assert "charged to you" in text_of(await it.wait_reply())
    clips = await wait_clips(fake_discord, 2)
    assert "take 2" in text_of(clips[1])
    assert fake_fal.submissions[1].arguments["duration"] == "10"
    assert await _totals(runner, fake_discord, carol) == (1_120_000, 0)


async def test_reroll_refused_for_budget_gets_a_self_deleting_notice(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png())
    poor = fake_discord.add_member("poor", permissions=DEFAULT_MEMBER_PERMS)
    await runner.services.budget.set_user_limit(fake_discord.guild_id, poor, 100_000)
    await run_shot(fake_discord, "expensive")
    [clip] = await wait_clips(fake_discord, 1)
    await wait_posted(runner, fake_discord)
    await fake_discord.react(int(clip["id"]), "🔁", user=poor)
    notice = await fake_discord.wait_for(
        lambda: next(
            (m for m in fake_discord.messages.values() if "budget" in text_of(m) and "poor" in text_of(m)),
            None,
        )
    )
    assert not notice["_pinged"] and "$" not in text_of(notice)  # public: no figures
    await fake_discord.wait_for(lambda: fake_discord.messages[int(notice["id"])]["_deleted"], timeout=5)
    assert len(fake_fal.submissions) == 1
    assert await _totals(runner, fake_discord, poor) == (0, 0)


async def test_big_clip_is_reencoded_under_the_limit(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png())
    video = large_mp4()
    assert len(video) > 10 * 1024 * 1024
    fake_fal.script(Outcome.complete(video=video))
    await run_shot(fake_discord, "big one")
    [clip] = await wait_clips(fake_discord, 1, timeout=90)
    data = clip["_files"][0].data
    assert len(data) <= 10 * 1024 * 1024 and data[4:8] == b"ftyp"
    assert re.search(
        r"Made smaller \(\d+ MB → [\d.]+ MB\) to fit this server.s 10 MB upload limit", text_of(clip)
    )
    assert await _totals(runner, fake_discord) == (560_000, 0)


async def test_clip_after_interaction_token_expired_is_still_posted(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png())
    fake_fal.script(Outcome.hold())
    await run_shot(fake_discord, "slow one")
    await fake_discord.wait_for(lambda: fake_fal.submissions and fake_fal.submissions[0].held)
    fake_discord.clock.advance(16 * 60)
    fake_fal.release()
    [clip] = await wait_clips(fake_discord, 1)
    assert clip["_via"] == "channel"
    assert [r for r in fake_discord.requests if r.status == 401] == []
    assert await _totals(runner, fake_discord) == (560_000, 0)


async def test_concurrency_limits_and_queue(runner, fake_discord, fake_fal):
    await runner.start(max_shots_per_user=1, max_shots_global=2)
    await set_anchor(fake_discord, samples.portrait_png())
    bob = fake_discord.add_member("bob", permissions=DEFAULT_MEMBER_PERMS)
    fake_fal.script(*[Outcome.hold() for _ in range(4)])
    await run_shot(fake_discord, "alice 1")
    await run_shot(fake_discord, "alice 2")
    await run_shot(fake_discord, "bob 1", user=bob)
    await fake_discord.wait_for(lambda: len(fake_fal.submissions) == 2)
    # alice's second shot waits: she already has one in flight
    progress = progress_messages(fake_discord)
    waiting = await fake_discord.wait_for(
        lambda: next(
            (
                m
                for m in fake_discord.channel_messages(fake_discord.channel_id)
                if "alice 2" in text_of(m) and "bot's queue" in text_of(m)
            ),
            None,
        )
    )
    assert "position 1" in text_of(waiting)
    assert {s.arguments["prompt"] for s in fake_fal.submissions} == {"alice 1", "bob 1"}
    # a third user hits the global limit
    dave = fake_discord.add_member("dave", permissions=DEFAULT_MEMBER_PERMS)
    await run_shot(fake_discord, "dave 1", user=dave)
    await fake_discord.wait_for(
        lambda: any(
            "dave 1" in text_of(m) and "position 2" in text_of(m)
            for m in fake_discord.channel_messages(fake_discord.channel_id)
        )
    )
    assert len(fake_fal.submissions) == 2
    assert len(progress) == 3
    fake_fal.release(fake_fal.submissions[0].request_id)
    await fake_discord.wait_for(lambda: len(fake_fal.submissions) == 3)
    assert fake_fal.submissions[2].arguments["prompt"] == "alice 2"
    fake_fal.release()
    await fake_discord.wait_for(lambda: len(fake_fal.submissions) == 4)
    fake_fal.release()
    await wait_clips(fake_discord, 4)


async def test_dry_run_works_end_to_end_without_fal_key(runner, fake_discord, fake_fal):
    await runner.start(fal=False)
    await set_anchor(fake_discord, samples.portrait_png())
    answer = await run_shot(fake_discord, "a free test")
    assert "dry run" in text_of(answer)
    [clip] = await wait_clips(fake_discord, 1)
    assert "dry run" in text_of(clip) and "would cost $0.56" in text_of(clip)
    assert clip["_files"][0].data[4:8] == b"ftyp"
    assert fake_fal.submissions == [] and fake_fal.uploads == []
    assert await _totals(runner, fake_discord) == (0, 0)
    assert await runner.services.budget.store.ledger_rows(fake_discord.guild_id) == []


async def test_upload_fal_cannot_use_is_uploaded_again(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png())
    await run_shot(fake_discord, "first")
    await wait_clips(fake_discord, 1)
    fake_fal.expire_uploads()
    fake_fal.script(
        Outcome.validation_error(
            [
                {
                    "loc": ["body", "start_image_url"],
                    "msg": "Could not download the image",
                    "type": "file_download_error",
                }
            ]
        ),
        Outcome.complete(),
    )
    await run_shot(fake_discord, "second")
    await wait_clips(fake_discord, 2)
    assert len(fake_fal.uploads) == 2
    assert fake_fal.submissions[-1].arguments["start_image_url"] == fake_fal.uploads[-1].url
    assert await _totals(runner, fake_discord) == (2 * 560_000, 0)


async def test_clip_that_cannot_fit_is_posted_as_a_link(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png())
    fake_discord.attachment_size_limit = 20_000
    await run_shot(fake_discord, "too big for this server")
    msg = await fake_discord.wait_for(
        lambda: next(
            (
                m
                for m in fake_discord.channel_messages(fake_discord.channel_id)
                if "upload limit" in text_of(m)
            ),
            None,
        ),
        30,
    )
    text = text_of(msg)
    assert "could not be shrunk" in text and fake_fal.base_url in text
    assert msg["_files"] == []
    assert await _totals(runner, fake_discord) == (560_000, 0)


async def test_rate_limited_post_is_retried_and_posted_once(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png())
    fake_fal.script(Outcome.hold())
    await run_shot(fake_discord, "rate limited")
    await fake_discord.wait_for(lambda: fake_fal.submissions and fake_fal.submissions[0].held)
    fake_discord.fail_next("POST", r"^/channels/\d+/messages$", status=429, retry_after=0.3)
    fake_fal.release()
    await wait_clips(fake_discord, 1)
    assert [r.status for r in fake_discord.requests if r.status == 429] == [429]
    assert len(clip_messages(fake_discord)) == 1


async def test_unexpected_error_gets_an_incident_id_and_the_bot_keeps_going(
    bot, runner, fake_discord, caplog
):
    await runner.services.db.close()  # a real failure: the database is gone
    it = await fake_discord.slash("status")
    reply = text_of(await it.wait_reply())
    assert "incident" in reply
    incident = reply.split("`")[1]
    assert any(incident in r.getMessage() for r in caplog.records)
    await runner.services.db.open()
    it = await fake_discord.slash("status")
    assert "Anchorshot status" in text_of(await it.wait_reply())


async def test_a_refusal_past_discords_2000_characters_is_cut_to_fit_not_lost(
    bot, runner, fake_discord, monkeypatch
):
    """The last line of defence: a refusal longer than a message may be (user text echoed whole by a sentence
    written later) is cut with an ellipsis, whether it answers at once or fills a deferral; Discord would refuse
    it whole, and the member would get no answer at all."""
    words = "That is refused: " + "x" * 2500 + " THE END"

    async def refuse(*args: object, **kwargs: object) -> None:
        raise UserError(words)

    monkeypatch.setattr(runner.services.budget, "view", refuse)  # /budget answers at once
    monkeypatch.setattr(runner.services.voices, "sample", refuse)  # /voice show defers first
    for it in (await fake_discord.slash("budget"), await fake_discord.slash("voice show", name="Mara")):
        reply = await original_reply(it)
        text = text_of(reply)
        assert reply["_ephemeral"] and len(text) == 2000 and text.endswith("x\u2026"), text[-20:]
        assert text.startswith("That is refused: xxx") and "THE END" not in text


async def test_double_click_on_reroll_button_counts_once(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png())
    await run_shot(fake_discord, "click click")
    [clip] = await wait_clips(fake_discord, 1)
    custom_id = clip["components"][0]["components"][0]["custom_id"]
    first = await fake_discord.click(int(clip["id"]), custom_id)
    second = await fake_discord.click(int(clip["id"]), custom_id)
    assert "$0.56, charged to you only if its clip is posted" in text_of(await first.wait_reply())
    assert "You just asked for this" in text_of(await second.wait_reply())
    await wait_clips(fake_discord, 2)
    assert len(fake_fal.submissions) == 2
    assert await _totals(runner, fake_discord) == (2 * 560_000, 0)


async def test_cancel_of_a_job_fal_already_finished_is_refused(runner, fake_discord, fake_fal):
    await runner.start(fal_poll_interval_s=30)  # the bot will not hear about the finish for a while
    await set_anchor(fake_discord, samples.portrait_png())
    fake_fal.script(Outcome.complete(queued_polls=0, progress_polls=0))
    await run_shot(fake_discord, "already done")
    await fake_discord.wait_for(lambda: fake_fal.submissions)
    [progress] = progress_messages(fake_discord)

    async def submitted():
        take = await runner.services.takes.get(1)
        return take is not None and take.state is JobState.SUBMITTED

    await fake_discord.wait_for(submitted)
    it = await fake_discord.click(
        int(progress["id"]), progress["components"][0]["components"][0]["custom_id"]
    )
    assert "may have finished already" in text_of(await it.wait_reply())
    shot = await runner.services.takes.get(1)
    assert shot.state == "submitted"
    assert await _totals(runner, fake_discord) == (0, 560_000)  # still held: the clip is coming


async def test_upload_refused_as_too_large_is_refitted_or_linked(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png())
    fake_fal.script(Outcome.hold())
    await run_shot(fake_discord, "server lost its boost")  # the interaction said 10 MiB
    await fake_discord.wait_for(lambda: fake_fal.submissions and fake_fal.submissions[0].held)
    fake_discord.attachment_size_limit = 20_000  # now Discord takes 20 kB at most
    fake_fal.release()
    shot = None
    for _ in range(300):
        shot = await runner.services.takes.get(1)
        if shot.state in ("posted", "failed"):
            break
        await asyncio.sleep(0.05)
    assert shot.state == "posted", shot.error
    assert any(r.status == 413 for r in fake_discord.requests)
    posted = fake_discord.messages[shot.clip_message_id]
    assert all(len(f.data) <= 20_000 for f in posted["_files"])
    assert await _totals(runner, fake_discord) == (560_000, 0)


async def test_shot_in_a_thread_uses_the_parent_anchor_and_posts_in_the_thread(
    bot, runner, fake_discord, fake_fal
):
    await set_anchor(fake_discord, samples.portrait_png())
    parent_anchor = await runner.services.anchors.resolve(fake_discord.channel_id)
    thread = fake_discord.add_thread(fake_discord.channel_id, "takes")
    await fake_discord.wait_for(lambda: bot.get_channel(thread) is not None)
    it = await fake_discord.slash("shot", channel_id=thread, prompt="in the thread")
    assert "Making the clip" in text_of(await it.wait_reply())
    await fake_discord.wait_for(lambda: clip_messages(fake_discord, thread), 30)
    assert clip_messages(fake_discord) == []  # nothing in the parent channel
    shot = await runner.services.takes.get(1)
    assert shot.anchor_version_id == parent_anchor.id and shot.channel_id == thread
    assert fake_fal.fetch_upload(fake_fal.submissions[0].arguments["start_image_url"]) == (
        runner.services.anchors.image_path(parent_anchor.sha256).read_bytes()
    )


async def test_an_answer_without_its_message_id_is_looked_up_not_posted_again(
    bot, runner, fake_discord, fake_fal
):
    await set_anchor(fake_discord, samples.portrait_png())
    fake_discord.callback_answer_without_message_id = True
    answer = await run_shot(fake_discord, "no id in the answer")
    [clip] = await wait_clips(fake_discord, 1)
    assert [m["id"] for m in progress_messages(fake_discord)] == [answer["id"]]
    assert clip["message_reference"]["message_id"] == answer["id"]
    assert fake_discord.requests_to("GET", "/webhooks/{app_id}/{token}/messages/{message_id}")


async def test_reroll_clicked_while_the_clip_is_being_recorded_counts(bot, runner, fake_discord, fake_fal):
    # Discord stores the clip but answers 500 three times (discord.py sends it again after 1, 3 and 5 s; the nonce
    # keeps it one message), so the take is POSTING for about 9 s while its clip and Re-roll button are on screen.
    await set_anchor(fake_discord, samples.portrait_png())
    fake_discord.faults.store_then_fail(3, when=lambda r: r.files, status=500)
    await run_shot(fake_discord, "quick click")
    [clip] = await wait_clips(fake_discord, 1)
    assert (await runner.services.takes.get(1)).state is JobState.POSTING
    custom_id = clip["components"][0]["components"][0]["custom_id"]
    it = await fake_discord.click(int(clip["id"]), custom_id)
    assert "charged to you" in text_of(await it.wait_reply())
    clips = await wait_clips(fake_discord, 2, timeout=40)
    assert clips[1]["message_reference"]["message_id"] == clip["id"]
    assert len(fake_fal.submissions) == 2
    assert await _totals(runner, fake_discord) == (2 * 560_000, 0)
