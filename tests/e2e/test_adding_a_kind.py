"""bot/jobs/ADDING_A_KIND.md, worked: a new LOCAL kind and a new REMOTE kind each take four things and touch nothing
else in the bot: (1) the kind, (2) its service call, (3) one registration line (here `register`, in bot/app.py in
the bot itself), (4) its cog. Both are driven end to end through the fake Discord and the fake fal."""

from __future__ import annotations

import asyncio
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.fal.models import model
from bot.fal.pricing import PriceTable
from bot.jobs import Failure, Job, JobEngine, JobState, KindBase, Outlet, Prepared
from bot.kinds.fal import FalKind
from bot.text import clean_text
from tests import samples
from tests.e2e.helpers import set_anchor, text_reply
from tests.e2e.shots_helpers import run_shot, wait_posted
from tests.fakes.discord import text_of


class Poster:
    """The chat side both kinds post through (a cog would be its own)."""

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    async def post(self, job: Job, text: str) -> int:
        channel = self.bot.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        return (await channel.send(text, allowed_mentions=discord.AllowedMentions.none())).id


# 1. The kinds -------------------------------------------------------------------------------------------------
class ShoutKind(KindBase):
    """Local: the bot does the work itself, in the engine's worker threads."""

    name, ledger_prefix, noun = "shout", "shout", "shout"

    def __init__(self) -> None:
        self.outlet: Outlet[Poster] = Outlet("shouts")

    def can_deliver(self) -> bool:
        return self.outlet.attached

    def run(self, job: Job) -> dict[str, Any]:
        return {"text": job.args["text"].upper() + "!"}

    async def deliver(self, job: Job) -> int:
        return await self.outlet.get().post(job, job.outputs["text"])


class PictureKind(FalKind):
    """Remote: one Seedream image at fal; the fal steps (submit once, poll, collect, cancel) are FalKind's."""

    name, ledger_prefix, noun, service = "picture", "picture", "picture", "the image service"

    def __init__(self, gateway: Any) -> None:
        self.gateway = gateway
        self.outlet: Outlet[Poster] = Outlet("pictures")

    def can_deliver(self) -> bool:
        return self.outlet.attached

    async def arguments(self, job: Job) -> dict[str, Any]:
        return model(self.endpoint(job)).arguments(prompt=job.args["prompt"], num_images=1)

    async def deliver(self, job: Job) -> int:
        return await self.outlet.get().post(job, f"picture of {job.args['prompt']}: {job.outputs['urls'][0]}")


# 2. The service call --------------------------------------------------------------------------------------------
class HelloService:
    def __init__(self, engine: JobEngine) -> None:
        self.engine = engine

    async def shout(self, *, guild_id: int, channel_id: int, user_id: int, text: str) -> Job:
        prepared = Prepared(args={"text": clean_text(text, field="text", max_chars=200)}, price_micros=0)
        job = await self.engine.enqueue(
            "shout", prepared, guild_id=guild_id, channel_id=channel_id, user_id=user_id
        )
        self.engine.wake()
        return job

    async def picture(self, *, guild_id: int, channel_id: int, user_id: int, prompt: str) -> Job:
        spec = model("seedream-v4.5")
        prepared = Prepared(
            args={"prompt": clean_text(prompt, field="prompt", max_chars=500)},
            price_micros=PriceTable({}).quote(spec, images=1),
            endpoint=spec.endpoint,
            description="picture",
        )
        job = await self.engine.enqueue(
            "picture", prepared, guild_id=guild_id, channel_id=channel_id, user_id=user_id
        )
        self.engine.wake()
        return job


# 4. The cog (3., the registration, is in `prepare` below: one line a kind) ------------------------------------------
class HelloCog(commands.Cog):
    def __init__(self, bot: commands.Bot, service: HelloService, kinds: list[Any]) -> None:
        self.service, self.kinds, self.poster = service, kinds, Poster(bot)

    async def cog_load(self) -> None:
        for kind in self.kinds:
            kind.outlet.attach(self.poster)

    async def cog_unload(self) -> None:
        for kind in self.kinds:
            kind.outlet.detach(self.poster)

    @app_commands.command(name="shout", description="Shout something back")
    async def shout(self, interaction: discord.Interaction[Any], text: str) -> None:
        assert interaction.guild_id is not None and interaction.channel_id is not None
        job = await self.service.shout(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            user_id=interaction.user.id,
            text=text,
        )
        await interaction.response.send_message(f"shout {job.id} queued", ephemeral=True)

    @app_commands.command(name="picture", description="Make a picture")
    async def picture(self, interaction: discord.Interaction[Any], prompt: str) -> None:
        assert interaction.guild_id is not None and interaction.channel_id is not None
        job = await self.service.picture(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            user_id=interaction.user.id,
            prompt=prompt,
        )
        await interaction.response.send_message(f"picture {job.id} queued", ephemeral=True)


async def test_a_new_local_kind_and_a_new_remote_kind_need_only_four_things(runner, fake_discord, fake_fal):
    shout, picture = ShoutKind(), None

    async def prepare(bot: Any) -> None:
        nonlocal picture
        picture = PictureKind(bot.services.gateway)
        bot.services.jobs.register(shout)  # 3. one registration line a kind
        bot.services.jobs.register(picture)
        await bot.add_cog(HelloCog(bot, HelloService(bot.services.jobs), [shout, picture]))

    await runner.start(prepare=prepare)
    it = await fake_discord.slash("shout", text="hello there")
    assert "queued" in text_of(await text_reply(it))
    await fake_discord.wait_for(
        lambda: any(
            text_of(m) == "HELLO THERE!" for m in fake_discord.channel_messages(fake_discord.channel_id)
        ),
        timeout=15,
    )
    it = await fake_discord.slash("picture", prompt="a lighthouse at dusk")
    assert "queued" in text_of(await text_reply(it))
    [posted] = await fake_discord.wait_for(
        lambda: [
            m for m in fake_discord.channel_messages(fake_discord.channel_id) if "lighthouse" in text_of(m)
        ],
        timeout=20,
    )
    assert text_of(posted).startswith("picture of a lighthouse at dusk: http")
    [submission] = [s for s in fake_fal.submissions if "seedream" in s.endpoint]
    assert submission.arguments["prompt"] == "a lighthouse at dusk"
    jobs = runner.services.jobs

    async def posted_kinds() -> set[str]:  # the job is recorded posted just after its message appears
        return {j.kind for j in await jobs.in_states(JobState.POSTED) if j.kind in ("shout", "picture")}

    async with asyncio.timeout(10):
        while await posted_kinds() != {"shout", "picture"}:
            await asyncio.sleep(0.02)
    spent = (await runner.services.budget.view(fake_discord.guild_id, fake_discord.member("alice"))).spent
    assert spent == PriceTable({}).quote(model("seedream-v4.5"), images=1) > 0


async def test_unloading_a_cog_holds_only_its_kinds_deliveries(runner, fake_discord, fake_fal):
    """Unloading a cog stops nothing but that cog: its kind's results wait (no attempt counted) and go out when
    it is back, while takes go on being made and posted meanwhile."""
    shout = ShoutKind()
    service: list[HelloService] = []

    async def prepare(bot: Any) -> None:
        bot.services.jobs.register(shout)
        service.append(HelloService(bot.services.jobs))
        await bot.add_cog(HelloCog(bot, service[0], [shout]))

    bot = await runner.start(prepare=prepare)
    await bot.remove_cog("HelloCog")
    alice = fake_discord.member("alice")
    job = await service[0].shout(
        guild_id=fake_discord.guild_id, channel_id=fake_discord.channel_id, user_id=alice, text="later"
    )
    await fake_discord.wait_for(lambda: _state(runner, job.id, JobState.DOWNLOADED), timeout=10)
    await set_anchor(fake_discord, samples.portrait_png())
    await run_shot(fake_discord, "takes are not held")
    await wait_posted(runner, fake_discord, 1)
    held = await runner.services.jobs.get(job.id)
    assert held is not None and held.state is JobState.DOWNLOADED and held.attempts == 0
    await bot.add_cog(HelloCog(bot, service[0], [shout]))
    await fake_discord.wait_for(lambda: _state(runner, job.id, JobState.POSTED), timeout=10)
    assert any(text_of(m) == "LATER!" for m in fake_discord.channel_messages(fake_discord.channel_id))


async def test_the_engine_words_a_kinds_failure_with_the_kinds_own_noun():
    assert "shout" in ShoutKind().failure_text(Failure.UNDELIVERABLE)
    assert "picture" in PictureKind(None).failure_text(Failure.TIMED_OUT)
    assert "clip" not in PictureKind(None).failure_text(Failure.GAVE_UP, "busy")


async def _state(runner: Any, job_id: int, state: JobState) -> bool:
    job = await runner.services.jobs.get(job_id)
    return job is not None and job.state is state
