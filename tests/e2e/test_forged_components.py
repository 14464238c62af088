"""Clicks and forms the bot cannot act on. Discord sends a component's custom id back as the bot made it, but a
modified client can send any: a button that names another server's take, a plan or an id no row has gets a polite
answer and changes nothing; a form's odd values too. And a click or form no live view holds (from before a restart,
or timed out) is answered as expired, never left to fail."""

from __future__ import annotations

import asyncio
import logging

from bot.jobs import JobState
from tests import samples
from tests.e2e.helpers import set_anchor, text_reply
from tests.e2e.shots_helpers import progress_messages, run_shot, wait_clips, wait_posted
from tests.e2e.test_cast import _cast_of_two
from tests.e2e.test_scenes import _buttons, _custom_ids, _scene_with_one_kept_take, _start
from tests.fakes.discord import (
    ADMINISTRATOR,
    ALL_PERMISSIONS,
    DEFAULT_MEMBER_PERMS,
    SEND_MESSAGES,
    text_of,
)
from tests.fakes.fal_fake import Outcome


async def _jobs(runner) -> list[tuple[int, str]]:
    return [(j.id, str(j.state)) for j in await runner.services.jobs.in_states(*JobState)]


def _errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def _other_server(fake_discord, bot, user: str, permissions: int):
    other = fake_discord.add_guild("Guild B", members=[])
    uid = other.add_member(user, permissions=permissions)
    await fake_discord.wait_for(lambda: bot.get_guild(other.guild_id) is not None)
    return other, uid


async def test_a_re_roll_of_another_servers_take_queues_nothing(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png())
    await run_shot(fake_discord, "a clip in server A")
    [clip] = await wait_clips(fake_discord, 1)
    await wait_posted(runner, fake_discord, 1)
    [(take_id, _)] = await _jobs(runner)
    other, mallory = await _other_server(fake_discord, bot, "mallory", DEFAULT_MEMBER_PERMS)
    before = await _jobs(runner)
    click = await fake_discord.forged_click(
        f"shot:reroll:{take_id}", channel_id=other.channel_id, user=mallory, like=clip
    )
    assert "belongs to another channel" in text_of(await text_reply(click))
    await asyncio.sleep(0.3)
    assert await _jobs(runner) == before and len(fake_fal.submissions) == 1


async def test_another_servers_moderator_cannot_cancel_a_take(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png())
    fake_fal.script(Outcome.hold())
    await run_shot(fake_discord, "held in server A")
    await fake_discord.wait_for(lambda: fake_fal.submissions and fake_fal.submissions[0].held)
    [progress] = progress_messages(fake_discord)
    [(take_id, _)] = await _jobs(runner)
    other, mod = await _other_server(fake_discord, bot, "mod-b", ADMINISTRATOR)
    click = await fake_discord.forged_click(
        f"shot:cancel:{take_id}", channel_id=other.channel_id, user=mod, like=progress
    )
    assert "belongs to another channel" in text_of(await text_reply(click))
    assert not fake_fal.submissions[0].cancelled
    assert (await runner.services.takes.get(take_id)).state != "cancelled"
    fake_fal.release()


async def test_an_id_no_row_can_have_is_answered_as_gone(bot, runner, fake_discord, caplog):
    await set_anchor(fake_discord, samples.portrait_png())
    await run_shot(fake_discord, "a clip")
    [clip] = await wait_clips(fake_discord, 1)
    await wait_posted(runner, fake_discord, 1)
    for custom_id in (
        "shot:reroll:99999999999999999999999",
        "scene:confirm:99999999999999999999999",
        "studio:use:424242:1",
    ):
        click = await fake_discord.forged_click(custom_id, channel_id=fake_discord.channel_id, like=clip)
        text = text_of(await text_reply(click))
        assert "no longer exist" in text or "not" in text, text
        assert "went wrong on my side" not in text
    assert not _errors(caplog), _errors(caplog)
    assert len(runner.services.studio._set_locks) == 0  # a click on a set that does not exist leaves nothing


async def test_a_length_typed_as_a_superscript_is_refused_politely(bot, runner, fake_discord, fake_fal, caplog):
    clip = await _scene_with_one_kept_take(runner, fake_discord, "she walks in")
    kept = fake_discord.messages[int(clip["id"])]
    it = await fake_discord.click(int(clip["id"]), _buttons(kept)["Continue"])
    form = await fake_discord.submit_modal(it, {"What happens next": "she sits down", "Length in seconds": "\u00b2"})
    assert "number of seconds" in text_of(await text_reply(form))
    assert not _errors(caplog), _errors(caplog)


async def test_confirm_where_the_bot_cannot_post_holds_and_sends_nothing(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png())
    await _start(fake_discord)
    plan = await text_reply(await fake_discord.slash("scene plan", shots="5s: a door | 5s: a look"))
    [confirm] = [c for c in _custom_ids(plan) if c.startswith("scene:confirm:")]
    fake_discord.bot_permissions = ALL_PERMISSIONS & ~ADMINISTRATOR & ~SEND_MESSAGES
    await fake_discord.wait_for(
        lambda: not bot.get_guild(fake_discord.guild_id).me.guild_permissions.send_messages
    )
    answer = text_of(await text_reply(await fake_discord.click(int(plan["id"]), confirm)))
    assert "can't post" in answer and "Nothing was charged" in answer
    await asyncio.sleep(0.3)
    assert fake_fal.submissions == [] and await runner.services.jobs.in_states(*JobState) == []


async def test_a_form_submitted_after_a_restart_is_answered(bot, runner, fake_discord, fake_fal):
    """Only persistent buttons outlive the process: a Continue form opened before a restart is answered (expired)
    rather than left to fail."""
    clip = await _scene_with_one_kept_take(runner, fake_discord, "she walks in")
    kept = fake_discord.messages[int(clip["id"])]
    it = await fake_discord.click(int(clip["id"]), _buttons(kept)["Continue"])
    await it.wait_response()
    await runner.stop()
    await runner.start()
    form = await fake_discord.submit_modal(it, {"What happens next": "she sits down", "Length in seconds": "5"})
    assert "expired" in text_of(await text_reply(form))
    assert len(fake_fal.submissions) == 1


async def test_go_on_without_pressed_after_a_restart_is_answered(runner, fake_discord, fake_fal):
    await runner.start(fal_endpoint="fal-ai/kling-video/v2.5-turbo/pro/image-to-video")
    await _cast_of_two(fake_discord)
    answer = await run_shot(fake_discord, "Mara and Grace talk")
    [button] = [b for row in answer["components"] for b in row["components"]]
    await runner.stop()
    await runner.start(fal_endpoint="fal-ai/kling-video/v2.5-turbo/pro/image-to-video")
    click = await fake_discord.click(int(answer["id"]), button["custom_id"])
    assert "expired" in text_of(await text_reply(click)) and fake_fal.submissions == []

