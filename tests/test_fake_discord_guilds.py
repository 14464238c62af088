"""Self-tests of the fake Discord with several guilds and shards, through the real discord.py 2.7.1.

One bot in two guilds (payloads, permissions, members per guild), a guild added while connected
(GUILD_CREATE), GET /gateway/bot, an AutoShardedBot with two shards, and two bots that are one shard each.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from pathlib import Path

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.fakes.discord import (
    ADMINISTRATOR,
    ALL_PERMISSIONS,
    ATTACH_FILES,
    DEFAULT_MEMBER_PERMS,
    MANAGE_GUILD,
    VIEW_CHANNEL,
    CommandHidden,
    FakeDiscord,
    Guild,
)


def _sample(name: str) -> dict | None:
    """``d`` of a payload in shared/discord-payloads (beside the repo root, or above a worktree); None
    when it is not there (the key-set comparisons are then left out)."""
    for base in Path(__file__).resolve().parents[1:]:
        path = base / "shared" / "discord-payloads" / name
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"))["d"]
    return None


class CountView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=60)

    @discord.ui.button(label="+1", custom_id="inc")
    async def inc(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.edit_message(content=f"clicked in {interaction.guild_id}", view=self)


class GuildProbe(commands.Cog):
    def __init__(self) -> None:
        self.interactions: list[discord.Interaction] = []
        self.reactions: list[discord.RawReactionActionEvent] = []
        self.messages: list[discord.Message] = []
        self.joined: list[discord.Guild] = []

    @app_commands.command(name="where", description="Says where it was used")
    async def where(self, interaction: discord.Interaction) -> None:
        self.interactions.append(interaction)
        await interaction.response.send_message(f"guild {interaction.guild_id}")

    @app_commands.command(name="admin", description="Managers only")
    @app_commands.default_permissions(manage_guild=True)
    async def admin(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("secret", ephemeral=True)

    @app_commands.command(name="buttons", description="Sends a button")
    async def buttons(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("press", view=CountView())

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        self.reactions.append(payload)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        self.messages.append(message)

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        self.joined.append(guild)


def _intents() -> discord.Intents:
    intents = discord.Intents.default()
    intents.members = True  # GUILD_MEMBERS_CHUNK per guild (op 8 on the guild's shard) and GUILD_MEMBER_ADD
    return intents


class GuildsBot(commands.Bot):
    def __init__(self, *, sync: bool = True, **kw) -> None:
        super().__init__(command_prefix="!", intents=_intents(), guild_ready_timeout=0.05, **kw)
        self.probe = GuildProbe()
        self.sync = sync

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None  # discord.py sleeps 5 s before every non-initial IDENTIFY; not against a fake

    async def setup_hook(self) -> None:
        await self.add_cog(self.probe)
        if self.sync:
            await self.tree.sync()


class ShardedBot(commands.AutoShardedBot):
    def __init__(self, *, sync: bool = True, **kw) -> None:
        super().__init__(command_prefix="!", intents=_intents(), guild_ready_timeout=0.05, **kw)
        self.probe = GuildProbe()
        self.sync = sync

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None

    async def setup_hook(self) -> None:
        await self.add_cog(self.probe)
        if self.sync:
            await self.tree.sync()


@pytest.fixture
async def fake():
    fd = FakeDiscord()
    await fd.start()
    fd.install()
    yield fd
    await fd.close()
    assert fd.server_errors == []


@contextlib.asynccontextmanager
async def running(fake: FakeDiscord, bot: commands.Bot):
    task = asyncio.create_task(bot.start("fake-token"))
    try:
        await asyncio.wait_for(bot.wait_until_ready(), 15)
        yield bot
    finally:
        await bot.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)


def _events(sess, t: str) -> list[dict]:
    return [d for et, d in sess.events if et == t]


# --------------------------------------------------------------------------------------------------
# several guilds, one connection


async def test_a_bot_sees_two_guilds_each_with_its_own_roles_channels_and_members(fake):
    bob = fake.add_member("bob")
    second = fake.add_guild("Second")
    assert isinstance(second, Guild) and second.guild_id != fake.guild_id
    assert fake.guild_of(second.channel_id) is second and fake.guild_of(fake.channel_id) is fake.default_guild
    async with running(fake, GuildsBot()) as bot:
        assert fake.identify_count == 1 and {g.id for g in bot.guilds} == {fake.guild_id, second.guild_id}
        [sess] = fake.sessions
        [ready] = _events(sess, "READY")
        assert ready["guilds"] == [
            {"id": str(fake.guild_id), "unavailable": True},
            {"id": str(second.guild_id), "unavailable": True},
        ]
        assert "shard" not in ready  # the IDENTIFY had none (gateway-events.mdx: "if sent when identifying")
        assert [d["id"] for d in _events(sess, "GUILD_CREATE")] == [str(fake.guild_id), str(second.guild_id)]

        g1, g2 = bot.get_guild(fake.guild_id), bot.get_guild(second.guild_id)
        assert g2.name == "Second" and g2.default_role.id == second.guild_id
        assert g1.default_role.id == fake.guild_id
        assert [c.id for c in g2.text_channels] == [second.channel_id]
        assert bot.get_channel(second.channel_id).guild is g2
        assert bot.get_channel(fake.channel_id).guild is g1
        assert g2.me.guild_permissions.value == ALL_PERMISSIONS
        assert {r.name for r in g2.roles} == {"@everyone", "testbot", "admin", "member"}
        assert not {r.id for r in g1.roles} & {r.id for r in g2.roles}
        # alice and bob are in both servers; the new guild's owner only in it
        alice = fake.member("alice")
        assert g1.get_member(alice).guild_permissions.administrator
        assert g2.get_member(alice).guild_permissions.value == DEFAULT_MEMBER_PERMS
        assert g2.get_member(bob) is not None and g2.owner_id == second.owner_id != alice
        assert g1.get_member(second.owner_id) is None and g2.get_member(second.owner_id) is not None
        assert g2.member_count == len(second.member_ids) == 4  # bot, owner, alice, bob

        # members added later join one guild; join_guild() adds an existing user to another
        carol = fake.add_member("carol", guild=second)
        await fake.wait_for(lambda: g2.get_member(carol))
        assert g1.get_member(carol) is None
        fake.join_guild("carol", fake.default_guild)
        await fake.wait_for(lambda: g1.get_member(carol))
        dave = second.add_member("dave")
        assert second.is_member(dave) and not fake.default_guild.is_member(dave)

        # REST answers per guild, from the path
        fetched = await bot.fetch_guild(second.guild_id)
        assert fetched.id == second.guild_id and fetched.name == "Second"
        ch = await bot.fetch_channel(second.channel_id)
        assert ch.guild.id == second.guild_id
        assert [c.id for c in await g2.fetch_channels()] == [second.channel_id]
        assert {r.id for r in await g2.fetch_roles()} == {r.id for r in g2.roles}
        assert (await g2.fetch_member(alice)).guild.id == second.guild_id
        with pytest.raises(discord.NotFound):
            await g1.fetch_member(second.owner_id)
        with pytest.raises(discord.NotFound):
            await bot.fetch_guild(123456789012345678)
        extra = second.add_text_channel("clips")
        await fake.wait_for(lambda: bot.get_channel(extra))
        assert bot.get_channel(extra).guild is g2 and fake.guild_of(extra) is second


async def test_a_slash_command_click_reaction_and_post_in_the_second_guild_carry_its_id(fake):
    second = fake.add_guild("Second")
    alice = fake.member("alice")
    async with running(fake, GuildsBot()) as bot:
        probe = bot.probe
        inter = await fake.slash("where", channel_id=second.channel_id)
        reply = await inter.wait_message()
        assert reply.text == f"guild {second.guild_id}" and reply.channel_id == second.channel_id
        assert reply.guild_id == inter.guild_id == second.guild_id
        d = inter.payload
        assert d["guild_id"] == d["guild"]["id"] == d["channel"]["guild_id"] == str(second.guild_id)
        assert d["authorizing_integration_owners"] == {"0": str(second.guild_id)}
        assert d["member"]["user"]["id"] == str(alice)
        assert d["member"]["permissions"] == str(DEFAULT_MEMBER_PERMS)  # alice is no admin here
        assert d["member"]["roles"] == [str(second.member_role_id)]
        # the same keys as Discord's (the shared sample that discord.py accepted)
        sample = _sample("interaction_shot.json")
        if sample is not None:
            assert set(d) == set(sample) and set(d["member"]) >= set(sample["member"])

        got = probe.interactions[-1]
        assert got.guild_id == second.guild_id and got.guild.id == second.guild_id
        assert isinstance(got.user, discord.Member) and got.user.guild.id == second.guild_id
        assert got.permissions.value == DEFAULT_MEMBER_PERMS and not got.permissions.administrator
        assert got.channel.id == second.channel_id
        # the bot's reply is echoed with the second guild's id
        echo = await fake.wait_for(lambda: [m for m in probe.messages if m.id == reply.id])
        assert echo[0].guild.id == second.guild_id

        # in the default guild, as before
        first = await (await fake.slash("where")).wait_message()
        assert (
            first.text == f"guild {fake.guild_id}"
            and probe.interactions[-1].user.guild_permissions.administrator
        )

        # a button click in the second guild
        msg = await (await fake.slash("buttons", channel_id=second.channel_id)).wait_message()
        click = await fake.click(msg.id, "inc")
        await click.wait_response()
        assert click.guild_id == second.guild_id and msg.text == f"clicked in {second.guild_id}"
        assert click.payload["member"]["permissions"] == str(DEFAULT_MEMBER_PERMS)

        # a reaction there
        await fake.react(msg.id, "🔁", user="alice")
        ev = await fake.wait_for(lambda: [p for p in probe.reactions if p.user_id == alice])
        assert ev[0].guild_id == second.guild_id and ev[0].member.guild.id == second.guild_id
        raw = next(
            d for t, d in fake.gateway_events if t == "MESSAGE_REACTION_ADD" and d["user_id"] == str(alice)
        )
        sample = _sample("message_reaction_add.json")
        assert set(raw) >= set(sample or {}) and raw["guild_id"] == str(second.guild_id)

        # a member posts there; a thread of that guild belongs to it too
        posted = await fake.post_as("alice", "hello second")
        assert posted.guild_id == fake.guild_id
        posted = await fake.post_as("alice", "hello second", channel_id=second.channel_id)
        seen = await fake.wait_for(lambda: [m for m in probe.messages if m.id == posted.id])
        assert seen[0].guild.id == second.guild_id and seen[0].author.guild.id == second.guild_id
        tid = fake.add_thread(second.channel_id, "takes")
        thread = await fake.wait_for(lambda: bot.get_channel(tid))
        assert thread.guild.id == second.guild_id
        inter = await fake.slash("where", channel_id=tid)
        assert (await inter.wait_message()).text == f"guild {second.guild_id}"

        # the bot's own messages and replies there
        sent = await bot.get_channel(second.channel_id).send("from the bot")
        reply_msg = await sent.reply("a reply")
        ref = fake.msg(reply_msg.id).raw["message_reference"]
        assert ref["guild_id"] == str(second.guild_id)
        created = [d for t, d in fake.gateway_events if t == "MESSAGE_CREATE" and d["id"] == str(sent.id)]
        assert created[0]["guild_id"] == str(second.guild_id)

        # someone who is not in the guild cannot use it
        outsider = fake.add_member("outsider")
        with pytest.raises(AssertionError, match="not a member"):
            await fake.slash("where", user=outsider, channel_id=second.channel_id)
        with pytest.raises(AssertionError, match="not a member"):
            await fake.post_as("outsider", "hi", channel_id=second.channel_id)
        with pytest.raises(AssertionError, match="not a member"):
            await fake.react(msg.id, user="outsider")


async def test_permissions_are_per_guild(fake):
    boss = fake.add_member("boss", permissions=DEFAULT_MEMBER_PERMS | MANAGE_GUILD)
    second = fake.add_guild("Second")
    async with running(fake, GuildsBot()) as bot:
        g1, g2 = bot.get_guild(fake.guild_id), bot.get_guild(second.guild_id)
        # boss manages the first server only: in the second one he is a plain member
        assert fake.member_permissions(boss) & MANAGE_GUILD
        assert second.member_permissions("boss") == DEFAULT_MEMBER_PERMS
        assert (await (await fake.slash("admin", user="boss")).wait_message()).text == "secret"
        with pytest.raises(CommandHidden):
            await fake.slash("admin", user="boss", channel_id=second.channel_id)
        assert second.member_permissions(second.owner_id) == ALL_PERMISSIONS
        own = fake.add_guild("Alice's own", owner="alice", members=[])
        assert own.member_ids == [fake.bot_user_id, fake.member("alice")]
        assert own.member_permissions("alice") == ALL_PERMISSIONS and not own.is_member("boss")
        await fake.wait_for(lambda: bot.get_guild(own.guild_id))
        assert bot.get_guild(own.guild_id).owner_id == fake.member("alice")

        # the bot's role is per guild
        second.bot_permissions = ALL_PERMISSIONS & ~ADMINISTRATOR & ~ATTACH_FILES
        await fake.wait_for(lambda: not g2.me.guild_permissions.attach_files)
        assert g1.me.guild_permissions.administrator and fake.bot_permissions == ALL_PERMISSIONS
        role_update = [d for t, d in fake.gateway_events if t == "GUILD_ROLE_UPDATE"]
        assert [d["guild_id"] for d in role_update] == [str(second.guild_id)]
        with pytest.raises(discord.Forbidden) as ei:
            await bot.get_channel(second.channel_id).send(
                "clip", file=discord.File(io.BytesIO(b"d"), "c.mp4")
            )
        assert ei.value.code == 50013
        await bot.get_channel(fake.channel_id).send("clip", file=discord.File(io.BytesIO(b"d"), "c.mp4"))
        inter = await fake.slash("where", channel_id=second.channel_id)
        await inter.wait_message()
        assert int(inter.payload["app_permissions"]) & ATTACH_FILES == 0
        assert bot.probe.interactions[-1].app_permissions.attach_files is False

        # overwrites use the channel's guild: @everyone there is the second guild's id
        fake.set_channel_permissions(second.channel_id, "everyone", deny=VIEW_CHANNEL)
        assert fake.channel_permissions(fake.member("alice"), second.channel_id) == 0
        assert fake.channel_permissions(fake.member("alice"), fake.channel_id) == ALL_PERMISSIONS
        ch2 = bot.get_channel(second.channel_id)
        await fake.wait_for(lambda: ch2.overwrites_for(g2.default_role).view_channel is False)
        with pytest.raises(discord.Forbidden) as ei:
            await ch2.send("hidden")
        assert ei.value.code == 50001
        fake.set_channel_permissions(second.channel_id, "member", allow=VIEW_CHANNEL)  # the guild's own role
        overwrites = fake._channels[second.channel_id]["permission_overwrites"]
        assert {o["id"] for o in overwrites} == {str(second.guild_id), str(second.member_role_id)}
        assert fake.channel_permissions(fake.member("alice"), second.channel_id) & VIEW_CHANNEL
        # the bot has no "member" role: still hidden from it
        assert not fake.bot_channel_permissions(second.channel_id) & VIEW_CHANNEL
        fake.set_channel_permissions(second.channel_id, "bot", allow=VIEW_CHANNEL)
        await ch2.send("visible again")
        with pytest.raises(AssertionError, match="administrator"):
            fake.set_channel_permissions(fake.channel_id, "bot", deny=ATTACH_FILES)


async def test_a_guild_added_while_connected_arrives_as_guild_create(fake):
    async with running(fake, GuildsBot()) as bot:
        assert [g.id for g in bot.guilds] == [fake.guild_id]
        invited = fake.add_guild("Invited")
        joined = await fake.wait_for(lambda: bot.probe.joined)
        assert joined[0].id == invited.guild_id and joined[0].name == "Invited"
        assert {g.id for g in bot.guilds} == {fake.guild_id, invited.guild_id}
        [create] = [
            d for t, d in fake.gateway_events if t == "GUILD_CREATE" and d["id"] == str(invited.guild_id)
        ]
        sample = _sample("guild_create.json") or {}
        assert set(create) >= set(sample) - {"unavailable"} and "unavailable" not in create  # a join
        assert all(c["guild_id"] == str(invited.guild_id) for c in create["channels"])
        inter = await fake.slash("where", channel_id=invited.channel_id)
        assert (await inter.wait_message()).text == f"guild {invited.guild_id}"
        # after a new IDENTIFY, READY lists it with the others
        await fake.reconnect(resume=False)
        await fake.wait_for(lambda: fake.identify_count == 2 and fake.connected.is_set())
        [ready] = _events(fake.sessions[-1], "READY")
        assert [g["id"] for g in ready["guilds"]] == [str(fake.guild_id), str(invited.guild_id)]


# --------------------------------------------------------------------------------------------------
# shards


async def test_shard_helpers_and_gateway_bot(fake):
    assert fake.default_guild.shard(2) == (fake.guild_id >> 22) % 2 == 0
    for k in range(3):
        assert (fake.snowflake_in_shard(k, 3) >> 22) % 3 == k
        g = fake.add_guild(f"g{k}", shard=(k, 3))
        assert g.shard(3) == k and g.guild_id in fake.guilds_of_shard(k, 3)
    with pytest.raises(AssertionError):
        fake.add_guild("nowhere", shard=(3, 3))
    fake.recommended_shards = 3
    async with (
        aiohttp.ClientSession() as s,
        s.get(fake.base_url + "/api/v10/gateway/bot", headers={"Authorization": "Bot x"}) as r,
    ):
        assert r.status == 200 and r.headers["Content-Type"] == "application/json"
        body = await r.json()
    assert body["shards"] == 3 and body["url"] == f"ws://127.0.0.1:{fake.port}"
    assert set(body["session_start_limit"]) == {"total", "remaining", "reset_after", "max_concurrency"}
    assert body["session_start_limit"]["remaining"] == body["session_start_limit"]["total"]

    # an IDENTIFY with an impossible shard is closed with 4010 Invalid shard
    async with aiohttp.ClientSession() as s, s.ws_connect(f"ws://127.0.0.1:{fake.port}/") as ws:
        hello = await ws.receive_json()
        assert hello["op"] == 10
        await ws.send_json({"op": 2, "d": {"token": "x", "intents": 0, "properties": {}, "shard": [2, 2]}})
        closed = await ws.receive()
        assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED) and ws.close_code == 4010
    assert fake.identify_count == 0


async def test_an_autosharded_bot_gets_each_guild_on_its_shard(fake):
    fake.recommended_shards = 2
    other = fake.add_guild("Odd shard", shard=(1, 2))
    also_even = fake.add_guild("Even shard", shard=(0, 2))
    async with running(fake, ShardedBot()) as bot:
        assert len(fake.requests_to("GET", "/gateway/bot")) == 1  # discord.py asked how many shards
        assert bot.shard_count == 2 and sorted(bot.shards) == [0, 1]
        assert fake.identify_count == 2
        assert sorted(p["shard"] for p in fake.identify_payloads) == [[0, 2], [1, 2]]
        by_shard = {s.shard: s for s in fake.sessions}
        s0, s1 = by_shard[(0, 2)], by_shard[(1, 2)]
        assert s0.guild_ids == [fake.guild_id, also_even.guild_id] and s1.guild_ids == [other.guild_id]
        assert _events(s0, "READY")[0]["shard"] == [0, 2] and _events(s1, "READY")[0]["shard"] == [1, 2]
        assert [d["id"] for d in _events(s1, "GUILD_CREATE")] == [str(other.guild_id)]
        chunks = {d["guild_id"] for d in _events(s0, "GUILD_MEMBERS_CHUNK")}
        assert chunks <= {str(fake.guild_id), str(also_even.guild_id)}
        assert not {d["guild_id"] for d in _events(s1, "GUILD_MEMBERS_CHUNK")} - {str(other.guild_id)}
        assert {g.id: g.shard_id for g in bot.guilds} == {
            fake.guild_id: 0,
            also_even.guild_id: 0,
            other.guild_id: 1,
        }
        assert fake.session_for(other) is s1 and fake.session_for(fake.guild_id) is s0
        limits = await bot.fetch_session_start_limits()  # GET /gateway/bot again, through discord.py
        assert limits.remaining == limits.total - 2 and limits.max_concurrency == 1

        # a command in the odd guild goes to shard 1 only, one in the default guild to shard 0 only
        inter = await fake.slash("where", channel_id=other.channel_id)
        assert (await inter.wait_message()).text == f"guild {other.guild_id}"
        assert [d["id"] for d in _events(s1, "INTERACTION_CREATE")] == [str(inter.id)]
        assert _events(s0, "INTERACTION_CREATE") == []
        assert bot.probe.interactions[-1].guild.shard_id == 1
        inter0 = await fake.slash("where")
        await inter0.wait_message()
        assert [d["id"] for d in _events(s0, "INTERACTION_CREATE")] == [str(inter0.id)]
        # DMs go to shard 0
        dm = fake.dm_channel("alice")
        await fake.post_as("alice", "psst", channel_id=dm)
        await fake.wait_for(lambda: [m for m in bot.probe.messages if m.content == "psst"])
        assert [d["content"] for d in _events(s0, "MESSAGE_CREATE") if d["channel_id"] == str(dm)] == ["psst"]
        assert not [d for d in _events(s1, "MESSAGE_CREATE") if d["channel_id"] == str(dm)]

        # a RESUME of one shard; events of that shard meanwhile are replayed, the other shard goes on
        await fake.reconnect(shard_id=1)
        assert fake.connected.is_set()  # shard 0 still is
        posted = await fake.post_as("alice", "while shard 1 resumes", channel_id=other.channel_id)
        await fake.wait_for(lambda: fake.resume_count == 1 and s1.connected)
        await fake.wait_for(lambda: [m for m in bot.probe.messages if m.id == posted.id])
        assert [d["id"] for d in _events(s1, "MESSAGE_CREATE")].count(str(posted.id)) == 1  # on RESUME
        assert fake.identify_count == 2 and set(fake.sessions) == {s0, s1}

        # a guild invited live is announced on its shard only
        late = fake.add_guild("Late", shard=(1, 2))
        await fake.wait_for(lambda: bot.get_guild(late.guild_id))
        assert bot.get_guild(late.guild_id).shard_id == 1
        assert [d["id"] for d in _events(s1, "GUILD_CREATE")][-1] == str(late.guild_id)
        assert str(late.guild_id) not in [d["id"] for d in _events(s0, "GUILD_CREATE")]


async def test_two_bots_one_shard_each_see_only_their_guilds_and_events(fake):
    odd = fake.add_guild("Odd", shard=(1, 2))
    bot0 = ShardedBot(shard_ids=[0], shard_count=2)
    bot1 = ShardedBot(shard_ids=[1], shard_count=2, sync=False)
    async with running(fake, bot0), running(fake, bot1):
        assert fake.identify_count == 2 and len(fake.sessions) == 2
        assert len(fake.requests_to("GET", "/gateway/bot")) == 0  # shard_count given: no need to ask
        assert [g.id for g in bot0.guilds] == [fake.guild_id]
        assert [g.id for g in bot1.guilds] == [odd.guild_id]

        inter = await fake.slash("where", channel_id=odd.channel_id)
        assert (await inter.wait_message()).text == f"guild {odd.guild_id}"
        assert [i.id for i in bot1.probe.interactions] == [inter.id] and bot0.probe.interactions == []
        inter0 = await fake.slash("where")
        await inter0.wait_message()
        assert [i.id for i in bot0.probe.interactions] == [inter0.id] and len(bot1.probe.interactions) == 1

        m_odd = await bot1.get_channel(odd.channel_id).send("odd")
        m_even = await bot0.get_channel(fake.channel_id).send("even")
        await fake.react(m_odd.id, user="alice")
        await fake.react(m_even.id, user="alice")
        await fake.wait_for(lambda: bot1.probe.reactions and bot0.probe.reactions)
        await asyncio.sleep(0.1)
        assert [p.message_id for p in bot1.probe.reactions] == [m_odd.id]
        assert [p.message_id for p in bot0.probe.reactions] == [m_even.id]
        assert all(m.guild.id == odd.guild_id for m in bot1.probe.messages)
        assert all(m.guild is None or m.guild.id == fake.guild_id for m in bot0.probe.messages)

        # a guild the bot is invited to is announced to the process of its shard only
        late = fake.add_guild("Late", shard=(1, 2))
        joined = await fake.wait_for(lambda: bot1.probe.joined)
        assert (
            joined[0].id == late.guild_id
            and bot0.probe.joined == []
            and bot0.get_guild(late.guild_id) is None
        )

    # shard 1's process restarts: its new IDENTIFY replaces only its own session
    bot1b = ShardedBot(shard_ids=[1], shard_count=2, sync=False)
    async with running(fake, bot1b):
        assert [s.shard for s in fake.sessions] == [(1, 2)]  # the others closed with 1000
        assert {g.id for g in bot1b.guilds} == {odd.guild_id, late.guild_id}


async def test_an_interaction_in_a_shard_no_process_runs_goes_to_no_one(fake):
    """Discord sends a guild's INTERACTION_CREATE on the guild's shard only; nobody runs shard 0 here, so a command
    in the default guild reaches no bot and is never answered (the member sees "did not respond")."""
    odd = fake.add_guild("Odd", shard=(1, 2))
    fake.undelivered_ok = True
    async with running(fake, ShardedBot(shard_ids=[1], shard_count=2)) as bot:
        assert [s.shard for s in fake.sessions] == [(1, 2)] and [g.id for g in bot.guilds] == [odd.guild_id]
        lost = await asyncio.wait_for(fake.slash("where"), 2)  # no 10 s wait for a shard-0 session
        await asyncio.sleep(0.3)
        assert not lost.acknowledged and bot.probe.interactions == []
        assert str(lost.id) not in [d.get("id") for t, d in fake.gateway_events if t == "INTERACTION_CREATE"]
        # the shard it runs is served as before
        inter = await fake.slash("where", channel_id=odd.channel_id)
        assert (await inter.wait_message()).text == f"guild {odd.guild_id}"
        assert [i.id for i in bot.probe.interactions] == [inter.id]
