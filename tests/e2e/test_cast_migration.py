"""Issue #17: a database made before the cast (schema 10, as the bot before it left it) is upgraded in place when the
bot starts: each channel's anchor becomes its main character, named after the anchor, with its versions, scores and
takes; an old take re-rolls exactly as it was made."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from bot.db import SqliteDatabase
from bot.jobs import JobState
from bot.media.normalize import normalize_image
from tests import faces_samples as fs
from tests import samples
from tests.e2e.helpers import text_reply
from tests.e2e.shots_helpers import wait_clips
from tests.fakes.discord import text_of

KLING = "fal-ai/kling-video/v3/pro/image-to-video"


def _store(media: Path, data: bytes) -> tuple[str, int, int, int]:
    img = normalize_image(data)
    path = media / "images" / img.sha256[:2] / f"{img.sha256}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(img.data)
    return img.sha256, img.width, img.height, len(img.data)


async def _old_database(data_dir: Path, guild_id: int, channel_id: int, user_id: int) -> None:
    """Schema 10 with what the bot before the cast wrote: two anchor versions of one channel (v1 unnamed, v2
    "Mara" current), a third channel-less one elsewhere named with characters no cast name takes, a posted take
    of v2 with its clip and its face score."""
    old = SqliteDatabase(data_dir / "anchorshot.sqlite3")
    await old.open(up_to=10)
    media = data_dir / "media"
    rows = [
        (1, channel_id, 1, samples.portrait_png(), None),
        (2, channel_id, 2, samples.png_bytes(fs.centred_portrait()), "Mara"),
        (3, channel_id + 1, 1, samples.portrait_png(shade=90), "Zoë <the hero>"),
    ]
    for vid, channel, number, png, name in rows:
        sha, w, h, size = _store(media, png)
        await old.execute(
            "INSERT OR IGNORE INTO images(sha256, width, height, size_bytes, created_at) VALUES (?,?,?,?,0)",
            (sha, w, h, size),
        )
        await old.execute(
            "INSERT INTO anchor_versions(id, guild_id, channel_id, version, sha256, name, set_by, set_at, width,"
            " height, source_format) VALUES (?,?,?,?,?,?,?,?,?,?,'PNG')",
            (vid, guild_id, channel, number, sha, name, user_id, float(vid), w, h),
        )
    for channel, vid in ((channel_id, 2), (channel_id + 1, 3)):
        await old.execute(
            "INSERT INTO channel_anchors(channel_id, guild_id, version_id, updated_at) VALUES (?,?,?,0)",
            (channel, guild_id, vid),
        )
    clip = media / "clips" / "shot-1.mp4"
    clip.parent.mkdir(parents=True, exist_ok=True)
    fs.anchor_clip(clip)
    args = {
        "prompt": "Mara walks to the window",
        "negative_prompt": None,
        "duration_s": 5,
        "aspect_ratio": "anchor",
        "audio": False,
        "anchor_version_id": 2,
        "anchor_version": 2,
        "anchor_name": "Mara",
        "anchor_shape": "4:5",
        "upload_limit_bytes": None,
        "auto_reroll": False,
    }
    await old.execute(
        "INSERT INTO jobs(id, kind, seq, ledger_key, guild_id, channel_id, user_id, args, outputs, state, endpoint,"
        " backend, price_micros, result_message_id, created_at, finished_at, updated_at, number)"
        " VALUES (1, 'take', 1, 'shot:1', ?, ?, ?, ?, ?, 'posted', ?, 'fal', 560000, 777, 1, 2, 2, 1)",
        (guild_id, channel_id, user_id, json.dumps(args), json.dumps({"path": str(clip)}), KLING),
    )
    await old.execute(
        "INSERT INTO take_scores(take_id, anchor_version_id, verdict, score, median_distance, frames_sampled,"
        " frames_with_face, frames_matching, threshold, scored_at) VALUES (1, 2, 'match', 91, 0.1, 8, 8, 8, 0.6, 3)"
    )
    await old.close()


async def test_an_old_database_is_upgraded_in_place_and_its_takes_re_roll(runner, fake_discord, fake_fal):
    alice = fake_discord.member("alice")
    await _old_database(runner.data_dir, fake_discord.guild_id, fake_discord.channel_id, alice)
    await runner.start()
    db_path = runner.data_dir / "anchorshot.sqlite3"
    tables = {
        r[0] for r in sqlite3.connect(db_path).execute("SELECT name FROM sqlite_master WHERE type='table'")
    }
    assert "characters" in tables and "channel_anchors" not in tables

    cast = await runner.services.anchors.cast.members(fake_discord.channel_id)
    assert [(c.name, c.is_main, c.version_id) for c in cast] == [("Mara", True, 2)]
    [other] = await runner.services.anchors.cast.members(fake_discord.channel_id + 1)
    assert (other.name, other.is_main) == ("main", True)  # "Zoë <the hero>" is no cast name: the placeholder
    anchor = await runner.services.anchors.resolve(fake_discord.channel_id)
    assert anchor.version == 2 and anchor.character_id == cast[0].id

    it = await fake_discord.slash("cast list")
    listing = text_of(await text_reply(it))
    assert "Mara** (main)" in listing and "1 take scored" in listing and "median face 91%" in listing
    it = await fake_discord.slash("anchor history")
    history = text_of(await text_reply(it))
    assert "v2" in history and "v1" in history

    # The old take re-rolls as it was made: the same prompt and its anchor version's image as the start.
    again = await runner.services.takes.reroll(1, user_id=alice)
    await wait_clips(fake_discord, 1)
    [sub] = fake_fal.submissions_to("image-to-video")
    assert sub.arguments["prompt"] == "Mara walks to the window" and "elements" not in sub.arguments
    stored = runner.services.anchors.image_path(anchor.sha256).read_bytes()
    assert fake_fal.fetch_upload(sub.arguments["start_image_url"]) == stored
    take = await runner.services.takes.get(again.id)
    assert take is not None and take.number == 1 and take.take == 2
    old = await runner.services.takes.get(1)
    assert old is not None and old.state is JobState.POSTED and old.anchor_version_id == 2
