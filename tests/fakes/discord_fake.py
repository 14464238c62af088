"""A small fake Discord (REST + gateway + CDN) that an unmodified discord.py 2.7.1 ``Bot`` talks to.

One aiohttp server on 127.0.0.1 (random port) serves:

* REST under ``/api/v10`` (bot-token routes, interaction callbacks, interaction webhooks),
* the gateway websocket at ``/`` (plain JSON text frames),
* a CDN for attachment bytes at ``/attachments/...`` (and ``/media/attachments/...`` for proxy urls).

Usage::

    fake = FakeDiscord()
    await fake.start()
    fake.install()                      # points discord.py at the fake (call before bot.start())
    ... start a commands.Bot(..., guild_ready_timeout=0.05) with any token ...
    await fake.wait_for(lambda: fake.connected.is_set())
    inter = await fake.slash("anchor set", image=fake.make_attachment("a.png", png_bytes))
    msg = await inter.wait_reply()
    ...
    await bot.close(); await fake.close()

Behaviour follows Discord's (deadlines, token expiry, upload limits, 429s with ``Via``, gateway echo of
the bot's own messages and reactions); see the module docstrings of the handlers for the details.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as _dt
import hashlib
import inspect
import io
import json
import logging
import mimetypes
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import yarl
from aiohttp import WSMsgType, web

__all__ = [
    "ADD_REACTIONS",
    "ADMINISTRATOR",
    "ALL_PERMISSIONS",
    "ATTACH_FILES",
    "DEFAULT_MEMBER_PERMS",
    "EMBED_LINKS",
    "MANAGE_GUILD",
    "MANAGE_MESSAGES",
    "MENTION_EVERYONE",
    "READ_MESSAGE_HISTORY",
    "SEND_MESSAGES",
    "SEND_MESSAGES_IN_THREADS",
    "USE_APPLICATION_COMMANDS",
    "VIEW_CHANNEL",
    "CapturedFile",
    "CapturedRequest",
    "CommandHidden",
    "FakeClock",
    "FakeDiscord",
    "FakeInteraction",
    "text_of",
]

log = logging.getLogger("tests.fakes.discord_fake")

# --------------------------------------------------------------------------------------------------
# permission bits (https://discord.com/developers/docs/topics/permissions)
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38
# discord.Permissions.all().value in discord.py 2.7.1
ALL_PERMISSIONS = 8866461766385663

DEFAULT_MEMBER_PERMS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | READ_MESSAGE_HISTORY
    | ADD_REACTIONS
    | USE_APPLICATION_COMMANDS
    | ATTACH_FILES
    | EMBED_LINKS
)

# gateway intents
_INTENT_GUILDS = 1 << 0
_INTENT_GUILD_MEMBERS = 1 << 1
_INTENT_GUILD_MESSAGES = 1 << 9
_INTENT_GUILD_MESSAGE_REACTIONS = 1 << 10

_EVENT_INTENTS = {
    "CHANNEL_CREATE": _INTENT_GUILDS,
    "THREAD_CREATE": _INTENT_GUILDS,
    "GUILD_MEMBER_ADD": _INTENT_GUILD_MEMBERS,
    "MESSAGE_CREATE": _INTENT_GUILD_MESSAGES,
    "MESSAGE_UPDATE": _INTENT_GUILD_MESSAGES,
    "MESSAGE_DELETE": _INTENT_GUILD_MESSAGES,
    "MESSAGE_REACTION_ADD": _INTENT_GUILD_MESSAGE_REACTIONS,
    "MESSAGE_REACTION_REMOVE": _INTENT_GUILD_MESSAGE_REACTIONS,
    "MESSAGE_REACTION_REMOVE_ALL": _INTENT_GUILD_MESSAGE_REACTIONS,
}

# message flags
_FLAG_SUPPRESS_EMBEDS = 1 << 2
_FLAG_EPHEMERAL = 1 << 6
_FLAG_LOADING = 1 << 7
_FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
_FLAG_COMPONENTS_V2 = 1 << 15
_SETTABLE_FLAGS = _FLAG_SUPPRESS_EMBEDS | _FLAG_SUPPRESS_NOTIFICATIONS | _FLAG_COMPONENTS_V2

_DISCORD_EPOCH_MS = 1420070400000
_MIB = 1024 * 1024
_MAX_BODY = 25 * _MIB
_INTERACTION_TOKEN_TTL = 900.0
_CDN_URL_TTL = 24 * 3600.0

# application command option types
_OPT_SUB_COMMAND = 1
_OPT_SUB_COMMAND_GROUP = 2
_OPT_STRING = 3
_OPT_INTEGER = 4
_OPT_BOOLEAN = 5
_OPT_USER = 6
_OPT_CHANNEL = 7
_OPT_ROLE = 8
_OPT_MENTIONABLE = 9
_OPT_NUMBER = 10
_OPT_ATTACHMENT = 11

_NAME_RE = re.compile(r"^[-_'\w]{1,32}$")


# --------------------------------------------------------------------------------------------------
# small public types


class CommandHidden(Exception):  # noqa: N818 - name fixed by the API the tests use
    """Discord would not offer this command to this member (missing default_member_permissions)."""


@dataclass
class CapturedFile:
    filename: str
    data: bytes
    content_type: str | None = (
        None  # guessed from the filename like Discord does (discord.py sends octet-stream)
    )
    field_name: str = field(default="", compare=False, repr=False)  # multipart field, e.g. "files[0]"


@dataclass
class CapturedRequest:
    method: str
    path: str  # decoded, without /api/v10
    query: dict[str, str]
    json: Any = None
    files: list[CapturedFile] = field(default_factory=list)
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # set when the fake itself choked on the request (-> 400)

    def __repr__(self) -> str:
        return f"<{self.method} {self.path} -> {self.status}>"


class FakeClock:
    """Wall clock for the fake: real time plus an offset that ``advance`` moves forward.

    Interaction tokens (15 min) and CDN url expiry (24 h) are judged against this clock; snowflakes and
    timestamps are made from it too, so discord.py's ``created_at`` values follow it.
    """

    def __init__(self) -> None:
        self._offset = 0.0

    def now(self) -> float:
        return time.time() + self._offset

    def now_dt(self) -> _dt.datetime:
        return _dt.datetime.fromtimestamp(self.now(), _dt.UTC)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("FakeClock only moves forward")
        self._offset += seconds


class _ApiError(Exception):
    def __init__(self, status: int, code: int, message: str, errors: dict | None = None):
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.body: dict[str, Any] = {"code": code, "message": message}
        if errors is not None:
            self.body["errors"] = errors


def _form_error(path: str, code: str, message: str) -> _ApiError:
    """400 Invalid Form Body with Discord's nested ``errors`` shape (path like "embeds.0.title")."""
    errors: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(path.split(".")):
        errors = {part: errors}
    return _ApiError(400, 50035, "Invalid Form Body", errors)


def text_of(msg: dict | None) -> str:
    """Content + embed titles/descriptions/field names+values/footers, joined by newlines."""
    if not msg:
        return ""
    parts: list[str] = []
    if msg.get("content"):
        parts.append(msg["content"])
    for emb in msg.get("embeds") or []:
        for key in ("title", "description"):
            if emb.get(key):
                parts.append(str(emb[key]))
        for fld in emb.get("fields") or []:
            parts.append(str(fld.get("name", "")))
            parts.append(str(fld.get("value", "")))
        footer = emb.get("footer") or {}
        if footer.get("text"):
            parts.append(str(footer["text"]))
    return "\n".join(parts)


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).isoformat()


def _json_response(status: int, obj: Any, headers: dict[str, str] | None = None) -> web.Response:
    # Content-Type must be exactly application/json: discord.py compares it verbatim.
    hdrs = {"Content-Type": "application/json"}
    if headers:
        hdrs.update(headers)
    return web.Response(status=status, body=json.dumps(obj).encode(), headers=hdrs)


def _image_dims(data: bytes) -> tuple[int | None, int | None]:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            return im.width, im.height
    except Exception:  # not an image, or PIL missing
        return None, None


def _guess_type(filename: str, sent: str | None) -> str | None:
    guessed, _ = mimetypes.guess_type(filename)
    if guessed:
        return guessed
    if sent and sent != "application/octet-stream":
        return sent
    return sent


def _find_component(components: list[dict], custom_id: str) -> dict | None:
    for comp in components or []:
        if comp.get("custom_id") == custom_id:
            return comp
        for key in ("components", "accessory"):
            inner = comp.get(key)
            if isinstance(inner, dict):
                inner = [inner]
            if isinstance(inner, list):
                found = _find_component(inner, custom_id)
                if found is not None:
                    return found
    return None


# --------------------------------------------------------------------------------------------------


class FakeInteraction:
    """One interaction the fake dispatched, and everything the bot did with it."""

    def __init__(
        self,
        fake: FakeDiscord,
        *,
        id: int,
        token: str,
        type: int,
        user_id: int,
        channel_id: int,
        payload: dict,
        command: str | None = None,
        message_id: int | None = None,
    ) -> None:
        self._fake = fake
        self.id = id
        self.token = token
        self.type = type
        self.user_id = user_id
        self.channel_id = channel_id
        self.payload = payload
        self.command = command
        self.message_id = message_id  # component interactions: the message clicked
        self.created_at: float = fake.clock.now()
        self.dispatched_at: float | None = None  # time.monotonic() when the gateway frame went out
        self.responses: list[dict] = []
        self.response_type: int | None = None
        self.original_message_id: int | None = None
        self._message_ids: list[int] = []
        self._thinking_pending = False  # type-5 defer: the next followup fills the original

    def __repr__(self) -> str:
        return (
            f"<FakeInteraction {self.command or self.payload.get('data', {}).get('custom_id')} id={self.id}>"
        )

    @property
    def acknowledged(self) -> bool:
        return self.response_type is not None

    async def wait_response(self, timeout: float = 5.0) -> dict:
        return await self._fake.wait_for(
            lambda: self.responses[0] if self.responses else None,
            timeout,
            what=f"a callback for {self!r}",
        )

    def reply_messages(self) -> list[dict]:
        """Messages created for this interaction (callback 4, the type-5 original, followups), in order."""
        return [self._fake.messages[mid] for mid in self._message_ids]

    async def wait_reply(self, predicate: Callable[[dict], Any] | None = None, timeout: float = 10.0) -> dict:
        def probe() -> dict | None:
            for msg in self.reply_messages():
                if msg["flags"] & _FLAG_LOADING:
                    continue  # still "thinking"
                if not (
                    msg.get("content") or msg.get("embeds") or msg.get("attachments") or msg.get("components")
                ):
                    continue
                if predicate is None or predicate(msg):
                    return msg
            return None

        return await self._fake.wait_for(probe, timeout, what=f"a reply to {self!r}")


# --------------------------------------------------------------------------------------------------


class FakeDiscord:
    def __init__(self, *, app_id: int = 1000000000000000001, guild_id: int = 1574537586855116802) -> None:
        self.app_id = app_id
        self.bot_user_id = app_id
        self.guild_id = guild_id
        self.clock = FakeClock()
        self.bot_permissions: int = ALL_PERMISSIONS
        self.attachment_size_limit: int = 10 * _MIB
        self.response_deadline: float = 3.0  # seconds of REAL time for the first callback
        self.resume_ok: bool = True  # False: answer the next RESUMEs with INVALID_SESSION(false)

        self.requests: list[CapturedRequest] = []
        self.messages: dict[int, dict] = {}
        self.reactions: dict[int, list[tuple[str, int]]] = {}
        self.synced_commands: dict[str, list[dict]] = {}
        self.sync_count = 0
        self.identify_count = 0
        self.resume_count = 0
        self.heartbeat_count = 0
        self.connected = asyncio.Event()
        self.interactions: dict[int, FakeInteraction] = {}
        self.gateway_events: list[tuple[str, dict]] = []  # every dispatch actually sent (t, d)
        self.cdn_requests: list[tuple[str, int]] = []  # (path, status)
        self.server_errors: list[str] = []  # internal errors of the fake (should stay empty)
        self.identify_payload: dict | None = None

        self.base_url = ""
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._fail_rules: list[dict] = []
        self._last_snowflake = 0
        self._interactions_by_token: dict[str, FakeInteraction] = {}
        self._blobs: dict[int, tuple[bytes, str | None, float]] = {}
        self._command_ids: dict[tuple[str, str, int], int] = {}
        self._saved_install: tuple[Any, Any] | None = None
        self._tasks: set[asyncio.Task] = set()

        # gateway session
        self._ws: web.WebSocketResponse | None = None
        self._ws_ready = False
        self._session_id: str | None = None
        self._seq = 0
        self._event_log: list[dict] = []
        self._send_lock = asyncio.Lock()
        self._intents = 0

        # guild state
        self.guild_name = "Test Guild"
        self._users: dict[int, dict] = {}
        self._members: dict[int, dict] = {}
        self._roles: dict[int, dict] = {}
        self._channels: dict[int, dict] = {}
        self._username_ids: dict[str, int] = {}
        self._created = self.clock.now()

        self._roles[guild_id] = self._role_obj(guild_id, "@everyone", 0, position=0)
        bot_role = self._snowflake()
        self._bot_role_id = bot_role
        self._roles[bot_role] = self._role_obj(
            bot_role, "testbot", 0, position=1, managed=True, tags={"bot_id": str(app_id)}
        )
        self._add_user(app_id, "testbot", bot=True)
        self._members[app_id] = self._member_state([bot_role], ALL_PERMISSIONS)
        admin_role = self._snowflake()
        self._roles[admin_role] = self._role_obj(admin_role, "admin", ADMINISTRATOR, position=2)
        member_role = self._snowflake()
        self._member_role_id = member_role
        self._roles[member_role] = self._role_obj(member_role, "member", DEFAULT_MEMBER_PERMS, position=1)
        alice = self._snowflake()
        self._add_user(alice, "alice", global_name="Alice")
        self._members[alice] = self._member_state([admin_role], ALL_PERMISSIONS)
        self.owner_id = alice
        self.channel_id = self._new_text_channel("general")

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        app = web.Application(client_max_size=256 * _MIB)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest_entry)
        app.router.add_route("GET", "/attachments/{tail:.*}", self._cdn_entry)
        app.router.add_route("GET", "/media/attachments/{tail:.*}", self._cdn_entry)
        app.router.add_route("GET", "/", self._ws_entry)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[union-attr]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{self.port}"
        log.info("fake discord on %s", self.base_url)

    async def close(self) -> None:
        ws = self._ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                await ws.close(code=1001, message=b"fake closing")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.uninstall()

    def install(self) -> None:
        """Point discord.py at the fake (class attributes; call before login/start)."""
        if not self.port:
            raise RuntimeError("call await fake.start() before fake.install()")
        import discord.gateway
        import discord.http

        if self._saved_install is None:
            self._saved_install = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
        discord.http.Route.BASE = self.base_url + "/api/v10"
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(f"ws://127.0.0.1:{self.port}/")

    def uninstall(self) -> None:
        if self._saved_install is None:
            return
        import discord.gateway
        import discord.http

        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = self._saved_install
        self._saved_install = None

    # ------------------------------------------------------------------ ids / objects

    def _snowflake(self) -> int:
        ms = int(self.clock.now() * 1000) - _DISCORD_EPOCH_MS
        sf = max(ms << 22, self._last_snowflake + 1)
        self._last_snowflake = sf
        return sf

    def _role_obj(
        self,
        rid: int,
        name: str,
        perms: int,
        *,
        position: int,
        managed: bool = False,
        tags: dict | None = None,
    ) -> dict:
        role = {
            "id": str(rid),
            "name": name,
            "permissions": str(perms),
            "position": position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": managed,
            "mentionable": False,
            "flags": 0,
            "icon": None,
            "unicode_emoji": None,
        }
        if tags:
            role["tags"] = tags
        return role

    def _add_user(
        self, uid: int, username: str, *, bot: bool = False, global_name: str | None = None
    ) -> None:
        user: dict[str, Any] = {
            "id": str(uid),
            "username": username,
            "discriminator": "0",
            "global_name": global_name,
            "avatar": None,
            "bot": bot,
            "public_flags": 0,
        }
        if bot:
            user.update({"flags": 0, "verified": True, "mfa_enabled": False})
        self._users[uid] = user
        self._username_ids[username] = uid

    def _member_state(self, roles: list[int], perms: int) -> dict:
        return {"roles": roles, "perms": perms, "joined_at": _iso(self.clock.now())}

    def _new_text_channel(self, name: str) -> int:
        cid = self._snowflake()
        self._channels[cid] = {
            "id": str(cid),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": name,
            "position": sum(1 for c in self._channels.values() if c["type"] == 0),
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }
        return cid

    def _user_id(self, user: str | int) -> int:
        if isinstance(user, int):
            if user not in self._users:
                raise AssertionError(f"unknown user id {user}; known: {sorted(self._username_ids)}")
            return user
        try:
            return self._username_ids[user]
        except KeyError:
            raise AssertionError(f"unknown user {user!r}; known: {sorted(self._username_ids)}") from None

    def member_permissions(self, uid: int) -> int:
        """The member's guild-level permissions as Discord computes them (owner/admin -> all)."""
        if uid == self.owner_id:
            return ALL_PERMISSIONS
        if uid == self.bot_user_id:
            perms = self.bot_permissions
        else:
            perms = int(self._roles[self.guild_id]["permissions"])
            for rid in self._members[uid]["roles"]:
                perms |= int(self._roles[rid]["permissions"])
        return ALL_PERMISSIONS if perms & ADMINISTRATOR else perms

    def _app_permissions(self) -> int:
        return ALL_PERMISSIONS if self.bot_permissions & ADMINISTRATOR else self.bot_permissions

    def _bot_has(self, perm: int) -> bool:
        bp = self.bot_permissions
        return bool(bp & ADMINISTRATOR) or (bp & perm) == perm

    def _roles_payload(self) -> list[dict]:
        out = []
        for rid, role in self._roles.items():
            role = dict(role)
            if rid == self._bot_role_id:
                role["permissions"] = str(self.bot_permissions)
            out.append(role)
        return out

    def _member_obj(self, uid: int, *, with_user: bool = True, with_permissions: bool = False) -> dict:
        st = self._members[uid]
        m: dict[str, Any] = {
            "roles": [str(r) for r in st["roles"]],
            "joined_at": st["joined_at"],
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "nick": None,
            "avatar": None,
            "banner": None,
            "communication_disabled_until": None,
            "premium_since": None,
        }
        if with_user:
            m["user"] = self._users[uid]
        if with_permissions:
            m["permissions"] = str(self.member_permissions(uid))
        return m

    def _guild_obj(self, *, full: bool) -> dict:
        g: dict[str, Any] = {
            "id": str(self.guild_id),
            "name": self.guild_name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": self._roles_payload(),
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": None,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "max_members": 500000,
        }
        if full:
            g.update(
                {
                    "unavailable": False,
                    "member_count": len(self._members),
                    "large": False,
                    "joined_at": _iso(self._created),
                    "channels": [c for c in self._channels.values() if c["type"] != 11],
                    "threads": [c for c in self._channels.values() if c["type"] == 11],
                    "members": [self._member_obj(uid) for uid in self._members],
                    "voice_states": [],
                    "presences": [],
                    "stage_instances": [],
                    "guild_scheduled_events": [],
                    "soundboard_sounds": [],
                }
            )
        return g

    # ------------------------------------------------------------------ public guild helpers

    @property
    def guild_filesize_limit(self) -> int:
        return self.attachment_size_limit

    @guild_filesize_limit.setter
    def guild_filesize_limit(self, value: int) -> None:
        self.attachment_size_limit = value

    def member(self, name: str) -> int:
        return self._user_id(name)

    def add_member(self, username: str, *, permissions: int = DEFAULT_MEMBER_PERMS, bot: bool = False) -> int:
        if username in self._username_ids:
            raise AssertionError(f"user {username!r} already exists")
        uid = self._snowflake()
        self._add_user(uid, username, bot=bot)
        if permissions == DEFAULT_MEMBER_PERMS:
            roles = [self._member_role_id]
        else:
            rid = self._snowflake()
            self._roles[rid] = self._role_obj(rid, f"perms-{username}", permissions, position=1)
            roles = [rid]
        self._members[uid] = self._member_state(roles, permissions)
        if self._session_id is not None:
            if len(roles) == 1 and roles[0] != self._member_role_id:
                self._spawn(
                    self._dispatch(
                        "GUILD_ROLE_CREATE", {"guild_id": str(self.guild_id), "role": self._roles[roles[0]]}
                    )
                )
            d = self._member_obj(uid)
            d["guild_id"] = str(self.guild_id)
            self._spawn(self._dispatch("GUILD_MEMBER_ADD", d))
        return uid

    def add_text_channel(self, name: str) -> int:
        cid = self._new_text_channel(name)
        if self._session_id is not None:
            self._spawn(self._dispatch("CHANNEL_CREATE", dict(self._channels[cid])))
        return cid

    def add_thread(self, parent_id: int, name: str) -> int:
        parent = self._channels.get(parent_id)
        if parent is None or parent["type"] != 0:
            raise AssertionError(f"thread parent {parent_id} is not a text channel")
        tid = self._snowflake()
        now = _iso(self.clock.now())
        self._channels[tid] = {
            "id": str(tid),
            "type": 11,
            "guild_id": str(self.guild_id),
            "parent_id": str(parent_id),
            "name": name,
            "owner_id": str(self.owner_id),
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "rate_limit_per_user": 0,
            "flags": 0,
            "last_message_id": None,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": now,
                "locked": False,
                "invitable": True,
                "create_timestamp": now,
            },
        }
        if self._session_id is not None:
            d = dict(self._channels[tid])
            d["newly_created"] = True
            self._spawn(self._dispatch("THREAD_CREATE", d))
        return tid

    # ------------------------------------------------------------------ attachments / CDN

    def _cdn_url(self, channel_id: int, att_id: int, filename: str, *, proxy: bool = False) -> str:
        now = self.clock.now()
        ex = int(now + _CDN_URL_TTL)
        hm = hashlib.sha256(f"{att_id}:{ex}".encode()).hexdigest()[:32]
        prefix = "/media/attachments" if proxy else "/attachments"
        return (
            f"{self.base_url}{prefix}/{channel_id}/{att_id}/{quote(filename)}"
            f"?ex={ex:08x}&is={int(now):08x}&hm={hm}&"
        )

    def _register_blob(self, att_id: int, data: bytes, content_type: str | None) -> None:
        self._blobs[att_id] = (data, content_type, self.clock.now() + _CDN_URL_TTL)

    def make_attachment(
        self,
        filename: str,
        data: bytes,
        *,
        content_type: str | None = None,
        declared_size: int | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> dict:
        att_id = self._snowflake()
        ctype = content_type or _guess_type(filename, None)
        if width is None and height is None and (ctype or "").startswith("image/"):
            width, height = _image_dims(data)
        self._register_blob(att_id, data, ctype)
        att: dict[str, Any] = {
            "id": str(att_id),
            "filename": filename,
            "size": declared_size if declared_size is not None else len(data),
            "url": self._cdn_url(self.channel_id, att_id, filename),
            "proxy_url": self._cdn_url(self.channel_id, att_id, filename, proxy=True),
            "content_type": ctype,
            "ephemeral": True,
        }
        if width is not None:
            att["width"] = width
        if height is not None:
            att["height"] = height
        return att

    async def _cdn_entry(self, request: web.Request) -> web.Response:
        path = request.path
        try:
            parts = path.split("/")
            att_id = int(parts[-2])
            data, ctype, _expires = self._blobs[att_id]
            ex = int(request.query.get("ex", "0"), 16)
            if ex and ex < self.clock.now():
                self.cdn_requests.append((path, 404))
                return web.Response(status=404, text="This content is no longer available.")
        except (ValueError, KeyError, IndexError):
            self.cdn_requests.append((path, 404))
            return web.Response(status=404, text="Not Found")
        self.cdn_requests.append((path, 200))
        return web.Response(
            status=200, body=data, headers={"Content-Type": ctype or "application/octet-stream"}
        )

    # ------------------------------------------------------------------ gateway

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_ws(self, ws: web.WebSocketResponse, payload: dict) -> None:
        try:
            await ws.send_str(json.dumps(payload))
        except Exception as exc:  # connection went away under us
            log.debug("gateway send failed: %r", exc)

    async def _dispatch(self, t: str, d: dict) -> None:
        """Send a DISPATCH (op 0). Buffered for RESUME while the session lives but no socket is up."""
        need = _EVENT_INTENTS.get(t)
        if need and not (self._intents & need):
            log.debug("not dispatching %s: intent %s not identified", t, need)
            return
        async with self._send_lock:
            if self._session_id is None:
                log.debug("no gateway session; dropping %s", t)
                return
            self._seq += 1
            payload = {"op": 0, "t": t, "s": self._seq, "d": d}
            self._event_log.append(payload)
            ws = self._ws
            if ws is not None and self._ws_ready and not ws.closed:
                await self._send_ws(ws, payload)
                self.gateway_events.append((t, d))

    async def reconnect(self, *, resume: bool = True) -> None:
        """Ask the client to reconnect (op 7). With resume=False the following RESUME is refused
        (INVALID_SESSION false) so the client identifies again."""
        if not resume:
            self.resume_ok = False
        ws = self._ws
        if ws is None:
            raise AssertionError("no gateway connection")
        self.connected.clear()
        await self._send_ws(ws, {"op": 7, "d": None, "s": None, "t": None})

    async def _ws_entry(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return _json_response(404, {"code": 0, "message": "404: Not Found"})
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        old = self._ws
        if old is not None and not old.closed:
            with contextlib.suppress(Exception):
                await old.close(code=4000)
        self._ws = ws
        self._ws_ready = False
        await self._send_ws(ws, {"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None})
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    try:
                        await self._on_gateway_frame(ws, json.loads(msg.data))
                    except Exception as exc:
                        log.exception("fake gateway choked on %r", msg.data)
                        self.server_errors.append(f"gateway: {exc!r}")
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            if self._ws is ws:
                self._ws = None
                self._ws_ready = False
                self.connected.clear()
        return ws

    async def _on_gateway_frame(self, ws: web.WebSocketResponse, msg: dict) -> None:
        op = msg.get("op")
        d = msg.get("d")
        if op == 1:
            self.heartbeat_count += 1
            await self._send_ws(ws, {"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            await self._identify(ws, d or {})
        elif op == 6:
            await self._resume(ws, d or {})
        elif op == 8:
            members = [self._member_obj(uid) for uid in self._members]
            await self._dispatch(
                "GUILD_MEMBERS_CHUNK",
                {
                    "guild_id": str(self.guild_id),
                    "members": members,
                    "chunk_index": 0,
                    "chunk_count": 1,
                    "not_found": [],
                    "nonce": (d or {}).get("nonce"),
                },
            )
        elif op in (3, 4):
            pass  # presence / voice state: ignored
        else:
            log.warning("fake gateway: unknown op %r", op)

    async def _identify(self, ws: web.WebSocketResponse, d: dict) -> None:
        self.identify_count += 1
        self.identify_payload = d
        self._intents = int(d.get("intents") or 0)
        async with self._send_lock:
            self._session_id = f"fake-session-{self.identify_count}-{secrets.token_hex(4)}"
            self._seq = 0
            self._event_log = []
        self._ws_ready = True
        ready = {
            "v": 10,
            "user": self._users[self.bot_user_id],
            "session_id": self._session_id,
            "session_type": "normal",
            "shard": [0, 1],
            "resume_gateway_url": f"ws://127.0.0.1:{self.port}/",
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "application": {"id": str(self.app_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "auth": {},
        }
        await self._dispatch("READY", ready)
        await self._dispatch("GUILD_CREATE", self._guild_obj(full=True))
        self.connected.set()

    async def _resume(self, ws: web.WebSocketResponse, d: dict) -> None:
        self.resume_count += 1
        if not self.resume_ok or d.get("session_id") != self._session_id or self._session_id is None:
            self.resume_ok = True  # only refuse once
            async with self._send_lock:
                self._session_id = None
            await self._send_ws(ws, {"op": 9, "d": False, "s": None, "t": None})
            return
        last = int(d.get("seq") or 0)
        async with self._send_lock:
            self._ws_ready = True
            for payload in self._event_log:
                if payload["s"] > last:
                    await self._send_ws(ws, payload)
                    self.gateway_events.append((payload["t"], payload["d"]))
            self._seq += 1
            resumed = {"op": 0, "t": "RESUMED", "s": self._seq, "d": {}}
            self._event_log.append(resumed)
            await self._send_ws(ws, resumed)
        self.connected.set()

    # ------------------------------------------------------------------ REST plumbing

    async def _rest_entry(self, request: web.Request) -> web.StreamResponse:
        path = request.path[len("/api/v10") :] or "/"
        cap = CapturedRequest(
            method=request.method, path=path, query=dict(request.query), headers=dict(request.headers)
        )
        try:
            resp = await self._rest(request, cap)
        except _ApiError as err:
            resp = _json_response(err.status, err.body)
        except Exception as exc:
            log.exception("fake discord choked on %s %s", request.method, path)
            cap.error = repr(exc)
            self.server_errors.append(f"{request.method} {path}: {exc!r}")
            resp = _json_response(400, {"code": 50035, "message": f"Invalid Form Body (fake: {exc!r})"})
        cap.status = resp.status
        self.requests.append(cap)
        return resp

    async def _read_body(self, request: web.Request, cap: CapturedRequest) -> int:
        """Parse JSON or multipart into cap.json / cap.files. Returns the body size."""
        size = 0
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                data = await part.read(decode=False)  # type: ignore[union-attr]
                size += len(data)
                name = part.name or ""
                if name == "payload_json":
                    cap.json = json.loads(data.decode() or "null")
                elif part.filename is not None or name.startswith("files["):
                    cf = CapturedFile(
                        part.filename or name,
                        bytes(data),
                        _guess_type(part.filename or name, part.headers.get("Content-Type")),
                        field_name=name,
                    )
                    cap.files.append(cf)
        else:
            raw = await request.read()
            size = len(raw)
            if raw:
                try:
                    cap.json = json.loads(raw)
                except ValueError:
                    raise _ApiError(400, 50109, "The request body contains invalid JSON.") from None
        return size

    def fail_next(
        self,
        method: str,
        path_regex: str,
        *,
        status: int = 429,
        retry_after: float = 0.3,
        body: dict | None = None,
        times: int = 1,
    ) -> None:
        """The next ``times`` requests whose method matches (``"*"`` = any) and whose path (without
        /api/v10) matches ``re.search(path_regex)`` get this error instead of being handled."""
        self._fail_rules.append(
            {
                "method": method.upper(),
                "re": re.compile(path_regex),
                "status": status,
                "retry_after": retry_after,
                "body": body,
                "times": times,
            }
        )

    def _take_fail_rule(self, method: str, path: str) -> dict | None:
        for rule in self._fail_rules:
            if rule["times"] > 0 and rule["method"] in ("*", method) and rule["re"].search(path):
                rule["times"] -= 1
                if rule["times"] <= 0:
                    self._fail_rules.remove(rule)
                return rule
        return None

    async def _rest(self, request: web.Request, cap: CapturedRequest) -> web.StreamResponse:
        size = await self._read_body(request, cap)
        rule = self._take_fail_rule(cap.method, cap.path)
        if rule is not None:
            status = rule["status"]
            if status == 429:
                ra = rule["retry_after"]
                body = rule["body"] or {
                    "message": "You are being rate limited.",
                    "retry_after": ra,
                    "global": False,
                    "code": 0,
                }
                headers = {
                    "Via": "1.1 google",
                    "Retry-After": str(max(1, int(ra + 0.999))),
                    "X-RateLimit-Limit": "5",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": f"{time.time() + ra:.3f}",
                    "X-RateLimit-Reset-After": f"{ra:.3f}",
                    "X-RateLimit-Scope": "user",
                }
                return _json_response(429, body, headers)
            return _json_response(status, rule["body"] or {"code": 0, "message": f"{status}: injected error"})
        if size > _MAX_BODY or any(len(f.data) > self.attachment_size_limit for f in cap.files):
            raise _ApiError(413, 40005, "Request entity too large")

        matched_path = False
        for method, pattern, handler_name, needs_auth in _ROUTES:
            m = pattern.fullmatch(cap.path)
            if m is None:
                continue
            matched_path = True
            if method != cap.method:
                continue
            if needs_auth and not request.headers.get("Authorization", "").startswith("Bot "):
                raise _ApiError(401, 0, "401: Unauthorized")
            handler = getattr(self, handler_name)
            return await handler(cap, **m.groupdict())
        if matched_path:
            raise _ApiError(405, 0, "405: Method Not Allowed")
        raise _ApiError(404, 0, "404: Not Found")

    # ------------------------------------------------------------------ REST: identity / app

    async def _h_me(self, cap: CapturedRequest) -> web.Response:
        return _json_response(200, self._users[self.bot_user_id])

    async def _h_user(self, cap: CapturedRequest, uid: str) -> web.Response:
        user = self._users.get(int(uid))
        if user is None:
            raise _ApiError(404, 10013, "Unknown User")
        return _json_response(200, user)

    async def _h_app_info(self, cap: CapturedRequest) -> web.Response:
        return _json_response(
            200,
            {
                "id": str(self.app_id),
                "name": "testbot",
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "bot": self._users[self.bot_user_id],
                "owner": self._users[self.owner_id],
                "team": None,
                "verify_key": "0" * 64,
                "flags": 0,
                "hook": True,
                "is_monetized": False,
                "tags": [],
                "interactions_endpoint_url": None,
                "redirect_uris": [],
                "approximate_guild_count": 1,
                "integration_types_config": {"0": {}},
            },
        )

    async def _h_gateway(self, cap: CapturedRequest) -> web.Response:
        return _json_response(200, {"url": f"ws://127.0.0.1:{self.port}"})

    async def _h_gateway_bot(self, cap: CapturedRequest) -> web.Response:
        return _json_response(
            200,
            {
                "url": f"ws://127.0.0.1:{self.port}",
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 0,
                    "max_concurrency": 1,
                },
            },
        )

    # ------------------------------------------------------------------ REST: commands

    def _validate_commands(self, body: Any) -> None:
        if not isinstance(body, list):
            raise _ApiError(
                400,
                50035,
                "Invalid Form Body",
                {"_errors": [{"code": "BASE_TYPE_ARRAY", "message": "Must be an array."}]},
            )
        if len(body) > 100:
            raise _form_error("_", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
        seen: set[tuple[str, int]] = set()

        def check_opts(opts: list[dict], prefix: str) -> None:
            if len(opts) > 25:
                raise _form_error(
                    f"{prefix}options", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
                )
            optional_seen = False
            names: set[str] = set()
            for j, opt in enumerate(opts):
                p = f"{prefix}options.{j}"
                name = opt.get("name", "")
                if not _NAME_RE.fullmatch(name) or name != name.lower():
                    raise _form_error(
                        f"{p}.name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
                    )
                if name in names:
                    raise _form_error(
                        f"{p}.name",
                        "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                        "Option names must be unique",
                    )
                names.add(name)
                if not 1 <= len(opt.get("description") or "") <= 100:
                    raise _form_error(
                        f"{p}.description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
                    )
                if opt.get("type") in (_OPT_SUB_COMMAND, _OPT_SUB_COMMAND_GROUP):
                    check_opts(opt.get("options") or [], f"{p}.")
                    continue
                if opt.get("required"):
                    if optional_seen:
                        raise _form_error(
                            f"{p}.required",
                            "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                            "Required options must be placed before non-required options",
                        )
                else:
                    optional_seen = True
                if len(opt.get("choices") or []) > 25:
                    raise _form_error(
                        f"{p}.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
                    )

        for i, cmd in enumerate(body):
            ctype = cmd.get("type", 1)
            name = cmd.get("name", "")
            if ctype == 1:
                if not _NAME_RE.fullmatch(name) or name != name.lower():
                    raise _form_error(
                        f"{i}.name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
                    )
                if not 1 <= len(cmd.get("description") or "") <= 100:
                    raise _form_error(
                        f"{i}.description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
                    )
                check_opts(cmd.get("options") or [], f"{i}.")
            if (name, ctype) in seen:
                raise _form_error(
                    f"{i}.name",
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    f"Application command names must be unique: {name}",
                )
            seen.add((name, ctype))

    def _store_commands(self, scope: str, body: list[dict], guild_id: int | None) -> list[dict]:
        version = str(self._snowflake())
        out = []
        for cmd in body:
            key = (scope, cmd.get("name", ""), cmd.get("type", 1))
            cid = self._command_ids.get(key) or self._snowflake()
            self._command_ids[key] = cid
            stored = {
                "type": 1,
                "options": [],
                "default_member_permissions": None,
                "nsfw": False,
                "contexts": None,
                "integration_types": [0],
                "name_localizations": None,
                "description_localizations": None,
                "dm_permission": True,
            }
            stored.update(copy.deepcopy(cmd))
            stored.update({"id": str(cid), "application_id": str(self.app_id), "version": version})
            if guild_id is not None:
                stored["guild_id"] = str(guild_id)
            out.append(stored)
        self.synced_commands[scope] = out
        self.sync_count += 1
        return out

    def _check_app(self, app: str) -> None:
        if int(app) != self.app_id:
            raise _ApiError(403, 50001, "Missing Access")

    def _check_guild(self, gid: str) -> None:
        if int(gid) != self.guild_id:
            raise _ApiError(404, 10004, "Unknown Guild")

    async def _h_put_global_commands(self, cap: CapturedRequest, app: str) -> web.Response:
        self._check_app(app)
        self._validate_commands(cap.json)
        return _json_response(200, self._store_commands("global", cap.json, None))

    async def _h_get_global_commands(self, cap: CapturedRequest, app: str) -> web.Response:
        self._check_app(app)
        return _json_response(200, self.synced_commands.get("global", []))

    async def _h_put_guild_commands(self, cap: CapturedRequest, app: str, gid: str) -> web.Response:
        self._check_app(app)
        self._check_guild(gid)
        self._validate_commands(cap.json)
        return _json_response(200, self._store_commands(str(self.guild_id), cap.json, self.guild_id))

    async def _h_get_guild_commands(self, cap: CapturedRequest, app: str, gid: str) -> web.Response:
        self._check_app(app)
        self._check_guild(gid)
        return _json_response(200, self.synced_commands.get(str(self.guild_id), []))

    # ------------------------------------------------------------------ messages (shared)

    def _channel(self, cid: int | str) -> dict:
        ch = self._channels.get(int(cid))
        if ch is None:
            raise _ApiError(404, 10003, "Unknown Channel")
        return ch

    def _public(self, msg: dict) -> dict:
        out = {k: v for k, v in msg.items() if not k.startswith("_")}
        reacts = self.reactions.get(int(msg["id"])) or []
        if reacts:
            agg: dict[str, dict] = {}
            for emoji, uid in reacts:
                r = agg.setdefault(
                    emoji,
                    {
                        "emoji": self._emoji_obj(emoji),
                        "count": 0,
                        "me": False,
                        "me_burst": False,
                        "burst_colors": [],
                        "count_details": {"burst": 0, "normal": 0},
                    },
                )
                r["count"] += 1
                r["count_details"]["normal"] += 1
                if uid == self.bot_user_id:
                    r["me"] = True
            out["reactions"] = list(agg.values())
        return copy.deepcopy(out)

    def _gateway_message(self, msg: dict) -> dict:
        d = self._public(msg)
        d["guild_id"] = str(self.guild_id)
        d["member"] = self._member_obj(self.bot_user_id, with_user=False)
        return d

    def _compute_mentions(self, msg: dict) -> None:
        content = msg.get("content") or ""
        am = msg.get("_allowed_mentions")
        parse = None if am is None else (am.get("parse") or [])
        pinged = False
        everyone = False
        wants_everyone = "@everyone" in content or "@here" in content
        if wants_everyone and (am is None or "everyone" in parse) and self._bot_has(MENTION_EVERYONE):
            everyone = pinged = True
        mentions: list[dict] = []
        for sid in dict.fromkeys(re.findall(r"<@!?(\d+)>", content)):
            if am is None or "users" in parse or sid in [str(u) for u in (am.get("users") or [])]:
                pinged = True
                uid = int(sid)
                if uid in self._users:
                    u = dict(self._users[uid])
                    if uid in self._members:
                        u["member"] = self._member_obj(uid, with_user=False)
                    mentions.append(u)
        roles: list[str] = []
        for sid in dict.fromkeys(re.findall(r"<@&(\d+)>", content)):
            if am is None or "roles" in parse or sid in [str(r) for r in (am.get("roles") or [])]:
                pinged = True
                roles.append(sid)
        ref = msg.get("referenced_message")
        replied_other = ref and int(ref["author"]["id"]) != self.bot_user_id
        if replied_other and (am is None or am.get("replied_user", False)):
            pinged = True
        msg["mention_everyone"] = everyone
        msg["mentions"] = mentions
        msg["mention_roles"] = roles
        msg["_pinged"] = pinged

    def _validate_message(self, msg: dict) -> None:
        content = msg.get("content") or ""
        if len(content) > 2000:
            raise _form_error("content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
        embeds = msg.get("embeds") or []
        if len(embeds) > 10:
            raise _form_error("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        total = 0
        for i, emb in enumerate(embeds):
            limits = {"title": 256, "description": 4096}
            for key, lim in limits.items():
                n = len(emb.get(key) or "")
                total += n
                if n > lim:
                    raise _form_error(
                        f"embeds.{i}.{key}", "BASE_TYPE_MAX_LENGTH", f"Must be {lim} or fewer in length."
                    )
            fields = emb.get("fields") or []
            if len(fields) > 25:
                raise _form_error(
                    f"embeds.{i}.fields", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
                )
            for j, fld in enumerate(fields):
                for key, lim in (("name", 256), ("value", 1024)):
                    n = len(str(fld.get(key) or ""))
                    total += n
                    if n > lim or n == 0:
                        raise _form_error(
                            f"embeds.{i}.fields.{j}.{key}",
                            "BASE_TYPE_BAD_LENGTH",
                            f"Must be between 1 and {lim} in length.",
                        )
            footer = len((emb.get("footer") or {}).get("text") or "")
            author = len((emb.get("author") or {}).get("name") or "")
            total += footer + author
            if footer > 2048:
                raise _form_error(
                    f"embeds.{i}.footer.text", "BASE_TYPE_MAX_LENGTH", "Must be 2048 or fewer in length."
                )
        if total > 6000:
            raise _form_error("embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
        comps = msg.get("components") or []
        if not msg["flags"] & _FLAG_COMPONENTS_V2:
            if len(comps) > 5:
                raise _form_error("components", "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
            ids: set[str] = set()
            for i, row in enumerate(comps):
                inner = row.get("components") or []
                if row.get("type") != 1 or not 1 <= len(inner) <= 5:
                    raise _form_error(
                        f"components.{i}",
                        "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                        "Action rows need 1 to 5 components",
                    )
                for j, comp in enumerate(inner):
                    cid = comp.get("custom_id")
                    if cid is not None:
                        if len(cid) > 100:
                            raise _form_error(
                                f"components.{i}.components.{j}.custom_id",
                                "BASE_TYPE_MAX_LENGTH",
                                "Must be 100 or fewer in length.",
                            )
                        if cid in ids:
                            raise _form_error(
                                f"components.{i}.components.{j}.custom_id",
                                "COMPONENT_CUSTOM_ID_DUPLICATED",
                                "Component custom id cannot be duplicated",
                            )
                        ids.add(cid)
                    if len(comp.get("label") or "") > 80:
                        raise _form_error(
                            f"components.{i}.components.{j}.label",
                            "BASE_TYPE_MAX_LENGTH",
                            "Must be 80 or fewer in length.",
                        )
        if not (
            content
            or embeds
            or msg.get("attachments")
            or comps
            or msg["flags"] & _FLAG_LOADING
            or msg.get("sticker_items")
            or msg.get("poll")
        ):
            raise _ApiError(400, 50006, "Cannot send an empty message")

    def _build_attachments(
        self,
        payload: dict,
        files: list[CapturedFile],
        existing: list[dict] | None,
        channel_id: int,
        ephemeral: bool,
    ) -> list[dict]:
        by_index: dict[str, CapturedFile] = {}
        for pos, f in enumerate(files):
            name = getattr(f, "field_name", "")
            m = re.fullmatch(r"files\[(\w+)\]", name)
            by_index[m.group(1) if m else str(pos)] = f
        used: set[str] = set()

        def new_att(f: CapturedFile, meta: dict) -> dict:
            att_id = self._snowflake()
            filename = meta.get("filename") or f.filename
            ctype = _guess_type(filename, f.content_type)
            self._register_blob(att_id, f.data, ctype)
            att: dict[str, Any] = {
                "id": str(att_id),
                "filename": filename,
                "size": len(f.data),
                "url": self._cdn_url(channel_id, att_id, filename),
                "proxy_url": self._cdn_url(channel_id, att_id, filename, proxy=True),
                "content_type": ctype,
            }
            if meta.get("description"):
                att["description"] = meta["description"]
            if ephemeral:
                att["ephemeral"] = True
            if (ctype or "").startswith("image/"):
                w, h = _image_dims(f.data)
                if w is not None:
                    att["width"], att["height"] = w, h
            return att

        out: list[dict] = []
        if "attachments" in payload and payload["attachments"] is not None:
            old = {a["id"]: a for a in existing or []}
            for i, meta in enumerate(payload["attachments"]):
                aid = str(meta.get("id"))
                if aid in by_index and aid not in used:
                    used.add(aid)
                    out.append(new_att(by_index[aid], meta))
                elif aid in old:
                    out.append(old[aid])
                else:
                    raise _form_error(f"attachments.{i}.id", "ATTACHMENT_NOT_FOUND", "Unknown attachment")
        else:
            out.extend(existing or [])
        for key, f in by_index.items():
            if key not in used:
                out.append(new_att(f, {}))
        return out

    def _resolve_embed_attachments(self, msg: dict) -> None:
        urls = {a["filename"]: a["url"] for a in msg.get("attachments") or []}
        for emb in msg.get("embeds") or []:
            for key in ("image", "thumbnail"):
                sub = emb.get(key)
                if isinstance(sub, dict) and str(sub.get("url", "")).startswith("attachment://"):
                    name = sub["url"][len("attachment://") :]
                    if name in urls:
                        sub["url"] = urls[name]
                        sub["proxy_url"] = urls[name]

    def _create_message(
        self,
        *,
        channel_id: int,
        payload: dict,
        files: list[CapturedFile],
        via: str,
        inter: FakeInteraction | None = None,
        ephemeral: bool = False,
        loading: bool = False,
        mtype: int = 0,
    ) -> dict:
        if not isinstance(payload, dict):
            raise _ApiError(400, 50035, "Invalid Form Body")
        mid = self._snowflake()
        flags = int(payload.get("flags") or 0) & _SETTABLE_FLAGS
        if ephemeral:
            flags |= _FLAG_EPHEMERAL
        if loading:
            flags |= _FLAG_LOADING
        msg: dict[str, Any] = {
            "id": str(mid),
            "channel_id": str(channel_id),
            "author": self._users[self.bot_user_id],
            "content": payload.get("content") or "",
            "embeds": copy.deepcopy(payload.get("embeds") or []),
            "components": copy.deepcopy(payload.get("components") or []),
            "attachments": [],
            "timestamp": _iso(self.clock.now()),
            "edited_timestamp": None,
            "flags": flags,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "pinned": False,
            "tts": False,
            "type": mtype,
        }
        if payload.get("nonce") is not None:
            msg["nonce"] = payload["nonce"]
        if payload.get("poll"):
            msg["poll"] = payload["poll"]
        ref = payload.get("message_reference")
        if ref:
            ref_id = int(ref.get("message_id") or 0)
            target = self.messages.get(ref_id)
            if target is None or target["_deleted"] or target["_ephemeral"]:
                if ref.get("fail_if_not_exists", True):
                    raise _form_error(
                        "message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                    )
                msg["message_reference"] = dict(ref)
            else:
                full_ref = {
                    "type": ref.get("type", 0),
                    "message_id": str(ref_id),
                    "channel_id": target["channel_id"],
                    "guild_id": str(self.guild_id),
                }
                if "fail_if_not_exists" in ref:
                    full_ref["fail_if_not_exists"] = ref["fail_if_not_exists"]
                msg["message_reference"] = full_ref
                msg["referenced_message"] = self._public(target)
                if msg["type"] == 0:
                    msg["type"] = 19
        if via != "channel":
            msg["webhook_id"] = str(self.app_id)
            msg["application_id"] = str(self.app_id)
        if inter is not None:
            meta: dict[str, Any] = {
                "id": str(inter.id),
                "type": inter.type,
                "user": self._users[inter.user_id],
                "authorizing_integration_owners": {"0": str(self.guild_id)},
            }
            if inter.type == 2:
                meta["name"] = inter.command
                meta["command_type"] = 1
            if inter.message_id is not None:
                meta["interacted_message_id"] = str(inter.message_id)
            if inter.original_message_id is not None and via == "webhook":
                meta["original_response_message_id"] = str(inter.original_message_id)
            msg["interaction_metadata"] = meta
        msg["attachments"] = self._build_attachments(payload, files, None, channel_id, ephemeral)
        self._resolve_embed_attachments(msg)
        msg.update(
            {
                "_allowed_mentions": copy.deepcopy(payload.get("allowed_mentions")),
                "_pinged": False,
                "_files": list(files),
                "_ephemeral": ephemeral,
                "_deleted": False,
                "_edits": 0,
                "_via": via,
                "_interaction_id": inter.id if inter else None,
            }
        )
        self._compute_mentions(msg)
        self._validate_message(msg)
        self.messages[mid] = msg
        ch = self._channels.get(channel_id)
        if ch is not None and not ephemeral:
            ch["last_message_id"] = str(mid)
            if ch["type"] == 11:
                ch["message_count"] += 1
                ch["total_message_sent"] += 1
        return msg

    def _edit_message(
        self, msg: dict, payload: dict, files: list[CapturedFile], *, fill: bool = False
    ) -> dict:
        if not isinstance(payload, dict):
            raise _ApiError(400, 50035, "Invalid Form Body")
        new = copy.copy(msg)
        if "content" in payload:
            new["content"] = payload["content"] or ""
        if "embeds" in payload:
            new["embeds"] = copy.deepcopy(payload["embeds"] or [])
        if "components" in payload:
            new["components"] = copy.deepcopy(payload["components"] or [])
        if "flags" in payload and payload["flags"] is not None:
            keep = msg["flags"] & (_FLAG_EPHEMERAL | _FLAG_LOADING)
            new["flags"] = keep | (int(payload["flags"]) & _SETTABLE_FLAGS)
        if "allowed_mentions" in payload:
            new["_allowed_mentions"] = copy.deepcopy(payload["allowed_mentions"])
        if fill:
            new["flags"] &= ~_FLAG_LOADING
        new["attachments"] = self._build_attachments(
            payload, files, msg["attachments"], int(msg["channel_id"]), msg["_ephemeral"]
        )
        self._resolve_embed_attachments(new)
        self._compute_mentions(new)
        self._validate_message(new)
        if not fill:
            new["edited_timestamp"] = _iso(self.clock.now())
            new["_edits"] = msg["_edits"] + 1
        new["_files"] = msg["_files"] + list(files)
        msg.clear()
        msg.update(new)
        return msg

    async def _echo_create(self, msg: dict) -> None:
        if not msg["_ephemeral"]:
            await self._dispatch("MESSAGE_CREATE", self._gateway_message(msg))

    async def _echo_update(self, msg: dict) -> None:
        if not msg["_ephemeral"]:
            await self._dispatch("MESSAGE_UPDATE", self._gateway_message(msg))

    async def _echo_delete(self, msg: dict) -> None:
        if not msg["_ephemeral"]:
            await self._dispatch(
                "MESSAGE_DELETE",
                {"id": msg["id"], "channel_id": msg["channel_id"], "guild_id": str(self.guild_id)},
            )

    def _channel_msg(self, cid: str, mid: str) -> dict:
        self._channel(cid)
        msg = self.messages.get(int(mid))
        if msg is None or msg["_deleted"] or msg["_ephemeral"] or msg["channel_id"] != str(int(cid)):
            raise _ApiError(404, 10008, "Unknown Message")
        return msg

    def channel_messages(self, channel_id: int, *, include_ephemeral: bool = False) -> list[dict]:
        """Non-deleted messages of the channel, oldest first (ephemeral ones only if asked)."""
        return [
            m
            for mid, m in sorted(self.messages.items())
            if m["channel_id"] == str(channel_id)
            and not m["_deleted"]
            and (include_ephemeral or not m["_ephemeral"])
        ]

    # ------------------------------------------------------------------ REST: channels

    def _require_bot(self, perm: int, what: str) -> None:
        if not self._bot_has(perm):
            log.info("bot lacks %s (%s)", what, perm)
            raise _ApiError(403, 50013, "Missing Permissions")

    async def _h_get_channel(self, cap: CapturedRequest, cid: str) -> web.Response:
        return _json_response(200, self._channel(cid))

    async def _h_typing(self, cap: CapturedRequest, cid: str) -> web.Response:
        self._channel(cid)
        return web.Response(status=204)

    async def _h_create_message(self, cap: CapturedRequest, cid: str) -> web.Response:
        ch = self._channel(cid)
        self._require_bot(VIEW_CHANNEL, "VIEW_CHANNEL")
        self._require_bot(SEND_MESSAGES_IN_THREADS if ch["type"] == 11 else SEND_MESSAGES, "SEND_MESSAGES")
        if cap.files:
            self._require_bot(ATTACH_FILES, "ATTACH_FILES")
        if (cap.json or {}).get("message_reference"):
            self._require_bot(READ_MESSAGE_HISTORY, "READ_MESSAGE_HISTORY")
        msg = self._create_message(
            channel_id=int(cid), payload=cap.json or {}, files=cap.files, via="channel"
        )
        await self._echo_create(msg)
        return _json_response(200, self._public(msg))

    async def _h_history(self, cap: CapturedRequest, cid: str) -> web.Response:
        self._channel(cid)
        self._require_bot(VIEW_CHANNEL | READ_MESSAGE_HISTORY, "READ_MESSAGE_HISTORY")
        try:
            limit = int(cap.query.get("limit", "50"))
        except ValueError:
            raise _form_error("limit", "NUMBER_TYPE_COERCE", "Value is not int.") from None
        if not 1 <= limit <= 100:
            raise _form_error("limit", "NUMBER_TYPE_MAX", "int value should be between 1 and 100.")
        msgs = self.channel_messages(int(cid))  # oldest first
        if "after" in cap.query:
            after = int(cap.query["after"])
            chosen = [m for m in msgs if int(m["id"]) > after][:limit]
            chosen.reverse()
        elif "around" in cap.query:
            around = int(cap.query["around"])
            idx = next((i for i, m in enumerate(msgs) if int(m["id"]) >= around), len(msgs))
            first = max(0, idx - limit // 2)
            chosen = list(reversed(msgs[first : first + limit]))
        else:
            before = int(cap.query.get("before", 1 << 63))
            chosen = [m for m in reversed(msgs) if int(m["id"]) < before][:limit]
        return _json_response(200, [self._public(m) for m in chosen])

    async def _h_get_message(self, cap: CapturedRequest, cid: str, mid: str) -> web.Response:
        self._require_bot(VIEW_CHANNEL | READ_MESSAGE_HISTORY, "READ_MESSAGE_HISTORY")
        return _json_response(200, self._public(self._channel_msg(cid, mid)))

    async def _h_edit_message(self, cap: CapturedRequest, cid: str, mid: str) -> web.Response:
        msg = self._channel_msg(cid, mid)
        if msg["author"]["id"] != str(self.bot_user_id):
            raise _ApiError(403, 50005, "Cannot edit a message authored by another user")
        self._edit_message(msg, cap.json or {}, cap.files)
        await self._echo_update(msg)
        return _json_response(200, self._public(msg))

    async def _h_delete_message(self, cap: CapturedRequest, cid: str, mid: str) -> web.Response:
        msg = self._channel_msg(cid, mid)
        msg["_deleted"] = True
        await self._echo_delete(msg)
        return web.Response(status=204)

    # reactions

    @staticmethod
    def _norm_emoji(emoji: str) -> str:
        e = emoji.strip().strip("<>")
        if e.startswith("a:"):
            e = e[2:]
        return e.lstrip(":") if ":" in e else e

    @staticmethod
    def _emoji_obj(emoji: str) -> dict:
        m = re.fullmatch(r"(\w+):(\d+)", emoji)
        if m:
            return {"id": m.group(2), "name": m.group(1), "animated": False}
        return {"id": None, "name": emoji}

    async def _add_reaction(self, mid: int, emoji: str, uid: int) -> bool:
        lst = self.reactions.setdefault(mid, [])
        if (emoji, uid) in lst:
            return False
        lst.append((emoji, uid))
        msg = self.messages[mid]
        d: dict[str, Any] = {
            "user_id": str(uid),
            "channel_id": msg["channel_id"],
            "message_id": str(mid),
            "guild_id": str(self.guild_id),
            "emoji": self._emoji_obj(emoji),
            "member": self._member_obj(uid),
            "burst": False,
            "burst_colors": [],
            "type": 0,
            "message_author_id": msg["author"]["id"],
        }
        await self._dispatch("MESSAGE_REACTION_ADD", d)
        return True

    async def _remove_reaction(self, mid: int, emoji: str, uid: int) -> bool:
        lst = self.reactions.get(mid) or []
        if (emoji, uid) not in lst:
            return False
        lst.remove((emoji, uid))
        msg = self.messages[mid]
        await self._dispatch(
            "MESSAGE_REACTION_REMOVE",
            {
                "user_id": str(uid),
                "channel_id": msg["channel_id"],
                "message_id": str(mid),
                "guild_id": str(self.guild_id),
                "emoji": self._emoji_obj(emoji),
                "burst": False,
                "type": 0,
            },
        )
        return True

    async def _h_put_reaction(
        self, cap: CapturedRequest, cid: str, mid: str, emoji: str, who: str
    ) -> web.Response:
        msg = self._channel_msg(cid, mid)
        if who != "@me":
            raise _ApiError(405, 0, "405: Method Not Allowed")
        self._require_bot(VIEW_CHANNEL | READ_MESSAGE_HISTORY, "READ_MESSAGE_HISTORY")
        emoji = self._norm_emoji(emoji)
        if not any(e == emoji for e, _ in self.reactions.get(int(mid), [])):
            self._require_bot(ADD_REACTIONS, "ADD_REACTIONS")
        await self._add_reaction(int(msg["id"]), emoji, self.bot_user_id)
        return web.Response(status=204)

    async def _h_delete_reaction(
        self, cap: CapturedRequest, cid: str, mid: str, emoji: str, who: str
    ) -> web.Response:
        msg = self._channel_msg(cid, mid)
        uid = self.bot_user_id if who == "@me" else int(who)
        if uid != self.bot_user_id:
            self._require_bot(MANAGE_MESSAGES, "MANAGE_MESSAGES")
        await self._remove_reaction(int(msg["id"]), self._norm_emoji(emoji), uid)
        return web.Response(status=204)

    async def _h_reaction_users(self, cap: CapturedRequest, cid: str, mid: str, emoji: str) -> web.Response:
        msg = self._channel_msg(cid, mid)
        emoji = self._norm_emoji(emoji)
        users = [self._users[u] for e, u in self.reactions.get(int(msg["id"]), []) if e == emoji]
        return _json_response(200, users)

    async def _h_clear_reactions(self, cap: CapturedRequest, cid: str, mid: str) -> web.Response:
        msg = self._channel_msg(cid, mid)
        self._require_bot(MANAGE_MESSAGES, "MANAGE_MESSAGES")
        self.reactions[int(mid)] = []
        await self._dispatch(
            "MESSAGE_REACTION_REMOVE_ALL",
            {"channel_id": msg["channel_id"], "message_id": msg["id"], "guild_id": str(self.guild_id)},
        )
        return web.Response(status=204)

    # ------------------------------------------------------------------ REST: guild

    async def _h_get_guild(self, cap: CapturedRequest, gid: str) -> web.Response:
        self._check_guild(gid)
        g = self._guild_obj(full=False)
        if cap.query.get("with_counts") in ("true", "1", "True"):
            g["approximate_member_count"] = len(self._members)
            g["approximate_presence_count"] = 0
        return _json_response(200, g)

    async def _h_get_member(self, cap: CapturedRequest, gid: str, uid: str) -> web.Response:
        self._check_guild(gid)
        if int(uid) not in self._members:
            raise _ApiError(404, 10007, "Unknown Member")
        return _json_response(200, self._member_obj(int(uid)))

    async def _h_list_members(self, cap: CapturedRequest, gid: str) -> web.Response:
        self._check_guild(gid)
        return _json_response(200, [self._member_obj(uid) for uid in sorted(self._members)])

    async def _h_guild_channels(self, cap: CapturedRequest, gid: str) -> web.Response:
        self._check_guild(gid)
        return _json_response(200, [c for c in self._channels.values() if c["type"] != 11])

    async def _h_guild_roles(self, cap: CapturedRequest, gid: str) -> web.Response:
        self._check_guild(gid)
        return _json_response(200, self._roles_payload())

    async def _h_active_threads(self, cap: CapturedRequest, gid: str) -> web.Response:
        self._check_guild(gid)
        return _json_response(
            200, {"threads": [c for c in self._channels.values() if c["type"] == 11], "members": []}
        )

    # ------------------------------------------------------------------ interactions: dispatch

    def _channel_for_interaction(self, channel_id: int) -> dict:
        ch = self._channels.get(channel_id)
        if ch is None:
            raise AssertionError(f"unknown channel {channel_id}")
        return copy.deepcopy(ch)

    async def _ensure_connected(self) -> None:
        if not self.connected.is_set():
            try:
                await asyncio.wait_for(self.connected.wait(), 10.0)
            except TimeoutError:
                raise AssertionError("the bot is not connected to the fake gateway") from None

    async def _send_interaction(
        self,
        *,
        itype: int,
        uid: int,
        channel_id: int,
        data: dict,
        command: str | None = None,
        message: dict | None = None,
    ) -> FakeInteraction:
        await self._ensure_connected()
        iid = self._snowflake()
        token = f"itok-{iid}-{secrets.token_hex(8)}"
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.app_id),
            "type": itype,
            "data": data,
            "token": token,
            "version": 1,
            "guild_id": str(self.guild_id),
            "guild": {"id": str(self.guild_id), "locale": "en-US", "features": []},
            "channel_id": str(channel_id),
            "channel": self._channel_for_interaction(channel_id),
            "member": self._member_obj(uid, with_permissions=True),
            "locale": "en-US",
            "guild_locale": "en-US",
            "app_permissions": str(self._app_permissions()),
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "context": 0,
            "attachment_size_limit": self.attachment_size_limit,
        }
        if message is not None:
            payload["message"] = self._public(message)
        inter = FakeInteraction(
            self,
            id=iid,
            token=token,
            type=itype,
            user_id=uid,
            channel_id=channel_id,
            payload=payload,
            command=command,
            message_id=int(message["id"]) if message is not None else None,
        )
        self.interactions[iid] = inter
        self._interactions_by_token[token] = inter
        inter.dispatched_at = time.monotonic()
        await self._dispatch("INTERACTION_CREATE", payload)
        inter.dispatched_at = time.monotonic()
        return inter

    def _find_command(self, name: str) -> dict:
        for scope in (str(self.guild_id), "global"):
            for cmd in self.synced_commands.get(scope, []):
                if cmd["name"] == name and cmd.get("type", 1) == 1:
                    return cmd
        known = sorted({c["name"] for cmds in self.synced_commands.values() for c in cmds})
        raise AssertionError(f"/{name} is not in the synced commands (synced: {known or 'nothing'})")

    def _convert_option(self, opt: dict, value: Any, resolved: dict, path: str) -> Any:
        t = opt["type"]
        name = opt["name"]
        if t == _OPT_STRING:
            value = str(value)
            if "min_length" in opt and len(value) < opt["min_length"]:
                raise AssertionError(f"{path} {name}: shorter than min_length {opt['min_length']}")
            if "max_length" in opt and len(value) > opt["max_length"]:
                raise AssertionError(f"{path} {name}: longer than max_length {opt['max_length']}")
        elif t in (_OPT_INTEGER, _OPT_NUMBER):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise AssertionError(f"{path} {name}: expected a number, got {value!r}")
            value = int(value) if t == _OPT_INTEGER else float(value)
            if opt.get("min_value") is not None and value < opt["min_value"]:
                raise AssertionError(f"{path} {name}: below min_value {opt['min_value']}")
            if opt.get("max_value") is not None and value > opt["max_value"]:
                raise AssertionError(f"{path} {name}: above max_value {opt['max_value']}")
        elif t == _OPT_BOOLEAN:
            value = bool(value)
        elif t in (_OPT_USER, _OPT_MENTIONABLE) and not (t == _OPT_MENTIONABLE and self._is_role(value)):
            uid = self._user_id(value)
            resolved.setdefault("users", {})[str(uid)] = self._users[uid]
            if uid in self._members:
                resolved.setdefault("members", {})[str(uid)] = self._member_obj(
                    uid, with_user=False, with_permissions=True
                )
            value = str(uid)
        elif t in (_OPT_ROLE, _OPT_MENTIONABLE):
            rid = self._role_id(value)
            resolved.setdefault("roles", {})[str(rid)] = self._roles[rid]
            value = str(rid)
        elif t == _OPT_CHANNEL:
            cid = self._channel_id_of(value)
            ch = self._channels[cid]
            if opt.get("channel_types") and ch["type"] not in opt["channel_types"]:
                raise AssertionError(
                    f"{path} {name}: channel type {ch['type']} not in {opt['channel_types']}"
                )
            rch = {k: ch[k] for k in ("id", "name", "type", "parent_id") if k in ch}
            rch["permissions"] = str(self.bot_permissions)
            if "thread_metadata" in ch:
                rch["thread_metadata"] = ch["thread_metadata"]
            resolved.setdefault("channels", {})[str(cid)] = rch
            value = str(cid)
        elif t == _OPT_ATTACHMENT:
            if not isinstance(value, dict) or "id" not in value:
                raise AssertionError(
                    f"{path} {name}: pass the dict from make_attachment(), got {type(value)}"
                )
            resolved.setdefault("attachments", {})[str(value["id"])] = value
            value = str(value["id"])
        else:
            raise AssertionError(f"{path} {name}: option type {t} not supported by the fake")
        choices = opt.get("choices")
        if choices and value not in [c["value"] for c in choices]:
            raise AssertionError(
                f"{path} {name}: {value!r} is not one of the choices {[c['value'] for c in choices]}"
            )
        return value

    def _is_role(self, value: Any) -> bool:
        if isinstance(value, int):
            return value in self._roles
        return any(r["name"] == value for r in self._roles.values())

    def _role_id(self, value: Any) -> int:
        if isinstance(value, int) and value in self._roles:
            return value
        for rid, r in self._roles.items():
            if r["name"] == value:
                return rid
        raise AssertionError(f"unknown role {value!r}")

    def _channel_id_of(self, value: Any) -> int:
        if isinstance(value, int) and value in self._channels:
            return value
        for cid, ch in self._channels.items():
            if ch["name"] == value:
                return cid
        raise AssertionError(f"unknown channel {value!r}")

    async def slash(
        self,
        command: str,
        *,
        user: str | int = "alice",
        channel_id: int | None = None,
        enforce_permissions: bool = True,
        opts: dict[str, Any] | None = None,
        **options: Any,
    ) -> FakeInteraction:
        """Send a slash command; options as keywords, or in `opts` (for an option named like a keyword, e.g. user)."""
        if opts:
            options = {**options, **opts}
        parts = command.strip().lstrip("/").split()
        if not parts:
            raise AssertionError("empty command")
        cmd = self._find_command(parts[0])
        uid = self._user_id(user)
        if enforce_permissions:
            perms = self.member_permissions(uid)
            dmp = cmd.get("default_member_permissions")
            if not perms & ADMINISTRATOR:
                if dmp is not None and (int(dmp) & perms) != int(dmp):
                    raise CommandHidden(
                        f"/{command} needs default_member_permissions={dmp}; member {user!r} has {perms}"
                    )
                if not perms & USE_APPLICATION_COMMANDS:
                    raise CommandHidden(f"member {user!r} lacks USE_APPLICATION_COMMANDS")
            contexts = cmd.get("contexts")
            if contexts is not None and 0 not in contexts:
                raise CommandHidden(f"/{parts[0]} is not available in guilds (contexts={contexts})")
        node = cmd
        data: dict[str, Any] = {"id": cmd["id"], "name": cmd["name"], "type": 1}
        if cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        container = data
        for part in parts[1:]:
            subs = [
                o
                for o in node.get("options") or []
                if o["type"] in (_OPT_SUB_COMMAND, _OPT_SUB_COMMAND_GROUP)
            ]
            match = next((o for o in subs if o["name"] == part), None)
            if match is None:
                raise AssertionError(
                    f"/{command}: {part!r} is not a subcommand of {node['name']!r} "
                    f"(has: {[o['name'] for o in subs]})"
                )
            entry: dict[str, Any] = {"type": match["type"], "name": part, "options": []}
            container.setdefault("options", []).append(entry)
            container = entry
            node = match
        leaf_opts = node.get("options") or []
        if any(o["type"] in (_OPT_SUB_COMMAND, _OPT_SUB_COMMAND_GROUP) for o in leaf_opts):
            raise AssertionError(f"/{command} needs a subcommand: {[o['name'] for o in leaf_opts]}")
        by_name = {o["name"]: o for o in leaf_opts}
        resolved: dict[str, Any] = {}
        values: list[dict] = []
        for key, value in options.items():
            name = key if key in by_name else key.replace("_", "-")
            opt = by_name.get(name)
            if opt is None:
                raise AssertionError(f"/{command} has no option {key!r} (options: {sorted(by_name)})")
            if value is None:
                continue
            values.append(
                {
                    "type": opt["type"],
                    "name": name,
                    "value": self._convert_option(opt, value, resolved, f"/{command}"),
                }
            )
        given = {v["name"] for v in values}
        missing = [o["name"] for o in leaf_opts if o.get("required") and o["name"] not in given]
        if missing:
            raise AssertionError(f"/{command}: required option(s) missing: {missing}")
        container.setdefault("options", []).extend(values)
        if resolved:
            data["resolved"] = resolved
        cid = channel_id if channel_id is not None else self.channel_id
        return await self._send_interaction(itype=2, uid=uid, channel_id=cid, data=data, command=command)

    async def click(
        self, message_id: int, custom_id: str, *, user: str | int = "alice", values: list[str] | None = None
    ) -> FakeInteraction:
        msg = self.messages.get(int(message_id))
        if msg is None or msg["_deleted"]:
            raise AssertionError(f"message {message_id} does not exist (or was deleted)")
        comp = _find_component(msg.get("components") or [], custom_id)
        if comp is None:
            raise AssertionError(f"message {message_id} has no component {custom_id!r}")
        if comp.get("disabled"):
            raise AssertionError(f"component {custom_id!r} on message {message_id} is disabled")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": comp.get("type", 2)}
        if comp.get("type") in (3, 5, 6, 7, 8):
            data["values"] = list(values or [])
        uid = self._user_id(user)
        return await self._send_interaction(
            itype=3, uid=uid, channel_id=int(msg["channel_id"]), data=data, message=msg
        )

    async def react(self, message_id: int, emoji: str = "🔁", *, user: str | int = "alice") -> None:
        msg = self.messages.get(int(message_id))
        if msg is None or msg["_deleted"] or msg["_ephemeral"]:
            raise AssertionError(f"message {message_id} cannot be reacted to (missing, deleted or ephemeral)")
        await self._ensure_connected()
        await self._add_reaction(int(message_id), self._norm_emoji(emoji), self._user_id(user))

    async def unreact(self, message_id: int, emoji: str = "🔁", *, user: str | int = "alice") -> None:
        await self._remove_reaction(int(message_id), self._norm_emoji(emoji), self._user_id(user))

    # ------------------------------------------------------------------ interactions: REST

    async def _h_callback(self, cap: CapturedRequest, iid: str, token: str) -> web.Response:
        inter = self.interactions.get(int(iid))
        if inter is None or inter.token != token:
            raise _ApiError(404, 10062, "Unknown interaction")
        if inter.acknowledged:
            raise _ApiError(400, 40060, "Interaction has already been acknowledged.")
        elapsed = time.monotonic() - (inter.dispatched_at or 0.0)
        if elapsed > self.response_deadline:
            log.info("callback for %r came %.2fs after dispatch: Unknown interaction", inter, elapsed)
            raise _ApiError(404, 10062, "Unknown interaction")
        body = cap.json if isinstance(cap.json, dict) else {}
        rtype = body.get("type")
        data = body.get("data") or {}
        ephemeral = bool(int(data.get("flags") or 0) & _FLAG_EPHEMERAL)
        resource: dict[str, Any] = {"type": rtype}
        message_id: int | None = None
        loading = False
        if rtype == 4:
            if inter.type not in (2, 3, 5):
                raise _ApiError(400, 50035, "Invalid Form Body")
            msg = self._create_message(
                channel_id=inter.channel_id,
                payload=data,
                files=cap.files,
                via="callback",
                inter=inter,
                ephemeral=ephemeral,
                mtype=20 if inter.type == 2 else 0,
            )
            message_id = int(msg["id"])
            inter._message_ids.append(message_id)
            resource["message"] = self._public(msg)
            await self._echo_create(msg)
        elif rtype == 5:
            msg = self._create_message(
                channel_id=inter.channel_id,
                payload={"flags": 0},
                files=[],
                via="callback",
                inter=inter,
                ephemeral=ephemeral,
                loading=True,
                mtype=20 if inter.type == 2 else 0,
            )
            message_id = int(msg["id"])
            loading = True
            inter._message_ids.append(message_id)
            inter._thinking_pending = True
            resource["message"] = self._public(msg)
            await self._echo_create(msg)
        elif rtype in (6, 7):
            if inter.type not in (3, 5) or inter.message_id is None:
                raise _ApiError(400, 40043, "Interaction type is not valid for this response type")
            msg = self.messages[inter.message_id]
            message_id = inter.message_id
            ephemeral = msg["_ephemeral"]
            if rtype == 7:
                self._edit_message(msg, data, cap.files)
                resource["message"] = self._public(msg)
                await self._echo_update(msg)
        elif rtype == 9:
            if not data.get("custom_id") or not data.get("title"):
                raise _form_error("data", "BASE_TYPE_REQUIRED", "This field is required")
        elif rtype == 8:
            if inter.type != 4:
                raise _ApiError(400, 40043, "Interaction type is not valid for this response type")
        else:
            raise _form_error(
                "type", "BASE_TYPE_CHOICES", "Value must be one of (1, 4, 5, 6, 7, 8, 9, 10, 12)."
            )
        inter.response_type = rtype
        inter.original_message_id = message_id
        inter.responses.append({"type": rtype, "data": data})
        return _json_response(
            200,
            {
                "interaction": {
                    "id": str(inter.id),
                    "type": inter.type,
                    "response_message_id": str(message_id) if message_id is not None else None,
                    "response_message_loading": loading,
                    "response_message_ephemeral": ephemeral,
                    "activity_instance_id": None,
                },
                "resource": resource,
            },
        )

    def _webhook_interaction(self, app: str, token: str) -> FakeInteraction:
        inter = self._interactions_by_token.get(token)
        if inter is None or int(app) != self.app_id:
            raise _ApiError(401, 50027, "Invalid Webhook Token")
        if self.clock.now() - inter.created_at >= _INTERACTION_TOKEN_TTL:
            raise _ApiError(401, 50027, "Invalid Webhook Token")
        if not inter.acknowledged:
            raise _ApiError(404, 10015, "Unknown Webhook")
        return inter

    async def _h_webhook_execute(self, cap: CapturedRequest, app: str, token: str) -> web.Response:
        inter = self._webhook_interaction(app, token)
        payload = cap.json if isinstance(cap.json, dict) else {}
        if inter._thinking_pending and inter.original_message_id is not None:
            # Discord: after a type-5 defer, the first followup replaces the "thinking" message.
            msg = self.messages[inter.original_message_id]
            payload = {k: v for k, v in payload.items() if k != "flags"}
            self._edit_message(msg, payload, cap.files, fill=True)
            inter._thinking_pending = False
            await self._echo_update(msg)
        else:
            ephemeral = bool(int(payload.get("flags") or 0) & _FLAG_EPHEMERAL)
            msg = self._create_message(
                channel_id=inter.channel_id,
                payload=payload,
                files=cap.files,
                via="webhook",
                inter=inter,
                ephemeral=ephemeral,
            )
            inter._message_ids.append(int(msg["id"]))
            await self._echo_create(msg)
        if cap.query.get("wait") in ("1", "true", "True"):
            return _json_response(200, self._public(msg))
        return web.Response(status=204)

    def _webhook_message(self, inter: FakeInteraction, mid: str) -> dict:
        if mid == "@original":
            if inter.original_message_id is None:
                raise _ApiError(404, 10008, "Unknown Message")
            msg_id = inter.original_message_id
        else:
            msg_id = int(mid)
            if msg_id not in inter._message_ids and msg_id != inter.original_message_id:
                raise _ApiError(404, 10008, "Unknown Message")
        msg = self.messages.get(msg_id)
        if msg is None or msg["_deleted"]:
            raise _ApiError(404, 10008, "Unknown Message")
        return msg

    async def _h_webhook_get(self, cap: CapturedRequest, app: str, token: str, mid: str) -> web.Response:
        inter = self._webhook_interaction(app, token)
        return _json_response(200, self._public(self._webhook_message(inter, mid)))

    async def _h_webhook_edit(self, cap: CapturedRequest, app: str, token: str, mid: str) -> web.Response:
        inter = self._webhook_interaction(app, token)
        msg = self._webhook_message(inter, mid)
        fill = bool(msg["flags"] & _FLAG_LOADING)
        self._edit_message(msg, cap.json if isinstance(cap.json, dict) else {}, cap.files, fill=fill)
        if fill and int(msg["id"]) == inter.original_message_id:
            inter._thinking_pending = False
        await self._echo_update(msg)
        return _json_response(200, self._public(msg))

    async def _h_webhook_delete(self, cap: CapturedRequest, app: str, token: str, mid: str) -> web.Response:
        inter = self._webhook_interaction(app, token)
        msg = self._webhook_message(inter, mid)
        msg["_deleted"] = True
        if int(msg["id"]) == inter.original_message_id:
            inter._thinking_pending = False
        await self._echo_delete(msg)
        return web.Response(status=204)

    # ------------------------------------------------------------------ observation helpers

    async def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 10.0, *, what: str | None = None
    ) -> Any:
        """Poll ``predicate`` every 20 ms until it returns something truthy; return that value."""
        deadline = time.monotonic() + timeout
        last_exc: BaseException | None = None
        while True:
            try:
                value = predicate()
                if inspect.isawaitable(value):
                    value = await value
                if value:
                    return value
                last_exc = None
            except AssertionError:
                raise
            except Exception as exc:  # e.g. IndexError while the thing is not there yet
                last_exc = exc
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.02)
        desc = what
        if desc is None:
            try:
                desc = inspect.getsource(predicate).strip()
            except (OSError, TypeError):
                desc = repr(predicate)
        recent = "\n  ".join(repr(r) + (f" error={r.error}" if r.error else "") for r in self.requests[-12:])
        msgs = "\n  ".join(
            f"{m['id']} [{m['_via']}{' eph' if m['_ephemeral'] else ''}{' del' if m['_deleted'] else ''}] "
            f"{text_of(m)[:100]!r}"
            for m in list(self.messages.values())[-8:]
        )
        raise AssertionError(
            f"timed out after {timeout}s waiting for {desc}"
            + (f"\nlast exception from the predicate: {last_exc!r}" if last_exc else "")
            + f"\nconnected={self.connected.is_set()} identify_count={self.identify_count}"
            + f"\nrecent requests:\n  {recent or '(none)'}\nrecent messages:\n  {msgs or '(none)'}"
            + (f"\nfake server errors: {self.server_errors}" if self.server_errors else "")
        )

    def requests_to(self, method: str, path_regex: str) -> list[CapturedRequest]:
        rx = re.compile(path_regex)
        return [r for r in self.requests if r.method == method.upper() and rx.search(r.path)]


# route table: (method, path regex (fullmatch, decoded, no /api/v10), handler, needs bot auth)
_ROUTES: list[tuple[str, re.Pattern[str], str, bool]] = [
    (m, re.compile(p), h, a)
    for m, p, h, a in [
        ("GET", r"/users/@me", "_h_me", True),
        ("GET", r"/users/(?P<uid>\d+)", "_h_user", True),
        ("GET", r"/oauth2/applications/@me", "_h_app_info", True),
        ("GET", r"/applications/@me", "_h_app_info", True),
        ("GET", r"/gateway", "_h_gateway", False),
        ("GET", r"/gateway/bot", "_h_gateway_bot", True),
        ("PUT", r"/applications/(?P<app>\d+)/commands", "_h_put_global_commands", True),
        ("GET", r"/applications/(?P<app>\d+)/commands", "_h_get_global_commands", True),
        ("PUT", r"/applications/(?P<app>\d+)/guilds/(?P<gid>\d+)/commands", "_h_put_guild_commands", True),
        ("GET", r"/applications/(?P<app>\d+)/guilds/(?P<gid>\d+)/commands", "_h_get_guild_commands", True),
        ("POST", r"/interactions/(?P<iid>\d+)/(?P<token>[^/]+)/callback", "_h_callback", False),
        ("POST", r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)", "_h_webhook_execute", False),
        (
            "GET",
            r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)/messages/(?P<mid>@original|\d+)",
            "_h_webhook_get",
            False,
        ),
        (
            "PATCH",
            r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)/messages/(?P<mid>@original|\d+)",
            "_h_webhook_edit",
            False,
        ),
        (
            "DELETE",
            r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)/messages/(?P<mid>@original|\d+)",
            "_h_webhook_delete",
            False,
        ),
        ("GET", r"/channels/(?P<cid>\d+)", "_h_get_channel", True),
        ("POST", r"/channels/(?P<cid>\d+)/typing", "_h_typing", True),
        ("POST", r"/channels/(?P<cid>\d+)/messages", "_h_create_message", True),
        ("GET", r"/channels/(?P<cid>\d+)/messages", "_h_history", True),
        ("GET", r"/channels/(?P<cid>\d+)/messages/(?P<mid>\d+)", "_h_get_message", True),
        ("PATCH", r"/channels/(?P<cid>\d+)/messages/(?P<mid>\d+)", "_h_edit_message", True),
        ("DELETE", r"/channels/(?P<cid>\d+)/messages/(?P<mid>\d+)", "_h_delete_message", True),
        ("DELETE", r"/channels/(?P<cid>\d+)/messages/(?P<mid>\d+)/reactions", "_h_clear_reactions", True),
        (
            "GET",
            r"/channels/(?P<cid>\d+)/messages/(?P<mid>\d+)/reactions/(?P<emoji>[^/]+)",
            "_h_reaction_users",
            True,
        ),
        (
            "PUT",
            r"/channels/(?P<cid>\d+)/messages/(?P<mid>\d+)/reactions/(?P<emoji>[^/]+)/(?P<who>@me|\d+)",
            "_h_put_reaction",
            True,
        ),
        (
            "DELETE",
            r"/channels/(?P<cid>\d+)/messages/(?P<mid>\d+)/reactions/(?P<emoji>[^/]+)/(?P<who>@me|\d+)",
            "_h_delete_reaction",
            True,
        ),
        ("GET", r"/guilds/(?P<gid>\d+)", "_h_get_guild", True),
        ("GET", r"/guilds/(?P<gid>\d+)/members/(?P<uid>\d+)", "_h_get_member", True),
        ("GET", r"/guilds/(?P<gid>\d+)/members", "_h_list_members", True),
        ("GET", r"/guilds/(?P<gid>\d+)/channels", "_h_guild_channels", True),
        ("GET", r"/guilds/(?P<gid>\d+)/roles", "_h_guild_roles", True),
        ("GET", r"/guilds/(?P<gid>\d+)/threads/active", "_h_active_threads", True),
    ]
]
