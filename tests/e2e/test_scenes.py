"""Issue #16 end to end: scenes through the fake Discord and the fake fal, with real mp4s decoded to check them."""

from __future__ import annotations

import asyncio
import io
import re
import time
from pathlib import Path

import av
import numpy as np
from PIL import Image

from bot.jobs import JobState
from bot.scenes.store import SceneStore
from tests import faces_samples as fs
from tests import samples
from tests.both_backends import both_backends  # noqa: F401  (every test here on both backends)
from tests.e2e.helpers import set_anchor, settled_totals, text_reply
from tests.e2e.shots_helpers import clip_messages, run_shot, wait_clips, wait_posted
from tests.fakes.discord import DEFAULT_MEMBER_PERMS, text_of
from tests.fakes.fal_fake import Outcome
from tests.fakes.media_samples import indexed_clip, read_index, speech_wav

KLING = "fal-ai/kling-video/v3/pro/image-to-video"
PRICE_S = 112_000  # Kling v3 Pro, sound off, a second


async def _reply(it) -> dict:
    return await text_reply(it)


async def _start(fake, name: str = "Opening", user: str | int = "alice") -> dict:
    return await _reply(await fake.slash("scene start", user=user, name=name))


def _buttons(message: dict) -> dict[str, str]:
    """label -> custom id of a message's buttons."""
    return {
        b.get("label", ""): b.get("custom_id", "")
        for row in message.get("components") or []
        for b in row.get("components") or []
    }


def _custom_ids(message: dict) -> list[str]:
    return [c for c in _buttons(message).values() if c]


def _frames(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _duration(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        return frames / float(stream.average_rate or 24)


def _close(a: np.ndarray, b: np.ndarray, tolerance: float = 12.0) -> bool:
    """Two pictures are the same frame (re-encoding and scaling allowed): mean absolute difference on a grid."""
    small = (64, 48)
    pa = np.asarray(Image.fromarray(a).resize(small), dtype=np.float32)
    pb = np.asarray(Image.fromarray(b).resize(small), dtype=np.float32)
    return float(np.abs(pa - pb).mean()) <= tolerance


async def _keep(fake, clip: dict, user: str | int = "alice") -> dict:
    it = await fake.click(int(clip["id"]), _buttons(clip)["Keep"], user=user)
    return await _reply(it)


# Start, list, end ---------------------------------------------------------------------------------------------
async def test_one_open_scene_a_channel_and_only_its_starter_or_a_moderator_ends_it(
    bot, runner, fake_discord
):
    bob = fake_discord.add_member("bob", permissions=DEFAULT_MEMBER_PERMS)
    answer = await _start(fake_discord, "Opening", user=bob)
    assert "\u201cOpening\u201d" in text_of(answer) and not answer["_ephemeral"]
    again = await _start(fake_discord, "Second")
    assert "\u201cOpening\u201d is open in this channel" in text_of(again) and again["_ephemeral"]
    carol = fake_discord.add_member("carol", permissions=DEFAULT_MEMBER_PERMS)
    it = await fake_discord.slash("scene end", user=carol)
    assert "Only" in text_of(await _reply(it))
    it = await fake_discord.slash("scene end", user=bob)
    assert "is closed" in text_of(await _reply(it))
    await _start(fake_discord, "Second")
    it = await fake_discord.slash("scene list")
    listed = text_of(await _reply(it))
    assert listed.index("Second") < listed.index("Opening") and "0 shots" in listed


# Plans ----------------------------------------------------------------------------------------------------------
async def test_a_plan_is_quoted_and_held_all_at_once_only_on_the_planners_confirm(
    bot, runner, fake_discord, fake_fal
):
    await set_anchor(fake_discord, samples.portrait_png())
    await _start(fake_discord)
    it = await fake_discord.slash("scene plan", shots="4s: she opens the door\nshe looks back | 6s: she runs")
    plan = await _reply(it)
    assert "3 shots \u00b7 15 s \u00b7 $1.68" in text_of(plan) and not plan["_ephemeral"]
    await asyncio.sleep(0.5)
    assert fake_fal.submissions == [] and await settled_totals(runner, fake_discord) == (0, 0)  # nothing yet

    bob = fake_discord.add_member("bob", permissions=DEFAULT_MEMBER_PERMS)
    [confirm] = [c for c in _custom_ids(plan) if c.startswith("scene:confirm:")]
    refused = await _reply(await fake_discord.click(int(plan["id"]), confirm, user=bob))
    assert refused["_ephemeral"] and "Only the member who made this plan" in text_of(refused)
    assert fake_fal.submissions == []

    answer = await _reply(await fake_discord.click(int(plan["id"]), confirm))
    assert "$1.68 held" in text_of(answer)
    await wait_posted(runner, fake_discord, 3)
    kling = [s for s in fake_fal.submissions if s.endpoint == KLING]
    assert sorted((s.arguments["prompt"], s.arguments["duration"]) for s in kling) == [
        ("she looks back", "5"),
        ("she opens the door", "4"),
        ("she runs", "6"),
    ]
    assert await settled_totals(runner, fake_discord) == (1_680_000, 0)  # spend equals the quote
    scene = await runner.services.scenes.find(fake_discord.channel_id, None)
    shots = await runner.services.scenes.store.shots(scene.id)
    assert [s.prompt for s in shots] == ["she opens the door", "she looks back", "she runs"]


async def test_ten_long_shots_fit_one_message_and_an_empty_scene_shows_without_a_picture(
    bot, runner, fake_discord, fake_fal
):
    """Found in review: ten shots of 225 characters made a plan message over Discord's 2,000 (a 400 and an
    incident); /scene show of a scene with no shots failed drawing an empty storyboard."""
    await set_anchor(fake_discord, samples.portrait_png())
    await _start(fake_discord)
    shown = await _reply(await fake_discord.slash("scene show"))
    assert "No shots yet" in text_of(shown) and not shown.get("attachments")
    lines = [f"{n}: shot {n} " + "she walks slowly through the rain " * 7 for n in range(3, 13)]
    assert all(len(line) > 220 for line in lines)
    plan = await _reply(await fake_discord.slash("scene plan", shots="\n".join(lines)))
    text = plan["content"]
    assert len(text) <= 2000 and "10 shots \u00b7 75 s" in text and "10. shot 12" in text
    assert [c for c in _custom_ids(plan) if c.startswith("scene:confirm:")]


async def test_a_plan_that_fills_its_message_is_marked_confirmed_and_loses_its_button(
    bot, runner, fake_discord, fake_fal
):
    """Found in review: Confirm added its line to a plan message already near Discord's 2,000 characters, the
    edit was refused (400) and the plan kept a live Confirm button. The confirmed message fits now."""
    await set_anchor(fake_discord, samples.portrait_png())
    await runner.services.budget.set_user_limit(
        fake_discord.guild_id, fake_discord.member("alice"), 100_000_000
    )
    await _start(fake_discord)
    lines = [f"5s: shot {n} " + ("she walks slowly through the rain " * 6)[:160] for n in range(10)]
    plan = await _reply(await fake_discord.slash("scene plan", shots="\n".join(lines)))
    assert 2000 - 45 < len(plan["content"]) <= 2000  # no room left for "Confirmed by <@...>."
    [confirm] = [c for c in _custom_ids(plan) if c.startswith("scene:confirm:")]
    answer = await _reply(await fake_discord.click(int(plan["id"]), confirm))
    assert "held" in text_of(answer)

    def confirmed() -> dict | None:
        message = fake_discord.messages[int(plan["id"])]
        return message if "Confirmed by" in message["content"] else None

    message = await fake_discord.wait_for(confirmed, timeout=5)
    alice = fake_discord.member("alice")
    assert len(message["content"]) <= 2000 and message["content"].endswith(f"\u2705 Confirmed by <@{alice}>.")
    assert message["content"].startswith(plan["content"][:1900]) and not _custom_ids(message)
    assert not [r for r in fake_discord.requests if r.method == "PATCH" and r.status >= 400]


async def test_a_plan_over_budget_holds_nothing_and_an_expired_one_cannot_be_confirmed(
    bot, runner, fake_discord, fake_fal
):
    await set_anchor(fake_discord, samples.portrait_png())
    await runner.services.budget.set_user_limit(
        fake_discord.guild_id, fake_discord.member("alice"), 1_000_000
    )
    await _start(fake_discord)
    plan = await _reply(await fake_discord.slash("scene plan", shots="5s: a | 5s: b"))  # $1.12 > $1.00
    [confirm] = [c for c in _custom_ids(plan) if c.startswith("scene:confirm:")]
    refused = await _reply(await fake_discord.click(int(plan["id"]), confirm))
    assert refused["_ephemeral"] and "budget" in text_of(refused)
    assert fake_fal.submissions == [] and await settled_totals(runner, fake_discord) == (0, 0)

    plan = await _reply(await fake_discord.slash("scene plan", shots="5s: a"))
    [confirm] = [c for c in _custom_ids(plan) if c.startswith("scene:confirm:")]
    later = time.time() + 700
    runner.services.scenes.clock = lambda: later  # ten minutes and more
    expired = await _reply(await fake_discord.click(int(plan["id"]), confirm))
    assert "expired" in text_of(expired) and fake_fal.submissions == []
    # and the button says so: the plan's message is edited once it expires
    await fake_discord.wait_for(
        lambda: list(_buttons(fake_discord.messages[int(plan["id"])])) == ["Expired: plan it again"],
        timeout=5,
    )


# Keep ------------------------------------------------------------------------------------------------------------
async def test_keep_by_button_and_by_reaction_replaces_and_a_strangers_keep_is_ignored(
    bot, runner, fake_discord, fake_fal
):
    await set_anchor(fake_discord, samples.portrait_png())
    await _start(fake_discord)
    await run_shot(fake_discord, "she waves")
    [first] = await wait_clips(fake_discord, 1)
    await wait_posted(runner, fake_discord, 1)
    first = fake_discord.messages[int(first["id"])]
    answer = await _keep(fake_discord, first)
    assert "kept for shot 1" in text_of(answer)
    first = fake_discord.messages[int(first["id"])]
    assert "Kept" in _buttons(first) and "Continue" in _buttons(first)

    it = await fake_discord.click(int(first["id"]), _buttons(first)["Re-roll \u00b7 $0.56"])
    await _reply(it)
    [_, second] = await wait_clips(fake_discord, 2)
    await wait_posted(runner, fake_discord, 2)
    carol = fake_discord.add_member("carol", permissions=DEFAULT_MEMBER_PERMS)
    await fake_discord.react(int(second["id"]), "\u2705", user=carol)  # not hers to keep: ignored
    await asyncio.sleep(0.5)
    scene = await runner.services.scenes.find(fake_discord.channel_id, None)
    [shot] = await runner.services.scenes.store.shots(scene.id)
    assert shot.kept_take_id == 1
    await fake_discord.react(int(second["id"]), "\u2705")  # the requester's: take 2 replaces take 1
    await fake_discord.wait_for(lambda: "Kept" in _buttons(fake_discord.messages[int(second["id"])]))
    [shot] = await runner.services.scenes.store.shots(scene.id)
    assert shot.kept_take_id == 2
    # take 1 shows Keep again (its edit follows take 2's)
    await fake_discord.wait_for(lambda: "Keep" in _buttons(fake_discord.messages[int(first["id"])]))
    refused = await _keep(fake_discord, fake_discord.messages[int(first["id"])], user=carol)
    assert refused["_ephemeral"] and "Only the member who asked for this take" in text_of(refused)


async def test_kept_takes_outlive_the_clip_retention(bot, runner, fake_discord, fake_fal):
    """Found in review: the retention sweep deleted kept clips after CLIP_RETENTION_DAYS, so an older scene could
    no longer be exported or continued. A kept take's clip stays; others still go."""
    await set_anchor(fake_discord, samples.portrait_png())
    await _start(fake_discord)
    await run_shot(fake_discord, "she waves")
    await run_shot(fake_discord, "she leaves")
    clips = await wait_clips(fake_discord, 2)
    await wait_posted(runner, fake_discord, 2)
    [kept_clip] = [c for c in clips if c["embeds"][0]["description"] == "she waves"]
    await fake_discord.react(int(kept_clip["id"]), "\u2705")
    scene = await runner.services.scenes.find(fake_discord.channel_id, None)
    for _ in range(200):
        shots = await runner.services.scenes.store.shots(scene.id)
        if shots[0].kept_take_id is not None:
            break
        await asyncio.sleep(0.05)
    kept = await runner.services.takes.get(shots[0].kept_take_id)
    other = await runner.services.takes.get(shots[1].take_id)
    sweeper = runner.services.sweeper
    sweeper.clock = lambda: time.time() + sweeper.retention_s + 86400
    deleted = await sweeper.sweep_once()
    assert Path(kept.clip_path).is_file() and not Path(other.clip_path).exists()
    assert Path(other.clip_path) in deleted


# Continue and end frames ---------------------------------------------------------------------------------------
async def test_continue_starts_from_the_kept_takes_last_frame_and_needs_one(
    bot, runner, fake_discord, fake_fal
):
    await set_anchor(fake_discord, samples.portrait_png())
    await _start(fake_discord)
    refused = await _reply(await fake_discord.slash("shot", prompt="too early", opts={"continue": True}))
    assert "no shot yet" in text_of(refused) and fake_fal.submissions == []
    await run_shot(fake_discord, "she walks in")
    [clip] = await wait_clips(fake_discord, 1)
    await wait_posted(runner, fake_discord, 1)
    refused = await _reply(await fake_discord.slash("shot", prompt="next", opts={"continue": True}))
    assert "Shot 1 of \u201cOpening\u201d has no kept take" in text_of(refused)
    assert len(fake_fal.submissions) == 1 and await settled_totals(runner, fake_discord) == (560_000, 0)

    await _keep(fake_discord, fake_discord.messages[int(clip["id"])])
    answer = await _reply(await fake_discord.slash("shot", prompt="she sits down", opts={"continue": True}))
    assert "starting from the last frame of shot 1" in text_of(answer)
    assert "face may drift" in text_of(answer)  # no angles: said once, with what to do
    await wait_posted(runner, fake_discord, 2)
    start = fake_fal.fetch_upload(fake_fal.submissions[1].arguments["start_image_url"])
    last = _frames(clip["_files"][0].data)[-1]
    assert _close(np.asarray(Image.open(io.BytesIO(start)).convert("RGB")), last)
    assert not _close(
        np.asarray(Image.open(io.BytesIO(start)).convert("RGB")), _frames(clip["_files"][0].data)[0]
    )


async def test_end_lands_the_shot_on_an_uploaded_frame(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png())
    end = samples.portrait_png(shade=160)
    att = fake_discord.make_attachment("end.png", end, content_type="image/png")
    await _reply(await fake_discord.slash("shot", prompt="she turns", end=att))
    await wait_posted(runner, fake_discord, 1)
    [sub] = fake_fal.submissions
    sent = Image.open(io.BytesIO(fake_fal.fetch_upload(sub.arguments["end_image_url"]))).convert("RGB")
    assert _close(np.asarray(sent), np.asarray(Image.open(io.BytesIO(end)).convert("RGB")))
    # An end frame passes the anchor's intake (found in review: a 100×130 upload was taken and upscaled).
    tiny = fake_discord.make_attachment(
        "tiny.png", samples.portrait_png((100, 130)), content_type="image/png"
    )
    refused = await _reply(await fake_discord.slash("shot", prompt="she turns back", end=tiny))
    assert refused["_ephemeral"] and "at least 300 px" in text_of(refused)
    assert len(fake_fal.submissions) == 1


# Storyboard ------------------------------------------------------------------------------------------------------
async def test_a_storyboard_is_one_call_cut_into_its_shots_at_the_planned_lengths(
    bot, runner, fake_discord, fake_fal
):
    await set_anchor(fake_discord, samples.portrait_png())
    await _start(fake_discord)
    plan = await _reply(
        await fake_discord.slash(
            "scene plan", shots="4s: she opens the door\n3s: she looks back\n3s: she runs", one_call=True
        )
    )
    assert "3 shots \u00b7 10 s \u00b7 $1.12" in text_of(plan) and "cut at the planned lengths" in text_of(
        plan
    )
    [confirm] = [c for c in _custom_ids(plan) if c.startswith("scene:confirm:")]
    await _reply(await fake_discord.click(int(plan["id"]), confirm))
    parts = await wait_clips(fake_discord, 4, timeout=60)  # the whole storyboard, then its 3 shots
    await wait_posted(runner, fake_discord, 3)
    [sub] = fake_fal.submissions
    assert "prompt" not in sub.arguments and sub.arguments["duration"] == "10"
    assert sub.arguments["multi_prompt"] == [
        {"prompt": "she opens the door", "duration": "4"},
        {"prompt": "she looks back", "duration": "3"},
        {"prompt": "she runs", "duration": "3"},
    ]
    shots = {m["embeds"][0]["description"]: m for m in parts if "Storyboard" not in text_of(m)}
    assert len(shots) == 3
    planned = {"she opens the door": (0, 4), "she looks back": (1, 3), "she runs": (2, 3)}
    for prompt, (shot, seconds) in planned.items():  # each part: its own planned length, cut from its shot
        with av.open(io.BytesIO(shots[prompt]["_files"][0].data)) as container:
            read = [read_index(f) for f in container.decode(video=0)]
        assert {tag for tag, _ in read} == {shot} and abs(len(read) / 24 - seconds) <= 1 / 24, (
            prompt,
            len(read),
        )
    scene = await runner.services.scenes.find(fake_discord.channel_id, None)
    stored = await runner.services.scenes.store.shots(scene.id)
    assert [s.prompt for s in stored] == list(planned) and all(s.take_id for s in stored)
    assert await settled_totals(runner, fake_discord) == (
        1_120_000,
        0,
    )  # one take of 10 s; the parts are free


# Show and export -------------------------------------------------------------------------------------------------
async def test_a_storyboard_over_the_upload_limit_is_posted_without_its_clip_and_its_shots_follow(
    bot, runner, fake_discord, fake_fal
):
    """Found in review: a storyboard clip over the server's upload limit was retried until it gave up, so fal's
    paid call delivered nothing and its shots were never cut. Now its message goes without the whole clip (and
    says why), it is charged once, and its shots follow as takes, each fitted to the limit like any take."""
    await set_anchor(fake_discord, samples.portrait_png())
    await _start(fake_discord)
    fake_discord.guild_filesize_limit = 60_000
    plan = await _reply(
        await fake_discord.slash("scene plan", shots="4s: a door\n3s: a look\n3s: a run", one_call=True)
    )
    [confirm] = [c for c in _custom_ids(plan) if c.startswith("scene:confirm:")]
    await _reply(await fake_discord.click(int(plan["id"]), confirm))
    await wait_posted(runner, fake_discord, 3, timeout=90)
    [board] = [
        m for m in fake_discord.channel_messages(fake_discord.channel_id) if "Storyboard" in text_of(m)
    ]
    assert not board.get("attachments") and "its shots follow one by one" in text_of(board)
    assert len(fake_fal.submissions) == 1
    assert await settled_totals(runner, fake_discord) == (1_120_000, 0)


async def test_a_storyboard_part_too_short_to_make_alone_is_not_re_rolled_and_a_longer_one_is_take_2(
    bot, runner, fake_discord, fake_fal
):
    """Found in review: re-rolling a 2 s part was held, then failed at fal's door (Kling makes 3-15 s takes); and
    a part's re-roll was numbered take 1 again."""
    await set_anchor(fake_discord, samples.portrait_png())
    await _start(fake_discord)
    plan = await _reply(
        await fake_discord.slash("scene plan", shots="2s: a door | 3s: a look", one_call=True)
    )
    [confirm] = [c for c in _custom_ids(plan) if c.startswith("scene:confirm:")]
    await _reply(await fake_discord.click(int(plan["id"]), confirm))
    await wait_posted(runner, fake_discord, 2, timeout=60)  # its two parts
    spent = await settled_totals(runner, fake_discord)
    parts = {
        m["embeds"][0]["description"]: m
        for m in clip_messages(fake_discord)
        if "Storyboard" not in text_of(m)
    }
    short = await _reply(
        await fake_discord.click(int(parts["a door"]["id"]), _buttons(parts["a door"])["Re-roll"])
    )
    assert short["_ephemeral"] and "is 2 s, cut from a storyboard" in text_of(short)
    assert await settled_totals(runner, fake_discord) == spent and len(fake_fal.submissions) == 1
    look = parts["a look"]
    [reroll] = [cid for label, cid in _buttons(look).items() if label.startswith("Re-roll")]
    answer = await _reply(await fake_discord.click(int(look["id"]), reroll))
    assert "take 2" in text_of(answer)
    clips = await wait_clips(fake_discord, 4)
    assert any(c["embeds"][0]["title"].endswith("\u00b7 take 2") for c in clips)


async def test_a_storyboard_of_six_long_shots_is_quoted(bot, runner, fake_discord, fake_fal):
    """Its characters are read from all its shots (2,700 characters together), while each shot stays within
    its own limit: no "prompt too long" for the whole."""
    await set_anchor(fake_discord, samples.portrait_png())
    await _start(fake_discord)
    lines = [f"2s: shot {n} " + "she walks slowly through the rain " * 13 for n in range(1, 7)]
    assert sum(len(x) for x in lines) > 2500 and all(len(x) < 512 for x in lines)
    plan = await _reply(await fake_discord.slash("scene plan", shots="\n".join(lines), one_call=True))
    assert "6 shots \u00b7 12 s" in plan["content"] and not plan["_ephemeral"]


async def test_a_failed_storyboard_leaves_no_shot_waiting_for_its_parts(bot, runner, fake_discord, fake_fal):
    """Found in review: its planned shots stayed "being cut" for good. Now they go with it (nothing charged)."""
    await set_anchor(fake_discord, samples.portrait_png())
    await _start(fake_discord)
    fake_fal.script(Outcome.result_gone())
    plan = await _reply(
        await fake_discord.slash("scene plan", shots="4s: a door | 3s: a look", one_call=True)
    )
    [confirm] = [c for c in _custom_ids(plan) if c.startswith("scene:confirm:")]
    await _reply(await fake_discord.click(int(plan["id"]), confirm))
    scene = await runner.services.scenes.find(fake_discord.channel_id, None)

    async def no_shots() -> bool:
        return await runner.services.scenes.store.shots(scene.id) == []

    await fake_discord.wait_for(no_shots, timeout=30)
    assert await settled_totals(runner, fake_discord) == (0, 0)
    shown = await _reply(await fake_discord.slash("scene show"))
    assert "No shots yet" in text_of(shown)

    # One that fails while nothing listens (as across a restart) is cleared by the start-up sweep.
    runner.services.jobs.unsubscribe(runner.services.scenes)
    fake_fal.script(Outcome.result_gone())
    plan = await _reply(
        await fake_discord.slash("scene plan", shots="4s: a door | 3s: a look", one_call=True)
    )
    [confirm] = [c for c in _custom_ids(plan) if c.startswith("scene:confirm:")]
    await _reply(await fake_discord.click(int(plan["id"]), confirm))

    async def board_failed() -> bool:
        jobs = await runner.services.jobs.in_states(JobState.FAILED)
        return sum(j.kind == "storyboard" for j in jobs) == 2

    await fake_discord.wait_for(board_failed, timeout=30)
    assert len(await runner.services.scenes.store.shots(scene.id)) == 2
    await runner.services.scenes.sweep()
    assert await no_shots()


async def test_show_and_export_join_the_kept_takes_in_shot_order(
    bot, runner, fake_discord, fake_fal, tmp_path
):
    await set_anchor(fake_discord, samples.portrait_png())
    await _start(fake_discord)
    for tag, prompt in enumerate(
        ("first", "second", "third"), 1
    ):  # each take's frames say which take they are
        clip = indexed_clip(
            tmp_path / f"{prompt}.mp4", frames=36, tag=tag, audio="stereo" if tag != 3 else None
        )
        fake_fal.script(Outcome.complete(video=clip.read_bytes()))
        await run_shot(fake_discord, prompt)
    clips = await wait_clips(fake_discord, 3)
    await wait_posted(runner, fake_discord, 3)
    by_prompt = {m["embeds"][0]["description"]: fake_discord.messages[int(m["id"])] for m in clips}
    await _keep(fake_discord, by_prompt["first"])
    await _keep(fake_discord, by_prompt["third"])

    shown = await (await fake_discord.slash("scene show")).wait_reply(lambda m: bool(m.get("_files")))
    text = text_of(shown)
    assert "none kept" in text and "take 1 kept" in text and "**2.** second" in text
    [png] = [f for f in shown["_files"] if f.filename == "storyboard.png"]
    assert Image.open(io.BytesIO(png.data)).format == "PNG"

    export = await _export(fake_discord)
    assert "shot 2 \u201csecond\u201d" in text_of(export)  # the shot with no kept take is named and left out
    video = export["_files"][0].data
    with av.open(io.BytesIO(video)) as container:
        read = [read_index(f) for f in container.decode(video=0)]
        has_audio = bool(container.streams.audio)
    # The first kept take's 36 frames, then the third's: in shot order, frame for frame (a silent track where the
    # third had none: one audio layout through the whole video).
    assert read == [(1, n) for n in range(36)] + [(3, n) for n in range(36)], read
    assert (
        has_audio and abs(_duration(video) - 3.0) <= 1 / 24 + 1e-6
    )  # the sum of the kept takes (1.5 s each)
    assert await settled_totals(runner, fake_discord) == (3 * 560_000, 0)  # the export is free


async def test_an_export_that_leaves_out_a_hundred_shots_names_what_fits_and_counts_the_rest(
    bot, runner, fake_discord, fake_fal
):
    """Found in review: the export's "Left out" line named every shot without a kept take, so with about 80 of
    them the embed passed Discord's 4,096 characters and the export was never posted. It names what fits now and
    counts the rest. (The hundred shots without a take are written straight to the scene: made one by one they
    would take minutes, and only their rows matter here.)"""
    await _scene_with_one_kept_take(runner, fake_discord, "the one shot kept")
    scene = await runner.services.scenes.find(fake_discord.channel_id, None)
    prompt = "she walks slowly through the rain and looks back at the door"
    rows = [(None, f"{prompt} {n}", 5) for n in range(100)]
    await SceneStore.add_shots(runner.services.db, scene.id, rows, time.time())

    export = await _export(fake_discord)
    [embed] = export["embeds"]
    description = embed["description"]
    named = [int(p) for p in re.findall(r"shot (\d+) \u201c", description)]
    [more] = re.findall(r"\u2026 and (\d+) more", description)
    assert len(description) <= 4096 and named == list(range(2, 2 + len(named))) and len(named) > 50
    assert len(named) + int(more) == 100 and export["_files"]


async def _job_states(runner, kind: str) -> list[JobState]:
    return [j.state for j in await runner.services.jobs.in_states(*JobState) if j.kind == kind]


async def test_continue_on_a_kept_take_asks_for_the_next_shot_and_starts_from_its_last_frame(
    bot, runner, fake_discord, fake_fal
):
    clip = await _scene_with_one_kept_take(runner, fake_discord, "she walks in")
    kept = fake_discord.messages[int(clip["id"])]
    it = await fake_discord.click(int(clip["id"]), _buttons(kept)["Continue"])
    form = await fake_discord.submit_modal(
        it, {"What happens next": "she sits down", "Length in seconds": "4"}
    )
    answer = await text_reply(form)
    assert answer["_ephemeral"] and "Shot 2 \u00b7 take 1 is on its way" in text_of(answer)
    await wait_posted(runner, fake_discord, 2)
    second = fake_fal.submissions[1]
    assert second.arguments["prompt"] == "she sits down" and second.arguments["duration"] == "4"
    start = Image.open(io.BytesIO(fake_fal.fetch_upload(second.arguments["start_image_url"]))).convert("RGB")
    assert _close(np.asarray(start), _frames(clip["_files"][0].data)[-1])


# Found in review (later) -------------------------------------------------------------------------------------------
AUDIO_S, VOICE_S = 168_000, 196_000  # Kling v3 Pro a second: sound on, with a voice


async def _voiced_storyboard(fake, runner) -> dict[str, dict]:
    """Mara (the main character) and Grace (with a voice); a storyboard "Mara waves | Grace says hello" with
    sound, posted and cut: its two parts' clip messages by prompt."""
    await set_anchor(fake, samples.png_bytes(fs.centred_portrait()), name="Mara")
    grace = fake.make_attachment(
        "grace.png", samples.png_bytes(fs.hopper_portrait()), content_type="image/png"
    )
    assert "joined the cast" in text_of(await _reply(await fake.slash("cast add", name="Grace", image=grace)))
    sample = fake.make_attachment("s.wav", speech_wav(10), content_type="audio/wav")
    await _reply(await fake.slash("voice set", name="Grace", sample=sample))
    await fake.wait_for(
        lambda: any("has a voice now" in text_of(m) for m in fake.channel_messages(fake.channel_id)),
        timeout=30,
    )
    await _start(fake, "Talk")
    board = await _reply(
        await fake.slash(
            "scene plan", shots="5s: Mara waves | 5s: Grace says hello", audio=True, one_call=True
        )
    )
    [confirm] = [c for c in _custom_ids(board) if c.startswith("scene:confirm:")]
    await _reply(await fake.click(int(board["id"]), confirm))
    await wait_posted(runner, fake, 2, timeout=60)
    return {m["embeds"][0]["description"]: m for m in clip_messages(fake) if "Storyboard" not in text_of(m)}


async def test_a_storyboard_parts_re_roll_shows_and_charges_a_shot_of_its_own_prompt(
    bot, runner, fake_discord, fake_fal
):
    """Found in review: each part of a storyboard carried the whole storyboard's characters and voices, so
    re-rolling "Mara waves" sent Grace too, with her voice, and was charged the voice rate ($0.98, not $0.84);
    and the part's Re-roll button showed no price (the part itself is free) while a press charged the full one.
    A part re-rolls as a /shot of its own prompt now (its characters, its @ElementN, its voice) and says what
    that costs."""
    parts = await _voiced_storyboard(fake_discord, runner)
    spent, _ = await settled_totals(runner, fake_discord)
    assert spent == 7_000 + 10 * VOICE_S  # the voice, then the storyboard: the parts are free
    mara, grace = parts["Mara waves"], parts["Grace says hello"]
    assert "Re-roll \u00b7 $0.84" in _buttons(mara) and "Re-roll \u00b7 $0.98" in _buttons(grace)

    await _reply(await fake_discord.click(int(mara["id"]), _buttons(mara)["Re-roll \u00b7 $0.84"]))
    await wait_posted(runner, fake_discord, 3, timeout=60)
    again = fake_fal.submissions_to("image-to-video")[-1].arguments
    assert again["prompt"] == "Mara waves" and "elements" not in again and again["generate_audio"] is True
    assert await settled_totals(runner, fake_discord) == (spent + 5 * AUDIO_S, 0)

    await run_shot(fake_discord, "Mara waves", audio=True)  # the same as a /shot of that prompt
    await wait_posted(runner, fake_discord, 4, timeout=60)
    shot = fake_fal.submissions_to("image-to-video")[-1].arguments
    assert {k: v for k, v in shot.items() if k != "start_image_url"} == {
        k: v for k, v in again.items() if k != "start_image_url"
    }
    assert await settled_totals(runner, fake_discord) == (spent + 10 * AUDIO_S, 0)

    await _reply(await fake_discord.click(int(grace["id"]), _buttons(grace)["Re-roll \u00b7 $0.98"]))
    await wait_posted(runner, fake_discord, 5, timeout=60)
    voiced = fake_fal.submissions_to("image-to-video")[-1].arguments
    [element] = voiced["elements"]  # Grace alone, as @Element1 (she was @Element2 of the storyboard)
    assert voiced["prompt"] == "@Element1 says hello" and element.get("voice_id")
    assert await settled_totals(runner, fake_discord) == (spent + 10 * AUDIO_S + 5 * VOICE_S, 0)


async def test_show_a_scene_longer_than_a_storyboard_sheet(bot, runner, fake_discord, fake_fal):
    """Found in review: /scene show of a scene of more than 24 shots failed with an incident (the storyboard
    sheet holds 24 tiles, and scenes have no cap on their shots). The picture shows the first 23 shots and a tile
    counting the rest, the list names as many as fit in the embed and counts the rest. (The shots beyond the first
    are written straight to the scene: only their rows matter here.)"""
    await set_anchor(fake_discord, samples.portrait_png())
    await _start(fake_discord, "Long")
    await run_shot(fake_discord, "the one shot kept")
    [clip] = await wait_clips(fake_discord, 1)
    await wait_posted(runner, fake_discord, 1)
    await _keep(fake_discord, fake_discord.messages[int(clip["id"])])
    scene = await runner.services.scenes.find(fake_discord.channel_id, None)
    prompt = "she walks slowly through the rain and looks back at the door"
    rows = [(None, f"{prompt} {n}", 5) for n in range(2, 131)]
    await SceneStore.add_shots(runner.services.db, scene.id, rows, time.time())

    shown = await text_reply(await fake_discord.slash("scene show"), timeout=30)
    assert "Something went wrong" not in text_of(shown), text_of(shown)
    [embed] = shown["embeds"]
    assert "Long" in embed["title"]
    description = embed["description"]
    listed = [int(p) for p in re.findall(r"^\*\*(\d+)\.\*\*", description, flags=re.MULTILINE)]
    [more] = re.findall(r"^\u2026 and (\d+) more shots$", description, flags=re.MULTILINE)
    assert listed == list(range(1, len(listed) + 1)) and len(listed) + int(more) == 130
    assert len(description) <= 4096 and "take 1 kept" in description
    shots = next(f["value"] for f in embed["fields"] if f["name"] == "Shots")
    assert shots == "130 (1 kept); the picture shows the first 23"
    [png] = [f for f in shown["_files"] if f.filename == "storyboard.png"]
    assert Image.open(io.BytesIO(png.data)).format == "PNG"


async def test_a_storyboard_in_a_thread_cuts_parts_with_their_own_cast_even_after_a_character_left(
    bot, runner, fake_discord, fake_fal
):
    """A part's own cast is read where the storyboard was planned (a thread uses its parent's characters), once
    the storyboard is made; a part whose prompt can no longer be read so (its @Grace left the cast meanwhile) is
    cut all the same, the storyboard's copy of that character standing in: nothing paid for is lost."""
    await set_anchor(fake_discord, samples.png_bytes(fs.centred_portrait()), name="Mara")
    grace = fake_discord.make_attachment(
        "grace.png", samples.png_bytes(fs.hopper_portrait()), content_type="image/png"
    )
    assert "joined the cast" in text_of(
        await _reply(await fake_discord.slash("cast add", name="Grace", image=grace))
    )
    thread = fake_discord.add_thread(fake_discord.channel_id, "takes")
    await fake_discord.wait_for(lambda: bot.get_channel(thread) is not None)
    await _reply(await fake_discord.slash("scene start", channel_id=thread, name="Aside"))
    fake_fal.script(Outcome.hold())
    board = await _reply(
        await fake_discord.slash(
            "scene plan", channel_id=thread, shots="5s: Mara waves | 5s: @Grace nods", one_call=True
        )
    )
    [confirm] = [c for c in _custom_ids(board) if c.startswith("scene:confirm:")]
    await _reply(await fake_discord.click(int(board["id"]), confirm))
    await fake_discord.wait_for(lambda: fake_fal.submissions_to("image-to-video"), timeout=30)
    assert "left" in text_of(await _reply(await fake_discord.slash("cast remove", name="Grace")))
    fake_fal.release()
    await wait_posted(runner, fake_discord, 2, timeout=60)
    parts = {
        m["embeds"][0]["description"]: m
        for m in clip_messages(fake_discord, thread)
        if "Storyboard" not in text_of(m)
    }
    for prompt, sent, elements in (("Mara waves", "Mara waves", 0), ("@Grace nods", "@Element1 nods", 1)):
        part, before = parts[prompt], len(fake_fal.submissions)
        await _reply(await fake_discord.click(int(part["id"]), _buttons(part)["Re-roll \u00b7 $0.56"]))
        [again] = await fake_discord.wait_for(lambda: fake_fal.submissions[before:], timeout=30)  # noqa: B023
        assert again.arguments["prompt"] == sent, again.arguments
        assert len(again.arguments.get("elements") or []) == elements


async def _export(fake_discord) -> dict:
    """/scene export, and the message it posts once the video is joined."""
    await _reply(await fake_discord.slash("scene export"))
    return await fake_discord.wait_for(
        lambda: next(
            (m for m in fake_discord.channel_messages(fake_discord.channel_id) if "exported" in text_of(m)),
            None,
        ),
        timeout=60,
    )


async def _scene_with_one_kept_take(runner, fake_discord, prompt: str) -> dict:
    """An anchor, an open scene and one shot made and kept: its clip message."""
    await set_anchor(fake_discord, samples.portrait_png())
    await _start(fake_discord)
    await run_shot(fake_discord, prompt)
    [clip] = await wait_clips(fake_discord, 1)
    await wait_posted(runner, fake_discord, 1)
    await _keep(fake_discord, fake_discord.messages[int(clip["id"])])
    return clip


async def test_a_storyboards_parts_keep_the_anchor_it_was_made_from(bot, runner, fake_discord, fake_fal):
    """An anchor set while a storyboard is at fal is for the shots made after it: the storyboard's parts are
    recorded (scored, re-rolled) on the anchor the storyboard was made from."""
    await set_anchor(fake_discord, samples.portrait_png())
    await _start(fake_discord)
    fake_fal.script(Outcome.hold())
    plan = await _reply(await fake_discord.slash("scene plan", shots="4s: a door\n3s: a look", one_call=True))
    [confirm] = [c for c in _custom_ids(plan) if c.startswith("scene:confirm:")]
    await _reply(await fake_discord.click(int(plan["id"]), confirm))
    await fake_discord.wait_for(lambda: fake_fal.submissions and fake_fal.submissions[0].held, timeout=20)
    await set_anchor(fake_discord, samples.png_bytes(fs.hopper_portrait()))  # v2, while the storyboard is made
    fake_fal.release()
    await wait_posted(runner, fake_discord, 2, timeout=60)
    takes = await runner.services.takes.in_states(JobState.POSTED)
    assert {t.anchor_version for t in takes} == {1}, [(t.kind, t.anchor_version) for t in takes]
