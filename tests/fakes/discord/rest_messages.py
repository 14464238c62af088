"""Messages: making and changing them (shared by channel routes, interaction callbacks and webhooks),
the channel message routes, history, reactions, and messages posted by members.

Stored messages are dicts in Discord's message shape plus bookkeeping keys starting with ``_``
(``_via``, ``_ephemeral``, ``_deleted``, ``_edits``, ``_files``, ``_pinged``, ``_allowed_mentions``,
``_interaction_id``); ``_public`` strips those before anything goes to the bot.

Behaviour worth knowing:

* bodies are checked against Discord's limits (limits.py) before anything is stored;
* ``nonce`` + ``enforce_nonce: true`` on POST /channels/{id}/messages: if the same author created a
  message with the same nonce within ``fake.nonce_window`` seconds (fake clock; Discord says "the past
  few minutes"), that message is answered again (200) and no new one is created or dispatched
  (message.mdx, Create Message);
* mentions: ``allowed_mentions`` defaults to everything for bot-token messages and to users only for
  interaction responses and webhooks (message.mdx, Default Settings for Allowed Mentions); an edit
  that changes ``content`` re-parses mentions from its own ``allowed_mentions`` or the default;
* GET /channels/{id}/messages answers newest first whatever the query (message.mdx, Get Channel
  Messages); ``after`` gives the ``limit`` messages right after the id, ``before`` the ``limit`` right
  before, ``around`` ``limit // 2`` older ones, the message and newer ones; without
  READ_MESSAGE_HISTORY the answer is ``[]``, without VIEW_CHANNEL 403 50001.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import limits
from .common import (
    ADD_REACTIONS,
    ATTACH_FILES,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    INTENT_DIRECT_MESSAGE_REACTIONS,
    INTENT_DIRECT_MESSAGES,
    MANAGE_MESSAGES,
    MENTION_EVERYONE,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    SEND_MESSAGES_IN_THREADS,
    VIEW_CHANNEL,
    ApiError,
    CapturedFile,
    CapturedRequest,
    form_error,
    guess_type,
    image_dims,
    iso,
    json_response,
)
from .views import Msg

if TYPE_CHECKING:
    from .rest_interactions import FakeInteraction

log = logging.getLogger("tests.fakes.discord")

EMBED_IMAGE_EXTS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".webp",
    ".gif",
)  # reference.mdx, Using Attachments within Embeds
DEFAULT_NONCE_WINDOW = 180.0


class MessagesMixin:
    # state, cdn and gateway pieces used here (see state.py, cdn.py, gateway.py)
    bot_user_id: int
    guild_id: int
    messages: dict[int, dict]
    reactions: dict[int, list[tuple[str, int]]]
    _users: dict[int, dict]
    _channels: dict[int, dict]
    # guild_of() (a channel's guild, None for DMs) and the permission helpers come from state.py
    _dms: dict[int, dict]
    dms_closed: set[int]

    def _init_messages(self) -> None:
        self.nonce_window: float = DEFAULT_NONCE_WINDOW
        self._nonces: dict[tuple[int, str], tuple[int, float]] = {}

    # ------------------------------------------------------------------ lookups

    def _channel(self, cid: int | str) -> dict:
        ch = self._channels.get(int(cid)) or self._dms.get(int(cid))
        if ch is None:
            raise ApiError(404, 10003, "Unknown Channel")
        return ch

    def _check_member_of_channel(self, uid: int, channel_id: int | str, user: str | int) -> None:
        guild = self.guild_of(channel_id)
        if guild is not None and uid not in guild._members:
            raise AssertionError(f"{user!r} is not a member of {guild!r}, the guild of channel {channel_id}")

    def _dm_intent(self, channel_id: int | str, dm_intent: int) -> int | None:
        return dm_intent if self.is_dm(channel_id) else None

    def _channel_msg(self, cid: str | int, mid: str | int) -> dict:
        self._channel(cid)
        msg = self.messages.get(int(mid))
        if msg is None or msg["_deleted"] or msg["_ephemeral"] or msg["channel_id"] != str(int(cid)):
            raise ApiError(404, 10008, "Unknown Message")
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

    def _require_bot(self, perm: int, what: str, channel_id: int | None = None) -> None:
        if not self._bot_has(perm, channel_id):
            log.info("bot lacks %s (%s) in %s", what, perm, channel_id)
            raise ApiError(403, 50013, "Missing Permissions")

    def _require_view(self, channel_id: int) -> None:
        if not self._bot_has(VIEW_CHANNEL, channel_id):
            raise ApiError(403, 50001, "Missing Access")

    # ------------------------------------------------------------------ payloads

    def _owner_key(self, channel_id: int | str) -> str:
        """authorizing_integration_owners["0"]: the guild's id, "0" in a DM with the bot."""
        guild = self.guild_of(channel_id)
        return str(guild.guild_id) if guild is not None else "0"

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
        guild = self.guild_of(msg["channel_id"])
        if guild is None:
            return d
        d["guild_id"] = str(guild.guild_id)
        author = int(msg["author"]["id"])
        if author in guild._members:
            d["member"] = self._member_obj(author, with_user=False, guild=guild)
        return d

    def _compute_mentions(self, msg: dict) -> None:
        """Who the message notifies, from its content and allowed_mentions (message.mdx, Allowed
        Mentions Object). Sets ``mentions``, ``mention_roles``, ``mention_everyone`` and ``_pinged``."""
        content = msg.get("content") or ""
        am = msg.get("_allowed_mentions")
        if am is None and msg["_via"] in ("callback", "webhook"):
            am = {"parse": ["users"]}  # the default for interactions and webhooks
        parse = None if am is None else (am.get("parse") or [])
        author = int(msg["author"]["id"])
        guild = self.guild_of(msg["channel_id"])
        can_everyone = not self.is_dm(msg["channel_id"]) and bool(
            self.channel_permissions(author, int(msg["channel_id"])) & MENTION_EVERYONE
        )
        pinged = False
        everyone = False
        wants_everyone = "@everyone" in content or "@here" in content
        if wants_everyone and (am is None or "everyone" in parse) and can_everyone:
            everyone = pinged = True
        mentions: list[dict] = []
        for sid in dict.fromkeys(re.findall(r"<@!?(\d+)>", content)):
            if am is None or "users" in parse or sid in [str(u) for u in (am.get("users") or [])]:
                pinged = True
                uid = int(sid)
                if uid in self._users:
                    u = dict(self._users[uid])
                    if guild is not None and uid in guild._members:
                        u["member"] = self._member_obj(uid, with_user=False, guild=guild)
                    mentions.append(u)
        roles: list[str] = []
        for sid in dict.fromkeys(re.findall(r"<@&(\d+)>", content)):
            if am is None or "roles" in parse or sid in [str(r) for r in (am.get("roles") or [])]:
                pinged = True
                roles.append(sid)
        ref = msg.get("referenced_message")
        replied_other = ref and int(ref["author"]["id"]) != author
        if replied_other and (am is None or am.get("replied_user", False)):
            pinged = True
        msg["mention_everyone"] = everyone
        msg["mentions"] = mentions
        msg["mention_roles"] = roles
        msg["_pinged"] = pinged

    def _build_attachments(
        self,
        payload: dict,
        files: list[CapturedFile],
        existing: list[dict] | None,
        channel_id: int,
        ephemeral: bool,
        *,
        edit: bool = False,
    ) -> list[dict]:
        """The message's attachments after this request. reference.mdx, Editing Message Attachments:
        on a PATCH with ``attachments`` only the listed files (kept or new) are on the message; without
        it new files are appended; a create attaches every uploaded file."""
        by_index: dict[str, CapturedFile] = {}
        for pos, f in enumerate(files):
            m = re.fullmatch(r"files\[(\w+)\]", f.field_name or "")
            by_index[m.group(1) if m else str(pos)] = f
        used: set[str] = set()

        def new_att(f: CapturedFile, meta: dict) -> dict:
            att_id = self._snowflake()
            filename = meta.get("filename") or f.filename
            ctype = guess_type(filename, f.content_type)
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
                w, h = image_dims(f.data)
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
                    raise form_error(f"attachments.{i}.id", "ATTACHMENT_NOT_FOUND", "Unknown attachment")
        else:
            out.extend(existing or [])
        listed_only = edit and payload.get("attachments") is not None
        for key, f in by_index.items():
            if key not in used and not listed_only:
                out.append(new_att(f, {}))
        return out

    def _resolve_embed_attachments(self, msg: dict) -> None:
        urls = {a["filename"]: a["url"] for a in msg.get("attachments") or []}
        for emb in msg.get("embeds") or []:
            for key in ("image", "thumbnail"):
                sub = emb.get(key)
                if isinstance(sub, dict) and str(sub.get("url", "")).startswith("attachment://"):
                    name = sub["url"][len("attachment://") :]
                    if name in urls and name.lower().endswith(EMBED_IMAGE_EXTS):
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
        author_id: int | None = None,
        op: str | None = "create",
    ) -> dict:
        """Validate (unless ``op`` is None) and store a new message; the caller dispatches it."""
        if op is not None:
            limits.validate_message_body(payload, op=op, files=files)
        if not isinstance(payload, dict):
            raise ApiError(400, 50035, "Invalid Form Body")
        author = self.bot_user_id if author_id is None else author_id
        mid = self._snowflake()
        flags = int(payload.get("flags") or 0) & ~(FLAG_EPHEMERAL | FLAG_LOADING)
        if ephemeral:
            flags |= FLAG_EPHEMERAL
        if loading:
            flags |= FLAG_LOADING
        msg: dict[str, Any] = {
            "id": str(mid),
            "channel_id": str(channel_id),
            "author": self._users[author],
            "content": payload.get("content") or "",
            "embeds": copy.deepcopy(payload.get("embeds") or []),
            "components": copy.deepcopy(payload.get("components") or []),
            "attachments": [],
            "timestamp": iso(self.clock.now()),
            "edited_timestamp": None,
            "flags": flags,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "pinned": False,
            "tts": bool(payload.get("tts")),
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
                    raise form_error(
                        "message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                    )
                msg["message_reference"] = dict(ref)
            else:
                full_ref = {
                    "type": ref.get("type", 0),
                    "message_id": str(ref_id),
                    "channel_id": target["channel_id"],
                }
                target_guild = self.guild_of(target["channel_id"])
                if target_guild is not None:
                    full_ref["guild_id"] = str(target_guild.guild_id)
                if "fail_if_not_exists" in ref:
                    full_ref["fail_if_not_exists"] = ref["fail_if_not_exists"]
                msg["message_reference"] = full_ref
                msg["referenced_message"] = self._public(target)
                if msg["type"] == 0:
                    msg["type"] = 19
        if via in ("callback", "webhook"):
            msg["webhook_id"] = str(self.app_id)
            msg["application_id"] = str(self.app_id)
        if inter is not None:
            meta: dict[str, Any] = {
                "id": str(inter.id),
                "type": inter.type,
                "user": self._users[inter.user_id],
                "authorizing_integration_owners": {"0": self._owner_key(channel_id)},
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
        self.messages[mid] = msg
        ch = self._channels.get(channel_id) or self._dms.get(channel_id)
        if ch is not None and not ephemeral:
            ch["last_message_id"] = str(mid)
            if ch["type"] == 11:
                ch["message_count"] += 1
                ch["total_message_sent"] += 1
        return msg

    def _edit_message(
        self, msg: dict, payload: dict, files: list[CapturedFile], *, fill: bool = False, op: str = "edit"
    ) -> dict:
        """Validate and apply an edit (``op``: "edit", "update" (callback 7) or "webhook_edit")."""
        limits.validate_message_body(
            payload,
            op=op,
            files=files,
            old_flags=msg["flags"] & ~(FLAG_EPHEMERAL | FLAG_LOADING),
            existing_attachment_ids={a["id"] for a in msg.get("attachments") or []},
        )
        new = copy.copy(msg)
        if "content" in payload:
            new["content"] = payload["content"] or ""
        if "embeds" in payload:
            new["embeds"] = copy.deepcopy(payload["embeds"] or [])
        if "components" in payload:
            new["components"] = copy.deepcopy(payload["components"] or [])
        if "flags" in payload and payload["flags"] is not None:
            keep = msg["flags"] & (FLAG_EPHEMERAL | FLAG_LOADING)
            new["flags"] = keep | (int(payload["flags"]) & ~(FLAG_EPHEMERAL | FLAG_LOADING))
        if fill:
            new["flags"] &= ~FLAG_LOADING
        new["attachments"] = self._build_attachments(
            payload, files, msg["attachments"], int(msg["channel_id"]), msg["_ephemeral"], edit=True
        )
        self._resolve_embed_attachments(new)
        if "content" in payload or fill:
            # message.mdx, Edit Message: mentions are rebuilt from the new content, with this
            # request's allowed_mentions or the defaults (not the original request's).
            new["_allowed_mentions"] = copy.deepcopy(payload.get("allowed_mentions"))
            self._compute_mentions(new)
        limits.require_not_empty(new)
        if not fill:
            new["edited_timestamp"] = iso(self.clock.now())
            new["_edits"] = msg["_edits"] + 1
        new["_files"] = msg["_files"] + list(files)
        msg.clear()
        msg.update(new)
        return msg

    async def _echo_create(self, msg: dict) -> None:
        if not msg["_ephemeral"]:
            intent = self._dm_intent(msg["channel_id"], INTENT_DIRECT_MESSAGES)
            await self._dispatch("MESSAGE_CREATE", self._gateway_message(msg), intent=intent)

    async def _echo_update(self, msg: dict) -> None:
        if not msg["_ephemeral"]:
            intent = self._dm_intent(msg["channel_id"], INTENT_DIRECT_MESSAGES)
            await self._dispatch("MESSAGE_UPDATE", self._gateway_message(msg), intent=intent)

    async def _echo_delete(self, msg: dict) -> None:
        if not msg["_ephemeral"]:
            d = {"id": msg["id"], "channel_id": msg["channel_id"]}
            guild = self.guild_of(msg["channel_id"])
            if guild is not None:
                d["guild_id"] = str(guild.guild_id)
            intent = self._dm_intent(msg["channel_id"], INTENT_DIRECT_MESSAGES)
            await self._dispatch("MESSAGE_DELETE", d, intent=intent)

    # ------------------------------------------------------------------ members posting

    async def post_as(
        self,
        user: str | int,
        content: str = "",
        *,
        channel_id: int | None = None,
        dispatch: bool = True,
        **payload: Any,
    ) -> Msg:
        """A member posts a message (echoed to the bot as MESSAGE_CREATE unless ``dispatch=False``);
        ``channel_id=fake.dm_channel(user)`` for a DM to the bot."""
        uid = self._user_id(user)
        cid = channel_id if channel_id is not None else self.channel_id
        self._channel(cid)
        if self.is_dm(cid) and self.dm_recipient(cid) != uid:
            raise AssertionError(f"{user!r} is not in DM channel {cid}")
        self._check_member_of_channel(uid, cid, user)
        msg = self._create_message(
            channel_id=cid, payload={"content": content, **payload}, files=[], via="user", author_id=uid
        )
        if dispatch:
            await self._echo_create(msg)
        return Msg(self, msg)

    # ------------------------------------------------------------------ REST: channels

    async def _h_get_channel(self, cap: CapturedRequest, channel_id: str) -> web.Response:
        return json_response(200, self._channel(channel_id))

    async def _h_typing(self, cap: CapturedRequest, channel_id: str) -> web.Response:
        self._channel(channel_id)
        return web.Response(status=204)

    def _nonce_hit(self, payload: dict) -> dict | None:
        nonce = payload.get("nonce")
        if nonce is None or payload.get("enforce_nonce") is not True:
            return None
        hit = self._nonces.get((self.bot_user_id, str(nonce)))
        if hit is None:
            return None
        mid, at = hit
        msg = self.messages.get(mid)
        if msg is None or msg["_deleted"] or self.clock.now() - at > self.nonce_window:
            return None
        return msg

    async def _h_create_dm(self, cap: CapturedRequest) -> web.Response:
        """POST /users/@me/channels {"recipient_id"}: the DM channel with that user."""
        body = cap.json if isinstance(cap.json, dict) else {}
        try:
            uid = int(body.get("recipient_id"))
        except (TypeError, ValueError):
            raise form_error("recipient_id", "BASE_TYPE_REQUIRED", "This field is required") from None
        if uid not in self._users or uid == self.bot_user_id:
            raise ApiError(400, 50033, "Invalid Recipient(s)")
        return json_response(200, self._dms[self.dm_channel(uid)])

    async def _h_create_message(self, cap: CapturedRequest, channel_id: str) -> web.Response:
        ch = self._channel(channel_id)
        cid = int(channel_id)
        if self.is_dm(cid):
            rcpt = self.dm_recipient(cid)
            if self._users[rcpt].get("bot") or rcpt in self.dms_closed:
                raise ApiError(403, 50007, "Cannot send messages to this user")
        self._require_view(cid)
        self._require_bot(
            SEND_MESSAGES_IN_THREADS if ch["type"] == 11 else SEND_MESSAGES, "SEND_MESSAGES", cid
        )
        payload = cap.json if cap.json is not None else {}
        if cap.files:
            self._require_bot(ATTACH_FILES, "ATTACH_FILES", cid)
        if isinstance(payload, dict) and payload.get("message_reference") and not self._bot_has(READ_MESSAGE_HISTORY, cid):
            raise ApiError(403, 160002, "Cannot reply without permission to read message history")
        limits.validate_message_body(payload, op="create", files=cap.files)
        again = self._nonce_hit(payload)
        if again is not None:
            log.info("nonce %r seen again: answering message %s", payload.get("nonce"), again["id"])
            cap.note = f"nonce {payload.get('nonce')!r} seen: answered message {again['id']} again"
            return json_response(200, self._public(again))
        msg = self._create_message(channel_id=cid, payload=payload, files=cap.files, via="channel", op=None)
        if payload.get("nonce") is not None:
            self._nonces[(self.bot_user_id, str(payload["nonce"]))] = (int(msg["id"]), self.clock.now())
        await self._echo_create(msg)
        return json_response(200, self._public(msg))

    async def _h_history(self, cap: CapturedRequest, channel_id: str) -> web.Response:
        which, anchor, limit = limits.history_query(cap.query)
        self._channel(channel_id)
        cid = int(channel_id)
        self._require_view(cid)
        if not self._bot_has(READ_MESSAGE_HISTORY, cid):
            return json_response(200, [])  # message.mdx: "no messages will be returned"
        msgs = self.channel_messages(cid)  # oldest first
        if which == "after":
            chosen = [m for m in msgs if int(m["id"]) > anchor][:limit]
        elif which == "around":
            idx = next((i for i, m in enumerate(msgs) if int(m["id"]) >= anchor), len(msgs))
            first = max(0, idx - limit // 2)
            chosen = msgs[first : first + limit]
        elif which == "before":
            chosen = [m for m in msgs if int(m["id"]) < anchor][-limit:]
        else:
            chosen = msgs[-limit:]
        chosen = list(reversed(chosen))  # newest first, always
        return json_response(200, [self._public(m) for m in chosen])

    async def _h_get_message(self, cap: CapturedRequest, channel_id: str, message_id: str) -> web.Response:
        self._channel(channel_id)
        self._require_view(int(channel_id))
        self._require_bot(READ_MESSAGE_HISTORY, "READ_MESSAGE_HISTORY", int(channel_id))
        return json_response(200, self._public(self._channel_msg(channel_id, message_id)))

    async def _h_edit_message(self, cap: CapturedRequest, channel_id: str, message_id: str) -> web.Response:
        self._channel(channel_id)
        self._require_view(int(channel_id))  # its own message too: a channel it cannot see is Missing Access
        msg = self._channel_msg(channel_id, message_id)
        if msg["author"]["id"] != str(self.bot_user_id):
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        payload = cap.json if cap.json is not None else {}
        if not isinstance(payload, dict):
            raise ApiError(400, 50035, "Invalid Form Body")
        self._edit_message(msg, payload, cap.files)
        await self._echo_update(msg)
        return json_response(200, self._public(msg))

    async def _h_delete_message(self, cap: CapturedRequest, channel_id: str, message_id: str) -> web.Response:
        msg = self._channel_msg(channel_id, message_id)
        if msg["author"]["id"] != str(self.bot_user_id):
            self._require_bot(MANAGE_MESSAGES, "MANAGE_MESSAGES", int(channel_id))
        msg["_deleted"] = True
        await self._echo_delete(msg)
        return web.Response(status=204)

    # ------------------------------------------------------------------ reactions

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

    def _reaction_event(self, msg: dict, mid: int, emoji: str, uid: int) -> dict[str, Any]:
        d: dict[str, Any] = {
            "user_id": str(uid),
            "channel_id": msg["channel_id"],
            "message_id": str(mid),
            "emoji": self._emoji_obj(emoji),
            "burst": False,
            "type": 0,
        }
        guild = self.guild_of(msg["channel_id"])
        if guild is not None:
            d["guild_id"] = str(guild.guild_id)
        return d

    async def _add_reaction(self, mid: int, emoji: str, uid: int) -> bool:
        lst = self.reactions.setdefault(mid, [])
        if (emoji, uid) in lst:
            return False
        lst.append((emoji, uid))
        msg = self.messages[mid]
        d = self._reaction_event(msg, mid, emoji, uid)
        d.update({"burst_colors": [], "message_author_id": msg["author"]["id"]})
        guild = self.guild_of(msg["channel_id"])
        if guild is not None and uid in guild._members:
            d["member"] = self._member_obj(uid, guild=guild)
        intent = self._dm_intent(msg["channel_id"], INTENT_DIRECT_MESSAGE_REACTIONS)
        await self._dispatch("MESSAGE_REACTION_ADD", d, intent=intent)
        return True

    async def _remove_reaction(self, mid: int, emoji: str, uid: int) -> bool:
        lst = self.reactions.get(mid) or []
        if (emoji, uid) not in lst:
            return False
        lst.remove((emoji, uid))
        msg = self.messages[mid]
        intent = self._dm_intent(msg["channel_id"], INTENT_DIRECT_MESSAGE_REACTIONS)
        await self._dispatch(
            "MESSAGE_REACTION_REMOVE", self._reaction_event(msg, mid, emoji, uid), intent=intent
        )
        return True

    async def _h_put_reaction(
        self, cap: CapturedRequest, channel_id: str, message_id: str, emoji: str
    ) -> web.Response:
        msg = self._channel_msg(channel_id, message_id)
        cid = int(channel_id)
        self._require_view(cid)
        self._require_bot(READ_MESSAGE_HISTORY, "READ_MESSAGE_HISTORY", cid)
        emoji = self._norm_emoji(emoji)
        if not any(e == emoji for e, _ in self.reactions.get(int(message_id), [])):
            self._require_bot(ADD_REACTIONS, "ADD_REACTIONS", cid)
        await self._add_reaction(int(msg["id"]), emoji, self.bot_user_id)
        return web.Response(status=204)

    async def _h_delete_own_reaction(
        self, cap: CapturedRequest, channel_id: str, message_id: str, emoji: str
    ) -> web.Response:
        msg = self._channel_msg(channel_id, message_id)
        await self._remove_reaction(int(msg["id"]), self._norm_emoji(emoji), self.bot_user_id)
        return web.Response(status=204)

    async def _h_delete_reaction(
        self, cap: CapturedRequest, channel_id: str, message_id: str, emoji: str, member_id: str
    ) -> web.Response:
        msg = self._channel_msg(channel_id, message_id)
        uid = int(member_id)
        if uid != self.bot_user_id:
            self._require_bot(MANAGE_MESSAGES, "MANAGE_MESSAGES", int(channel_id))
        await self._remove_reaction(int(msg["id"]), self._norm_emoji(emoji), uid)
        return web.Response(status=204)

    async def _h_reaction_users(
        self, cap: CapturedRequest, channel_id: str, message_id: str, emoji: str
    ) -> web.Response:
        msg = self._channel_msg(channel_id, message_id)
        emoji = self._norm_emoji(emoji)
        users = [self._users[u] for e, u in self.reactions.get(int(msg["id"]), []) if e == emoji]
        return json_response(200, users)

    async def _h_clear_reactions(
        self, cap: CapturedRequest, channel_id: str, message_id: str
    ) -> web.Response:
        msg = self._channel_msg(channel_id, message_id)
        if self.is_dm(channel_id):
            raise ApiError(403, 50003, "Cannot execute action on a DM channel")
        self._require_bot(MANAGE_MESSAGES, "MANAGE_MESSAGES", int(channel_id))
        self.reactions[int(message_id)] = []
        d = {"channel_id": msg["channel_id"], "message_id": msg["id"]}
        guild = self.guild_of(msg["channel_id"])
        if guild is not None:
            d["guild_id"] = str(guild.guild_id)
        await self._dispatch("MESSAGE_REACTION_REMOVE_ALL", d)
        return web.Response(status=204)
