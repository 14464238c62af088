"""Issue #12 end to end: real face photos, real mp4s, real SQLite, through the Discord and fal fakes."""

from __future__ import annotations

import asyncio
import re
import sqlite3

import pytest

from bot.jobs import JobState
from tests import faces_samples as fs
from tests import samples
from tests.e2e.helpers import set_anchor, settled_totals, text_reply
from tests.e2e.shots_helpers import clip_messages, run_shot
from tests.fakes.discord import DEFAULT_MEMBER_PERMS, text_of
from tests.fakes.fal_fake import Outcome

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _clip(tmp_path, make, name: str) -> bytes:
    return make(tmp_path / name).read_bytes()


async def _score_jobs(runner) -> list:
    return [j for j in await runner.services.jobs.in_states(*JobState) if j.kind == "face_score"]


def face_of(message: dict) -> str | None:
    """The verdict lines of a clip message (its embed's Face field), None while it is being checked."""
    for embed in message.get("embeds") or []:
        for field in embed.get("fields") or []:
            if field["name"] == "Face" and not field["value"].startswith("being checked"):
                return str(field["value"])
    return None


async def _wait_verdicts(fake, count: int, timeout: float = 90.0) -> list[str]:
    def verdicts():
        found = [face for m in clip_messages(fake) if (face := face_of(m))]
        return found if len(found) >= count else None

    return await fake.wait_for(verdicts, timeout=timeout)


async def _spent(runner, fake, user="alice"):
    return await settled_totals(runner, fake, user)


async def test_anchor_set_and_show_add_face_checks_and_store_the_embedding(bot, runner, fake_discord):
    reply = await set_anchor(fake_discord, samples.png_bytes(fs.centred_portrait()))
    text = text_of(reply)
    for title in ("One face", "Face centred", "Face size", "Eyes level"):
        assert title in text, title
    anchor = await runner.services.anchors.resolve(fake_discord.channel_id)
    [face] = await runner.services.consistency.store.faces(anchor.id)
    assert face.face_count == 1 and face.angle_id is None and len(face.embedding) == 512

    it = await fake_discord.slash("anchor show")
    shown = text_of(await text_reply(it))
    assert "One face" in shown and "Face record" in shown and "No takes scored yet" in shown

    # Two faces of similar size: a warning on the checklist (never a refusal), and no usable embedding.
    two = fs.side_by_side(fs.centred_portrait(), fs.hopper_portrait())
    reply = await set_anchor(fake_discord, samples.png_bytes(two))
    assert "More than one face" in text_of(reply)


async def test_status_names_the_face_engine(bot, runner, fake_discord):
    await runner.services.consistency.engine_status()
    it = await fake_discord.slash("status")
    text = text_of(await text_reply(it))
    assert "face checks on" in text


async def test_clip_of_the_anchor_scores_as_a_match_and_is_recorded(
    bot, runner, fake_discord, fake_fal, tmp_path
):
    await set_anchor(fake_discord, samples.png_bytes(fs.centred_portrait()))
    fake_fal.script(Outcome.complete(video=_clip(tmp_path, fs.anchor_clip, "a.mp4")))
    await run_shot(fake_discord, "she smiles at the camera", auto_reroll=True)
    [verdict] = await _wait_verdicts(fake_discord, 1)
    assert re.fullmatch(r"face match \d+% · 8 of 8 frames", verdict), verdict
    # The verdict is one edit of the clip message's embed (green for a match); the bot reads nothing first.
    [clip] = clip_messages(fake_discord)
    clip_path = f"/channels/{fake_discord.channel_id}/messages/{clip['id']}"
    assert [r.method for r in fake_discord.requests if r.path == clip_path] == ["PATCH"]
    assert fake_discord.messages[int(clip["id"])]["embeds"][0]["color"] == 0x2ECC71

    async def posted():
        jobs = await _score_jobs(runner)
        return jobs if jobs and jobs[0].state is JobState.POSTED else None

    for _ in range(100):
        if (jobs := await posted()) is not None:
            break
        await asyncio.sleep(0.1)
    [job] = jobs
    assert job.price_micros == 0 and job.parent_id == 1
    view = await runner.services.budget.view(fake_discord.guild_id, fake_discord.member("alice"))
    assert [r.job_key for r in view.recent] == ["shot:1"]  # the score is free: no $0 line in the budget
    anchor = await runner.services.anchors.resolve(fake_discord.channel_id)
    record = await runner.services.consistency.record(anchor.id)
    assert record.takes_scored == 1 and record.drifted == 0 and record.median_score >= 90
    await asyncio.sleep(1.0)
    assert len(fake_fal.submissions) == 1  # a match is never re-rolled
    it = await fake_discord.slash("anchor show")
    shown = text_of(await text_reply(it))
    assert "1 takes scored" in shown and "drift rate 0%" in shown


async def test_drifted_take_is_rerolled_once_charged_once_and_compared(
    bot, runner, fake_discord, fake_fal, tmp_path
):
    await set_anchor(fake_discord, samples.png_bytes(fs.centred_portrait()))
    fake_fal.script(
        Outcome.complete(video=_clip(tmp_path, fs.stranger_clip, "s.mp4")),
        Outcome.complete(video=_clip(tmp_path, fs.anchor_clip, "a.mp4")),
    )
    await run_shot(fake_discord, "she walks to the window", auto_reroll=True)
    verdicts = await _wait_verdicts(fake_discord, 2, timeout=120)
    # The re-roll's notice and the comparison fold into the verdict lines of the two clips: no message of their own.
    assert verdicts[0] == (
        "\u26a0 the face drifted from the anchor · 0 of 8 frames match\nauto re-roll: take 2 is on its way."
    )
    assert verdicts[1].startswith("face match") and re.search(
        r"\nauto re-roll of take 1: this take matches better than take 1 \(\d+% vs \d+%\)\.$", verdicts[1]
    ), verdicts[1]
    first, second = clip_messages(fake_discord)
    assert fake_discord.messages[int(first["id"])]["embeds"][0]["color"] == 0xF1C40F  # yellow: it drifted
    await asyncio.sleep(1.5)
    assert [
        m["id"]
        for m in fake_discord.channel_messages(fake_discord.channel_id)
        if "auto re-roll" in (m.get("content") or "")
    ] == []
    assert (
        len(fake_fal.submissions) == 2
    )  # exactly one automatic re-roll (the re-roll itself is not re-rolled)
    assert await _spent(runner, fake_discord) == (2 * 560_000, 0)  # both takes, each charged once; score free


async def test_drift_without_budget_says_so_publicly_without_figures(
    bot, runner, fake_discord, fake_fal, tmp_path
):
    await set_anchor(fake_discord, samples.png_bytes(fs.centred_portrait()))
    await runner.services.consistency.set_auto_reroll(fake_discord.guild_id, fake_discord.channel_id, True)
    await runner.services.budget.set_user_limit(fake_discord.guild_id, fake_discord.member("alice"), 600_000)
    fake_fal.script(Outcome.complete(video=_clip(tmp_path, fs.stranger_clip, "s.mp4")))
    answer = await run_shot(fake_discord, "she walks to the window")
    assert "if the face drifts, at most one more take at $0.56" in text_of(answer)  # said before it is paid
    [verdict] = await _wait_verdicts(fake_discord, 1)
    assert verdict.endswith(
        "auto re-roll: not enough budget for another take; press Re-roll to try yourself."
    )
    assert "$" not in verdict  # public: never a budget figure
    assert len(fake_fal.submissions) == 1


async def test_faceless_clip_says_no_face_and_is_not_rerolled(bot, runner, fake_discord, fake_fal, tmp_path):
    await set_anchor(fake_discord, samples.png_bytes(fs.centred_portrait()))
    fake_fal.script(Outcome.complete(video=_clip(tmp_path, fs.faceless_clip, "c.mp4")))
    answer = await run_shot(
        fake_discord, "seen from behind, she walks away from the camera", auto_reroll=True
    )
    assert "Advice" in text_of(answer) and "face may not be visible" in text_of(answer)  # before it is made
    [verdict] = await _wait_verdicts(fake_discord, 1)
    assert verdict == "no face visible, so it could not be checked"
    await asyncio.sleep(1.5)
    assert len(fake_fal.submissions) == 1


@pytest.mark.long
async def test_sigkill_while_scoring_loses_nothing(bot_process, fake_discord, fake_fal, tmp_path):
    await bot_process.start()
    await set_anchor(fake_discord, samples.png_bytes(fs.centred_portrait()))
    long_clip = fs.write_mp4(
        tmp_path / "long.mp4", fs.camera_move(fs.centred_portrait(), 96, (1280, 720)), fps=24
    )
    fake_fal.script(Outcome.complete(video=long_clip.read_bytes()))
    await run_shot(fake_discord, "she smiles")
    db = bot_process.data_dir / "anchorshot.sqlite3"

    def score_state() -> str | None:
        with sqlite3.connect(db) as conn:
            row = conn.execute("SELECT state FROM jobs WHERE kind='face_score'").fetchone()
        return row[0] if row else None

    await fake_discord.wait_for(lambda: score_state() == JobState.RUNNING, timeout=90)
    bot_process.kill()
    assert score_state() == JobState.RUNNING
    await bot_process.start()
    [verdict] = await _wait_verdicts(fake_discord, 1, timeout=120)
    assert "face match" in verdict
    await fake_discord.wait_for(lambda: score_state() == JobState.POSTED, timeout=30)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM jobs WHERE kind='face_score'").fetchone()[0] == 1
        assert conn.execute("SELECT COUNT(*) FROM take_scores").fetchone()[0] == 1


async def test_a_score_skipped_by_a_crash_is_queued_by_the_sweep_once(
    bot, runner, fake_discord, fake_fal, tmp_path
):
    """The bot stopped between recording a take posted and queueing its score: the start-up sweep queues it."""
    consistency = runner.services.consistency
    runner.services.jobs.unsubscribe(consistency)  # as if the process died right after the POSTED move
    await set_anchor(fake_discord, samples.png_bytes(fs.centred_portrait()))
    fake_fal.script(Outcome.complete(video=_clip(tmp_path, fs.anchor_clip, "a.mp4")))
    await run_shot(fake_discord, "she smiles")
    await fake_discord.wait_for(lambda: clip_messages(fake_discord), timeout=30)
    for _ in range(50):
        take = await runner.services.takes.get(1)
        if take.state is JobState.POSTED:
            break
        await asyncio.sleep(0.1)
    assert await _score_jobs(runner) == []
    assert await consistency.sweep() == 1
    assert await consistency.sweep() == 0  # idempotent: one score job per take
    assert await consistency.ensure_score(1) is None
    [verdict] = await _wait_verdicts(fake_discord, 1)
    assert "face match" in verdict
    assert len(await _score_jobs(runner)) == 1


async def test_the_automatic_reroll_is_one_per_take_even_when_asked_again(
    bot, runner, fake_discord, fake_fal, tmp_path
):
    """A deliver repeated after a crash asks for the re-roll again: the same take comes back, nothing is charged twice."""
    await set_anchor(fake_discord, samples.png_bytes(fs.centred_portrait()))
    fake_fal.script(Outcome.complete(video=_clip(tmp_path, fs.anchor_clip, "a.mp4")))
    await run_shot(fake_discord, "she smiles")
    await _wait_verdicts(fake_discord, 1)
    take = await runner.services.takes.get(1)
    first = await runner.services.consistency.auto_reroll(take)
    again = await runner.services.consistency.auto_reroll(take)
    assert first.id == again.id and first.auto_reroll_of == 1 and first.take == 2
    view = await runner.services.budget.view(fake_discord.guild_id, fake_discord.member("alice"))
    assert view.spent + view.held == 2 * 560_000


async def test_anchor_settings_auto_reroll_needs_manage_messages(bot, runner, fake_discord):
    consistency = runner.services.consistency
    assert await consistency.auto_reroll_default(fake_discord.channel_id) is False
    bob = fake_discord.add_member("bob", permissions=DEFAULT_MEMBER_PERMS)
    it = await fake_discord.slash("anchor settings", user=bob, auto_reroll=True)
    assert "Manage Messages" in text_of(await it.wait_reply())
    assert await consistency.auto_reroll_default(fake_discord.channel_id) is False
    it = await fake_discord.slash("anchor settings", auto_reroll=True)
    assert "Auto re-roll" in text_of(await it.wait_reply()) and "is on" in text_of(await it.wait_reply())
    assert await consistency.auto_reroll_default(fake_discord.channel_id) is True


async def test_without_a_working_face_engine_everything_else_works_and_status_says_why(
    bot_process, fake_discord, fake_fal, tmp_path
):
    # A broken install: a `dlib` that fails to import shadows the real one in the bot and its face worker.
    broken = tmp_path / "broken-site"
    (broken / "dlib").mkdir(parents=True)
    (broken / "dlib" / "__init__.py").write_text('raise ImportError("simulated broken dlib build")\n')
    await bot_process.start(PYTHONPATH=str(broken))
    reply = await set_anchor(fake_discord, samples.png_bytes(fs.centred_portrait()), name="Mara")
    assert "Anchor set: version 1" in text_of(reply)
    fake_fal.script(Outcome.complete(video=_clip(tmp_path, fs.anchor_clip, "a.mp4")))
    await run_shot(fake_discord, "she smiles")
    await fake_discord.wait_for(lambda: clip_messages(fake_discord), timeout=60)  # the take is delivered

    async def status_text() -> str:
        it = await fake_discord.slash("status")
        return text_of(await text_reply(it))

    text = ""
    for _ in range(40):  # the worker reports once it has tried to load the models
        text = await status_text()
        if "face checks off" in text:
            break
        await asyncio.sleep(0.5)
    assert "face checks off" in text and "simulated broken dlib build" in text
    db = bot_process.data_dir / "anchorshot.sqlite3"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM jobs WHERE kind='face_score'").fetchone()[0] == 0
        assert conn.execute("SELECT state FROM jobs WHERE id=1").fetchone()[0] == JobState.POSTED
