"""Self-tests of the fake Discord (tests/fakes/discord/): a real discord.py commands.Bot against it."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands
from PIL import Image

from tests.fakes.discord import (
    ADMINISTRATOR,
    ALL_PERMISSIONS,
    ATTACH_FILES,
    DEFAULT_MEMBER_PERMS,
    MANAGE_GUILD,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    VIEW_CHANNEL,
    Button,
    CommandHidden,
    FakeDiscord,
    Faults,
    Msg,
    MsgFile,
    error_paths,
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

    @app_commands.command(name="tour", description="Uses every interaction endpoint the bot could")
    async def tour(self, interaction: discord.Interaction) -> None:
        view = discord.ui.View()
        view.add_item(discord.ui.Button(label="Docs", url="https://example.com"))
        view.add_item(discord.ui.Select(custom_id="pick", options=[discord.SelectOption(label="a")]))
        await interaction.response.defer(ephemeral=True, thinking=True)
        await interaction.edit_original_response(
            content="thinking done", embed=discord.Embed(title="t"), view=view
        )
        f = await interaction.followup.send(
            "followup",
            file=discord.File(io.BytesIO(PNG), "p.png"),
            embed=discord.Embed().set_image(url="attachment://p.png"),
            ephemeral=True,
            silent=True,
            wait=True,
        )
        await f.edit(content="followup edited", attachments=[])
        g = await interaction.followup.send("to delete", wait=True)
        await g.delete()
        await interaction.followup.send(
            "public", allowed_mentions=discord.AllowedMentions(users=True, everyone=False)
        )
        self.kept.append(interaction)

    @app_commands.command(name="whisper", description="Tells you something in a DM")
    async def whisper(self, interaction: discord.Interaction) -> None:
        try:
            await interaction.user.send("your budget: $12.34")
        except discord.Forbidden as exc:
            self.errors.append(exc)
            await interaction.response.send_message("open your DMs", ephemeral=True)
            return
        await interaction.response.send_message("sent you a DM", ephemeral=True)

    @app_commands.command(name="here", description="Only in servers")
    @app_commands.guild_only()
    async def here(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("in a server")

    @app_commands.command(name="quiet", description="Keeps the interaction and does not answer")
    async def quiet(self, interaction: discord.Interaction) -> None:
        self.kept.append(interaction)

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


AUTH = {"Authorization": "Bot x"}


async def _raw(fake: FakeDiscord, method: str, path: str, **kw) -> tuple[int, dict, object]:
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, fake.base_url + "/api/v10" + path, **kw) as r,
    ):
        body = await r.json(content_type=None) if r.status != 204 else None
        return r.status, dict(r.headers), body


# --------------------------------------------------------------------------------------------------
# the basics, through a real discord.py bot


async def test_startup_ready_guild_and_sync(fake, bot):
    assert fake.connected.is_set() and fake.identify_count == 1
    assert len(fake.requests_to("GET", "/users/@me")) == 1
    assert len(fake.requests_to("GET", "/oauth2/applications/@me")) == 1
    guild_sync = fake.requests_to("PUT", "/applications/{app}/guilds/{guild}/commands", guild=fake.guild_id)
    assert [r.status for r in guild_sync] == [200]
    assert guild_sync[0].route == "/applications/{application_id}/guilds/{guild_id}/commands"
    assert [r.status for r in fake.requests_to("PUT", "/applications/{app}/commands")] == [200]
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

    status, headers, body = await _raw(fake, "GET", "/users/@me", headers=AUTH)
    assert status == 200 and headers["Content-Type"] == "application/json" and body["bot"] is True
    status, _, _ = await _raw(fake, "GET", "/users/@me")
    assert status == 401


async def test_slash_string_and_user_option(fake, bot):
    inter = await fake.slash("echo", text="hello", who="alice")
    msg = await inter.wait_message()
    assert isinstance(msg, Msg) and msg.text == "echo: hello to alice"
    assert inter.callback_type == 4 and msg.via == "callback" and msg.raw["type"] == 20
    assert not msg.pinged and not msg.ephemeral and msg.author_id == fake.bot_user_id
    assert inter.original == msg and inter.replies == [msg] and inter.followups == []
    # Discord echoes the bot's own message on the gateway
    await fake.wait_for(lambda: any(m.id == msg.id for m in bot.probe.seen))
    assert isinstance(bot.probe.channels[0], discord.TextChannel)


async def test_group_subcommand_attachment_defer_followup(fake, bot):
    att = fake.make_attachment("anchor.png", PNG)
    assert (att["width"], att["height"], att["content_type"]) == (4, 3, "image/png")
    inter = await fake.slash("grp sub", file=att)
    msg = await inter.wait_message()
    assert inter.callback_type == 5
    assert bot.probe.attachment_bytes == [PNG]
    assert msg.text == f"got {len(PNG)} bytes"
    # the first followup after a defer replaced the "thinking" original
    assert inter.replies == [msg] and inter.original == msg and inter.followups == []
    assert not msg.loading
    assert msg.files == [MsgFile("rev.bin", PNG[::-1], "application/octet-stream")]
    async with aiohttp.ClientSession() as s, s.get(msg.raw["attachments"][0]["url"]) as r:
        assert r.status == 200 and await r.read() == PNG[::-1]
    # downloads are in the request log too
    assert [r.status for r in fake.requests_to("GET", "/attachments/{c}/{a}/{name}")] == [200, 200]
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
    msg = await inter.wait_message()
    assert msg.ephemeral and msg.flags & 64 and msg.text == "secret"
    assert msg not in fake.msgs() and msg in fake.msgs(include_ephemeral=True)
    assert not any(t == "MESSAGE_CREATE" and d["id"] == str(msg.id) for t, d in fake.gateway_events)
    forced = await fake.slash("admin", user="bob", enforce_permissions=False)
    assert (await forced.wait_message()).ephemeral


async def test_button_view_click_updates_message(fake, bot):
    msg = await (await fake.slash("buttons")).wait_message()
    assert msg.buttons == [Button("+1", "inc", 1, False)]
    click = await fake.click(msg.id, msg.button("+1").custom_id, user="alice")
    assert (await click.wait_response())["type"] == 7 and click.callback_type == 7
    assert msg.text == "count: 1" and msg.edits == 1  # a Msg reads the stored message live
    click2 = await fake.click(msg.id, "inc")
    await click2.wait_response()
    assert fake.msg(msg.id).text == "count: 2"
    assert any(t == "MESSAGE_UPDATE" and d["id"] == str(msg.id) for t, d in fake.gateway_events)
    with pytest.raises(AssertionError, match="no component"):
        await fake.click(msg.id, "missing")


async def test_reactions_both_ways(fake, bot):
    ch = bot.get_channel(fake.channel_id)
    m = await ch.send("react here")
    alice = fake.member("alice")
    await fake.react(m.id, "🔁", user="alice")
    ev = await fake.wait_for(lambda: [p for p in bot.probe.raw_reactions if p.user_id == alice])
    assert str(ev[0].emoji) == "🔁" and ev[0].member.name == "alice"
    assert ev[0].message_author_id == bot.user.id
    await m.add_reaction("✅")
    assert ("✅", fake.bot_user_id) in fake.msg(m.id).reactions
    # the bot receives its own reactions
    await fake.wait_for(lambda: [p for p in bot.probe.raw_reactions if p.user_id == bot.user.id])
    await m.remove_reaction("✅", bot.user)
    await m.remove_reaction("🔁", discord.Object(alice))
    assert fake.msg(m.id).reactions == []
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
    await inter.wait_message()
    di = bot.probe.kept[0]
    first = await di.followup.send("within", wait=True)
    assert [m.text for m in inter.replies] == ["kept", "within"]
    assert inter.followups == [fake.msg(first.id)] and fake.msg(first.id).via == "webhook"
    await di.edit_original_response(content="kept!")
    assert inter.original.edits == 1 and inter.original.text == "kept!"
    fake.clock.advance(901)
    with pytest.raises(discord.HTTPException) as ei:
        await di.followup.send("late")
    assert ei.value.status == 401 and ei.value.code == 50027
    with pytest.raises(discord.HTTPException):
        await di.edit_original_response(content="late edit")
    m = await bot.get_channel(fake.channel_id).send("via bot token")
    assert fake.msg(m.id).via == "channel"


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
    assert fake.msg(m.id).files == [MsgFile("a.png", PNG, "image/png")]


async def test_channel_rest_history_edit_delete_reply_mentions(fake, bot):
    ch = bot.get_channel(fake.channel_id)
    alice = fake.member("alice")
    m1 = await ch.send("one")
    m2 = await ch.send(f"<@{alice}> quiet", allowed_mentions=discord.AllowedMentions.none())
    m3 = await ch.send(f"<@{alice}> loud")
    assert not fake.msg(m2.id).pinged and fake.msg(m2.id).raw["_allowed_mentions"] is not None
    assert fake.msg(m3.id).pinged and fake.msg(m3.id).mentions == [alice]
    r = await m1.reply("re")
    assert fake.msg(r.id).raw["type"] == 19 and fake.msg(r.id).reference_id == m1.id
    assert r.reference.message_id == m1.id
    emb = discord.Embed(title="T", description="D").add_field(name="f", value="v").set_footer(text="foot")
    e = await ch.send(embed=emb)
    assert fake.msg(e.id).embed_text == "T\nD\nf\nv\nfoot" and fake.msg(e.id).text == ""
    assert fake.msg(e.id).footers == ["foot"]

    hist = [m.content async for m in ch.history(limit=3)]
    assert hist == ["", "re", f"<@{alice}> loud"]
    after = [m.content async for m in ch.history(after=m1, oldest_first=True)]
    assert after[:2] == [f"<@{alice}> quiet", f"<@{alice}> loud"]

    await m1.edit(content="one!")
    assert fake.msg(m1.id).edits == 1 and fake.msg(m1.id).raw["edited_timestamp"]
    await m2.delete()
    assert fake.msg(m2.id).deleted and fake.msg(m2.id) not in fake.msgs(ch.id)
    with pytest.raises(discord.NotFound):
        await ch.fetch_message(m2.id)
    assert (await ch.fetch_message(m3.id)).content == f"<@{alice}> loud"
    events = {t for t, _ in fake.gateway_events}
    assert {"MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE"} <= events
    with pytest.raises(discord.HTTPException) as ei:
        await ch.send("x" * 2001)
    assert ei.value.code == 50035 and "content" in ei.value.text


async def test_resume_and_reidentify(fake, bot):
    await fake.reconnect()
    await fake.wait_for(lambda: fake.resume_count == 1 and fake.connected.is_set())
    assert fake.identify_count == 1
    assert (await (await fake.slash("echo", text="after resume")).wait_message()).text == "echo: after resume"
    await fake.reconnect(resume=False)
    await fake.wait_for(lambda: fake.identify_count == 2 and fake.connected.is_set())
    await asyncio.wait_for(bot.wait_until_ready(), 5)
    assert (await (await fake.slash("echo", text="again")).wait_message()).text == "echo: again"


async def test_thread_channel(fake, bot):
    tid = fake.add_thread(fake.channel_id, "shots")
    thread = await fake.wait_for(lambda: bot.get_channel(tid))
    assert isinstance(thread, discord.Thread) and thread.parent_id == fake.channel_id
    inter = await fake.slash("echo", text="in thread", channel_id=tid)
    msg = await inter.wait_message()
    assert msg.channel_id == tid
    assert isinstance(bot.probe.channels[-1], discord.Thread)
    m = await thread.send("bot in thread")
    assert [x.text for x in fake.msgs(tid)] == ["echo: in thread", "bot in thread"]
    assert m.channel.id == tid


async def test_unknown_routes_and_odd_input(fake, bot):
    with pytest.raises(discord.NotFound):
        await bot.http.request(discord.http.Route("GET", "/nope/{x}", x=1))
    assert fake.requests[-1].status == 404 and fake.requests[-1].path == "/nope/1"
    assert fake.requests[-1].route is None
    auth = {**AUTH, "Content-Type": "application/json"}
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
    msg = await (await fake.slash("more")).wait_message()
    click = await fake.click(msg.id, "later")
    assert (await click.wait_response())["type"] == 6
    await fake.wait_for(lambda: msg.text == "edited after defer")
    assert msg.components == [] and msg.buttons == []
    eph = await click.wait_message()
    assert eph.text == "psst" and eph.ephemeral and eph.via == "webhook"
    assert click.original == msg and click.followups == [eph]
    with pytest.raises(AssertionError, match="no component"):
        await fake.click(msg.id, "ask")  # the edit removed the view


async def test_modal_and_wait_for_timeout_message(fake, bot):
    msg = await (await fake.slash("more")).wait_message()
    click = await fake.click(msg.id, "ask")
    resp = await click.wait_response()
    assert resp["type"] == 9 and resp["data"]["title"] == "Ask"
    with pytest.raises(AssertionError, match="timed out after 0.1s") as ei:
        await fake.wait_for(lambda: False, timeout=0.1)
    assert "recent requests" in str(ei.value)


# --------------------------------------------------------------------------------------------------
# typed views and the request log


async def test_msg_view_of_a_rich_message(fake, bot):
    ch = bot.get_channel(fake.channel_id)
    bob = fake.add_member("bob")
    view = discord.ui.View()
    view.add_item(discord.ui.Button(label="Go", custom_id="go", style=discord.ButtonStyle.success))
    view.add_item(discord.ui.Button(label="Docs", url="https://example.com/docs"))
    view.add_item(discord.ui.Button(label="Off", custom_id="off", disabled=True))
    emb = discord.Embed(title="Title", description="Body").add_field(name="k", value="v")
    emb.set_author(name="someone").set_footer(text="shot 7 · take 2")
    anchor = await ch.send("first")
    sent = await ch.send(
        f"hi <@{bob}>",
        embed=emb,
        view=view,
        file=discord.File(io.BytesIO(b"\0\0\0\x18ftypmp42"), "clip.mp4"),
        reference=anchor,
        mention_author=False,
        allowed_mentions=discord.AllowedMentions(users=[discord.Object(bob)]),
        silent=True,
    )
    m = fake.msg(sent.id)
    assert (m.id, m.channel_id, m.author_id) == (sent.id, fake.channel_id, fake.bot_user_id)
    assert m.text == f"hi <@{bob}>" and m.embed_text == "Title\nBody\nk\nv\nshot 7 · take 2"
    assert m.all_text == f"hi <@{bob}>\nTitle\nBody\nk\nv\nshot 7 · take 2"
    assert m.embeds[0]["author"]["name"] == "someone"
    assert m.files == [MsgFile("clip.mp4", b"\0\0\0\x18ftypmp42", "video/mp4")]
    assert m.buttons == [
        Button("Go", "go", 3, False),
        Button("Docs", None, 5, False, "https://example.com/docs"),
        Button("Off", "off", 2, True),
    ]
    assert m.reference_id == anchor.id and m.flags == 1 << 12 and not m.ephemeral
    assert m.pinged and m.mentions == [bob]  # bob is in allowed_mentions.users
    assert "clip.mp4" not in repr(m) and "hi" in repr(m)
    assert fake.msgs(author="bot") == [fake.msg(anchor.id), m]
    assert await fake.wait_message(lambda x: x.files) == m


async def test_what_discord_py_sends_is_accepted(fake, bot):
    """Valid traffic from discord.py 2.7.1 passes the fake's limits (no refusal, no server error)."""
    ch = bot.get_channel(fake.channel_id)
    alice = fake.member("alice")
    view = discord.ui.View()
    view.add_item(discord.ui.Button(label="A", custom_id="a"))
    view.add_item(discord.ui.Button(label="Link", url="https://example.com"))
    emb = (
        discord.Embed(title="t" * 256, description="d" * 4096, url="https://example.com", colour=3)
        .set_author(name="a" * 256, url="https://example.com")
        .set_footer(text="f" * 1390)  # 6,000 characters in all: the most Discord takes
        .set_image(url="attachment://pic.png")
        .add_field(name="n", value="v", inline=False)
    )
    m = await ch.send(
        "x" * 2000,
        embed=emb,
        view=view,
        files=[discord.File(io.BytesIO(PNG), "pic.png"), discord.File(io.BytesIO(b"1"), "n.txt")],
        silent=True,
        tts=False,
        allowed_mentions=discord.AllowedMentions(users=[discord.Object(alice)], roles=False, everyone=False),
    )
    e = await ch.send(embed=emb, file=discord.File(io.BytesIO(PNG), "pic.png"))
    assert fake.msg(e.id).embeds[0]["image"]["url"].startswith(fake.base_url)  # attachment:// resolved
    m = await m.edit(content="edited", attachments=[m.attachments[0]], view=None)
    assert [f.filename for f in fake.msg(m.id).files] == ["pic.png"]
    m = await m.edit(suppress=True)
    assert fake.msg(m.id).flags & 4
    m = await m.edit(attachments=[*m.attachments, discord.File(io.BytesIO(b"2"), "more.txt")])
    assert [f.filename for f in fake.msg(m.id).files] == ["pic.png", "more.txt"]
    r = await m.reply(f"<@{alice}>", mention_author=True)
    assert fake.msg(r.id).pinged
    await r.add_reaction("🔁")
    await ch.typing().__aenter__()
    [x async for x in ch.history(limit=100, before=r, after=m, oldest_first=True)]
    [x async for x in ch.history(limit=101, around=m)]

    inter = await fake.slash("tour")
    await fake.wait_for(lambda: bot.probe.kept, timeout=10)
    assert inter.original.text == "thinking done" and inter.original.ephemeral
    texts = [x.text for x in inter.followups]
    assert texts == ["followup edited", "to delete", "public"]
    assert inter.followups[0].files == [] and inter.followups[1].deleted
    refusals = [r for r in fake.requests if r.status is not None and r.status >= 400]
    assert refusals == []


async def test_edit_keeps_only_the_listed_attachments(fake, bot):
    """reference.mdx, Editing Message Attachments: with ``attachments`` in a PATCH only the listed
    files stay or are added; without it, uploaded files are appended."""
    m = await bot.get_channel(fake.channel_id).send("files", file=discord.File(io.BytesIO(b"a"), "a.txt"))
    kept = str(m.attachments[0].id)

    async def patch(payload: dict, *names: str) -> int:
        form = aiohttp.FormData(quote_fields=False)
        form.add_field("payload_json", json.dumps(payload), content_type="application/json")
        for i, name in enumerate(names):
            form.add_field(f"files[{i}]", io.BytesIO(name.encode()), filename=name)
        status, _, _ = await _raw(
            fake, "PATCH", f"/channels/{fake.channel_id}/messages/{m.id}", data=form, headers=AUTH
        )
        return status

    assert await patch({"attachments": [{"id": kept}]}, "unlisted.txt") == 200
    assert [f.filename for f in fake.msg(m.id).files] == ["a.txt"]
    assert await patch({}, "appended.txt") == 200
    assert [f.filename for f in fake.msg(m.id).files] == ["a.txt", "appended.txt"]
    assert await patch({"attachments": [{"id": 0}]}, "only.txt") == 200
    assert fake.msg(m.id).files == [MsgFile("only.txt", b"only.txt", "text/plain")]


async def test_request_log_counts_per_route_and_since_a_mark(fake, bot):
    ch = bot.get_channel(fake.channel_id)
    other = fake.add_text_channel("other")
    await fake.wait_for(lambda: bot.get_channel(other))
    mark = fake.mark()
    a = await ch.send("a")
    await ch.send("b")
    await bot.get_channel(other).send("c")
    await a.edit(content="a!")
    await a.add_reaction("✅")
    posts = fake.requests_to("POST", "/channels/{channel_id}/messages", since=mark)
    assert len(posts) == 3 and all(r.route == "/channels/{channel_id}/messages" for r in posts)
    assert len(fake.requests_to("POST", "/channels/{id}/messages", since=mark, channel_id=other)) == 1
    assert [r.params["message_id"] for r in fake.requests_to("PATCH", "/channels/{c}/messages/{m}")] == [
        str(a.id)
    ]
    assert len(fake.requests_to(Faults.REACT, since=mark)) == 1
    assert len(fake.requests_to("*", "/channels/{c}/messages/{m}", since=mark)) == 1  # the PATCH only
    assert fake.requests_to("POST", r"^/channels/\d+/messages$", since=mark) == posts  # regex, as before


# --------------------------------------------------------------------------------------------------
# nonce


async def test_nonce_with_enforce_nonce_answers_the_first_message_again(fake, bot):
    ch = bot.get_channel(fake.channel_id)
    first = await ch.send("clip", nonce="take-1")  # discord.py sends nonce + enforce_nonce: true
    assert fake.requests[-1].json["enforce_nonce"] is True
    again = await ch.send("clip (retry)", nonce="take-1")
    assert again.id == first.id and again.content == "clip"
    assert [m.text for m in fake.msgs()] == ["clip"]
    assert "nonce" in fake.requests[-1].note
    assert [t for t, d in fake.gateway_events if t == "MESSAGE_CREATE"] == ["MESSAGE_CREATE"]
    other = await ch.send("another", nonce="take-2")
    assert other.id != first.id
    # without enforce_nonce a nonce does not deduplicate
    status, _, body = await _raw(
        fake,
        "POST",
        f"/channels/{fake.channel_id}/messages",
        json={"content": "x", "nonce": "take-1"},
        headers=AUTH,
    )
    assert status == 200 and int(body["id"]) != first.id
    # only within the window ("the past few minutes")
    fake.clock.advance(fake.nonce_window + 1)
    late = await ch.send("clip", nonce="take-1")
    assert late.id != first.id
    with pytest.raises(discord.HTTPException) as ei:
        await ch.send("x", nonce="n" * 26)
    assert ei.value.code == 50035 and "nonce" in ei.value.text


# --------------------------------------------------------------------------------------------------
# faults


async def test_fault_store_then_fail(fake, bot):
    """Discord stored the post but answered with an error. discord.py 2.7.1 gives every send() a
    random nonce with enforce_nonce, so its own re-send after a 500 gets the stored message back;
    a 503 reaches the bot, and a second send() of its own (a new nonce) is a second message unless
    the bot passes the same nonce."""
    ch = bot.get_channel(fake.channel_id)
    rule = fake.faults.store_then_fail()  # 500: discord.py re-sends after 1 s
    m = await ch.send("clip 1")
    assert rule.hits == 1 and [x.id for x in fake.msgs()] == [m.id]
    posts = fake.requests_to("POST", "/channels/{c}/messages")
    assert [r.status for r in posts] == [500, 200] and posts[0].fault == "store_then_fail"
    assert posts[1].json["nonce"] == posts[0].json["nonce"] and "nonce" in posts[1].note

    fake.faults.store_then_fail(status=503)
    with pytest.raises(discord.DiscordServerError):
        await ch.send("clip 2")
    await ch.send("clip 2")  # the bot tries again on its own: a duplicate
    assert [x.text for x in fake.msgs()] == ["clip 1", "clip 2", "clip 2"]

    fake.faults.store_then_fail(status=503)
    with pytest.raises(discord.DiscordServerError):
        await ch.send("clip 3", nonce="take-3")
    again = await ch.send("clip 3", nonce="take-3")  # same nonce: the stored one comes back
    assert [x.id for x in fake.msgs() if x.text == "clip 3"] == [again.id]


async def test_fault_store_then_fail_with_predicate_and_dropped_connection(fake, bot):
    ch = bot.get_channel(fake.channel_id)
    rule = fake.faults.store_then_fail(when=lambda r: r.files, drop=True)
    await ch.send("text only")  # not matched
    with pytest.raises(aiohttp.ClientConnectionError):
        await ch.send("the clip", file=discord.File(io.BytesIO(b"data"), "clip.mp4"))
    assert rule.hits == 1 and rule.spent
    stored = fake.msgs()[-1]
    assert stored.text == "the clip" and stored.files[0].filename == "clip.mp4"
    assert fake.requests_to("POST", "/channels/{c}/messages")[-1].status is None  # no answer
    # the echo went out although the bot never got an answer
    assert any(t == "MESSAGE_CREATE" and d["id"] == str(stored.id) for t, d in fake.gateway_events)
    await ch.send("later", file=discord.File(io.BytesIO(b"data"), "clip.mp4"))  # rule spent


async def test_fault_5xx_on_a_route_without_storing(fake, bot):
    ch = bot.get_channel(fake.channel_id)
    m = await ch.send("original")
    rule = fake.faults.fail(Faults.EDIT, status=503)
    with pytest.raises(discord.DiscordServerError) as ei:
        await m.edit(content="changed")  # discord.py does not re-send a 503
    assert ei.value.status == 503 and rule.hits == 1
    assert fake.msg(m.id).text == "original" and fake.msg(m.id).edits == 0
    fake.faults.fail(Faults.CREATE, status=503, times=2)
    for _ in range(2):
        with pytest.raises(discord.DiscordServerError):
            await ch.send("lost")
    assert [x.text for x in fake.msgs()] == ["original"]
    fake.faults.fail(Faults.REACT, status=502)  # 502 is re-sent by discord.py after 1 s
    t0 = time.monotonic()
    await m.add_reaction("✅")
    assert time.monotonic() - t0 >= 0.9 and fake.msg(m.id).reactions == [("✅", fake.bot_user_id)]
    assert [r.status for r in fake.requests_to("PUT", "/channels/{c}/messages/{m}/reactions/{e}/@me")] == [
        502,
        204,
    ]


async def test_fault_429_per_route_and_global_with_discord_headers(fake, bot):
    ch = bot.get_channel(fake.channel_id)
    fake.faults.rate_limit(Faults.CREATE, retry_after=0.05)
    m = await ch.send("after 429")
    assert [r.status for r in fake.requests_to("POST", "/channels/{c}/messages")] == [429, 200]
    assert fake.msg(m.id).text == "after 429"

    fake.faults.rate_limit(Faults.CREATE, retry_after=0.5, bucket="abcd1234")
    status, headers, body = await _raw(
        fake, "POST", f"/channels/{fake.channel_id}/messages", json={"content": "x"}, headers=AUTH
    )
    assert status == 429 and body == {
        "message": "You are being rate limited.",
        "retry_after": 0.5,
        "global": False,
    }
    assert headers["Via"] == "1.1 google" and headers["Retry-After"] == "1"
    assert headers["X-RateLimit-Bucket"] == "abcd1234" and headers["X-RateLimit-Scope"] == "user"
    assert headers["X-RateLimit-Remaining"] == "0" and float(headers["X-RateLimit-Reset-After"]) == 0.5
    assert "X-RateLimit-Global" not in headers

    fake.faults.rate_limit(Faults.HISTORY, is_global=True, retry_after=0.05)
    status, headers, body = await _raw(fake, "GET", f"/channels/{fake.channel_id}/messages", headers=AUTH)
    assert status == 429 and body["global"] is True
    assert headers["X-RateLimit-Global"] == "true" and headers["X-RateLimit-Scope"] == "global"
    fake.faults.rate_limit(Faults.HISTORY, is_global=True, retry_after=0.05)
    assert [x.content async for x in ch.history(limit=1)] == ["after 429"]  # waited and retried

    inter = await fake.slash("keep")
    await inter.wait_message()
    fake.fail_next("POST", r"^/webhooks/", retry_after=0.05)  # the older spelling still works
    await bot.probe.kept[0].followup.send("followup after 429")
    assert [r.status for r in fake.requests_to("POST", "/webhooks/{w}/{t}")] == [429, 200]


async def test_fault_slow_route(fake, bot):
    ch = bot.get_channel(fake.channel_id)
    rule = fake.faults.slow(Faults.CREATE, 0.3, times=1)
    t0 = time.monotonic()
    await ch.send("slow")
    assert time.monotonic() - t0 >= 0.3 and rule.hits == 1
    t0 = time.monotonic()
    await ch.send("fast")
    assert time.monotonic() - t0 < 0.3


async def test_channel_permissions_attach_files_send_view_history(fake, bot):
    ch = bot.get_channel(fake.channel_id)
    guild = bot.get_guild(fake.guild_id)
    with pytest.raises(AssertionError, match="administrator"):
        fake.set_channel_permissions(fake.channel_id, "bot", deny=ATTACH_FILES)
    fake.bot_permissions = ALL_PERMISSIONS & ~ADMINISTRATOR  # overwrites do not bind administrators
    await fake.wait_for(lambda: not guild.me.guild_permissions.administrator)
    m = await ch.send("before")
    fake.set_channel_permissions(fake.channel_id, "bot", deny=ATTACH_FILES)
    await fake.wait_for(lambda: not ch.permissions_for(guild.me).attach_files)  # CHANNEL_UPDATE
    with pytest.raises(discord.Forbidden) as ei:
        await ch.send("clip", file=discord.File(io.BytesIO(b"data"), "clip.mp4"))
    assert ei.value.code == 50013
    await ch.send("a link instead")  # text is fine
    other = fake.add_text_channel("other")
    await fake.wait_for(lambda: bot.get_channel(other))
    await bot.get_channel(other).send("file elsewhere", file=discord.File(io.BytesIO(b"d"), "f.mp4"))

    fake.set_channel_permissions(fake.channel_id, "bot", deny=SEND_MESSAGES)
    with pytest.raises(discord.Forbidden) as ei:
        await ch.send("nope")
    assert ei.value.code == 50013
    assert fake.bot_channel_permissions(fake.channel_id) & ATTACH_FILES == 0  # implied by no SEND_MESSAGES

    fake.set_channel_permissions(fake.channel_id, "bot", deny=READ_MESSAGE_HISTORY)
    assert [x async for x in ch.history(limit=10)] == []  # documented: no messages, not an error
    with pytest.raises(discord.Forbidden):
        await ch.fetch_message(m.id)

    fake.set_channel_permissions(fake.channel_id, "everyone", deny=VIEW_CHANNEL)
    fake.set_channel_permissions(fake.channel_id, "bot")  # remove the bot's own overwrite
    with pytest.raises(discord.Forbidden) as ei:
        await ch.send("hidden")
    assert ei.value.code == 50001
    with pytest.raises(discord.Forbidden) as ei:  # its own message too
        await ch.get_partial_message(m.id).edit(content="edited unseen")
    assert ei.value.code == 50001
    fake.set_channel_permissions(fake.channel_id, "everyone")
    await ch.send("visible again")
    # interactions carry the bot's permissions in the channel
    fake.set_channel_permissions(fake.channel_id, "bot", deny=ATTACH_FILES)
    inter = await fake.slash("echo", text="perm")
    assert int(inter.payload["app_permissions"]) & ATTACH_FILES == 0


async def test_busy_channel_buries_a_post_and_history_pages_exactly(fake, bot):
    ch = bot.get_channel(fake.channel_id)
    progress = await ch.send("progress")
    clip = await ch.send("clip")
    chatter = await fake.faults.busy_channel(count=250, after=progress.id, dispatch=False)
    assert len(chatter) == 250 and {m.author_id for m in chatter} == {
        fake.member(n) for n in ("carol", "dave", "erin")
    }
    newest_200 = [m.id async for m in ch.history(limit=200, after=progress, oldest_first=False)]
    assert clip.id not in newest_200 and len(newest_200) == 200
    first_after = [m.id async for m in ch.history(limit=1, after=progress)]
    assert first_after == [clip.id]
    assert [m.id async for m in ch.history(limit=None, after=progress)][:2] == [clip.id, chatter[0].id]

    ids = [m.id for m in fake.msgs()]  # oldest first: progress, clip, 250 chatter

    async def page(**query) -> list[int]:
        status, _, body = await _raw(
            fake, "GET", f"/channels/{fake.channel_id}/messages", params=query, headers=AUTH
        )
        assert status == 200, body
        return [int(x["id"]) for x in body]

    assert await page() == ids[::-1][:50]  # default limit 50, newest first
    assert await page(limit=100) == ids[::-1][:100]
    assert await page(after=ids[0], limit=3) == [ids[3], ids[2], ids[1]]  # right after, newest first
    assert await page(before=ids[10], limit=3) == [ids[9], ids[8], ids[7]]
    assert await page(around=ids[10], limit=5) == [ids[12], ids[11], ids[10], ids[9], ids[8]]
    assert await page(around=ids[10], limit=1) == [ids[10]]
    for bad in ({"limit": 0}, {"limit": 101}, {"limit": "x"}, {"before": ids[5], "after": ids[1]}):
        status, _, body = await _raw(
            fake, "GET", f"/channels/{fake.channel_id}/messages", params=bad, headers=AUTH
        )
        assert status == 400 and body["code"] == 50035, bad


async def test_dms_both_ways(fake, bot):
    alice = fake.member("alice")
    reply = await (await fake.slash("whisper")).wait_message()
    assert reply.ephemeral and reply.text == "sent you a DM"
    dm = fake.dm_channel("alice")
    [secret] = fake.msgs(dm)
    assert secret.text == "your budget: $12.34" and secret.channel_id == dm and not secret.ephemeral
    assert len(fake.requests_to("POST", "/users/@me/channels")) == 1
    assert all("$" not in m.all_text for m in fake.msgs())  # nothing in the server channel

    # a command in the DM: only global commands whose contexts allow BOT_DM are offered
    inter = await fake.slash("echo", text="psst", dm=True)
    answer = await inter.wait_message()
    assert answer.channel_id == dm and answer.text == "echo: psst"
    assert "guild_id" not in inter.payload and inter.payload["user"]["id"] == str(alice)
    assert isinstance(bot.probe.channels[-1], discord.DMChannel)
    with pytest.raises(CommandHidden):
        await fake.slash("here", dm=True)
    forced = await fake.slash("here", dm=True, enforce_permissions=False)
    assert forced.payload["context"] == 1

    # members write and react in their DM; the bot hears both
    m = await fake.post_as("alice", "hello in private", channel_id=dm)
    seen = await fake.wait_for(lambda: [x for x in bot.probe.seen if x.id == m.id])
    assert isinstance(seen[0].channel, discord.DMChannel) and seen[0].guild is None
    await fake.react(secret.id, "👍", user="alice")
    ev = await fake.wait_for(lambda: [p for p in bot.probe.raw_reactions if p.message_id == secret.id])
    assert ev[0].guild_id is None and ev[0].user_id == alice
    bob = fake.add_member("bob")
    with pytest.raises(AssertionError):
        await fake.react(secret.id, user="bob")

    # a member who does not take DMs
    fake.close_dms("bob")
    await fake.wait_for(lambda: bot.get_guild(fake.guild_id).get_member(bob))
    reply = await (await fake.slash("whisper", user="bob")).wait_message()
    assert reply.text == "open your DMs" and bot.probe.errors[-1].code == 50007
    assert fake.msgs(fake.dm_channel("bob")) == []


async def test_member_posts_are_echoed_to_the_bot(fake, bot):
    m = await fake.post_as("alice", "hello bot")
    assert m.author_id == fake.member("alice") and m.via == "user"
    seen = await fake.wait_for(lambda: [x for x in bot.probe.seen if x.id == m.id])
    assert seen[0].author.name == "alice" and seen[0].content == "hello bot"


# --------------------------------------------------------------------------------------------------
# interaction rules


async def test_callback_rules_per_interaction_type(fake, bot):
    async def callback(inter, body, *, with_response=True):
        query = "?with_response=1" if with_response else ""
        return await _raw(fake, "POST", f"/interactions/{inter.id}/{inter.token}/callback{query}", json=body)

    inter = await fake.slash("quiet")
    await fake.wait_for(lambda: bot.probe.kept)
    for body, path in [
        ({"type": 6}, "type"),  # DEFERRED_UPDATE_MESSAGE only for components
        ({"type": 7, "data": {"content": "x"}}, "type"),
        ({"type": 8, "data": {"choices": []}}, "type"),  # autocomplete only
        ({"type": 11}, "type"),
        ({"type": 5, "data": {"flags": 1 << 2}}, "flags"),  # defer takes only EPHEMERAL
        ({"type": 4, "data": {"content": "x" * 2001}}, "content"),
        ({"type": 4, "data": {"content": "x", "flags": 1 << 7}}, "flags"),
    ]:
        status, _, err = await callback(inter, body)
        assert status == 400 and err["code"] == 50035 and any(p.startswith(path) for p in error_paths(err)), (
            body,
            err,
        )
    status, _, err = await callback(inter, {"type": 4, "data": {}})
    assert status == 400 and err["code"] == 50006
    assert not inter.acknowledged  # refusals do not acknowledge
    status, _, _ = await callback(inter, {"type": 5, "data": {"flags": 64}}, with_response=False)
    assert status == 204 and inter.callback_type == 5 and inter.original.loading and inter.original.ephemeral

    webhook = f"/webhooks/{fake.app_id}/{inter.token}"
    for body, query in [({"content": "x", "username": "me"}, ""), ({"content": "x"}, "?thread_id=1")]:
        status, _, err = await _raw(fake, "POST", webhook + query, json=body)
        assert status == 400 and err["code"] == 50035, (body, query)
    status, _, err = await _raw(fake, "POST", webhook, json={"content": "x", "flags": 1 << 12 | 64})
    assert status == 200  # followup flags: SUPPRESS_NOTIFICATIONS and EPHEMERAL are fine
    assert inter.original.text == "x" and not inter.original.loading  # filled the "thinking" message
    status, _, err = await _raw(fake, "PATCH", webhook + "/messages/@original", json={"flags": 1 << 12})
    assert status == 400 and "flags: MESSAGE_FLAGS_INVALID" in error_paths(err)
