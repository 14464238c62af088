"""Issue #17 end to end: a cast of named characters and their voices, through the fake Discord and the fake fal
(which checks every submit against fal's published schema), with real face photos, real WAVs and real mp4s."""

from __future__ import annotations

import io
import logging
import re
import wave

import av
import pytest
from PIL import Image

from bot.jobs import JobState
from bot.media.crop import start_image_problem
from bot.media.faces import detect_faces
from tests import faces_samples as fs
from tests import samples
from tests.both_backends import both_backends  # noqa: F401  (every test here on both backends)
from tests.e2e.helpers import set_anchor, settled_totals, text_reply
from tests.e2e.shots_helpers import clip_messages, run_shot, wait_clips, wait_posted
from tests.fakes.discord import DEFAULT_MEMBER_PERMS, Faults, text_of
from tests.fakes.fal_fake import Outcome
from tests.fakes.media_samples import speech_wav

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

KLING = "fal-ai/kling-video/v3/pro/image-to-video"
VOICE = "fal-ai/kling-video/create-voice"
PLAIN_S, AUDIO_S, VOICE_S = 112_000, 168_000, 196_000  # Kling v3 Pro a second: sound off, on, with a voice


async def _add(fake, name: str, png: bytes, user: str = "alice") -> dict:
    att = fake.make_attachment(f"{name}.png", png, content_type="image/png")
    return await text_reply(await fake.slash("cast add", user=user, name=name, image=att))


async def _cast_of_two(fake) -> None:
    """Mara (the astronaut, the channel's anchor, so its main character) and Grace (Grace Hopper), no angles."""
    await set_anchor(fake, samples.png_bytes(fs.centred_portrait()), name="Mara")
    assert "Grace joined the cast" in text_of(
        await _add(fake, "Grace", samples.png_bytes(fs.hopper_portrait()))
    )


def _kling(fake_fal) -> list:
    return fake_fal.submissions_to("image-to-video")


async def _nothing_held(runner, fake) -> None:
    assert [j for j in await runner.services.jobs.in_states(*JobState) if j.kind == "take"] == []
    assert await settled_totals(runner, fake) == (0, 0)


def _face_field(message: dict) -> str | None:
    for embed in message.get("embeds") or []:
        for field in embed.get("fields") or []:
            if field["name"] == "Face" and not field["value"].startswith("being checked"):
                return str(field["value"])
    return None


async def test_a_two_character_shot_sends_both_as_elements_in_the_prompts_order(
    bot, runner, fake_discord, fake_fal, tmp_path
):
    await _cast_of_two(fake_discord)
    pair = fs.side_by_side(fs.centred_portrait(), fs.hopper_portrait())
    clip = fs.write_mp4(tmp_path / "pair.mp4", fs.camera_move(pair, fs.CLIP_FRAMES, fs.CLIP_SIZE))
    fake_fal.script(Outcome.hold(then=Outcome.complete(video=clip.read_bytes())))
    await run_shot(fake_discord, "@grace hands Mara a cup of coffee; mara smiles at Grace")
    [sub] = await fake_discord.wait_for(lambda: _kling(fake_fal), timeout=30)
    progress = "\n".join(text_of(m) for m in fake_discord.channel_messages(fake_discord.channel_id))
    assert "Grace has no angles, so a crop of the face goes along" in progress
    assert "/anchor angles make name:Mara" in progress
    fake_fal.release()
    [clip_msg] = await wait_clips(fake_discord, 1)

    args = sub.arguments
    assert args["prompt"] == "@Element1 hands @Element2 a cup of coffee; @Element2 smiles at @Element1"
    mara = await runner.services.anchors.version_of(fake_discord.channel_id, None, "Mara")
    grace = await runner.services.anchors.version_of(fake_discord.channel_id, None, "grace")
    stored = runner.services.anchors.image_path
    # The start image is the main character's anchor; the elements come in the order the names first appear.
    assert fake_fal.fetch_upload(args["start_image_url"]) == stored(mara.sha256).read_bytes()
    first, second = args["elements"]
    assert fake_fal.fetch_upload(first["frontal_image_url"]) == stored(grace.sha256).read_bytes()
    assert fake_fal.fetch_upload(second["frontal_image_url"]) == stored(mara.sha256).read_bytes()
    # Neither has angles: each element's one reference is a tight crop of its face, a valid image for fal.
    for element in (first, second):
        [ref] = element["reference_image_urls"]
        with Image.open(io.BytesIO(fake_fal.fetch_upload(ref))) as crop:
            assert start_image_problem(*crop.size) is None and crop.width < 1000
        assert "voice_id" not in element
    await wait_posted(runner, fake_discord, 1)
    assert await settled_totals(runner, fake_discord) == (5 * PLAIN_S, 0)

    # One verdict a character: both faces are in every frame.
    verdict = await fake_discord.wait_for(
        lambda: (f := _face_field(fake_discord.messages[int(clip_msg["id"])])) and f, timeout=90
    )
    assert verdict.startswith("face match") and "Grace " in verdict and "Mara " in verdict, verdict
    assert verdict.index("Grace") < verdict.index("Mara")
    take = (await runner.services.takes.in_states(JobState.POSTED))[0]
    score = await runner.services.consistency.score_of(take.id)
    assert score is not None and [c.name for c in score.cast] == ["Grace", "Mara"]
    assert all(c.verdict == "match" and (c.score or 0) >= 80 for c in score.cast)


async def test_a_re_roll_keeps_the_cast_its_versions_and_references(bot, runner, fake_discord, fake_fal):
    await _cast_of_two(fake_discord)
    await run_shot(fake_discord, "Mara and Grace walk")
    [clip] = await wait_clips(fake_discord, 1)
    await wait_posted(runner, fake_discord, 1)
    # A new portrait of Grace after the take: the re-roll still sends the version the take showed.
    await set_anchor(fake_discord, samples.png_bytes(fs.badge_portrait()), name="Grace")
    await fake_discord.react(int(clip["id"]), "\U0001f501")
    await wait_clips(fake_discord, 2)
    first, again = _kling(fake_fal)
    assert again.arguments["prompt"] == first.arguments["prompt"] == "@Element1 and @Element2 walk"
    assert [e["frontal_image_url"] for e in again.arguments["elements"]] == [
        e["frontal_image_url"] for e in first.arguments["elements"]
    ]


async def test_four_characters_or_an_unknown_name_are_refused_before_anything_is_held(
    bot, runner, fake_discord, fake_fal
):
    await set_anchor(fake_discord, samples.portrait_png(), name="Mara")
    for name, shade in (("Grace", 90), ("Old Tom", 140), ("R2-D2", 200)):
        assert "joined the cast" in text_of(await _add(fake_discord, name, samples.portrait_png(shade=shade)))
    answer = await run_shot(fake_discord, "Mara, Grace and old tom watch R2-D2 dance")
    assert "at most 3 cast members" in text_of(answer) and "R2-D2 did not fit" in text_of(answer)
    answer = await run_shot(fake_discord, "Mara waves at @Nobody")
    assert "There is no Nobody in this channel's cast" in text_of(answer)
    # A plain word that is no cast name is just a word; @everyone is Discord's, not a name.
    await _nothing_held(runner, fake_discord)
    assert _kling(fake_fal) == []
    await run_shot(fake_discord, "@everyone: the character waves at a robot")
    await wait_clips(fake_discord, 1)
    [sub] = _kling(fake_fal)
    assert "elements" not in sub.arguments  # about the main character alone, which has no angles: as before


async def test_a_prompt_that_tags_past_fals_limit_is_refused_before_anything_is_held(
    bot, runner, fake_discord, fake_fal
):
    """Found in review: the member's prompt is checked against 2,500 characters, but each name sent as @ElementN
    grows it; fal refuses a longer prompt and bills the refusal, so the bot refuses it first, in words."""
    await _cast_of_two(fake_discord)
    prompt = ("Grace and Mara. " * 200)[:2499]
    assert len(prompt) <= 2500
    answer = await run_shot(fake_discord, prompt)
    assert "over the 2,500 it takes" in text_of(answer) and answer["_ephemeral"]
    await _nothing_held(runner, fake_discord)
    assert _kling(fake_fal) == []


async def test_cast_list_main_and_remove(bot, runner, fake_discord, fake_fal):
    await _cast_of_two(fake_discord)
    reply = await text_reply(await fake_discord.slash("cast list"))
    text = text_of(reply)
    assert "Mara** (main)" in text and "Grace" in text and "0 angles" in text and "no voice" in text
    [sheet] = [f for f in reply["_files"] if f.filename == "cast.png"]
    with Image.open(io.BytesIO(sheet.data)) as img:
        assert img.format == "PNG" and img.width > img.height  # two tiles side by side

    dup = await _add(fake_discord, "mara", samples.portrait_png(shade=50))
    assert "already in this channel's cast" in text_of(dup)
    bad = await _add(fake_discord, "Mara<3", samples.portrait_png(shade=50))
    assert "letters, digits, spaces" in text_of(bad)
    bob = fake_discord.add_member("bob", permissions=DEFAULT_MEMBER_PERMS)
    refused = await text_reply(await fake_discord.slash("cast remove", user=bob, name="Grace"))
    assert "Manage Messages" in text_of(refused)

    refused = await text_reply(await fake_discord.slash("cast remove", name="Mara"))
    assert "main character" in text_of(refused)
    assert "main character now" in text_of(
        await text_reply(await fake_discord.slash("cast main", name="grace"))
    )
    assert "left this channel's cast" in text_of(
        await text_reply(await fake_discord.slash("cast remove", name="Mara"))
    )
    cast = await runner.services.anchors.cast.members(fake_discord.channel_id)
    assert [(c.name, c.is_main) for c in cast] == [("Grace", True)]
    # Shots start from the new main character; Mara's versions stay in the history.
    await run_shot(fake_discord, "a quiet moment")
    await wait_clips(fake_discord, 1)
    grace = await runner.services.anchors.version_of(fake_discord.channel_id, None, "Grace")
    [sub] = _kling(fake_fal)
    stored = runner.services.anchors.image_path(grace.sha256).read_bytes()
    assert fake_fal.fetch_upload(sub.arguments["start_image_url"]) == stored
    history = text_of(await text_reply(await fake_discord.slash("anchor history")))
    assert "Mara" in history and "Grace" in history
    refused = text_of(await run_shot(fake_discord, "Mara returns"))  # a plain word now: no longer in the cast
    assert "There is no" not in refused


async def test_anchor_commands_act_on_a_named_character(bot, runner, fake_discord, fake_fal):
    await _cast_of_two(fake_discord)
    reply = await set_anchor(fake_discord, samples.png_bytes(fs.badge_portrait()), name="grace")
    assert "Anchor set" in text_of(reply)
    grace = await runner.services.anchors.version_of(fake_discord.channel_id, None, "Grace")
    mara = await runner.services.anchors.resolve(fake_discord.channel_id)
    assert grace.version == 3 and grace.name == "Grace" and mara.name == "Mara" and mara.version == 1
    shown = text_of(await text_reply(await fake_discord.slash("anchor show", name="Grace")))
    assert "version 3" in shown
    refused = text_of(await text_reply(await fake_discord.slash("anchor use", version=1, name="Grace")))
    assert "Mara's anchor, not Grace's" in refused
    assert "again" in text_of(await text_reply(await fake_discord.slash("anchor use", version=2)))
    grace = await runner.services.anchors.version_of(fake_discord.channel_id, None, "Grace")
    assert grace.version == 2  # v2 is Grace's: it went back to Grace, the main character kept v1
    unknown = await set_anchor(fake_discord, samples.portrait_png(), name="Zed")
    assert "There is no Zed" in text_of(unknown) and "/cast add" in text_of(unknown)
    it = await fake_discord.autocomplete("anchor show", "name", "gr")
    assert [c["value"] for c in it] == ["Grace"]


async def test_a_name_thousands_of_characters_long_is_refused_in_a_short_answer(
    bot, runner, fake_discord, fake_fal
):
    """Found in review: an unknown name was echoed whole, so its refusal went past Discord's 2,000 characters,
    Discord refused it and the member got no answer at all. The name is shown shortened now, wherever it is typed."""
    await _cast_of_two(fake_discord)
    await text_reply(await fake_discord.slash("scene start", name="Talk"))
    long = "N" * 2100
    answers = [
        await text_reply(await fake_discord.slash("voice show", name=long)),
        await text_reply(await fake_discord.slash("voice clear", name=long)),
        await text_reply(await fake_discord.slash("anchor show", name=long)),
        await text_reply(await fake_discord.slash("anchor use", version=1, name=long)),
        await run_shot(fake_discord, "Mara waves", start=long),
        await run_shot(fake_discord, f"Mara waves at @{long}"),
        await text_reply(await fake_discord.slash("scene plan", shots=f"Mara waves\n@{long} sings")),
    ]
    for answer in answers:
        text = text_of(answer)
        assert answer["_ephemeral"] and len(text) <= 200, text
        assert "N" * 39 + "\u2026" in text and "N" * 40 not in text, text
        assert "There is no" in text or "Mara's anchor, not" in text, text
    await _nothing_held(runner, fake_discord)
    assert _kling(fake_fal) == []


def _wav(seconds: float) -> bytes:
    return speech_wav(seconds)


async def _voice_set(fake, name: str, data: bytes, filename: str = "sample.wav", user: str = "alice") -> dict:
    att = fake.make_attachment(filename, data, content_type="audio/wav")
    return await text_reply(await fake.slash("voice set", user=user, name=name, sample=att))


async def _voiced(runner, character_name: str, fake):
    character = await runner.services.anchors.cast.find(fake.channel_id, None, character_name)
    return await runner.services.voices.get(character.id)


async def test_voice_set_makes_one_voice_charged_once_and_shows_it(bot, runner, fake_discord, fake_fal):
    await _cast_of_two(fake_discord)
    answer = await _voice_set(fake_discord, "mara", _wav(10))
    assert "On its way" in text_of(answer)
    ready = await fake_discord.wait_for(
        lambda: [
            m
            for m in fake_discord.channel_messages(fake_discord.channel_id)
            if "has a voice now" in text_of(m)
        ],
        timeout=30,
    )
    assert len(ready) == 1 and "Mara has a voice now" in text_of(ready[0]) and not ready[0]["_pinged"]
    [sub] = fake_fal.submissions_to("create-voice")
    sample = fake_fal.fetch_upload(sub.arguments["voice_url"])
    with wave.open(io.BytesIO(sample)) as w:
        assert abs(w.getnframes() / w.getframerate() - 10) < 0.05
    voice = await _voiced(runner, "Mara", fake_discord)
    assert voice is not None and voice.voice_id in fake_fal.voice_ids and abs(voice.seconds - 10) < 0.05
    assert await settled_totals(runner, fake_discord) == (7_000, 0)
    budget = text_of(await text_reply(await fake_discord.slash("budget")))
    assert "voice Mara" in budget

    shown = await text_reply(await fake_discord.slash("voice show", name="Mara"))
    [file] = [f for f in shown["_files"] if f.filename.endswith(".wav")]
    assert file.data == runner.services.voices.kind.sample_path(voice.sample_sha256).read_bytes() == sample
    listing = text_of(await text_reply(await fake_discord.slash("cast list")))
    assert "voice (10 s sample)" in listing
    assert "has no voice now" in text_of(
        await text_reply(await fake_discord.slash("voice clear", name="Mara"))
    )
    assert await _voiced(runner, "Mara", fake_discord) is None


@pytest.mark.parametrize(
    ("data", "filename", "words"),
    [
        (lambda: speech_wav(2), "short.wav", "2.0 s"),
        (lambda: b"hello, this is not a sound at all\n" * 40, "notes.wav", "not a sound"),
    ],
    ids=["2-seconds", "text-named-wav"],
)
async def test_a_sample_too_short_or_not_a_sound_is_refused_and_nothing_is_held(
    bot, runner, fake_discord, fake_fal, data, filename, words
):
    await set_anchor(fake_discord, samples.portrait_png(), name="Mara")
    answer = await _voice_set(fake_discord, "Mara", data(), filename)
    assert words in text_of(answer), text_of(answer)
    assert fake_fal.submissions_to("create-voice") == []
    assert [j for j in await runner.services.jobs.in_states(*JobState) if j.kind == "voice"] == []
    assert await settled_totals(runner, fake_discord) == (0, 0)


async def test_a_long_sample_is_cut_to_its_first_30_seconds(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png(), name="Mara")
    answer = await _voice_set(fake_discord, "Mara", _wav(40))
    assert "40.0 s long: its first 30 s are used" in text_of(answer)
    await fake_discord.wait_for(lambda: fake_fal.submissions_to("create-voice"), timeout=30)
    [sub] = fake_fal.submissions_to("create-voice")
    with av.open(io.BytesIO(fake_fal.fetch_upload(sub.arguments["voice_url"]))) as container:
        stream = container.streams.audio[0]
        seconds = sum(f.samples for f in container.decode(stream)) / stream.rate
    assert abs(seconds - 30) < 0.05


async def test_a_voiced_shot_carries_the_voice_at_the_voice_rate_and_its_re_roll_too(
    bot, runner, fake_discord, fake_fal
):
    await _cast_of_two(fake_discord)
    await _voice_set(fake_discord, "Mara", _wav(10))
    await fake_discord.wait_for(
        lambda: any(
            "has a voice now" in text_of(m) for m in fake_discord.channel_messages(fake_discord.channel_id)
        ),
        timeout=30,
    )
    voice = await _voiced(runner, "Mara", fake_discord)
    assert voice is not None

    fake_fal.script(Outcome.hold())
    await run_shot(fake_discord, 'Mara says "we leave at dawn" to Grace', audio=True)
    [sub] = await fake_discord.wait_for(lambda: _kling(fake_fal), timeout=30)
    assert any("voice: Mara" in text_of(m) for m in fake_discord.channel_messages(fake_discord.channel_id))
    fake_fal.release()
    [clip] = await wait_clips(fake_discord, 1)
    mara_el, grace_el = sub.arguments["elements"]
    assert mara_el["voice_id"] == voice.voice_id and "voice_id" not in grace_el
    assert sub.arguments["prompt"] == '@Element1 says "we leave at dawn" to @Element2'
    assert sub.arguments["generate_audio"] is True
    await wait_posted(runner, fake_discord, 1)
    assert await settled_totals(runner, fake_discord) == (7_000 + 5 * VOICE_S, 0)

    await fake_discord.react(int(clip["id"]), "\U0001f501")
    await wait_clips(fake_discord, 2)
    await wait_posted(runner, fake_discord, 2)
    again = _kling(fake_fal)[-1]
    assert again.arguments["elements"][0]["voice_id"] == voice.voice_id
    assert await settled_totals(runner, fake_discord) == (7_000 + 10 * VOICE_S, 0)

    # Sound off: the same characters, no voice, the plain price.
    await run_shot(fake_discord, "Mara and Grace nod")
    await wait_clips(fake_discord, 3)
    await wait_posted(runner, fake_discord, 3)
    quiet = _kling(fake_fal)[-1]
    assert all("voice_id" not in e for e in quiet.arguments["elements"])
    assert quiet.arguments.get("generate_audio") is False
    assert await settled_totals(runner, fake_discord) == (7_000 + 10 * VOICE_S + 5 * PLAIN_S, 0)


async def test_an_endpoint_without_elements_says_so_before_spending_and_can_go_on_without(
    runner, fake_discord, fake_fal
):
    await runner.start(fal_endpoint="fal-ai/kling-video/v2.5-turbo/pro/image-to-video")
    await _cast_of_two(fake_discord)
    answer = await run_shot(fake_discord, "Mara and Grace talk")
    assert "takes no characters as references" in text_of(answer) and "Go on without" in str(answer)
    await _nothing_held(runner, fake_discord)
    [button] = [b for row in answer["components"] for b in row["components"]]
    bob = fake_discord.add_member("bob")
    refused = await text_reply(await fake_discord.click(int(answer["id"]), button["custom_id"], user=bob))
    assert "Only the member who asked" in text_of(refused)
    await fake_discord.click(int(answer["id"]), button["custom_id"])
    await wait_clips(fake_discord, 1)
    [sub] = _kling(fake_fal)
    assert "elements" not in sub.arguments and sub.arguments["prompt"] == "Mara and Grace talk"
    assert len(clip_messages(fake_discord)) == 1


async def test_go_on_without_refused_by_the_budget_says_so_and_can_be_pressed_again(
    runner, fake_discord, fake_fal, caplog
):
    """Found in review: a refusal on "Go on without" (the budget spent meanwhile, the anchor gone) left the click
    unanswered ("This interaction failed"), logged a traceback, and the button had stopped, so pressing it again
    did nothing. The refusal is answered like any other now, and the button works once it is put right."""
    await runner.start(fal_endpoint="fal-ai/kling-video/v2.5-turbo/pro/image-to-video")
    await _cast_of_two(fake_discord)
    answer = await run_shot(fake_discord, "Mara and Grace talk")
    [button] = [b for row in answer["components"] for b in row["components"]]
    alice = fake_discord.member("alice")
    await runner.services.budget.set_user_limit(fake_discord.guild_id, alice, 1)
    refused = await text_reply(await fake_discord.click(int(answer["id"]), button["custom_id"]))
    assert refused["_ephemeral"] and "ask an admin to raise it" in text_of(refused)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    await _nothing_held(runner, fake_discord)

    await runner.services.budget.set_user_limit(fake_discord.guild_id, alice, 10_000_000)
    first = await fake_discord.click(int(answer["id"]), button["custom_id"])
    second = await fake_discord.click(int(answer["id"]), button["custom_id"])  # while the first is queued
    assert "on its way already" in text_of(await text_reply(second))
    await text_reply(first)
    await wait_clips(fake_discord, 1)
    [sub] = _kling(fake_fal)  # one shot for two presses
    assert "elements" not in sub.arguments and sub.arguments["prompt"] == "Mara and Grace talk"


async def test_a_thread_uses_its_parents_cast_and_its_own_characters_shadow_it(
    bot, runner, fake_discord, fake_fal
):
    await _cast_of_two(fake_discord)
    thread = fake_discord.add_thread(fake_discord.channel_id, "takes")
    await fake_discord.wait_for(lambda: bot.get_channel(thread) is not None)
    choices = await fake_discord.autocomplete("shot", "start", "", channel_id=thread, prompt="x")
    assert [c["value"] for c in choices] == ["Mara", "Grace"]
    # A thread's own Grace (a new portrait) shadows the parent's; Mara is still the parent's main character.
    att = fake_discord.make_attachment(
        "g.png", samples.png_bytes(fs.badge_portrait()), content_type="image/png"
    )
    it = await fake_discord.slash("cast add", channel_id=thread, name="Grace", image=att)
    assert "joined the cast" in text_of(await text_reply(it))
    await run_shot(fake_discord, "Grace waves", channel_id=thread, start="grace")
    await fake_discord.wait_for(lambda: _kling(fake_fal), timeout=30)
    [sub] = _kling(fake_fal)
    own = await runner.services.anchors.version_of(thread, fake_discord.channel_id, "Grace")
    parent_grace = await runner.services.anchors.version_of(fake_discord.channel_id, None, "Grace")
    assert own.id != parent_grace.id and own.channel_id == thread
    stored = runner.services.anchors.image_path(own.sha256).read_bytes()
    assert fake_fal.fetch_upload(sub.arguments["start_image_url"]) == stored
    assert "elements" not in sub.arguments  # about its start character alone, no angles, no voice
    main = await runner.services.anchors.resolve(thread, fake_discord.channel_id)
    assert main.name == "Mara"


async def test_a_plan_checks_and_prices_each_shot_with_its_own_characters(
    bot, runner, fake_discord, fake_fal
):
    """Found in review: a plan took its cast from its first shot only (a later @Name went unchecked and a
    later character was sent as a plain word), and its quote ignored the voice rate while Confirm held it (a
    storyboard held less than fal bills). Each shot is now checked and priced as a /shot is, and a storyboard's
    shots name their characters as @ElementN in its multi_prompt."""
    await _cast_of_two(fake_discord)
    await _voice_set(fake_discord, "Grace", _wav(10))
    await fake_discord.wait_for(
        lambda: any(
            "has a voice now" in text_of(m) for m in fake_discord.channel_messages(fake_discord.channel_id)
        ),
        timeout=30,
    )
    voice = await _voiced(runner, "Grace", fake_discord)
    await text_reply(await fake_discord.slash("scene start", name="Talk"))
    refused = await text_reply(
        await fake_discord.slash("scene plan", shots="Mara waves\n@Nobody sings", audio=True)
    )
    assert refused["_ephemeral"] and "There is no Nobody" in text_of(refused)

    plan = await text_reply(
        await fake_discord.slash("scene plan", shots="Mara waves\nGrace says hello", audio=True)
    )
    assert "2 shots \u00b7 10 s \u00b7 $1.82" in text_of(plan)  # 5 s with sound, 5 s with Grace's voice
    [confirm] = [b["custom_id"] for row in plan["components"] for b in row["components"]]
    assert "$1.82 held" in text_of(await text_reply(await fake_discord.click(int(plan["id"]), confirm)))
    await wait_posted(runner, fake_discord, 2)
    by_prompt = {s.arguments["prompt"]: s for s in _kling(fake_fal)}
    grace = by_prompt["@Element1 says hello"]
    [element] = grace.arguments["elements"]
    assert element["voice_id"] == voice.voice_id and grace.arguments["generate_audio"] is True
    assert await settled_totals(runner, fake_discord) == (7_000 + 5 * AUDIO_S + 5 * VOICE_S, 0)

    board = await text_reply(
        await fake_discord.slash(
            "scene plan", shots="Mara waves | Grace says hello", audio=True, one_call=True
        )
    )
    assert "2 shots \u00b7 10 s \u00b7 $1.96" in text_of(board)  # one take of 10 s, at the voice rate
    [confirm] = [b["custom_id"] for row in board["components"] for b in row["components"]]
    await text_reply(await fake_discord.click(int(board["id"]), confirm))
    sub = await fake_discord.wait_for(
        lambda: next((s for s in _kling(fake_fal) if "multi_prompt" in s.arguments), None), timeout=30
    )
    assert [p["prompt"] for p in sub.arguments["multi_prompt"]] == ["@Element1 waves", "@Element2 says hello"]
    mara_el, grace_el = sub.arguments["elements"]
    assert "voice_id" not in mara_el and grace_el["voice_id"] == voice.voice_id
    await wait_posted(runner, fake_discord, 4, timeout=60)
    assert await settled_totals(runner, fake_discord) == (7_000 + 5 * AUDIO_S + 15 * VOICE_S, 0)


def _voice_job_now(runner, state=JobState.POSTED):
    """The newest voice job, once it is in `state` (for wait_for: a coroutine is awaited there)."""

    async def newest():
        jobs = [j for j in await runner.services.jobs.in_states(*JobState) if j.kind == "voice"]
        last = max(jobs, key=lambda j: j.id, default=None)
        return last if last is not None and last.state is state else None

    return newest()


async def test_a_voice_whose_channel_is_deleted_costs_nothing_and_one_refused_notice_keeps_the_voice(
    bot, runner, fake_discord, fake_fal
):
    """Found in review: a voice's notice had no answer for a deleted channel (its hold stayed and the job
    retried for good). Deleted: the voice job ends at once, nothing charged. Notice refused for good (403): the
    voice is made and stored, shots use it, so it is charged once; only the notice is missing."""
    await _cast_of_two(fake_discord)
    fake_discord.faults.fail(
        Faults.CREATE,
        status=403,
        body={"code": 50013, "message": "Missing Permissions"},
        when=lambda r: "has a voice now" in str(r.json),
    )
    await _voice_set(fake_discord, "Grace", _wav(10))
    done = await fake_discord.wait_for(lambda: _voice_job_now(runner), timeout=30)
    assert done.state is JobState.POSTED
    assert await _voiced(runner, "Grace", fake_discord) is not None
    assert await settled_totals(runner, fake_discord) == (7_000, 0)

    fake_fal.script(Outcome.hold())
    await _voice_set(fake_discord, "Mara", _wav(10))
    await fake_discord.wait_for(lambda: fake_fal.submissions_to("create-voice")[-1].held, timeout=30)
    fake_discord.delete_channel(fake_discord.channel_id)
    fake_fal.release()
    failed = await fake_discord.wait_for(lambda: _voice_job_now(runner, JobState.FAILED), timeout=30)
    assert "channel is gone" in (failed.error or "")
    assert await settled_totals(runner, fake_discord) == (7_000, 0)  # Mara's voice cost nothing


async def test_a_refused_image_renames_no_one(bot, runner, fake_discord, fake_fal):
    """Found in review: /anchor set name:<new> renamed the channel's lone character before its image was
    checked, so a refused upload still renamed it."""
    await set_anchor(fake_discord, samples.portrait_png(), name="Mara")
    att = fake_discord.make_attachment("grace.png", b"not an image at all", content_type="image/png")
    refused = await text_reply(await fake_discord.slash("anchor set", image=att, name="Grace"))
    assert "not a PNG, JPEG or WebP image" in text_of(refused)
    [only] = await runner.services.anchors.cast.members(fake_discord.channel_id, None)
    assert only.name == "Mara"
    await set_anchor(fake_discord, samples.portrait_png(shade=120), name="Grace")  # accepted: renamed with it
    [only] = await runner.services.anchors.cast.members(fake_discord.channel_id, None)
    assert only.name == "Grace"


async def test_a_storyboard_shot_within_512_characters_as_typed_but_not_as_sent_is_refused_before_anything(
    bot, runner, fake_discord, fake_fal
):
    """Kling's 512 characters a shot of one call count what is sent: the cast's names written as @ElementN can take
    a shot typed within them past them. The plan says so at its quote; nothing is held or sent."""
    await _cast_of_two(fake_discord)
    await text_reply(await fake_discord.slash("scene start", name="Talk"))
    first = ("Mara looks at Grace. " * 30)[:500].rstrip()
    answer = await text_reply(
        await fake_discord.slash("scene plan", shots=f"5s: {first}\n5s: Grace nods", one_call=True)
    )
    assert answer["_ephemeral"] and re.search(
        r"Shot 1 comes to \d+ characters .* at most 512", text_of(answer)
    )
    await _nothing_held(runner, fake_discord)
    assert _kling(fake_fal) == [] and fake_fal.kling_rule_breaks == []


async def test_a_threads_cast_counts_its_parents_and_its_list_shows_more_than_a_sheet_holds(
    bot, runner, fake_discord, fake_fal
):
    """Found in review: a thread counted only its own characters against the 25 a cast may have, while it uses
    its parent's too, so its cast passed 25 and /cast list there failed with an incident (the contact sheet holds
    25). Adding now counts the cast the thread will use (a character shadowing a parent's of its name adds none),
    and /cast list copes with a longer cast anyway (a parent that grows after its thread did): the sheet shows
    the first 24 and a tile counting the rest, the list names as many as fit."""
    cast, parent = runner.services.anchors.cast, fake_discord.channel_id

    async def add_to_parent(n: int) -> None:
        await cast.add(
            guild_id=fake_discord.guild_id,
            channel_id=parent,
            parent_id=None,
            user_id=fake_discord.member("alice"),
            data=samples.portrait_png(shade=40 + 4 * n),
            name=f"P{n:02d}",
        )

    for n in range(24):
        await add_to_parent(n)
    thread = fake_discord.add_thread(parent, "side")
    await fake_discord.wait_for(lambda: bot.get_channel(thread) is not None)

    async def add_here(name: str, shade: int) -> str:
        att = fake_discord.make_attachment(
            f"{name}.png", samples.portrait_png(shade=shade), content_type="image/png"
        )
        return text_of(
            await text_reply(await fake_discord.slash("cast add", channel_id=thread, name=name, image=att))
        )

    assert "Tom joined the cast" in await add_here("Tom", 200)  # 24 from the parent and Tom: 25
    full = await add_here("Ann", 210)
    assert "cast is full (25 characters, 24 of them from the parent channel)" in full, full
    assert "P00 joined the cast" in await add_here("P00", 220)  # shadows the parent's P00: still 25
    assert len(await cast.members(thread, parent)) == 25

    await add_to_parent(24)  # the parent grows after its thread: the thread uses 26
    assert len(await cast.members(thread, parent)) == 26
    answer = await text_reply(await fake_discord.slash("cast list", channel_id=thread), timeout=60)
    assert "Something went wrong" not in text_of(answer), text_of(answer)
    [embed] = answer["embeds"]
    listed = re.findall(r"^\*\*(.+?)\*\*", embed["description"], flags=re.MULTILINE)
    more = re.findall(r"^\u2026 and (\d+) more characters?$", embed["description"], flags=re.MULTILINE)
    assert listed[:2] == ["Tom", "P00"] and len(listed) + sum(int(m) for m in more) == 26
    [sheet] = [f for f in answer["_files"] if f.filename == "cast.png"]
    assert Image.open(io.BytesIO(sheet.data)).format == "PNG"


async def test_a_group_anchor_without_one_face_goes_along_whole_not_as_a_crop_between_faces(
    bot, runner, fake_discord, fake_fal
):
    """An anchor of two people of a size has no one face to crop: a guessed centred crop cut between the two
    faces (dlib found none in it). The element carries the whole anchor then, and the progress message says so."""
    group = fs.side_by_side(fs.centred_portrait(), fs.hopper_portrait())
    await set_anchor(fake_discord, samples.png_bytes(group), name="Mara")
    await _add(fake_discord, "Grace", samples.png_bytes(fs.hopper_portrait()))
    await run_shot(fake_discord, "Grace hands Mara a cup of coffee")
    [sub] = await fake_discord.wait_for(lambda: _kling(fake_fal), timeout=30)
    mara = next(e for e in sub.arguments["elements"] if e["frontal_image_url"] == sub.arguments["start_image_url"])
    [ref] = mara["reference_image_urls"]
    assert fake_fal.fetch_upload(ref) == fake_fal.fetch_upload(mara["frontal_image_url"])  # the whole anchor
    assert len(detect_faces(fake_fal.fetch_upload(ref), embeddings=False)) == 2
    progress = "\n".join(text_of(m) for m in fake_discord.channel_messages(fake_discord.channel_id))
    assert "Mara has no angles and no one face stands out in the anchor" in progress
    assert "Grace has no angles, so a crop of the face goes along" in progress
