"""/anchor through the fake Discord: set, show, history, use, clear, threads, permissions and hostile uploads."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image

from tests import samples
from tests.e2e.helpers import set_anchor
from tests.fakes.discord import DEFAULT_MEMBER_PERMS, MANAGE_MESSAGES, text_of


def _jpeg_files(msg: dict) -> list[bytes]:
    return [f.data for f in msg["_files"] if f.filename.endswith(".jpg")]


async def test_set_stores_normalised_file_and_replies_with_checklist(bot, runner, fake_discord):
    png = samples.portrait_png()
    reply = await set_anchor(fake_discord, png, name="Mara")
    text = text_of(reply)
    assert "Anchor set: version 1" in text
    assert "Person in the middle" in text and "Plain background" in text and "Sharpness" in text
    assert "sha256" not in text  # no hashes for members
    assert reply["_ephemeral"]
    version = await runner.services.anchors.resolve(fake_discord.channel_id)
    assert (version.version, version.name, version.set_by) == (1, "Mara", fake_discord.member("alice"))
    stored = runner.services.anchors.image_path(version.sha256).read_bytes()
    assert _jpeg_files(reply) == [stored]  # the reply shows the bot's own copy
    rows = await runner.services.db.fetchall("SELECT * FROM anchor_versions")
    assert "cdn" not in str([dict(r) for r in rows]) and "attachments" not in str([dict(r) for r in rows])


async def test_same_image_twice_stores_one_file(bot, runner, fake_discord):
    png = samples.portrait_png()
    await set_anchor(fake_discord, png)
    reply = await set_anchor(fake_discord, png)
    assert "stored once" in text_of(reply)
    files = list((runner.data_dir / "media" / "images").rglob("*.jpg"))
    assert len(files) == 1
    assert (await runner.services.anchors.resolve(fake_discord.channel_id)).version == 2


async def test_show_reuploads_own_copy_history_use_and_clear(bot, runner, fake_discord):
    await set_anchor(fake_discord, samples.portrait_png(shade=60), name="first")
    await set_anchor(fake_discord, samples.portrait_png(shade=200), name="second")
    it = await fake_discord.slash("anchor show")
    shown = await it.wait_reply(lambda m: "Current anchor" in text_of(m))
    v2 = await runner.services.anchors.resolve(fake_discord.channel_id)
    assert "version 2" in text_of(shown) and "second" in text_of(shown)
    assert _jpeg_files(shown) == [runner.services.anchors.image_path(v2.sha256).read_bytes()]
    # the embed shows the uploaded copy (Discord rewrites attachment:// to the new file's URL), not the old upload
    image_url = shown["embeds"][0]["image"]["url"]
    assert shown["attachments"][0]["url"] == image_url and "anchor.jpg" in image_url

    it = await fake_discord.slash("anchor history")
    hist = text_of(await it.wait_reply())
    assert hist.index("v2") < hist.index("v1") and "current" in hist

    it = await fake_discord.slash("anchor use", version=1)
    assert "Anchor v1 \u201cfirst\u201d is current again" in text_of(await it.wait_reply())
    assert (await runner.services.anchors.resolve(fake_discord.channel_id)).name == "first"

    it = await fake_discord.slash("anchor use", version=9)
    assert "no anchor version 9" in text_of(await it.wait_reply())

    it = await fake_discord.slash("anchor clear")
    assert "Cleared" in text_of(await it.wait_reply())
    it = await fake_discord.slash("anchor show")
    assert "no anchor" in text_of(await it.wait_reply())
    it = await fake_discord.slash("anchor history")
    assert "v2" in text_of(await it.wait_reply())  # history is kept


async def test_history_is_paged(bot, runner, fake_discord):
    for shade in range(12):
        await set_anchor(fake_discord, samples.portrait_png(shade=20 + shade * 15))
    it = await fake_discord.slash("anchor history")
    first = text_of(await it.wait_reply())
    assert "v12" in first and "v3" in first and "v2" not in first and "Page 1 of 2" in first
    it = await fake_discord.slash("anchor history", page=2)
    second = text_of(await it.wait_reply())
    assert "v2" in second and "v1" in second and "Page 2 of 2" in second


async def test_thread_inherits_parent_anchor_until_it_has_its_own(bot, runner, fake_discord):
    await set_anchor(fake_discord, samples.portrait_png(shade=60), name="parent")
    thread = fake_discord.add_thread(fake_discord.channel_id, "takes")
    await fake_discord.wait_for(lambda: bot.get_channel(thread) is not None)
    it = await fake_discord.slash("anchor show", channel_id=thread)
    shown = text_of(await it.wait_reply(lambda m: "Current anchor" in text_of(m)))
    assert "parent" in shown and "this thread has no anchor of its own" in shown
    await set_anchor(fake_discord, samples.portrait_png(shade=200), channel_id=thread, name="thread")
    it = await fake_discord.slash("anchor show", channel_id=thread)
    assert "thread" in text_of(await it.wait_reply(lambda m: "Current anchor" in text_of(m)))
    assert (await runner.services.anchors.resolve(fake_discord.channel_id)).name == "parent"


async def test_member_without_manage_messages_is_refused(bot, runner, fake_discord):
    await set_anchor(fake_discord, samples.portrait_png(), name="kept")
    bob = fake_discord.add_member("bob", permissions=DEFAULT_MEMBER_PERMS)
    att = fake_discord.make_attachment("new.png", samples.portrait_png(shade=200), content_type="image/png")
    it = await fake_discord.slash("anchor set", user=bob, image=att)
    assert "Manage Messages" in text_of(await it.wait_reply())
    for cmd, opts in (("anchor clear", {}), ("anchor use", {"version": 1})):
        it = await fake_discord.slash(cmd, user=bob, **opts)
        assert "Manage Messages" in text_of(await it.wait_reply())
    assert (await runner.services.anchors.resolve(fake_discord.channel_id)).name == "kept"
    # Viewing is for everyone.
    it = await fake_discord.slash("anchor show", user=bob)
    assert "Current anchor" in text_of(await it.wait_reply())
    # A moderator role with Manage Messages may.
    mod = fake_discord.add_member("mod", permissions=DEFAULT_MEMBER_PERMS | MANAGE_MESSAGES)
    await set_anchor(fake_discord, samples.portrait_png(shade=200), user="mod", name="by mod")
    assert (await runner.services.anchors.resolve(fake_discord.channel_id)).set_by == mod


HOSTILE = [
    ("notes.png", samples.text_named_png, "image/png", "text file"),
    ("cut.jpg", samples.truncated_jpeg, "image/jpeg", "damaged or incomplete"),
    ("bomb.png", samples.bomb_png, "image/png", "60000"),
    ("drawing.svg", samples.svg, "image/svg+xml", "SVG"),
]


@pytest.mark.parametrize(("filename", "make", "ctype", "expect"), HOSTILE, ids=[h[0] for h in HOSTILE])
async def test_hostile_uploads_are_refused_and_change_nothing(
    bot, runner, fake_discord, filename, make, ctype, expect
):
    await set_anchor(fake_discord, samples.portrait_png(), name="good")
    before = await runner.services.anchors.resolve(fake_discord.channel_id)
    att = fake_discord.make_attachment(filename, make(), content_type=ctype)
    it = await fake_discord.slash("anchor set", image=att)
    reply = text_of(await it.wait_reply())
    assert expect in reply
    assert reply.count(".") <= 3  # one clear sentence, not a traceback
    assert await runner.services.anchors.resolve(fake_discord.channel_id) == before
    assert fake_discord.connected.is_set()
    it = await fake_discord.slash("status")
    assert "Anchorshot status" in text_of(await it.wait_reply())


async def test_attachment_declared_at_50_mib_is_refused_before_download(bot, runner, fake_discord):
    att = fake_discord.make_attachment(
        "huge.png", samples.portrait_png(), content_type="image/png", declared_size=50 * 1024 * 1024
    )
    it = await fake_discord.slash("anchor set", image=att)
    reply = text_of(await it.wait_reply())
    assert "50 MB" in reply and "under 20 MB" in reply
    downloads = [r for r in fake_discord.requests if r.path.startswith("/attachments/")]
    assert downloads == []
    with pytest.raises(Exception, match="no anchor"):
        await runner.services.anchors.resolve(fake_discord.channel_id)


@pytest.mark.parametrize(
    ("make", "expected_size", "note"),
    [
        (samples.cmyk_jpeg, (700, 900), "CMYK"),
        (samples.png_16bit, (640, 800), "16-bit"),
        (samples.exif_rotated_jpeg, (700, 1000), "upright"),
        (samples.gps_jpeg, (800, 1000), "metadata"),
        (samples.animated_gif, (500, 600), "first frame"),
    ],
    ids=["cmyk", "16bit", "exif-rotated", "gps", "animated-gif"],
)
async def test_awkward_images_are_normalised(bot, runner, fake_discord, make, expected_size, note):
    reply = await set_anchor(fake_discord, make(), filename="upload.bin")
    assert note in text_of(reply)
    version = await runner.services.anchors.resolve(fake_discord.channel_id)
    data = runner.services.anchors.image_path(version.sha256).read_bytes()
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == expected_size
        assert img.mode == "RGB"
        assert len(img.getexif()) == 0
    assert b"SecretCam" not in data and b"GPS" not in data


async def test_anchor_name_with_everyone_pings_nobody(bot, runner, fake_discord):
    """A name is a cast name (letters, digits, spaces, - and _): "@everyone" is refused, quoted without a ping."""
    reply = await set_anchor(fake_discord, samples.portrait_png(), name="@everyone @here")
    assert not reply["_pinged"] and "letters, digits" in text_of(reply)
    assert await runner.services.db.fetchall("SELECT * FROM anchor_versions") == []
    await set_anchor(fake_discord, samples.portrait_png(), name="Mara")
    it = await fake_discord.slash("anchor history")
    listing = await it.wait_reply()
    assert not listing["_pinged"] and "Mara" in text_of(listing)


@pytest.mark.parametrize(("size", "shape"), [((1550, 500), "3.1:1"), ((400, 1200), "1:3")])
async def test_anchor_too_wide_or_too_tall_for_fal_is_refused_with_the_reason(
    bot, runner, fake_discord, size, shape
):
    reply = text_of(await set_anchor(fake_discord, samples.portrait_png(size)))
    assert reply == (
        f"This image is {shape}; fal's video models need between 1:2.5 and 2.5:1. Crop it closer to the character."
    )
    with pytest.raises(Exception, match="no anchor"):
        await runner.services.anchors.resolve(fake_discord.channel_id)
    assert not list((runner.data_dir / "media").rglob("*.jpg"))


async def test_small_anchor_gives_16_9_start_image_of_at_least_300_px(bot, runner, fake_discord):
    await set_anchor(fake_discord, samples.portrait_png((400, 600)))
    anchors = runner.services.anchors
    version = await anchors.resolve(fake_discord.channel_id)
    for aspect in ("16:9", "9:16", "1:1", "anchor"):
        sha, path = await anchors.start_image(version, aspect)
        with Image.open(path) as img:
            assert min(img.size) >= 300, (aspect, img.size)
        assert (await anchors.start_image(version, aspect)) == (sha, path)  # cached
    sha, path = await anchors.start_image(version, "16:9")
    with Image.open(path) as img:
        assert img.size == (534, 300)
    assert (await anchors.start_image(version, "anchor"))[0] == version.sha256


def _deep_png(side: int) -> bytes:
    """A side×side 16-bit RGBA PNG written by hand (Pillow writes none): a ramp in every row, so it is small."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    row = b"\x00" + (bytes(range(256)) * (side * 8 // 256 + 1))[: side * 8]
    comp = zlib.compressobj(1)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 16, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


async def test_a_16_bit_rgba_picture_over_its_pixel_budget_is_refused_and_changes_nothing(
    bot, runner, fake_discord
):
    """Found in review: a 1.2 MB 16-bit RGBA PNG of 40 megapixels took ~1 GB of RAM to normalise. At 8 bytes a
    pixel it may have 20 megapixels; over that it is refused before a pixel is decoded."""
    await set_anchor(fake_discord, samples.portrait_png(), name="Mara")
    before = await runner.services.anchors.resolve(fake_discord.channel_id)
    reply = text_of(await set_anchor(fake_discord, _deep_png(4600), filename="deep.png"))
    assert reply == (
        "That image is 4600×4600 (21 megapixels) in 16-bit colour with transparency, more than the 20-megapixel "
        "limit for 16-bit colour with transparency; upload a smaller PNG, JPEG or WebP, or save it in 8-bit colour."
    )
    assert await runner.services.anchors.resolve(fake_discord.channel_id) == before


async def test_uploads_at_once_are_normalised_two_at_a_time(bot, runner, fake_discord, monkeypatch):
    """Found in review: N uploads at once decoded in N threads at once (N × up to 1 GB). Image intake now takes
    two at a time; the others wait their turn and are all set."""
    import threading
    import time

    import bot.anchors.service as anchors_service

    real, lock, running, most = anchors_service.normalize_image, threading.Lock(), [0], [0]

    def counted(data: bytes, **options: int):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            time.sleep(0.3)  # long enough for every upload to arrive while the first ones decode
            return real(data, **options)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(anchors_service, "normalize_image", counted)
    threads = [fake_discord.add_thread(fake_discord.channel_id, f"take {n}") for n in range(4)]
    await fake_discord.wait_for(lambda: all(bot.get_channel(t) is not None for t in threads))
    replies = await asyncio.gather(
        *(
            set_anchor(fake_discord, samples.portrait_png(shade=40 + 40 * n), channel_id=t, name=f"M{n}")
            for n, t in enumerate(threads)
        )
    )
    assert all("Anchor set: version 1" in text_of(r) for r in replies)
    assert most[0] == 2


async def test_a_phone_photo_with_a_depth_map_is_set_without_an_animation_note(bot, runner, fake_discord):
    """Found in review: every multi-picture JPEG (MPO: a phone's depth or gain map beside the photo) was reported
    "Used the first frame of the animated JPEG." The photo is used and the map is not mentioned."""
    from tests import faces_samples as fs

    photo = fs.hopper_portrait()
    depth = photo.convert("L").resize((220, 290)).convert("RGB")
    buf = io.BytesIO()
    photo.save(buf, "MPO", save_all=True, append_images=[depth], quality=95)
    reply = text_of(await set_anchor(fake_discord, buf.getvalue(), filename="IMG_0001.jpg", name="Grace"))
    assert "Anchor set: version 1" in reply
    assert "animated" not in reply and "first frame" not in reply
    version = await runner.services.anchors.resolve(fake_discord.channel_id)
    assert (version.width, version.height, version.source_format) == (*photo.size, "JPEG")


async def test_an_image_bigger_than_its_attachment_said_is_refused_with_its_size_rounded_up(
    bot, runner, fake_discord
):
    """Found in review: the download's own refusal rounded 20.3 MB to "20 MB; ... under 20 MB". It now says what
    intake says everywhere: the size rounded up, so it never reads as the limit."""
    png = samples.portrait_png()
    body = png + b"\0" * (int(20.3 * 1024 * 1024) - len(png))
    att = fake_discord.make_attachment("big.png", body, content_type="image/png", declared_size=len(png))
    reply = text_of(await (await fake_discord.slash("anchor set", image=att)).wait_reply())
    assert reply == "That file is 20.3 MB; upload a PNG, JPEG or WebP under 20 MB."
    with pytest.raises(Exception, match="no anchor"):
        await runner.services.anchors.resolve(fake_discord.channel_id)


async def test_two_anchor_sets_at_once_in_a_channel_without_one_both_land(bot, runner, fake_discord):
    """Both writes race to make the channel's first (main) character; the second adds its version to it."""
    uploads = [
        fake_discord.make_attachment(
            f"a{shade}.png", samples.portrait_png(shade=shade), content_type="image/png"
        )
        for shade in (60, 120)
    ]
    its = await asyncio.gather(*(fake_discord.slash("anchor set", image=att) for att in uploads))
    answers = [text_of(await it.wait_reply(lambda m: bool(text_of(m)), timeout=30)) for it in its]
    assert all("now starts from this image" in a for a in answers), answers
    rows, _, _ = await runner.services.anchors.history(fake_discord.channel_id, 1)
    [main] = await runner.services.anchors.cast.members(fake_discord.channel_id)
    assert sorted(v.version for v in rows) == [1, 2] and {v.character_id for v in rows} == {main.id}
    assert main.is_main and main.version_id == max(rows, key=lambda v: v.set_at).id


async def test_two_studio_uses_at_once_in_a_channel_without_an_anchor_both_land(
    bot, runner, fake_discord, fake_fal
):
    from tests.e2e.test_studio import slash, wait_sheets

    await slash(fake_discord, "anchor generate", description="an old sailor", count=1)
    await slash(fake_discord, "anchor generate", description="a young sailor", count=1)
    sheets = await wait_sheets(fake_discord, 2)
    uses = [next(b for b in s.buttons if b.label == "Use 1") for s in sheets]
    its = await asyncio.gather(
        *(fake_discord.click(s.id, b.custom_id) for s, b in zip(sheets, uses, strict=True))
    )
    answers = [text_of(await it.wait_reply(lambda m: bool(text_of(m)), timeout=30)) for it in its]
    assert all("is now the anchor" in a for a in answers), answers
    rows, _, _ = await runner.services.anchors.history(fake_discord.channel_id, 1)
    assert sorted(v.version for v in rows) == [1, 2]
    assert len(await runner.services.anchors.cast.members(fake_discord.channel_id)) == 1


async def test_clearing_a_named_character_says_whose_anchor_was_cleared(bot, runner, fake_discord):
    from tests import faces_samples as fs

    await set_anchor(fake_discord, samples.png_bytes(fs.centred_portrait()), name="Mara")
    grace = fake_discord.make_attachment(
        "g.png", samples.png_bytes(fs.hopper_portrait()), content_type="image/png"
    )
    it = await fake_discord.slash("cast add", name="Grace", image=grace)
    assert "Grace joined the cast" in text_of(await it.wait_reply(lambda m: bool(text_of(m)), timeout=30))
    it = await fake_discord.slash("anchor clear", name="Grace")
    answer = text_of(await it.wait_reply())
    assert (
        answer.startswith("Cleared: Grace has no anchor now (v2")
        and "this channel has no anchor" not in answer
    )
    assert "main character, Mara, still anchors every shot" in answer
    told = await fake_discord.wait_for(
        lambda: [
            t
            for m in fake_discord.channel_messages(fake_discord.channel_id)
            if "cleared" in (t := text_of(m))
        ]
    )
    assert (
        len(told) == 1 and "cleared Grace's anchor (v2" in told[0] and "this channel's anchor" not in told[0]
    )
    assert (await runner.services.anchors.resolve(fake_discord.channel_id)).name == "Mara"

    it = await fake_discord.slash("anchor clear")  # the main one: the channel has no anchor now, as before
    assert text_of(await it.wait_reply()).startswith("Cleared: this channel has no anchor now (v1")


async def test_history_in_a_thread_that_uses_its_parents_anchor_lists_the_parents(bot, runner, fake_discord):
    await set_anchor(fake_discord, samples.portrait_png(shade=60), name="parent")
    thread = fake_discord.add_thread(fake_discord.channel_id, "takes")
    await fake_discord.wait_for(lambda: bot.get_channel(thread) is not None)
    it = await fake_discord.slash("anchor history", channel_id=thread)
    text = text_of(await it.wait_reply())
    assert "never had an anchor" not in text, text
    assert f"uses <#{fake_discord.channel_id}>'s anchor" in text and "v1" in text and "current" in text
    # /anchor use here changes the thread's own anchor, so the parent's versions are not offered, and asking for
    # one says where it can be used.
    assert await fake_discord.autocomplete("anchor use", "version", "", channel_id=thread) == []
    it = await fake_discord.slash("anchor use", channel_id=thread, version=1)
    refused = text_of(await it.wait_reply())
    assert (
        "no anchor version 1 of its own" in refused
        and f"/anchor use in <#{fake_discord.channel_id}>" in refused
    )

    # Once the thread has its own anchor, its history is its own (and says where the rest of its cast comes from).
    await set_anchor(fake_discord, samples.portrait_png(shade=200), channel_id=thread, name="thread")
    it = await fake_discord.slash("anchor history", channel_id=thread)
    text = text_of(await it.wait_reply())
    assert "thread" in text and "parent" not in text.replace(f"<#{fake_discord.channel_id}>", "")
    assert [
        c["value"] for c in await fake_discord.autocomplete("anchor use", "version", "", channel_id=thread)
    ] == [1]
