"""Interactions: what a member does (``slash``, ``click``, ``react``), and the bot's answers to it
(the callback, followups and edits through the interaction webhook).

Rules enforced, from receiving-and-responding.mdx:

* the first callback must come within ``fake.response_deadline`` seconds (real time; Discord: 3 s),
  else 404 10062 Unknown interaction; a second callback is 400 40060 already acknowledged;
* callback types per interaction type (6 and 7 only for component interactions, 8 only for
  autocomplete, 9 not for modal submits), callback data checked like a message (limits.py), type 5
  may carry only the EPHEMERAL flag; with ``with_response`` the answer is the interaction callback
  object, without it 204;
* the interaction token (webhook routes) lives 15 minutes on the fake clock, then 401 50027;
* followups: no ``thread_id``, ``username`` or ``avatar_url``; ``wait`` is always true; the first
  followup after a type-5 defer fills the "thinking" message instead of creating one (and keeps its
  ephemeral state).
"""

from __future__ import annotations

import copy
import logging
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import limits
from .common import (
    ADMINISTRATOR,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    INTERACTION_TOKEN_TTL,
    OPT_ATTACHMENT,
    OPT_BOOLEAN,
    OPT_CHANNEL,
    OPT_INTEGER,
    OPT_MENTIONABLE,
    OPT_NUMBER,
    OPT_ROLE,
    OPT_STRING,
    OPT_SUB_COMMAND,
    OPT_SUB_COMMAND_GROUP,
    OPT_USER,
    USE_APPLICATION_COMMANDS,
    ApiError,
    CapturedRequest,
    CommandHidden,
    find_component,
    json_response,
    truthy_query,
)
from .views import Msg

if TYPE_CHECKING:
    from .server import FakeDiscord
    from .state import Guild

log = logging.getLogger("tests.fakes.discord")


class FakeInteraction:
    """One interaction the fake dispatched, and everything the bot did with it.

    Raw: ``responses`` (callback bodies), ``reply_messages()`` (message dicts). Typed: ``original``
    (the callback's message, or the clicked message for types 6/7), ``followups``, ``replies``
    (both, in order), ``wait_message()``.
    """

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
    def guild_id(self) -> int | None:
        """The guild it came from (None in a DM)."""
        gid = self.payload.get("guild_id")
        return int(gid) if gid else None

    @property
    def acknowledged(self) -> bool:
        return self.response_type is not None

    @property
    def callback_type(self) -> int | None:
        """4 message, 5 deferred with "thinking", 6 deferred update, 7 update, 8 choices, 9 modal."""
        return self.response_type

    async def wait_response(self, timeout: float = 5.0) -> dict:
        return await self._fake.wait_for(
            lambda: self.responses[0] if self.responses else None,
            timeout,
            what=f"a callback for {self!r}",
        )

    def reply_messages(self) -> list[dict]:
        """Messages created for this interaction (callback 4, the type-5 original, followups), in order."""
        return [self._fake.messages[mid] for mid in self._message_ids]

    @property
    def replies(self) -> list[Msg]:
        """Typed ``reply_messages()``: the original response (if it is a new message) and followups."""
        return [Msg(self._fake, m) for m in self.reply_messages()]

    @property
    def original(self) -> Msg | None:
        """The original response: the callback's message, or the clicked message after 6/7."""
        if self.original_message_id is None:
            return None
        return Msg(self._fake, self._fake.messages[self.original_message_id])

    @property
    def followups(self) -> list[Msg]:
        """Messages created by followups (the one that filled a "thinking" original is the original)."""
        return [
            Msg(self._fake, self._fake.messages[m])
            for m in self._message_ids
            if m != self.original_message_id
        ]

    async def wait_reply(self, predicate: Callable[[dict], Any] | None = None, timeout: float = 10.0) -> dict:
        def probe() -> dict | None:
            for msg in self.reply_messages():
                if msg["flags"] & FLAG_LOADING:
                    continue  # still "thinking"
                if not (
                    msg.get("content") or msg.get("embeds") or msg.get("attachments") or msg.get("components")
                ):
                    continue
                if predicate is None or predicate(msg):
                    return msg
            return None

        return await self._fake.wait_for(probe, timeout, what=f"a reply to {self!r}")

    async def wait_message(self, predicate: Callable[[Msg], Any] | None = None, timeout: float = 10.0) -> Msg:
        """The first non-empty, non-"thinking" reply (matching ``predicate``), as a ``Msg``."""
        raw = await self.wait_reply(
            (lambda m: predicate(Msg(self._fake, m))) if predicate is not None else None, timeout
        )
        return Msg(self._fake, raw)


class InteractionsMixin:
    app_id: int
    guild_id: int
    channel_id: int
    bot_user_id: int
    response_deadline: float
    callback_answer_without_message_id: bool
    attachment_size_limit: int
    messages: dict[int, dict]
    synced_commands: dict[str, list[dict]]
    _users: dict[int, dict]
    _channels: dict[int, dict]
    _dms: dict[int, dict]
    # guilds, guild(), guild_of() and the permission helpers come from state.py

    def _init_interactions(self) -> None:
        self.interactions: dict[int, FakeInteraction] = {}
        self._interactions_by_token: dict[str, FakeInteraction] = {}

    # ------------------------------------------------------------------ dispatch

    def _channel_for_interaction(self, channel_id: int) -> dict:
        ch = self._channels.get(channel_id) or self._dms.get(channel_id)
        if ch is None:
            raise AssertionError(f"unknown channel {channel_id}")
        return copy.deepcopy(ch)

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
        guild = self.guild_of(channel_id)
        await self._ensure_connected(guild.guild_id if guild is not None else None)
        iid = self._snowflake()
        token = f"itok-{iid}-{secrets.token_hex(8)}"
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.app_id),
            "type": itype,
            "data": data,
            "token": token,
            "version": 1,
            "channel_id": str(channel_id),
            "channel": self._channel_for_interaction(channel_id),
            "locale": "en-US",
            "app_permissions": str(self._app_permissions(channel_id)),
            "entitlements": [],
            "attachment_size_limit": self.attachment_size_limit,
        }
        if guild is None:
            # receiving-and-responding.mdx: "user" instead of "member" in a DM; the GUILD_INSTALL
            # owner is "0" in a DM with the bot; context 1 is BOT_DM
            payload.update(
                {"user": self._users[uid], "authorizing_integration_owners": {"0": "0"}, "context": 1}
            )
        else:
            gid = str(guild.guild_id)
            payload.update(
                {
                    "guild_id": gid,
                    "guild": {"id": gid, "locale": "en-US", "features": []},
                    "member": self._member_obj(
                        uid, with_permissions=True, channel_id=channel_id, guild=guild
                    ),
                    "guild_locale": "en-US",
                    "authorizing_integration_owners": {"0": gid},
                    "context": 0,
                }
            )
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

    def _convert_option(
        self, opt: dict, value: Any, resolved: dict, path: str, guild: Guild | None = None
    ) -> Any:
        g = guild if guild is not None else self.default_guild
        t = opt["type"]
        name = opt["name"]
        if t == OPT_STRING:
            value = str(value)
            if "min_length" in opt and len(value) < opt["min_length"]:
                raise AssertionError(f"{path} {name}: shorter than min_length {opt['min_length']}")
            if "max_length" in opt and len(value) > opt["max_length"]:
                raise AssertionError(f"{path} {name}: longer than max_length {opt['max_length']}")
        elif t in (OPT_INTEGER, OPT_NUMBER):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise AssertionError(f"{path} {name}: expected a number, got {value!r}")
            value = int(value) if t == OPT_INTEGER else float(value)
            if opt.get("min_value") is not None and value < opt["min_value"]:
                raise AssertionError(f"{path} {name}: below min_value {opt['min_value']}")
            if opt.get("max_value") is not None and value > opt["max_value"]:
                raise AssertionError(f"{path} {name}: above max_value {opt['max_value']}")
        elif t == OPT_BOOLEAN:
            value = bool(value)
        elif t in (OPT_USER, OPT_MENTIONABLE) and not (t == OPT_MENTIONABLE and self._is_role(value, g)):
            uid = self._user_id(value)
            resolved.setdefault("users", {})[str(uid)] = self._users[uid]
            if uid in g._members:
                resolved.setdefault("members", {})[str(uid)] = self._member_obj(
                    uid, with_user=False, with_permissions=True, guild=g
                )
            value = str(uid)
        elif t in (OPT_ROLE, OPT_MENTIONABLE):
            rid = self._role_id(value, g)
            resolved.setdefault("roles", {})[str(rid)] = g._roles[rid]
            value = str(rid)
        elif t == OPT_CHANNEL:
            cid = self._channel_id_of(value, g)
            ch = self._channels[cid]
            if opt.get("channel_types") and ch["type"] not in opt["channel_types"]:
                raise AssertionError(
                    f"{path} {name}: channel type {ch['type']} not in {opt['channel_types']}"
                )
            rch = {k: ch[k] for k in ("id", "name", "type", "parent_id") if k in ch}
            rch["permissions"] = str(self._app_permissions(cid))
            if "thread_metadata" in ch:
                rch["thread_metadata"] = ch["thread_metadata"]
            resolved.setdefault("channels", {})[str(cid)] = rch
            value = str(cid)
        elif t == OPT_ATTACHMENT:
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

    def _is_role(self, value: Any, g: Guild) -> bool:
        if isinstance(value, int):
            return value in g._roles
        return any(r["name"] == value for r in g._roles.values())

    def _role_id(self, value: Any, g: Guild) -> int:
        if isinstance(value, int) and value in g._roles:
            return value
        for rid, r in g._roles.items():
            if r["name"] == value:
                return rid
        raise AssertionError(f"unknown role {value!r} in {g!r}")

    def _channel_id_of(self, value: Any, g: Guild) -> int:
        mine = {cid: ch for cid, ch in self._channels.items() if ch.get("guild_id") == str(g.guild_id)}
        if isinstance(value, int) and value in mine:
            return value
        for cid, ch in mine.items():
            if ch["name"] == value:
                return cid
        raise AssertionError(f"unknown channel {value!r} in {g!r}")

    async def slash(
        self,
        command: str,
        *,
        user: str | int = "alice",
        channel_id: int | None = None,
        enforce_permissions: bool = True,
        dm: bool = False,
        opts: dict[str, Any] | None = None,
        **options: Any,
    ) -> FakeInteraction:
        """Send a slash command; options as keywords, or in `opts` (for an option named like a keyword, e.g. user).

        ``channel_id``: a channel or thread of any guild (default: ``fake.channel_id``); the command is
        looked up in that guild's commands then the global ones, and arrives with that guild's id and
        the member's object and permissions there (the user must be a member of it).
        ``dm=True``: in the member's DM with the bot. Discord offers only global commands there, and
        only those whose ``contexts`` include BOT_DM (1), or, with ``contexts`` null, whose
        ``dm_permission`` is not false; ``enforce_permissions=False`` sends it anyway (to test the
        bot's own refusal)."""
        if opts:
            options = {**options, **opts}
        parts = command.strip().lstrip("/").split()
        if not parts:
            raise AssertionError("empty command")
        uid = self._user_id(user)
        if dm:
            if channel_id is not None:
                raise AssertionError("pass either dm=True or channel_id")
            channel_id = self.dm_channel(uid)
        cid = channel_id if channel_id is not None else self.channel_id
        guild = self.guild_of(cid)
        if guild is not None and uid not in guild._members:
            raise AssertionError(f"{user!r} is not a member of {guild!r}, the guild of channel {cid}")
        cmd = self._find_command(
            parts[0], dm=guild is None, guild_id=guild.guild_id if guild is not None else None
        )
        if self.is_dm(cid):
            contexts = cmd.get("contexts")
            offered = (1 in contexts) if contexts is not None else cmd.get("dm_permission") is not False
            if enforce_permissions and not offered:
                raise CommandHidden(f"/{parts[0]} is not offered in DMs (contexts={contexts})")
        elif enforce_permissions:
            perms = self.member_permissions(uid, guild)
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
        data = self._command_data(command, cmd, options, guild)
        return await self._send_interaction(itype=2, uid=uid, channel_id=cid, data=data, command=command)

    def _command_data(
        self,
        command: str,
        cmd: dict,
        options: dict[str, Any],
        guild: Guild | None,
        focused: str | None = None,
    ) -> dict[str, Any]:
        """The interaction `data` of a command with its options (the `focused` one sent as typed, for
        autocomplete: receiving-and-responding.mdx, "the value of the focused option is a partial string")."""
        parts = command.strip().lstrip("/").split()
        node = cmd
        data: dict[str, Any] = {"id": cmd["id"], "name": cmd["name"], "type": 1}
        if cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        container = data
        for part in parts[1:]:
            subs = [
                o for o in node.get("options") or [] if o["type"] in (OPT_SUB_COMMAND, OPT_SUB_COMMAND_GROUP)
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
        if any(o["type"] in (OPT_SUB_COMMAND, OPT_SUB_COMMAND_GROUP) for o in leaf_opts):
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
            if name == focused:
                if not opt.get("autocomplete"):
                    raise AssertionError(f"/{command} {name}: this option has no autocomplete")
                values.append({"type": opt["type"], "name": name, "value": str(value), "focused": True})
                continue
            values.append(
                {
                    "type": opt["type"],
                    "name": name,
                    "value": self._convert_option(opt, value, resolved, f"/{command}", guild),
                }
            )
        given = {v["name"] for v in values}
        missing = [o["name"] for o in leaf_opts if o.get("required") and o["name"] not in given]
        if missing and focused is None:
            raise AssertionError(f"/{command}: required option(s) missing: {missing}")
        container.setdefault("options", []).extend(values)
        if resolved:
            data["resolved"] = resolved
        return data

    async def autocomplete(
        self,
        command: str,
        option: str,
        typed: str | int = "",
        *,
        user: str | int = "alice",
        channel_id: int | None = None,
        **options: Any,
    ) -> list[dict]:
        """A member typing `typed` into `option` of `command` (the other options as already filled): an
        APPLICATION_COMMAND_AUTOCOMPLETE interaction; returns the choices the bot answered with (callback 8)."""
        uid = self._user_id(user)
        cid = channel_id if channel_id is not None else self.channel_id
        guild = self.guild_of(cid)
        cmd = self._find_command(
            command.strip().lstrip("/").split()[0],
            dm=guild is None,
            guild_id=guild.guild_id if guild is not None else None,
        )
        data = self._command_data(command, cmd, {**options, option: typed}, guild, focused=option)
        inter = await self._send_interaction(itype=4, uid=uid, channel_id=cid, data=data, command=command)
        response = await inter.wait_response()
        assert response["type"] == 8, response
        return list(response["data"].get("choices") or [])

    async def submit_modal(
        self, inter: FakeInteraction, values: dict[str, str], *, user: str | int | None = None
    ) -> FakeInteraction:
        """Fill in and submit the modal the bot answered `inter` with (callback 9): `values` by text input
        label or custom id. A MODAL_SUBMIT interaction from the same member (a modal is theirs alone)."""
        response = await inter.wait_response()
        if response["type"] != 9:
            raise AssertionError(f"{inter!r} was answered with type {response['type']}, not a modal")
        modal = response["data"]
        rows = []
        for row in modal.get("components") or []:
            for comp in row.get("components") or []:
                key = comp.get("label") if comp.get("label") in values else comp["custom_id"]
                value = values.get(key, "")
                if comp.get("required", True) and not value:
                    raise AssertionError(f"the modal's {key!r} is required")
                rows.append(
                    {"type": 1, "components": [{"type": 4, "custom_id": comp["custom_id"], "value": value}]}
                )
        uid = self._user_id(user) if user is not None else inter.user_id
        if uid != inter.user_id:
            raise AssertionError("a modal is submitted by the member it was shown to")
        data = {"custom_id": modal["custom_id"], "components": rows}
        return await self._send_interaction(itype=5, uid=uid, channel_id=inter.channel_id, data=data)

    async def click(
        self, message_id: int, custom_id: str, *, user: str | int = "alice", values: list[str] | None = None
    ) -> FakeInteraction:
        msg = self.messages.get(int(message_id))
        if msg is None or msg["_deleted"]:
            raise AssertionError(f"message {message_id} does not exist (or was deleted)")
        comp = find_component(msg.get("components") or [], custom_id)
        if comp is None:
            raise AssertionError(f"message {message_id} has no component {custom_id!r}")
        if comp.get("disabled"):
            raise AssertionError(f"component {custom_id!r} on message {message_id} is disabled")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": comp.get("type", 2)}
        if comp.get("type") in (3, 5, 6, 7, 8):
            data["values"] = list(values or [])
        uid = self._user_id(user)
        self._check_member_of_channel(uid, msg["channel_id"], user)
        return await self._send_interaction(
            itype=3, uid=uid, channel_id=int(msg["channel_id"]), data=data, message=msg
        )

    async def forged_click(
        self, custom_id: str, *, channel_id: int, like: dict, user: str | int = "alice"
    ) -> FakeInteraction:
        """A button click whose custom id the bot never posted there, as a modified client can send one: the
        interaction arrives in `channel_id` on a copy of message `like` carrying `custom_id`."""
        msg = copy.deepcopy(self._public(like))
        msg["channel_id"] = str(channel_id)
        msg["components"] = [
            {"type": 1, "components": [{"type": 2, "style": 1, "label": "x", "custom_id": custom_id}]}
        ]
        uid = self._user_id(user)
        self._check_member_of_channel(uid, channel_id, user)
        data = {"custom_id": custom_id, "component_type": 2}
        return await self._send_interaction(itype=3, uid=uid, channel_id=channel_id, data=data, message=msg)

    async def react(self, message_id: int, emoji: str = "🔁", *, user: str | int = "alice") -> None:
        msg = self.messages.get(int(message_id))
        if msg is None or msg["_deleted"] or msg["_ephemeral"]:
            raise AssertionError(f"message {message_id} cannot be reacted to (missing, deleted or ephemeral)")
        if self.is_dm(msg["channel_id"]) and self.dm_recipient(msg["channel_id"]) != self._user_id(user):
            raise AssertionError(f"{user!r} cannot see DM message {message_id}")
        self._check_member_of_channel(self._user_id(user), msg["channel_id"], user)
        guild = self.guild_of(msg["channel_id"])
        await self._ensure_connected(guild.guild_id if guild is not None else None)
        await self._add_reaction(int(message_id), self._norm_emoji(emoji), self._user_id(user))

    async def unreact(self, message_id: int, emoji: str = "🔁", *, user: str | int = "alice") -> None:
        await self._remove_reaction(int(message_id), self._norm_emoji(emoji), self._user_id(user))

    # ------------------------------------------------------------------ REST: callback

    async def _h_callback(
        self, cap: CapturedRequest, interaction_id: str, interaction_token: str
    ) -> web.Response:
        inter = self.interactions.get(int(interaction_id))
        if inter is None or inter.token != interaction_token:
            raise ApiError(404, 10062, "Unknown interaction")
        if inter.acknowledged:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        elapsed = time.monotonic() - (inter.dispatched_at or 0.0)
        if elapsed > self.response_deadline:
            log.info("callback for %r came %.2fs after dispatch: Unknown interaction", inter, elapsed)
            raise ApiError(404, 10062, "Unknown interaction")
        body = cap.json if isinstance(cap.json, dict) else {}
        rtype = body.get("type")
        limits.check_callback_type(rtype, inter.type, from_message=inter.message_id is not None)
        data = body.get("data") or {}
        ephemeral = bool(int(data.get("flags") or 0) & FLAG_EPHEMERAL)
        resource: dict[str, Any] = {"type": rtype}
        message_id: int | None = None
        loading = False
        mtype = 20 if inter.type == 2 else 0
        if rtype == 4:
            msg = self._create_message(
                channel_id=inter.channel_id,
                payload=data,
                files=cap.files,
                via="callback",
                inter=inter,
                ephemeral=ephemeral,
                mtype=mtype,
                op="callback",
            )
            message_id = int(msg["id"])
            inter._message_ids.append(message_id)
            resource["message"] = self._public(msg)
            await self._echo_create(msg)
        elif rtype == 5:
            limits.validate_message_body(data, op="deferred")
            msg = self._create_message(
                channel_id=inter.channel_id,
                payload={"flags": 0},
                files=[],
                via="callback",
                inter=inter,
                ephemeral=ephemeral,
                loading=True,
                mtype=mtype,
                op=None,
            )
            message_id = int(msg["id"])
            loading = True
            inter._message_ids.append(message_id)
            inter._thinking_pending = True
            resource["message"] = self._public(msg)
            await self._echo_create(msg)
        elif rtype in (6, 7):
            assert inter.message_id is not None
            msg = self.messages[inter.message_id]
            message_id = inter.message_id
            ephemeral = msg["_ephemeral"]
            if rtype == 7:
                self._edit_message(msg, data, cap.files, op="update")
                resource["message"] = self._public(msg)
                await self._echo_update(msg)
        elif rtype == 9:
            limits.check_modal(data)
        elif rtype == 8:
            limits.check_autocomplete(data)
        inter.response_type = rtype
        inter.original_message_id = message_id
        inter.responses.append({"type": rtype, "data": data})
        if not truthy_query(cap.query.get("with_response")):
            return web.Response(status=204)
        if self.callback_answer_without_message_id:
            message_id = None
            resource.pop("message", None)
        return json_response(
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

    # ------------------------------------------------------------------ REST: interaction webhook

    def _webhook_interaction(self, app: str, token: str) -> FakeInteraction:
        inter = self._interactions_by_token.get(token)
        if inter is None or int(app) != self.app_id:
            raise ApiError(401, 50027, "Invalid Webhook Token")
        if self.clock.now() - inter.created_at >= INTERACTION_TOKEN_TTL:
            raise ApiError(401, 50027, "Invalid Webhook Token")
        if not inter.acknowledged:
            raise ApiError(404, 10015, "Unknown Webhook")
        return inter

    async def _h_webhook_execute(
        self, cap: CapturedRequest, webhook_id: str, webhook_token: str
    ) -> web.Response:
        inter = self._webhook_interaction(webhook_id, webhook_token)
        payload = cap.json if cap.json is not None else {}
        limits.check_followup(payload, cap.query)
        limits.validate_message_body(payload, op="followup", files=cap.files)
        if inter._thinking_pending and inter.original_message_id is not None:
            # Discord: after a type-5 defer, the first followup replaces the "thinking" message
            # (deprecated behaviour; the ephemeral flag of the defer is kept).
            msg = self.messages[inter.original_message_id]
            payload = {k: v for k, v in payload.items() if k != "flags"}
            self._edit_message(msg, payload, cap.files, fill=True, op="webhook_edit")
            inter._thinking_pending = False
            await self._echo_update(msg)
        else:
            ephemeral = bool(int(payload.get("flags") or 0) & FLAG_EPHEMERAL)
            msg = self._create_message(
                channel_id=inter.channel_id,
                payload=payload,
                files=cap.files,
                via="webhook",
                inter=inter,
                ephemeral=ephemeral,
                op=None,
            )
            inter._message_ids.append(int(msg["id"]))
            await self._echo_create(msg)
        # receiving-and-responding.mdx: for interaction followups "wait is always true"
        return json_response(200, self._public(msg))

    def _webhook_message(self, inter: FakeInteraction, mid: str) -> dict:
        if mid == "@original":
            if inter.original_message_id is None:
                raise ApiError(404, 10008, "Unknown Message")
            msg_id = inter.original_message_id
        else:
            msg_id = int(mid)
            if msg_id not in inter._message_ids and msg_id != inter.original_message_id:
                raise ApiError(404, 10008, "Unknown Message")
        msg = self.messages.get(msg_id)
        if msg is None or msg["_deleted"]:
            raise ApiError(404, 10008, "Unknown Message")
        return msg

    async def _h_webhook_get(
        self, cap: CapturedRequest, webhook_id: str, webhook_token: str, message_id: str
    ) -> web.Response:
        inter = self._webhook_interaction(webhook_id, webhook_token)
        return json_response(200, self._public(self._webhook_message(inter, message_id)))

    async def _h_webhook_edit(
        self, cap: CapturedRequest, webhook_id: str, webhook_token: str, message_id: str
    ) -> web.Response:
        inter = self._webhook_interaction(webhook_id, webhook_token)
        msg = self._webhook_message(inter, message_id)
        fill = bool(msg["flags"] & FLAG_LOADING)
        payload = cap.json if cap.json is not None else {}
        if not isinstance(payload, dict):
            raise ApiError(400, 50035, "Invalid Form Body")
        self._edit_message(msg, payload, cap.files, fill=fill, op="webhook_edit")
        if fill and int(msg["id"]) == inter.original_message_id:
            inter._thinking_pending = False
        await self._echo_update(msg)
        return json_response(200, self._public(msg))

    async def _h_webhook_delete(
        self, cap: CapturedRequest, webhook_id: str, webhook_token: str, message_id: str
    ) -> web.Response:
        inter = self._webhook_interaction(webhook_id, webhook_token)
        msg = self._webhook_message(inter, message_id)
        msg["_deleted"] = True
        if int(msg["id"]) == inter.original_message_id:
            inter._thinking_pending = False
        await self._echo_delete(msg)
        return web.Response(status=204)
