"""The bot starts, syncs its commands, answers /status, reaches fal, and keeps its data across restarts."""

from __future__ import annotations

import fal_client

from bot.client import SYNC_HASH_KEY
from bot.fal.gateway import FalGateway
from bot.fal.models import CATALOGUE
from tests.fakes.discord import text_of
from tests.fakes.fal_fake import Outcome


async def test_bot_connects_syncs_commands_and_answers_status(runner, fake_discord):
    await runner.start()
    assert fake_discord.sync_count == 1
    names = {c["name"] for c in fake_discord.synced_commands["global"]}
    assert {"status", "anchor", "shot", "budget", "budget-admin"} <= names
    it = await fake_discord.slash("status")
    reply = await it.wait_reply(lambda m: "Anchorshot status" in text_of(m))
    text = text_of(reply)
    assert "fal" in text and "Shots queued" in text and "Database" in text
    assert reply["_ephemeral"]


async def test_status_on_dry_run_backend(runner, fake_discord):
    await runner.start(fal=False)
    it = await fake_discord.slash("status")
    reply = await it.wait_reply(lambda m: "Anchorshot status" in text_of(m))
    assert "dry-run" in text_of(reply)


async def test_restart_does_not_resync_unchanged_commands_but_guild_mode_does(runner, fake_discord):
    await runner.start()
    assert fake_discord.sync_count == 1
    stored_hash = await runner.services.kv.get(SYNC_HASH_KEY)
    assert stored_hash == runner.bot.command_schema_hash()
    await runner.stop()
    await runner.start()
    assert fake_discord.sync_count == 1, "an unchanged schema must not be synced again"
    await runner.stop()
    await runner.start(command_guild_id=fake_discord.guild_id)
    assert fake_discord.sync_count == 2
    assert str(fake_discord.guild_id) in fake_discord.synced_commands


async def test_gateway_call_reaches_fake_fal_and_returns_its_result(fake_fal, tmp_path):
    import io

    import aiohttp
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (400, 600), (90, 80, 70)).save(buf, "JPEG")  # the fake fal reads it, as fal does
    jpeg = buf.getvalue()
    fake_fal.script(Outcome.complete(queued_polls=1, progress_polls=1))
    async with aiohttp.ClientSession() as session:
        gen = FalGateway("test-key", session=session)
        url = await gen.upload(jpeg, "image/jpeg", "a.jpg")
        assert fake_fal.fetch_upload(url) == jpeg
        request_id = await gen.submit(
            "fal-ai/kling-video/v3/pro/image-to-video",
            {"start_image_url": url, "prompt": "wave", "duration": "5"},
        )
        states = []
        while True:
            st = await gen.status("fal-ai/kling-video/v3/pro/image-to-video", request_id)
            states.append(st.state)
            if st.state == "completed":
                break
        [video] = CATALOGUE["fal-ai/kling-video/v3/pro/image-to-video"].outputs(
            await gen.result("fal-ai/kling-video/v3/pro/image-to-video", request_id)
        )
        size = await gen.download(video.url, tmp_path / "clip.mp4", max_bytes=10**8)
    assert states[0] == "queued" and "running" in states
    assert size == (tmp_path / "clip.mp4").stat().st_size > 1000
    assert (tmp_path / "clip.mp4").read_bytes()[4:8] == b"ftyp"
    sub = fake_fal.submission(request_id)
    assert sub.endpoint == "fal-ai/kling-video/v3/pro/image-to-video"
    assert sub.arguments["start_image_url"] == url
    assert "Key test-key" in fake_fal.auth_headers_seen
    assert isinstance(fal_client.AsyncClient, type)


async def test_restart_on_same_data_dir_keeps_everything(runner, fake_discord):
    from tests.e2e.helpers import set_anchor
    from tests.samples import portrait_png

    await runner.start()
    await set_anchor(fake_discord, portrait_png())
    it = await fake_discord.slash("budget-admin default", limit="42")
    await it.wait_reply()
    await runner.stop()
    await runner.start()
    version = await runner.services.anchors.resolve(fake_discord.channel_id)
    assert version.version == 1
    view = await runner.services.budget.view(fake_discord.guild_id, fake_discord.member("alice"))
    assert view.limit == 42_000_000


async def test_members_chatting_sends_the_bot_nothing_but_a_reaction_still_reaches_it(runner, fake_discord):
    """The bot asks the gateway only for what it reads (guilds and reactions): in a server where members talk, every
    message would otherwise reach discord.py to be parsed and cached for nothing."""
    await runner.start()
    before = len(fake_discord.gateway_events)
    posted = [await fake_discord.post_as("alice", f"chatting {i}") for i in range(5)]
    await fake_discord.react(posted[0].id, "👍", user="alice")
    await fake_discord.wait_for(lambda: len(fake_discord.gateway_events) > before)
    sent = [t for t, _ in fake_discord.gateway_events[before:]]
    assert sent == ["MESSAGE_REACTION_ADD"]
