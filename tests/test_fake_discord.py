"""Self-tests of tests/fakes/discord_fake.py: a real discord.py commands.Bot against the fake."""

from __future__ import annotations

import asyncio
import contextlib
import io

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands
from PIL import Image

from tests.fakes.discord_fake import (
    ALL_PERMISSIONS,
    DEFAULT_MEMBER_PERMS,
    MANAGE_GUILD,
    CommandHidden,
    FakeDiscord,
    text_of,
)


def _png(w: int = 4, h: int = 3) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 10, 10)).save(buf, "PNG")
    return buf.getvalue()


PNG = _png()


class CounterView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=60)
        self.count = 0

    @discord.ui.button(label="+1", custom_id="inc", style=discord.ButtonStyle.primary)
    async def inc(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.count += 1
        await interaction.response.edit_message(content=f"count: {self.count}", view=self)


class AskModal(discord.ui.Modal, title="Ask"):
    answer = discord.ui.TextInput(label="Answer")


class MoreView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=60)

    @discord.ui.button(label="later", custom_id="later")
    async def later(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.defer()  # type 6: deferred update of this message
        await interaction.edit_original_response(content="edited after defer", view=None)
        await interaction.followup.send("psst", ephemeral=True)

    @discord.ui.button(label="ask", custom_id="ask")
    async def ask(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.send_modal(AskModal())


class Probe(commands.Cog):
    grp = app_commands.Group(name="grp", description="A group")

    def __init__(self) -> None:
        self.raw_reactions: list[discord.RawReactionActionEvent] = []
        self.errors: list[Exception] = []
        self.attachment_bytes: list[bytes] = []
        self.kept: list[discord.Interaction] = []
        self.channels: list[object] = []
        self.seen: list[discord.Message] = []

    @app_commands.command(name="echo", description="Echo text")
    async def echo(
        self, interaction: discord.Interaction, text: str, who: discord.Member | None = None
    ) -> None:
        self.channels.append(interaction.channel)
        suffix = f" to {who.name}" if who else ""
        await interaction.response.send_message(f"echo: {text}{suffix}")

    @app_commands.command(name="admin", description="Admins only")
    @app_commands.default_permissions(manage_guild=True)
    async def admin(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("secret", ephemeral=True)

    @grp.command(name="sub", description="Read an attachment")
    async def sub(self, interaction: discord.Interaction, file: discord.Attachment) -> None:
        await interaction.response.defer(thinking=True)
        data = await file.read()
        self.attachment_bytes.append(data)
        await interaction.followup.send(
            f"got {len(data)} bytes", file=discord.File(io.BytesIO(data[::-1]), "rev.bin")
        )

    @app_commands.command(name="buttons", description="Send a button")
    async def buttons(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("count: 0", view=CounterView())

    @app_commands.command(name="more", description="Send more buttons")
    async def more(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("more", view=MoreView())

    @app_commands.command(name="slow", description="Answers too late")
    async def slow(self, interaction: discord.Interaction) -> None:
        await asyncio.sleep(0.3)
        try:
            await interaction.response.send_message("late")
        except discord.HTTPException as exc:
            self.errors.append(exc)

    @app_commands.command(name="keep", description="Answers and keeps the interaction")
    async def keep(self, interaction: discord.Interaction) -> None:
        self.kept.append(interaction)
        await interaction.response.send_message("kept")

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        self.raw_reactions.append(payload)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        self.seen.append(message)


class ProbeBot(commands.Bot):
    def __init__(self, fake: FakeDiscord) -> None:
        intents = discord.Intents.default()
        intents.members = True  # exercises GUILD_MEMBERS_CHUNK (op 8) and GUILD_MEMBER_ADD
        super().__init__(command_prefix="!", intents=intents, guild_ready_timeout=0.05)
        self.fake = fake
        self.probe = Probe()

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None  # discord.py sleeps 5 s before every non-initial IDENTIFY; not against a fake

    async def setup_hook(self) -> None:
        await self.add_cog(self.probe)
        guild = discord.Object(self.fake.guild_id)
        self.tree.copy_global_to(guild=guild)
        await self.tree.sync(guild=guild)
        await self.tree.sync()


@pytest.fixture
async def fake():
    fd = FakeDiscord()
    await fd.start()
    fd.install()
    yield fd
    await fd.close()


@pytest.fixture
async def bot(fake):
    b = ProbeBot(fake)
    task = asyncio.create_task(b.start("fake-token"))
    try:
        await asyncio.wait_for(b.wait_until_ready(), 10)
    except BaseException:
        task.cancel()
        raise
    yield b
    await b.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(task, 5)
    assert fake.server_errors == []


async def _raw(fake: FakeDiscord, method: str, path: str, **kw) -> tuple[int, dict, object]:
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, fake.base_url + "/api/v10" + path, **kw) as r,
    ):
        body = await r.json(content_type=None) if r.status != 204 else None
        return r.status, dict(r.headers), body


async def test_startup_ready_guild_and_sync(fake, bot):
    assert fake.connected.is_set() and fake.identify_count == 1
    paths = [(r.method, r.path) for r in fake.requests]
    assert ("GET", "/users/@me") in paths
    assert ("GET", "/oauth2/applications/@me") in paths
    assert ("PUT", f"/applications/{fake.app_id}/guilds/{fake.guild_id}/commands") in paths
    assert ("PUT", f"/applications/{fake.app_id}/commands") in paths
    assert fake.sync_count == 2
    grp = next(c for c in fake.synced_commands[str(fake.guild_id)] if c["name"] == "grp")
    sub = grp["options"][0]
    assert sub["type"] == 1 and sub["name"] == "sub" and sub["options"][0]["type"] == 11

    guild = bot.get_guild(fake.guild_id)
    assert guild is not None and guild.get_channel(fake.channel_id).name == "general"
    alice = guild.get_member(fake.member("alice"))
    assert alice is not None and alice.guild_permissions.administrator
    assert guild.owner_id == fake.member("alice")
    assert await bot.is_owner(alice)
    assert guild.me.guild_permissions.value == ALL_PERMISSIONS

    status, headers, body = await _raw(fake, "GET", "/users/@me", headers={"Authorization": "Bot x"})
    assert status == 200 and headers["Content-Type"] == "application/json" and body["bot"] is True
    status, _, _ = await _raw(fake, "GET", "/users/@me")
    assert status == 401


async def test_slash_string_and_user_option(fake, bot):
    inter = await fake.slash("echo", text="hello", who="alice")
    msg = await inter.wait_reply()
    assert text_of(msg) == "echo: hello to alice"
    assert inter.responses[0]["type"] == 4 and msg["_via"] == "callback" and msg["type"] == 20
    assert msg["_pinged"] is False and msg["_ephemeral"] is False
    assert inter.original_message_id == int(msg["id"])
    # Discord echoes the bot's own message on the gateway
    await fake.wait_for(lambda: any(m.id == int(msg["id"]) for m in bot.probe.seen))
    assert isinstance(bot.probe.channels[0], discord.TextChannel)


async def test_group_subcommand_attachment_defer_followup(fake, bot):
    att = fake.make_attachment("anchor.png", PNG)
    assert (att["width"], att["height"], att["content_type"]) == (4, 3, "image/png")
    inter = await fake.slash("grp sub", file=att)
    msg = await inter.wait_reply()
    assert inter.responses[0]["type"] == 5
    assert bot.probe.attachment_bytes == [PNG]
    assert text_of(msg) == f"got {len(PNG)} bytes"
    # the first followup after a defer replaced the "thinking" original
    assert [m["id"] for m in inter.reply_messages()] == [msg["id"]] == [str(inter.original_message_id)]
    assert msg["_files"][0].data == PNG[::-1] and msg["attachments"][0]["filename"] == "rev.bin"
    async with aiohttp.ClientSession() as s, s.get(msg["attachments"][0]["url"]) as r:
        assert r.status == 200 and await r.read() == PNG[::-1]
    # CDN urls are signed and expire after ~24 h (fake clock)
    fake.clock.advance(25 * 3600)
    async with aiohttp.ClientSession() as s, s.get(att["url"]) as r:
        assert r.status == 404


async def test_slash_schema_errors(fake, bot):
    with pytest.raises(AssertionError, match="not in the synced"):
        await fake.slash("nope")
    with pytest.raises(AssertionError, match="no option 'bogus'"):
        await fake.slash("echo", text="x", bogus=1)
    with pytest.raises(AssertionError, match="required"):
        await fake.slash("echo")
    with pytest.raises(AssertionError, match="needs a subcommand"):
        await fake.slash("grp")
    with pytest.raises(AssertionError, match="not a subcommand"):
        await fake.slash("grp other")


async def test_permissions_hidden_and_ephemeral(fake, bot):
    bob = fake.add_member("bob")
    boss = fake.add_member("boss", permissions=DEFAULT_MEMBER_PERMS | MANAGE_GUILD)
    guild = bot.get_guild(fake.guild_id)
    await fake.wait_for(lambda: guild.get_member(bob) and guild.get_member(boss))
    assert guild.get_member(boss).guild_permissions.manage_guild
    with pytest.raises(CommandHidden):
        await fake.slash("admin", user="bob")
    inter = await fake.slash("admin", user="boss")
    msg = await inter.wait_reply()
    assert msg["_ephemeral"] and msg["flags"] & 64 and text_of(msg) == "secret"
    assert msg not in fake.channel_messages(fake.channel_id)
    assert not any(t == "MESSAGE_CREATE" and d["id"] == msg["id"] for t, d in fake.gateway_events)
    forced = await fake.slash("admin", user="bob", enforce_permissions=False)
    assert (await forced.wait_reply())["_ephemeral"]


async def test_button_view_click_updates_message(fake, bot):
    inter = await fake.slash("buttons")
    msg = await inter.wait_reply()
    mid = int(msg["id"])
    click = await fake.click(mid, "inc", user="alice")
    assert (await click.wait_response())["type"] == 7
    assert fake.messages[mid]["content"] == "count: 1" and fake.messages[mid]["_edits"] == 1
    click2 = await fake.click(mid, "inc")
    await click2.wait_response()
    assert fake.messages[mid]["content"] == "count: 2"
    assert any(t == "MESSAGE_UPDATE" and d["id"] == str(mid) for t, d in fake.gateway_events)
    with pytest.raises(AssertionError, match="no component"):
        await fake.click(mid, "missing")


async def test_reactions_both_ways(fake, bot):
    ch = bot.get_channel(fake.channel_id)
    m = await ch.send("react here")
    alice = fake.member("alice")
    await fake.react(m.id, "🔁", user="alice")
    ev = await fake.wait_for(lambda: [p for p in bot.probe.raw_reactions if p.user_id == alice])
    assert str(ev[0].emoji) == "🔁" and ev[0].member.name == "alice"
    assert ev[0].message_author_id == bot.user.id
    await m.add_reaction("✅")
    assert ("✅", fake.bot_user_id) in fake.reactions[m.id]
    # the bot receives its own reactions
    await fake.wait_for(lambda: [p for p in bot.probe.raw_reactions if p.user_id == bot.user.id])
    await m.remove_reaction("✅", bot.user)
    await m.remove_reaction("🔁", discord.Object(alice))
    assert fake.reactions[m.id] == []
    assert any(t == "MESSAGE_REACTION_REMOVE" for t, _ in fake.gateway_events)


async def test_deadline_and_double_ack(fake, bot):
    fake.response_deadline = 0.1
    await fake.slash("slow")
    errs = await fake.wait_for(lambda: bot.probe.errors)
    assert isinstance(errs[0], discord.NotFound) and errs[0].code == 10062
    fake.response_deadline = 3.0
    inter = await fake.slash("echo", text="x")
    await inter.wait_response()
    status, headers, body = await _raw(
        fake,
        "POST",
        f"/interactions/{inter.id}/{inter.token}/callback",
        json={"type": 4, "data": {"content": "again"}},
    )
    assert status == 400 and body["code"] == 40060 and headers["Content-Type"] == "application/json"


async def test_interaction_token_expires_after_15_minutes(fake, bot):
    inter = await fake.slash("keep")
    await inter.wait_reply()
    di = bot.probe.kept[0]
    first = await di.followup.send("within", wait=True)
    assert [m["content"] for m in inter.reply_messages()] == ["kept", "within"]
    assert fake.messages[first.id]["_via"] == "webhook"
    await di.edit_original_response(content="kept!")
    assert fake.messages[inter.original_message_id]["_edits"] == 1
    fake.clock.advance(901)
    with pytest.raises(discord.HTTPException) as ei:
        await di.followup.send("late")
    assert ei.value.status == 401 and ei.value.code == 50027
    with pytest.raises(discord.HTTPException):
        await di.edit_original_response(content="late edit")
    m = await bot.get_channel(fake.channel_id).send("via bot token")
    assert fake.messages[m.id]["_via"] == "channel"


async def test_rate_limit_429_is_retried(fake, bot):
    ch = bot.get_channel(fake.channel_id)
    fake.fail_next("POST", r"^/channels/\d+/messages$", retry_after=0.05)
    m = await ch.send("after 429")
    statuses = [r.status for r in fake.requests_to("POST", r"^/channels/\d+/messages$")]
    assert statuses == [429, 200] and fake.messages[m.id]["content"] == "after 429"
    inter = await fake.slash("keep")
    await inter.wait_reply()
    fake.fail_next("POST", r"^/webhooks/", retry_after=0.05)
    await bot.probe.kept[0].followup.send("followup after 429")
    assert [r.status for r in fake.requests_to("POST", r"^/webhooks/")] == [429, 200]


async def test_upload_too_large_is_413(fake, bot):
    ch = bot.get_channel(fake.channel_id)
    big = b"\0" * (fake.attachment_size_limit + 1)
    before = len(fake.messages)
    with pytest.raises(discord.HTTPException) as ei:
        await ch.send(file=discord.File(io.BytesIO(big), "big.mp4"))
    assert ei.value.status == 413 and ei.value.code == 40005
    assert len(fake.messages) == before
    m = await ch.send(file=discord.File(io.BytesIO(PNG), "a.png"))
    assert await m.attachments[0].read() == PNG
    assert m.attachments[0].content_type == "image/png" and m.attachments[0].width == 4


async def test_channel_rest_history_edit_delete_reply_mentions(fake, bot):
    ch = bot.get_channel(fake.channel_id)
    alice = fake.member("alice")
    m1 = await ch.send("one")
    m2 = await ch.send(f"<@{alice}> quiet", allowed_mentions=discord.AllowedMentions.none())
    m3 = await ch.send(f"<@{alice}> loud")
    assert fake.messages[m2.id]["_pinged"] is False and fake.messages[m2.id]["_allowed_mentions"] is not None
    assert fake.messages[m3.id]["_pinged"] is True and fake.messages[m3.id]["_allowed_mentions"] is None
    r = await m1.reply("re")
    assert fake.messages[r.id]["type"] == 19 and r.reference.message_id == m1.id
    emb = discord.Embed(title="T", description="D").add_field(name="f", value="v").set_footer(text="foot")
    e = await ch.send(embed=emb)
    assert text_of(fake.messages[e.id]) == "T\nD\nf\nv\nfoot"

    hist = [m.content async for m in ch.history(limit=3)]
    assert hist == ["", "re", f"<@{alice}> loud"]
    after = [m.content async for m in ch.history(after=m1, oldest_first=True)]
    assert after[:2] == [f"<@{alice}> quiet", f"<@{alice}> loud"]

    await m1.edit(content="one!")
    assert fake.messages[m1.id]["_edits"] == 1 and fake.messages[m1.id]["edited_timestamp"]
    await m2.delete()
    assert fake.messages[m2.id]["_deleted"] and m2.id not in [
        int(x["id"]) for x in fake.channel_messages(ch.id)
    ]
    with pytest.raises(discord.NotFound):
        await ch.fetch_message(m2.id)
    assert (await ch.fetch_message(m3.id)).content == f"<@{alice}> loud"
    events = {t for t, _ in fake.gateway_events}
    assert {"MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE"} <= events
    with pytest.raises(discord.HTTPException) as ei:
        await ch.send("x" * 2001)
    assert ei.value.code == 50035


async def test_resume_and_reidentify(fake, bot):
    await fake.reconnect()
    await fake.wait_for(lambda: fake.resume_count == 1 and fake.connected.is_set())
    assert fake.identify_count == 1
    assert (await (await fake.slash("echo", text="after resume")).wait_reply())[
        "content"
    ] == "echo: after resume"
    await fake.reconnect(resume=False)
    await fake.wait_for(lambda: fake.identify_count == 2 and fake.connected.is_set())
    await asyncio.wait_for(bot.wait_until_ready(), 5)
    assert (await (await fake.slash("echo", text="again")).wait_reply())["content"] == "echo: again"


async def test_thread_channel(fake, bot):
    tid = fake.add_thread(fake.channel_id, "shots")
    thread = await fake.wait_for(lambda: bot.get_channel(tid))
    assert isinstance(thread, discord.Thread) and thread.parent_id == fake.channel_id
    inter = await fake.slash("echo", text="in thread", channel_id=tid)
    msg = await inter.wait_reply()
    assert msg["channel_id"] == str(tid)
    assert isinstance(bot.probe.channels[-1], discord.Thread)
    m = await thread.send("bot in thread")
    assert [x["content"] for x in fake.channel_messages(tid)] == ["echo: in thread", "bot in thread"]
    assert m.channel.id == tid


async def test_unknown_routes_and_odd_input(fake, bot):
    with pytest.raises(discord.NotFound):
        await bot.http.request(discord.http.Route("GET", "/nope/{x}", x=1))
    assert fake.requests[-1].status == 404 and fake.requests[-1].path == "/nope/1"
    auth = {"Authorization": "Bot x", "Content-Type": "application/json"}
    status, _, body = await _raw(
        fake, "POST", f"/channels/{fake.channel_id}/messages", data=b"{nope", headers=auth
    )
    assert status == 400 and body["code"] == 50109
    status, _, body = await _raw(fake, "POST", f"/channels/{fake.channel_id}/messages", json={}, headers=auth)
    assert status == 400 and body["code"] == 50006
    status, _, body = await _raw(fake, "POST", "/channels/1/messages", json={"content": "x"}, headers=auth)
    assert status == 404 and body["code"] == 10003
    status, _, body = await _raw(fake, "POST", f"/webhooks/{fake.app_id}/bogus", json={"content": "x"})
    assert status == 401 and body["code"] == 50027


async def test_component_deferred_update_ephemeral_followup_and_modal(fake, bot):
    msg = await (await fake.slash("more")).wait_reply()
    mid = int(msg["id"])
    click = await fake.click(mid, "later")
    assert (await click.wait_response())["type"] == 6
    await fake.wait_for(lambda: fake.messages[mid]["content"] == "edited after defer")
    assert fake.messages[mid]["components"] == []
    eph = await click.wait_reply()
    assert text_of(eph) == "psst" and eph["_ephemeral"] and eph["_via"] == "webhook"
    with pytest.raises(AssertionError, match="no component"):
        await fake.click(mid, "ask")  # the edit removed the view


async def test_modal_and_wait_for_timeout_message(fake, bot):
    msg = await (await fake.slash("more")).wait_reply()
    click = await fake.click(int(msg["id"]), "ask")
    resp = await click.wait_response()
    assert resp["type"] == 9 and resp["data"]["title"] == "Ask"
    with pytest.raises(AssertionError, match="timed out after 0.1s") as ei:
        await fake.wait_for(lambda: False, timeout=0.1)
    assert "recent requests" in str(ei.value)
