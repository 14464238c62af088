"""Issue #19 end to end: everyday use by a team (who is told what, what it costs before paying, no dead ends)."""

from __future__ import annotations

import logging
import re

from bot.jobs import JobState
from tests import samples
from tests.e2e.helpers import set_anchor, settled_totals, text_reply
from tests.e2e.shots_helpers import clip_messages, progress_messages, run_shot, wait_clips, wait_posted
from tests.fakes.discord import DEFAULT_MEMBER_PERMS, text_of
from tests.fakes.fal_fake import Outcome


async def _final(fake, message: dict, words: str, timeout: float = 30.0) -> dict:
    return await fake.wait_for(
        lambda: (m := fake.messages[int(message["id"])]) and words in text_of(m) and m, timeout=timeout
    )


async def _status(fake) -> str:
    it = await fake.slash("status")
    return text_of(await text_reply(it))


async def test_a_refused_key_tells_members_plainly_and_the_admins_once(
    runner, fake_discord, fake_fal, caplog
):
    alerts = fake_discord.add_text_channel("bot-admins")
    await runner.start(alert_channel_id=alerts)
    await set_anchor(fake_discord, samples.portrait_png())
    bob = fake_discord.add_member("bob", permissions=DEFAULT_MEMBER_PERMS)
    caplog.set_level(logging.INFO)
    fake_fal.fail_next("submit", 2, status=401)
    await run_shot(fake_discord, "first try")
    await run_shot(fake_discord, "second try", user=bob)
    for progress in progress_messages(fake_discord):
        final = await _final(fake_discord, progress, "Failed")
        text = text_of(final)
        assert "Videos can't be made right now; the bot's admins have been told." in text
        assert not re.search(r"\bfal\b|FAL_KEY|(?<!\d)401(?!\d)", text), text  # not inside a member's id
    posted = [m for m in fake_discord.channel_messages(alerts)]
    assert len(posted) == 1 and "FAL_KEY" in text_of(posted[0]) and not posted[0]["_pinged"]
    errors = [
        r for r in caplog.records if r.levelno == logging.ERROR and "needs an operator" in r.getMessage()
    ]
    assert len(errors) == 1
    assert "Needs an admin" in await _status(fake_discord)
    assert await settled_totals(runner, fake_discord) == (0, 0)
    assert await settled_totals(runner, fake_discord, "bob") == (0, 0)

    # Once fal takes a job again, the fault is over: /status no longer lists it.
    await run_shot(fake_discord, "third try")
    await wait_clips(fake_discord, 1)
    assert "Needs an admin" not in await _status(fake_discord)
    assert len(fake_discord.channel_messages(alerts)) == 1


async def test_help_shows_each_member_what_they_may_use_the_anchor_and_prices(runner, fake_discord):
    await runner.start()
    bob = fake_discord.add_member("bob", permissions=DEFAULT_MEMBER_PERMS)
    it = await fake_discord.slash("help", user=bob)
    reply = await text_reply(it)
    text = text_of(reply)
    assert reply["_ephemeral"] and not reply["_pinged"]
    assert "ask a moderator to run /anchor set or /anchor generate" in text  # no anchor yet: who can act
    assert "`/shot`" in text and "/anchor set," not in text and "/budget-admin" not in text
    assert "5 s: $0.56 ($0.84 with sound)" in text and "$10.00 left of $10.00 per month (UTC)" in text

    await set_anchor(fake_discord, samples.portrait_png(), name="Mara")
    it = await fake_discord.slash("help")  # alice: a moderator and an admin
    reply = await text_reply(it)
    text = text_of(reply)
    assert "/anchor set, /anchor use, /anchor clear" in text and "/budget-admin" in text
    assert "v1 \u201cMara\u201d" in text
    assert (
        reply["embeds"][0]["thumbnail"]["url"] == reply["attachments"][0]["url"]
    )  # the anchor, as a thumbnail
    assert [a["description"] for a in reply["attachments"]] == ["The anchor, v1 \u201cMara\u201d"]


async def test_an_anchor_change_is_told_to_the_channel_once(runner, fake_discord):
    """Set by one member, it is seen by another in the channel (a public line with a thumbnail that pings nobody);
    the answer with the checklist stays private to whoever set it."""
    await runner.start()
    reply = await set_anchor(fake_discord, samples.portrait_png(), name="Mara")
    assert reply["_ephemeral"]
    public = [m for m in fake_discord.channel_messages(fake_discord.channel_id) if "\U0001f3ad" in text_of(m)]
    assert len(public) == 1 and not public[0]["_ephemeral"] and not public[0]["_pinged"]
    alice = fake_discord.member("alice")
    assert f"<@{alice}> made v1 \u201cMara\u201d this channel's anchor." in text_of(public[0])
    assert public[0]["embeds"][0]["thumbnail"]["url"] == public[0]["attachments"][0]["url"]
    await set_anchor(fake_discord, samples.portrait_png(shade=120))
    it = await fake_discord.slash("anchor use", version=1)
    await it.wait_reply()
    it = await fake_discord.slash("anchor clear")
    await it.wait_reply()
    lines = [
        text_of(m)
        for m in fake_discord.channel_messages(fake_discord.channel_id)
        if "\U0001f3ad" in text_of(m)
    ]
    # v2 is a new picture of the same main character, so it carries the character's name (#17)
    assert len(lines) == 4 and "made v2 \u201cMara\u201d this channel's anchor." in lines[1]
    assert "made v1 \u201cMara\u201d this channel's anchor again" in lines[2] and "cleared" in lines[3]


async def test_try_again_on_a_failed_take_makes_one_new_take_charged_once_on_delivery(
    bot, runner, fake_discord, fake_fal
):
    await set_anchor(fake_discord, samples.portrait_png())
    bob = fake_discord.add_member("bob", permissions=DEFAULT_MEMBER_PERMS)
    fake_fal.script(Outcome.result_gone())
    await run_shot(fake_discord, "a take that fails")
    [progress] = progress_messages(fake_discord)
    failed = await _final(fake_discord, progress, "Failed")
    buttons = [c for row in failed["components"] for c in row["components"]]
    assert [(b["label"], b["custom_id"]) for b in buttons] == [("Try again \u00b7 $0.56", "shot:retry:1")]
    it = await fake_discord.click(int(progress["id"]), "shot:retry:1", user=bob)
    answer = await text_reply(it)
    assert answer[
        "_ephemeral"
    ] and "Shot 1 \u00b7 take 2 is on its way: $0.56, charged to you only if" in text_of(answer)
    [clip] = await wait_clips(fake_discord, 1)
    assert clip["embeds"][0]["title"] == "Shot 1 \u00b7 take 2"
    assert len(fake_fal.submissions) == 2  # the failed one and its one new take
    assert await settled_totals(runner, fake_discord, "bob") == (560_000, 0)  # charged once, on delivery
    assert await settled_totals(runner, fake_discord) == (0, 0)  # the failed take cost alice nothing
    again = await fake_discord.click(int(progress["id"]), "shot:retry:1", user=bob)
    assert "just asked" in text_of(await text_reply(again))  # a double click counts once
    assert len(fake_fal.submissions) == 2


async def test_shot_numbers_count_per_server_without_gaps(bot, runner, fake_discord, fake_fal):
    """Two servers: each counts its own shots 1, 2, 3; a refused request leaves no gap; the same number in a
    clip's title, its footer and the budget's lines (job ids stay internal)."""
    other = fake_discord.add_guild("Second server", owner="alice")
    await set_anchor(fake_discord, samples.portrait_png())
    await set_anchor(fake_discord, samples.portrait_png(), channel_id=other.channel_id)
    alice = fake_discord.member("alice")
    await runner.services.budget.set_user_limit(
        other.guild_id, alice, 600_000
    )  # one shot there, then refused
    await run_shot(fake_discord, "home 1")
    await run_shot(fake_discord, "away 1", channel_id=other.channel_id)
    refused = await run_shot(fake_discord, "away refused", channel_id=other.channel_id)
    assert "budget" in text_of(refused) and refused["_ephemeral"]
    await run_shot(fake_discord, "home 2")
    await runner.services.budget.set_user_limit(other.guild_id, alice, 10_000_000)
    await run_shot(fake_discord, "away 2", channel_id=other.channel_id)
    await run_shot(fake_discord, "home 3")
    await wait_posted(runner, fake_discord, 5)

    def titles(channel_id: int) -> list[str]:
        clips = sorted(clip_messages(fake_discord, channel_id), key=lambda m: int(m["id"]))
        for m in clips:  # the footer starts with the title's number
            assert m["embeds"][0]["footer"]["text"].startswith(m["embeds"][0]["title"] + " \u00b7 ")
        return [f"{m['embeds'][0]['title']}: {m['embeds'][0]['description']}" for m in clips]

    assert titles(fake_discord.channel_id) == [
        "Shot 1 \u00b7 take 1: home 1",
        "Shot 2 \u00b7 take 1: home 2",
        "Shot 3 \u00b7 take 1: home 3",
    ]
    assert titles(other.channel_id) == ["Shot 1 \u00b7 take 1: away 1", "Shot 2 \u00b7 take 1: away 2"]
    home = await runner.services.budget.view(fake_discord.guild_id, alice)
    assert [r.description for r in home.recent][:3] == [
        "Shot 3 \u00b7 take 1",
        "Shot 2 \u00b7 take 1",
        "Shot 1 \u00b7 take 1",
    ]
    assert (
        max(t.id for t in await runner.services.takes.in_states(JobState.POSTED)) == 5
    )  # ids: internal only


async def test_duration_suggestions_carry_the_price_that_is_then_charged(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png())
    choices = await fake_discord.autocomplete("shot", "duration", "", prompt="a walk")
    assert [c["value"] for c in choices] == list(range(3, 16))
    names = {c["value"]: c["name"] for c in choices}
    assert names[5] == "5 s \u00b7 $0.56 (default)" and names[8] == "8 s \u00b7 $0.896"
    with_sound = await fake_discord.autocomplete("shot", "duration", "8", prompt="a walk", audio=True)
    assert [c["name"] for c in with_sound] == ["8 s \u00b7 $1.344 \u00b7 sound on"]
    await run_shot(fake_discord, "a walk", duration=8, audio=True)
    await wait_posted(runner, fake_discord, 1)
    assert await settled_totals(runner, fake_discord) == (1_344_000, 0)  # what the suggestion said


async def test_anchor_use_suggests_the_channels_versions(bot, runner, fake_discord):
    await set_anchor(fake_discord, samples.portrait_png(), name="Mara")
    await set_anchor(fake_discord, samples.portrait_png(shade=120))
    choices = await fake_discord.autocomplete("anchor use", "version", "")
    assert [c["value"] for c in choices] == [2, 1]
    assert choices[1]["name"].startswith("v1 \u201cMara\u201d \u00b7 3:4 \u00b7 set today")
    # both are pictures of the channel's main character, Mara (#17): her name finds both
    assert [c["value"] for c in await fake_discord.autocomplete("anchor use", "version", "mara")] == [2, 1]
    assert [c["value"] for c in await fake_discord.autocomplete("anchor use", "version", "zed")] == []
