"""Issue #16's "what must hold": a SIGKILL at any moment of a scene loses nothing. The real bot runs as a subprocess
and is killed (SIGKILL) between a plan and its Confirm, while a confirmed plan is being queued, while a storyboard's
clip is being cut, and during an export; after each restart every confirmed shot is queued exactly once, each clip
and the export are posted exactly once, and the ledger equals what was delivered."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from tests import samples
from tests.e2e.helpers import poll_until, read_db, set_anchor, text_reply
from tests.fakes.discord import text_of
from tests.fakes.fal_fake import Outcome

BOT_ENV = {"FAL_POLL_INTERVAL_S": "0.05", "LOG_LEVEL": "INFO", "GUILD_READY_TIMEOUT_S": "0.05"}


async def _ready(bot_process, fake) -> None:
    before = bot_process.log_path.read_text().count("connected as") if bot_process.log_path.exists() else 0
    await bot_process.start(**BOT_ENV)
    await fake.wait_for(lambda: bot_process.log_path.read_text().count("connected as") > before, 30)


def _confirm_id(message: dict) -> str:
    [cid] = [
        c["custom_id"]
        for row in message.get("components") or []
        for c in row["components"]
        if c.get("custom_id", "").startswith("scene:confirm:")
    ]
    return cid


def _posted_files(fake, suffix: str) -> Counter[str]:
    """How many times each attachment name was posted (a take's clip is named by its shot and take)."""
    return Counter(
        a["filename"]
        for m in fake.channel_messages(fake.channel_id)
        for a in m.get("attachments") or []
        if a["filename"].endswith(suffix)
    )


def _ledger_matches_delivery(db) -> tuple[list, list]:
    captured = read_db(db, "SELECT job_key, amount FROM ledger WHERE kind='capture' ORDER BY job_key")
    delivered = read_db(
        db,
        "SELECT ledger_key, price_micros FROM jobs WHERE state='posted' AND price_micros > 0 ORDER BY ledger_key",
    )
    return captured, delivered


@pytest.mark.long
async def test_sigkill_through_a_scene_loses_nothing_and_charges_once(bot_process, fake_discord, fake_fal):
    fake_fal.default = Outcome.complete(queued_polls=1, progress_polls=2)
    await _ready(bot_process, fake_discord)
    db = bot_process.data_dir / "anchorshot.sqlite3"
    await set_anchor(fake_discord, samples.portrait_png())
    await text_reply(await fake_discord.slash("scene start", name="Crash"))

    # Killed between a plan and its Confirm: nothing held; the plan still works after the restart.
    plan = await text_reply(await fake_discord.slash("scene plan", shots="3s: one | 4s: two | 3s: three"))
    bot_process.kill()
    assert read_db(db, "SELECT COUNT(*) FROM holds")[0][0] == 0 and fake_fal.submissions == []
    await _ready(bot_process, fake_discord)

    # Killed while the confirmed plan is being queued (right after the click): each shot queued exactly once.
    await fake_discord.click(int(plan["id"]), _confirm_id(plan))
    await poll_until(
        lambda: read_db(db, "SELECT COUNT(*) FROM scene_plans WHERE confirmed_at IS NOT NULL")[0][0], 10
    )
    bot_process.kill()
    await _ready(bot_process, fake_discord)
    await fake_discord.wait_for(lambda: sum(_posted_files(fake_discord, ".mp4").values()) >= 3, 60)
    shots = read_db(db, "SELECT position, take_id FROM scene_shots ORDER BY position")
    assert [p for p, _ in shots] == [1, 2, 3] and all(t for _, t in shots)
    assert read_db(db, "SELECT COUNT(*) FROM jobs WHERE kind='take'")[0][0] == 3

    # Killed while the storyboard's clip is being cut: its parts are cut and posted once each after the restart.
    board = await text_reply(
        await fake_discord.slash("scene plan", shots="2s: four | 2s: five", one_call=True)
    )
    await fake_discord.click(int(board["id"]), _confirm_id(board))
    cutting = "SELECT COUNT(*) FROM jobs WHERE kind='storyboard' AND state IN ('completed', 'downloaded')"
    await poll_until(lambda: read_db(db, cutting)[0][0], 60)
    bot_process.kill()
    await _ready(bot_process, fake_discord)
    parts = "SELECT COUNT(*) FROM jobs WHERE kind='part' AND state='posted'"
    await fake_discord.wait_for(lambda: read_db(db, parts)[0][0] == 2, 60)

    # Keep a take of every shot, export, and kill during the export: it is finished and posted once.
    for (take_id,) in read_db(db, "SELECT id FROM jobs WHERE kind IN ('take', 'part')"):
        await _keep(fake_discord, db, take_id)
    await text_reply(await fake_discord.slash("scene export"))
    running = "SELECT COUNT(*) FROM jobs WHERE kind='scene_export' AND state IN ('running', 'completed')"
    await poll_until(lambda: read_db(db, running)[0][0], 30)
    bot_process.kill()
    await _ready(bot_process, fake_discord)
    await fake_discord.wait_for(lambda: _posted_files(fake_discord, ".mp4").get(_export_name(db)) == 1, 90)
    await asyncio.sleep(1.0)  # give a duplicate every chance to appear
    bot_process.stop()

    posted = _posted_files(fake_discord, ".mp4")
    assert all(n == 1 for n in posted.values()), posted  # every clip, the storyboard and the export: once
    captured, delivered = _ledger_matches_delivery(db)
    assert captured == delivered, (captured, delivered)  # charged once, exactly what was delivered
    assert read_db(db, "SELECT COUNT(*) FROM holds WHERE state='held'")[0][0] == 0
    assert read_db(db, "PRAGMA integrity_check") == [("ok",)]


def _export_name(db) -> str:
    [(scene_id,)] = read_db(db, "SELECT id FROM scenes")
    return f"scene-{scene_id}.mp4"


async def _keep(fake, db, take_id: int) -> None:
    [(message_id,)] = read_db(db, "SELECT result_message_id FROM jobs WHERE id=?", (take_id,))
    if message_id is None:
        return
    it = await fake.click(int(message_id), f"scene:keep:{take_id}")
    await text_reply(it)


async def test_sigkill_between_create_voice_and_its_result_makes_one_voice_charged_once(
    bot_process, fake_discord, fake_fal
):
    """Issue #17: the bot is killed after fal accepted the create-voice job and before its result; after the
    restart it polls the same request (never a second create-voice), stores one voice and charges it once."""
    from tests.fakes.media_samples import speech_wav

    fake_fal.default = Outcome.hold()
    await _ready(bot_process, fake_discord)
    db = bot_process.data_dir / "anchorshot.sqlite3"
    await set_anchor(fake_discord, samples.portrait_png(), name="Mara")
    att = fake_discord.make_attachment("mara.wav", speech_wav(8), content_type="audio/wav")
    await text_reply(await fake_discord.slash("voice set", name="Mara", sample=att))
    submitted = "SELECT COUNT(*) FROM jobs WHERE kind='voice' AND request_id IS NOT NULL"
    assert await poll_until(lambda: read_db(db, submitted)[0][0] == 1, 30)
    bot_process.kill()
    fake_fal.release()
    await _ready(bot_process, fake_discord)

    def ready() -> list[dict]:
        messages = fake_discord.channel_messages(fake_discord.channel_id)
        return [m for m in messages if "has a voice now" in text_of(m)]

    await fake_discord.wait_for(ready, 60)
    await asyncio.sleep(1.0)  # give a duplicate every chance to appear
    bot_process.stop()

    assert len(ready()) == 1 and len(fake_fal.submissions_to("create-voice")) == 1
    [(voice_id,)] = read_db(db, "SELECT voice_id FROM voices")
    assert voice_id in fake_fal.voice_ids
    captured, delivered = _ledger_matches_delivery(db)
    assert captured == delivered and [amount for key, amount in captured if key.startswith("voice:")] == [
        7_000
    ]
    assert read_db(db, "SELECT COUNT(*) FROM holds WHERE state='held'")[0][0] == 0
