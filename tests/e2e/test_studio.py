"""The anchor studio end to end: /anchor generate, refine and angles through the fake Discord and the fake fal."""

from __future__ import annotations

import asyncio
import io
import time

import pytest
from PIL import Image

from bot.errors import UserError
from bot.jobs import JobState
from bot.studio.service import ANCHOR_RULES, EXPIRY_S
from tests import samples
from tests.both_backends import both_backends  # noqa: F401  (every test here on both backends)
from tests.e2e.helpers import decode_size, original_reply, set_anchor, settled_totals, text_reply
from tests.e2e.shots_helpers import progress_messages, run_shot, wait_clips
from tests.fakes.discord import DEFAULT_MEMBER_PERMS, text_of
from tests.fakes.fal_fake import Outcome

SEEDREAM = "fal-ai/bytedance/seedream/v4.5/text-to-image"
SEEDREAM_EDIT = "fal-ai/bytedance/seedream/v4.5/edit"
KLING = "fal-ai/kling-video/v3/pro/image-to-video"
QWEN = "fal-ai/qwen-image-edit-2511-multiple-angles"
BACKGROUND = (24, 24, 28)


def sheets(fake):
    return [m for m in fake.msgs(author="bot") if any("anchor studio" in f for f in m.footers)]


async def wait_sheets(fake, n: int = 1):
    return await fake.wait_for(lambda: (s := sheets(fake)) and len(s) >= n and s, timeout=20)


async def slash(fake, command: str, *, user: str = "alice", **options):
    it = await fake.slash(command, user=user, **options)
    return await original_reply(it)  # answers edit the deferred response, never a followup


async def click(fake, msg, label: str, *, user: str = "alice"):
    [button] = [b for b in msg.buttons if b.label == label or b.label.startswith(f"{label} \u00b7 ")]
    it = await fake.click(msg.id, button.custom_id, user=user)
    return await original_reply(it)


def _bare(label: str) -> str:
    """A button's label without the price it shows ("Again · $0.12" -> "Again")."""
    return label.split(" \u00b7 ")[0]


async def totals(runner, fake, user: str = "alice"):
    return await settled_totals(runner, fake, user)


def tiles_in(data: bytes) -> tuple[tuple[int, int], int]:
    """(size, number of tiles) of a contact sheet: runs of non-background pixels across its middle row."""
    with Image.open(io.BytesIO(data)) as im:
        rgb = im.convert("RGB")
        y = rgb.height // 2
        runs, inside = 0, False
        for x in range(rgb.width):
            tile = rgb.getpixel((x, y)) != BACKGROUND
            runs += tile and not inside
            inside = tile
        return rgb.size, runs


async def test_generate_posts_one_sheet_and_charges_count_times_price(bot, runner, fake_discord, fake_fal):
    reply = await slash(fake_discord, "anchor generate", description="a woman with short red hair", count=3)
    assert "sheet will appear" in text_of(reply)
    [sheet] = await wait_sheets(fake_discord)

    [sub] = fake_fal.submissions  # ONE call with num_images
    assert sub.endpoint == SEEDREAM
    assert sub.arguments["num_images"] == 3
    assert sub.arguments["prompt"] == ANCHOR_RULES.format(description="a woman with short red hair")
    [request] = [m for m in fake_discord.msgs(author="bot") if "Prompt sent" in m.text]
    assert "3 \u00d7 $0.04 = $0.12" in request.text and "Head-and-shoulders portrait" in request.text
    assert (
        sheet.raw["message_reference"]["message_id"] == str(request.id)
        or int(sheet.raw["message_reference"]["message_id"]) == request.id
    )

    [file] = sheet.files
    size, tiles = tiles_in(file.data)
    assert tiles == 3 and size[0] > 3 * 300 and size[0] > size[1]
    assert [_bare(b.label) for b in sheet.buttons] == ["Use 1", "Use 2", "Use 3", "Again"]
    assert sheet.buttons[-1].label == "Again \u00b7 $0.12"  # what pressing it costs, before paying
    assert await totals(runner, fake_discord) == (120_000, 0)


async def test_use_makes_candidate_the_anchor_and_again_charges_again(bot, runner, fake_discord, fake_fal):
    await slash(fake_discord, "anchor generate", description="an old sailor", count=2)
    [sheet] = await wait_sheets(fake_discord)
    answer = await click(fake_discord, sheet, "Use 2")
    assert "Candidate 2 is now the anchor" in text_of(answer) and "Anchor set: v1" in text_of(answer)
    anchor = await runner.services.anchors.resolve(fake_discord.channel_id)
    assert anchor.version == 1 and anchor.set_by == fake_discord.member("alice")
    assert runner.services.anchors.image_path(anchor.sha256).is_file()

    await click(fake_discord, sheet, "Again")
    _, second = await wait_sheets(fake_discord, 2)
    assert [s.arguments["prompt"] for s in fake_fal.submissions] == [
        fake_fal.submissions[0].arguments["prompt"]
    ] * 2
    assert [_bare(b.label) for b in second.buttons] == ["Use 1", "Use 2", "Again"]
    assert await totals(runner, fake_discord) == (160_000, 0)


async def test_stranger_is_refused_and_nothing_changes(bot, runner, fake_discord, fake_fal):
    await slash(fake_discord, "anchor generate", description="a knight", count=1)
    [sheet] = await wait_sheets(fake_discord)
    fake_discord.add_member("bob", permissions=DEFAULT_MEMBER_PERMS)
    answer = await click(fake_discord, sheet, "Use 1", user="bob")
    assert "Only the person who asked" in text_of(answer) and answer["_ephemeral"]
    assert await runner.services.anchors.store.current(fake_discord.channel_id) is None
    await click(fake_discord, sheet, "Again", user="bob")
    assert len(fake_fal.submissions) == 1
    # Someone without Manage Messages cannot start a set either.
    assert "Manage Messages" in text_of(
        await slash(fake_discord, "anchor generate", user="bob", description="x")
    )


async def test_restart_between_generate_and_pick(bot, runner, fake_discord, fake_fal):
    await slash(fake_discord, "anchor generate", description="a detective", count=2)
    [sheet] = await wait_sheets(fake_discord)
    await runner.stop()
    await runner.start()
    answer = await click(fake_discord, sheet, "Use 1")
    assert "Candidate 1 is now the anchor" in text_of(answer)
    assert (await runner.services.anchors.resolve(fake_discord.channel_id)).version == 1


async def test_buttons_expire_after_24_hours_and_candidates_are_deleted(bot, runner, fake_discord, fake_fal):
    await slash(fake_discord, "anchor generate", description="a pilot", count=2)
    [sheet] = await wait_sheets(fake_discord)
    await click(fake_discord, sheet, "Use 1")
    studio = runner.services.studio
    job_id = int(
        sheet.buttons[-1].custom_id.split(":")[2]
    )  # Again: the chosen candidate's mark has no set id
    folder = studio.root / str(job_id)
    assert folder.is_dir()
    runner.services.jobs.clock = lambda: time.time() + EXPIRY_S - 60
    assert await studio.expire_due() == [] and folder.is_dir()
    runner.services.jobs.clock = lambda: time.time() + EXPIRY_S + 1
    answer = await click(fake_discord, sheet, "Again")  # before the hourly sweep: expired all the same
    assert "expired after 24 hours" in text_of(answer)
    assert not folder.exists()
    await fake_discord.wait_for(lambda: not sheet.buttons and "expired" in sheet.text)

    # The sweep finds the others (a second set, never clicked) and retires their sheets too.
    runner.services.jobs.clock = time.time
    await slash(fake_discord, "anchor generate", description="a pilot", count=1)
    _, second = await wait_sheets(fake_discord, 2)
    second_id = int(second.buttons[0].custom_id.split(":")[2])
    # The sheet is on Discord a moment before its job is recorded as posted; only posted sets expire.
    for _ in range(200):
        job = await runner.services.jobs.get(second_id)
        if job is not None and job.is_final:
            break
        await asyncio.sleep(0.05)
    runner.services.jobs.clock = lambda: time.time() + EXPIRY_S + 1
    assert await bot.get_cog("StudioCog").sweep(studio) == 1
    await fake_discord.wait_for(lambda: not second.buttons and "expired" in second.text)
    anchor = await runner.services.anchors.resolve(fake_discord.channel_id)
    assert (
        anchor.version == 1 and runner.services.anchors.image_path(anchor.sha256).is_file()
    )  # chosen one kept


async def test_content_policy_rejection_charges_nothing(bot, runner, fake_discord, fake_fal):
    fake_fal.script(Outcome.content_policy(at="result"))
    await slash(fake_discord, "anchor generate", description="something", count=4)
    failed = await fake_discord.wait_for(
        lambda: [m for m in fake_discord.msgs(author="bot") if "failed" in m.text], timeout=20
    )
    assert "Nothing was charged" in failed[0].text
    assert sheets(fake_discord) == []
    assert await totals(runner, fake_discord) == (0, 0)


async def test_a_broken_candidate_is_not_delivered_nor_charged(bot, runner, fake_discord, fake_fal):
    fake_fal.break_downloads("html", 1)
    await slash(fake_discord, "anchor generate", description="a chef", count=4)
    [sheet] = await wait_sheets(fake_discord)
    assert tiles_in(sheet.files[0].data)[1] == 3
    assert [_bare(b.label) for b in sheet.buttons] == ["Use 1", "Use 2", "Use 3", "Again"]
    assert "not charged" in sheet.all_text
    assert await totals(runner, fake_discord) == (120_000, 0)


async def test_refine_edits_the_current_anchor(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png(), name="Mara")
    anchor = await runner.services.anchors.resolve(fake_discord.channel_id)
    await slash(fake_discord, "anchor refine", instruction="plain grey background")
    [sheet] = await wait_sheets(fake_discord)
    [sub] = fake_fal.submissions
    assert sub.endpoint == SEEDREAM_EDIT and sub.arguments["num_images"] == 2
    assert sub.arguments["prompt"] == "plain grey background"
    assert (
        fake_fal.fetch_upload(sub.arguments["image_urls"][0])
        == runner.services.anchors.image_path(anchor.sha256).read_bytes()
    )
    await click(fake_discord, sheet, "Use 2")
    refined = await runner.services.anchors.resolve(fake_discord.channel_id)
    assert (refined.version, refined.name) == (2, "Mara")
    assert await totals(runner, fake_discord) == (80_000, 0)


async def test_angles_kept_added_full_and_carried_by_every_take(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png(), name="Mara")
    anchor = await runner.services.anchors.resolve(fake_discord.channel_id)
    await slash(fake_discord, "anchor angles make", count=2)
    [sheet] = await wait_sheets(fake_discord)
    assert [_bare(b.label) for b in sheet.buttons] == ["Keep all", "Keep 1", "Keep 2", "Again"]
    qwen = fake_fal.submissions  # one qwen multiple-angles call per view, from the stored anchor
    assert [(s.endpoint, s.arguments["horizontal_angle"]) for s in qwen] == [(QWEN, 315), (QWEN, 45)]
    stored = runner.services.anchors.image_path(anchor.sha256).read_bytes()
    assert all(fake_fal.fetch_upload(s.arguments["image_urls"][0]) == stored for s in qwen)
    assert await totals(runner, fake_discord) == (70_000, 0)  # 768x1024 is 1 started megapixel: $0.035 a view
    assert "2 of 3" in text_of(await click(fake_discord, sheet, "Keep all"))
    upload = fake_discord.make_attachment(
        "side.png", samples.portrait_png(shade=90), content_type="image/png"
    )
    assert "3 of 3" in text_of(await slash(fake_discord, "anchor angles add", image=upload))
    # The sheet retired its Keep buttons once the views were kept (it shows what was kept); the set's own rule
    # still refuses a fourth angle, all or nothing.
    assert [_bare(b.label) for b in sheet.buttons if not b.disabled] == ["Again"]
    job_id = int(sheet.buttons[-1].custom_id.split(":")[2])
    with pytest.raises(UserError) as full:
        await runner.services.studio.keep(job_id, [1], user_id=fake_discord.member("alice"), can_manage=True)
    assert "set is full" in full.value.message
    angles = await runner.services.studio.angle_shas(anchor.id)
    assert len(angles) == 3
    shown = await slash(fake_discord, "anchor show")
    assert "Angles" in text_of(shown) and "3 of 3" in text_of(shown)
    [angles_png] = [f.data for f in shown["_files"] if f.filename == "angles.png"]
    assert tiles_in(angles_png)[1] == 3

    fake_fal.script(Outcome.complete(), Outcome.complete())
    await run_shot(fake_discord, "Mara turns her head towards the door")
    [clip] = await wait_clips(fake_discord, 1)
    kling = [s for s in fake_fal.submissions if s.endpoint == KLING]
    [element] = kling[0].arguments["elements"]
    assert kling[0].arguments["prompt"] == "@Element1 turns her head towards the door"
    images = runner.services.anchors.image_path
    assert fake_fal.fetch_upload(element["frontal_image_url"]) == images(anchor.sha256).read_bytes()
    assert [fake_fal.fetch_upload(u) for u in element["reference_image_urls"]] == [
        images(s).read_bytes() for s in angles
    ]
    [progress] = progress_messages(fake_discord)
    assert progress["id"] == clip["message_reference"]["message_id"]
    assert "@Element1 turns her head towards the door" in text_of(clip)  # the details are on the clip
    assert "that is how the video model is told which references" in text_of(clip)

    # A re-roll carries the same version and angles.
    [reroll] = [b for b in fake_discord.msg(clip["id"]).buttons if b.label.startswith("Re-roll")]
    it = await fake_discord.click(int(clip["id"]), reroll.custom_id)
    await text_reply(it)
    await wait_clips(fake_discord, 2)
    kling = [s for s in fake_fal.submissions if s.endpoint == KLING]
    assert kling[1].arguments["elements"] == kling[0].arguments["elements"]
    assert kling[1].arguments["prompt"] == kling[0].arguments["prompt"]

    assert "Cleared 3 angles" in text_of(await slash(fake_discord, "anchor angles clear"))
    await run_shot(fake_discord, "Mara waves")
    await wait_clips(fake_discord, 3)
    last = [s for s in fake_fal.submissions if s.endpoint == KLING][-1]
    assert "elements" not in last.arguments and last.arguments["prompt"] == "Mara waves"
    job = await runner.services.jobs.get(int(sheet.buttons[-1].custom_id.split(":")[2]))
    assert job is not None and job.state is JobState.POSTED


async def test_dry_run_generates_real_pngs_and_charges_nothing(runner, fake_discord, fake_fal):
    await runner.start(fal=False)
    reply = await slash(fake_discord, "anchor generate", description="a gardener", count=2)
    assert "sheet will appear" in text_of(reply)
    [sheet] = await wait_sheets(fake_discord)
    assert tiles_in(sheet.files[0].data)[1] == 2 and fake_fal.submissions == []
    [request] = [m for m in fake_discord.msgs(author="bot") if "Prompt sent" in m.text]
    assert "free (dry run; would cost 2 \u00d7 $0.04 = $0.08)" in request.text
    assert "now the anchor" in text_of(await click(fake_discord, sheet, "Use 1"))
    await slash(fake_discord, "anchor refine", instruction="look straight at the camera", count=1)
    await wait_sheets(fake_discord, 2)
    assert await totals(runner, fake_discord) == (0, 0)


async def test_a_view_fal_did_not_accept_is_left_out_and_the_accepted_one_never_sent_again(
    bot, runner, fake_discord, fake_fal
):
    await set_anchor(fake_discord, samples.portrait_png(), name="Mara")
    # view 1 accepted; view 2's submit answered 503 (nothing queued for it). Sending the set again would run view 1
    # twice at fal whenever its cancel is not confirmed: the set is the view fal holds.
    fake_fal.script(Outcome.complete(), Outcome.server_error(status=503, at="submit"))
    fake_fal.refuse_next_cancel(500)
    await slash(fake_discord, "anchor angles make", count=2)
    [sheet] = await wait_sheets(fake_discord)
    assert fake_fal.duplicate_runs() == [] and not any(s.cancelled for s in fake_fal.submissions)
    assert tiles_in(sheet.files[0].data)[1] == 1 and "not charged" in sheet.all_text
    assert await totals(runner, fake_discord) == (35_000, 0)  # one view of a 1-megapixel anchor


async def test_a_refused_view_is_left_out_and_not_charged(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png(), name="Mara")
    fake_fal.script(Outcome.complete(), Outcome.content_policy(at="result"), Outcome.complete())
    await slash(fake_discord, "anchor angles make")
    [sheet] = await wait_sheets(fake_discord)
    assert len(fake_fal.submissions) == 3
    assert [_bare(b.label) for b in sheet.buttons] == ["Keep all", "Keep 1", "Keep 2", "Again"]
    assert tiles_in(sheet.files[0].data)[1] == 2 and "not charged" in sheet.all_text
    assert await totals(runner, fake_discord) == (70_000, 0)  # two views of a 1-megapixel anchor


async def test_angles_with_seedream_edit_is_one_call(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png(), name="Mara")
    await slash(fake_discord, "anchor angles make", count=3, model="seedream-v4.5-edit")
    [sheet] = await wait_sheets(fake_discord)
    [sub] = fake_fal.submissions
    assert sub.endpoint == SEEDREAM_EDIT and sub.arguments["num_images"] == 3
    assert "profile view" in sub.arguments["prompt"]
    assert "3 of 3" in text_of(await click(fake_discord, sheet, "Keep all"))


async def test_a_5xx_at_submit_is_retried_and_charged_once(bot, runner, fake_discord, fake_fal):
    fake_fal.fail_next("submit", 1, status=503)
    await slash(fake_discord, "anchor generate", description="a baker", count=2)
    [sheet] = await wait_sheets(fake_discord)
    assert len([s for s in fake_fal.submissions if s.endpoint == SEEDREAM]) == 1
    assert [_bare(b.label) for b in sheet.buttons] == ["Use 1", "Use 2", "Again"]
    assert await totals(runner, fake_discord) == (80_000, 0)


async def test_a_set_past_the_budget_is_refused_before_fal(bot, runner, fake_discord, fake_fal):
    await runner.services.budget.set_user_limit(fake_discord.guild_id, fake_discord.member("alice"), 100_000)
    answer = await slash(fake_discord, "anchor generate", description="a baker", count=4)
    assert "$0.16" in text_of(answer) and "$0.10" in text_of(answer)
    await slash(fake_discord, "anchor generate", description="a baker", count=2)
    await wait_sheets(fake_discord)
    assert len(fake_fal.submissions) == 1 and await totals(runner, fake_discord) == (80_000, 0)


async def test_a_click_while_the_sheet_is_being_recorded_is_honoured(bot, runner, fake_discord, fake_fal):
    # Discord stores the sheet but answers 500 twice; discord.py sends it again 1 s and 3 s later (the nonce makes it
    # one message), so the set is still POSTING for 4 s while its sheet is on screen. A click then works and does
    # not delete the set.
    rule = fake_discord.faults.store_then_fail(2, when=lambda r: r.files, status=500)
    await slash(fake_discord, "anchor generate", description="a gardener", count=2)
    [sheet] = await wait_sheets(fake_discord)
    job_id = int(sheet.buttons[0].custom_id.split(":")[2])
    job = await runner.services.studio.get(job_id)
    assert job is not None and job.state is JobState.POSTING and rule.hits >= 1
    assert "Candidate 1 is now the anchor" in text_of(await click(fake_discord, sheet, "Use 1"))

    async def posted():
        job = await runner.services.studio.get(job_id)
        return job is not None and job.state is JobState.POSTED

    await fake_discord.wait_for(posted, timeout=20)
    assert len(sheets(fake_discord)) == 1
    # The click counted and deleted nothing: the sheet shows the choice, and the set's candidates are still there.
    assert [b.label for b in sheet.buttons if b.disabled] == ["\u2714 Candidate 1 is now v1"]
    assert (runner.services.studio.root / str(job_id)).is_dir()
    assert await totals(runner, fake_discord) == (80_000, 0)


async def test_status_counts_shots_not_studio_sets(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png())
    fake_fal.script(Outcome.hold(), Outcome.hold())
    await run_shot(fake_discord, "a take at fal")
    await slash(fake_discord, "anchor generate", description="a set at fal", count=1)
    await fake_discord.wait_for(
        lambda: len(fake_fal.submissions) == 2 and all(s.held for s in fake_fal.submissions)
    )
    it = await fake_discord.slash("status")
    reply = await it.wait_reply(lambda m: bool(m.get("embeds")))
    fields = {f["name"]: f["value"] for f in reply["embeds"][0]["fields"]}
    assert (fields["Shots queued"], fields["Shots in flight"]) == ("0", "1"), fields
    fake_fal.release()


async def test_angles_are_quoted_and_charged_per_megapixel_of_the_anchor_sent(
    bot, runner, fake_discord, fake_fal
):
    # fal bills qwen multiple-angles $0.035 per megapixel, and a view is the size of the image it is sent: a
    # 1536x2048 anchor (3.1 MP) is quoted 4 started megapixels, $0.14 a view, never the flat $0.04 it once was.
    await set_anchor(fake_discord, samples.portrait_png((1536, 2048)), name="Mara")
    anchor = await runner.services.anchors.resolve(fake_discord.channel_id)
    assert (anchor.width, anchor.height) == (1536, 2048)
    await slash(fake_discord, "anchor angles make", count=2)
    [sheet] = await wait_sheets(fake_discord)
    [request] = [m for m in fake_discord.msgs(author="bot") if "Prompt sent" in m.text]
    assert "2 \u00d7 $0.14 = $0.28 at $0.035 per megapixel, 4 MP each" in request.text
    qwen = [s for s in fake_fal.submissions if s.endpoint == QWEN]
    assert len(qwen) == 2
    sent = [fake_fal.fetch_upload(s.arguments["image_urls"][0]) for s in qwen]
    assert [decode_size(data) for data in sent] == [(1536, 2048)] * 2  # the image the quote was made on
    assert sheet.buttons[-1].label == "Again \u00b7 $0.28"
    assert await totals(runner, fake_discord) == (280_000, 0)

    await click(fake_discord, sheet, "Again")  # quoted afresh on the same anchor: the same price
    _, second = await wait_sheets(fake_discord, 2)
    assert second.buttons[-1].label == "Again \u00b7 $0.28"
    assert await totals(runner, fake_discord) == (560_000, 0)

    # One view refused: the set is charged for the view delivered, at its per-megapixel price.
    fake_fal.script(Outcome.complete(), Outcome.content_policy(at="result"))
    await slash(fake_discord, "anchor angles make", count=2)
    await wait_sheets(fake_discord, 3)
    assert await totals(runner, fake_discord) == (700_000, 0)

    # /help lists the studio's rates for a moderator, per megapixel for qwen, with a view of this anchor's price.
    text = text_of(await text_reply(await fake_discord.slash("help")))
    assert "Multiple Angles $0.035 per megapixel of the anchor, a view ($0.14 a view of this anchor)" in text
    assert "Seedream v4.5 Edit $0.04 per image" in text
    fake_discord.add_member("bob", permissions=DEFAULT_MEMBER_PERMS)
    assert "per megapixel" not in text_of(await text_reply(await fake_discord.slash("help", user="bob")))


# -- Angles are held to the anchor's face -----------------------------------------------------------------------


def _upload(fake, name: str, img: Image.Image) -> dict:
    return fake.make_attachment(f"{name}.png", samples.png_bytes(img), content_type="image/png")


async def _angle_faces(runner, version_id: int) -> list[tuple[int | None, bool]]:
    """(angle id, has an embedding) of each face stored with the version: its own first (angle id None)."""
    return [
        (f.angle_id, f.embedding is not None)
        for f in await runner.services.consistency.store.faces(version_id)
    ]


async def _angle_ids(runner, version_id: int) -> list[int]:
    rows = await runner.services.db.fetchall(
        "SELECT id FROM anchor_angles WHERE version_id=? ORDER BY id", (version_id,)
    )
    return [int(r["id"]) for r in rows]


async def test_an_added_angle_must_show_the_anchors_person_and_its_face_is_stored(
    bot, runner, fake_discord, fake_fal
):
    """Found in review: /anchor angles add ran no face check and stored no face, so a coffee cup, another person
    or a two-person photo were all "Angle added". An angle is held to the anchor's face now (refused, changing
    nothing, when it shows none or someone else) and its own face is stored under its id for the face scores."""
    from tests import faces_samples as fs

    await set_anchor(fake_discord, samples.png_bytes(fs.centred_portrait()), name="Mara")
    anchor = await runner.services.anchors.resolve(fake_discord.channel_id)
    group = fs.side_by_side(fs.hopper_portrait(), fs.luis_pedro().resize((440, 553)))
    for name, img, words in (
        ("coffee", fs.coffee(), "I found no face in that picture"),
        ("stranger", fs.hopper_portrait(), "doesn't look like the one in Mara's anchor"),
        ("group", group, "shows 2 faces of a size"),
    ):
        reply = text_of(
            await slash(fake_discord, "anchor angles add", image=_upload(fake_discord, name, img))
        )
        assert words in reply and "nothing changed" in reply and "Angle added" not in reply, (name, reply)
    assert await runner.services.studio.angle_shas(anchor.id) == []
    assert await _angle_faces(runner, anchor.id) == [(None, True)]

    # The same person from the other side is an angle, and its face is kept under the angle's id.
    mirrored = fs.centred_portrait().transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    reply = text_of(
        await slash(fake_discord, "anchor angles add", image=_upload(fake_discord, "other", mirrored))
    )
    assert reply == "Angle added: this anchor version now has 1 of 3."
    [angle_id] = await _angle_ids(runner, anchor.id)
    assert await _angle_faces(runner, anchor.id) == [(None, True), (angle_id, True)]
    assert len(await runner.services.consistency.embeddings(anchor.id)) == 2  # what takes are scored against


async def test_views_kept_from_an_angles_sheet_are_held_to_the_anchors_face_too(
    bot, runner, fake_discord, fake_fal
):
    """Keep on an angles sheet goes through the same intake as /anchor angles add: a view showing someone else
    is refused (all or nothing, naming the view), the others are kept with their faces."""
    from tests import faces_samples as fs

    await set_anchor(fake_discord, samples.png_bytes(fs.centred_portrait()), name="Mara")
    anchor = await runner.services.anchors.resolve(fake_discord.channel_id)
    stranger = fake_discord.make_attachment(
        "view.png", samples.png_bytes(fs.hopper_portrait()), content_type="image/png"
    )
    w, h = fs.hopper_portrait().size
    image = {"url": stranger["url"], "width": w, "height": h, "content_type": "image/png"}
    fake_fal.script(Outcome.complete(), Outcome.complete(output={"images": [image], "seed": 7}))
    await slash(fake_discord, "anchor angles make", count=2)
    [sheet] = await wait_sheets(fake_discord)
    refused = text_of(await click(fake_discord, sheet, "Keep all"))
    assert refused.startswith(
        "View 2: The face in that picture doesn't look like the one in Mara's anchor"
    ), refused
    assert await runner.services.studio.angle_shas(anchor.id) == []
    assert "1 of 3" in text_of(await click(fake_discord, sheet, "Keep 1"))
    [angle_id] = await _angle_ids(runner, anchor.id)
    assert await _angle_faces(runner, anchor.id) == [(None, True), (angle_id, True)]


async def test_without_face_checks_an_angle_is_taken_as_it_is(
    bot, runner, fake_discord, fake_fal, monkeypatch
):
    """A bot whose face engine does not load (no dlib) adds angles as before face checks: nothing to hold them to."""
    from bot.media import faces
    from tests import faces_samples as fs

    await set_anchor(fake_discord, samples.png_bytes(fs.centred_portrait()), name="Mara")
    anchor = await runner.services.anchors.resolve(fake_discord.channel_id)

    class NoFaceEngine:  # the pool as it answers on a machine without dlib
        async def run(self, fn, *args, **kwargs):
            raise faces.FaceEngineUnavailable("dlib is not installed or does not load")

    monkeypatch.setattr(runner.services.consistency, "pool", NoFaceEngine())
    reply = await slash(fake_discord, "anchor angles add", image=_upload(fake_discord, "coffee", fs.coffee()))
    assert text_of(reply) == "Angle added: this anchor version now has 1 of 3."
    assert await _angle_faces(runner, anchor.id) == [(None, True)]  # no face stored for it


async def _click_twice(fake, sheet, label: str, *, user: str = "alice") -> list[str]:
    """The same member clicking one button of a sheet twice at the same moment; both private answers."""
    [button] = [b for b in sheet.buttons if _bare(b.label) == label]
    its = await asyncio.gather(
        fake.click(sheet.id, button.custom_id, user=user), fake.click(sheet.id, button.custom_id, user=user)
    )
    return sorted([text_of(await original_reply(it, timeout=30)) for it in its])


def _told(fake, words: str) -> list[str]:
    """The public lines of the channel that carry `words` (anchor changes are said once, with 🎭)."""
    texts = [text_of(m) for m in fake.channel_messages(fake.channel_id)]
    return [t for t in texts if "\U0001f3ad" in t and words in t]


async def test_again_clicked_twice_at_once_starts_one_set(bot, runner, fake_discord, fake_fal):
    await slash(fake_discord, "anchor generate", description="an old sailor", count=1)
    [sheet] = await wait_sheets(fake_discord)
    answers = await _click_twice(fake_discord, sheet, "Again")
    assert "You just asked for this" in answers[1] and "On its way" in answers[0], answers
    await wait_sheets(fake_discord, 2)
    assert len(fake_fal.submissions) == 2 and len(sheets(fake_discord)) == 2  # the first set and ONE more
    assert await totals(runner, fake_discord) == (80_000, 0)


async def test_keep_clicked_twice_at_once_keeps_the_view_once(bot, runner, fake_discord, fake_fal):
    await set_anchor(fake_discord, samples.portrait_png(), name="Mara")
    anchor = await runner.services.anchors.resolve(fake_discord.channel_id)
    await slash(fake_discord, "anchor angles make", count=1)
    [sheet] = await wait_sheets(fake_discord)
    answers = await _click_twice(fake_discord, sheet, "Keep 1")
    assert answers[0].startswith("Already kept") and answers[1].startswith("Kept 1 angle"), answers
    assert len(await runner.services.studio.angle_shas(anchor.id)) == 1
    await fake_discord.wait_for(lambda: _told(fake_discord, "kept"), timeout=10)
    assert len(_told(fake_discord, "kept")) == 1
    # The store refuses it too (a view kept from an older sheet of the same version, say), and /anchor show agrees.
    job_id = int(sheet.buttons[-1].custom_id.split(":")[2])
    with pytest.raises(UserError, match="Already kept"):
        await runner.services.studio.keep(job_id, [1], user_id=fake_discord.member("alice"), can_manage=True)
    assert "1 of 3" in text_of(await slash(fake_discord, "anchor show"))


async def test_use_clicked_twice_at_once_makes_one_version(bot, runner, fake_discord, fake_fal):
    await slash(fake_discord, "anchor generate", description="an old sailor", count=2)
    [sheet] = await wait_sheets(fake_discord)
    answers = await _click_twice(fake_discord, sheet, "Use 1")
    assert answers[0].startswith("Already chosen: candidate 1 of this set is v1"), answers
    assert "Candidate 1 is now the anchor" in answers[1], answers
    rows, _, _ = await runner.services.anchors.history(fake_discord.channel_id, 1)
    assert [v.version for v in rows] == [1]
    await fake_discord.wait_for(lambda: _told(fake_discord, "candidate 1"), timeout=10)
    assert len(_told(fake_discord, "candidate 1")) == 1

    # With an anchor already: a refined set's Use clicked twice still adds one version.
    await slash(fake_discord, "anchor refine", instruction="plain grey background", count=1)
    _, refined = await wait_sheets(fake_discord, 2)
    answers = await _click_twice(fake_discord, refined, "Use 1")
    assert answers[0].startswith("Already chosen: candidate 1 of this set is v2"), answers
    rows, _, _ = await runner.services.anchors.history(fake_discord.channel_id, 1)
    assert [v.version for v in rows] == [2, 1]
