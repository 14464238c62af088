"""Sharding (issue #18): SHARD_COUNT and SHARD_IDS run the gateway part as an AutoShardedBot over those shards.

The fake Discord routes every guild event, interactions included, to the session of shard (guild_id >> 22) % count
(tests/fakes/discord/gateway.py); the default guild is in shard 0 of 2 and "Odd shard" is made to fall in shard 1.
"""

from __future__ import annotations

import asyncio
import re

from discord.ext import commands

from bot.client import AnchorshotBot
from tests.fakes.discord import FakeDiscord, FakeInteraction, Guild, shard_of, text_of


async def _no_identify_spacing(bot: AnchorshotBot) -> None:
    """discord.py waits 5 s before each IDENTIFY after a process's first (Discord's identify rate limit); the fake
    has none, and the wait is not what these tests are about."""

    async def at_once(shard_id: int | None, *, initial: bool = False) -> None:
        return None

    bot.before_identify_hook = at_once  # type: ignore[method-assign]


def _odd_guild(fake: FakeDiscord) -> Guild:
    odd = fake.add_guild("Odd shard", shard=(1, 2))
    assert shard_of(fake.guild_id, 2) == 0 and shard_of(odd.guild_id, 2) == 1
    return odd


async def _status_fields(fake: FakeDiscord, channel_id: int) -> tuple[FakeInteraction, dict[str, str]]:
    it = await fake.slash("status", channel_id=channel_id)
    reply = await it.wait_reply(lambda m: "Anchorshot status" in text_of(m))
    return it, {f["name"]: f["value"] for f in reply["embeds"][0]["fields"]}


def _interactions_of(fake: FakeDiscord, shard: tuple[int, int]) -> list[str]:
    [session] = [s for s in fake.sessions if s.shard == shard]
    return [d["id"] for t, d in session.events if t == "INTERACTION_CREATE"]


async def test_unset_shards_keep_one_plain_connection(runner, fake_discord):
    bot = await runner.start()
    assert type(bot) is AnchorshotBot and not isinstance(bot, commands.AutoShardedBot)
    assert fake_discord.identify_count == 1 and "shard" not in fake_discord.identify_payloads[0]
    assert fake_discord.requests_to("GET", "/gateway/bot") == []
    _, fields = await _status_fields(fake_discord, fake_discord.channel_id)
    assert "Shard" not in fields and re.fullmatch(r"\d+ ms", fields["Gateway latency"]), fields


async def test_one_process_runs_both_shards_and_answers_in_each_shards_guild(runner, fake_discord, caplog):
    fake = fake_discord
    odd = _odd_guild(fake)
    # as the environment gives them (SHARD_COUNT=2, SHARD_IDS=0,1)
    bot = await runner.start(shard_count="2", shard_ids="0,1", prepare=_no_identify_spacing)
    assert "gateway: this process runs shards 0, 1 of 2" in caplog.messages
    assert isinstance(bot, commands.AutoShardedBot) and isinstance(bot, AnchorshotBot)
    assert bot.shard_count == 2 and sorted(bot.shards) == [0, 1]
    assert sorted(p["shard"] for p in fake.identify_payloads) == [[0, 2], [1, 2]]
    assert fake.requests_to("GET", "/gateway/bot") == []  # the count is given: nothing to ask Discord
    assert {g.id: g.shard_id for g in bot.guilds} == {fake.guild_id: 0, odd.guild_id: 1}

    for guild, shard in ((fake.default_guild, 0), (odd, 1)):
        it, fields = await _status_fields(fake, guild.channel_id)
        assert fields["Shard"] == f"{shard} of 2; this process runs shards 0, 1 of 2"
        assert re.fullmatch(r"\d+ ms", fields["Gateway latency"]), fields  # that shard's heartbeat
        assert str(it.id) in _interactions_of(fake, (shard, 2))
        assert str(it.id) not in _interactions_of(fake, (1 - shard, 2))


async def test_a_process_with_shard_1_of_2_gets_only_that_shards_guilds(bot_process, fake_discord):
    fake = fake_discord
    odd = _odd_guild(fake)
    fake.undelivered_ok = True  # a command in shard 0's guild reaches no one, as on Discord
    await bot_process.start(SHARD_COUNT="2", SHARD_IDS="1", GUILD_READY_TIMEOUT_S="0.05")
    await fake.wait_for(lambda: "to 1 guild(s)" in bot_process.log_path.read_text(), timeout=15)
    log = bot_process.log_path.read_text()
    assert "gateway: this process runs shard 1 of 2" in log
    assert [p["shard"] for p in fake.identify_payloads] == [[1, 2]]
    [session] = fake.sessions
    assert session.shard == (1, 2) and session.guild_ids == [odd.guild_id]
    created = [d["id"] for t, d in fake.gateway_events if t == "GUILD_CREATE"]
    assert created == [str(odd.guild_id)]

    it, fields = await _status_fields(fake, odd.channel_id)
    assert fields["Shard"] == "1 of 2; this process runs shard 1 of 2"

    lost = await fake.slash("status")  # the default guild: shard 0, which nobody runs
    await asyncio.sleep(0.5)
    assert not lost.acknowledged and lost.original is None
    assert str(lost.id) not in [d["id"] for t, d in fake.gateway_events if t == "INTERACTION_CREATE"]
    assert _interactions_of(fake, (1, 2)) == [str(it.id)]
