"""The guild the fake serves: users, members, roles, channels (with permission overwrites), the bot's
DM channels with members, and the guild/member payloads discord.py reads. Messages and reactions are stored here too (``messages``,
``reactions``); rest_messages.py makes and changes them.

Permissions follow Discord's computation (developers/topics/permissions.mdx): the guild base from
@everyone and the member's roles (owner and ADMINISTRATOR get everything), then the channel's
overwrites (@everyone, the member's roles, the member), then the implicit rules (no VIEW_CHANNEL:
nothing; no SEND_MESSAGES: no ATTACH_FILES, EMBED_LINKS, MENTION_EVERYONE, SEND_TTS_MESSAGES).
Threads take their parent's overwrites.
"""

from __future__ import annotations

import copy
from typing import Any

from .common import (
    ADMINISTRATOR,
    ALL_PERMISSIONS,
    ATTACH_FILES,
    DEFAULT_MEMBER_PERMS,
    DISCORD_EPOCH_MS,
    DM_PERMISSIONS,
    EMBED_LINKS,
    MENTION_EVERYONE,
    SEND_MESSAGES,
    SEND_TTS_MESSAGES,
    VIEW_CHANNEL,
    FakeClock,
    iso,
)


class StateMixin:
    """Guild, members, roles, channels and their permissions."""

    app_id: int
    bot_user_id: int
    guild_id: int
    _session_id: str | None
    # _spawn() and _dispatch() come from gateway.py's GatewayMixin

    def _init_state(self, app_id: int, guild_id: int) -> None:
        self.app_id = app_id
        self.bot_user_id = app_id
        self.guild_id = guild_id
        self.clock = FakeClock()
        self._bot_permissions: int = ALL_PERMISSIONS
        self.messages: dict[int, dict] = {}
        self.reactions: dict[int, list[tuple[str, int]]] = {}
        self._last_snowflake = 0

        self.guild_name = "Test Guild"
        self._users: dict[int, dict] = {}
        self._members: dict[int, dict] = {}
        self._roles: dict[int, dict] = {}
        self._channels: dict[int, dict] = {}
        self._username_ids: dict[str, int] = {}
        self._dms: dict[int, dict] = {}  # DM channels of the bot with members
        self._dm_of: dict[int, int] = {}  # user id -> DM channel id
        self.dms_closed: set[int] = set()  # members who do not take DMs (send: 403 50007)
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

    # ------------------------------------------------------------------ ids / objects

    def _snowflake(self) -> int:
        ms = int(self.clock.now() * 1000) - DISCORD_EPOCH_MS
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
        return {"roles": roles, "perms": perms, "joined_at": iso(self.clock.now())}

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

    # ------------------------------------------------------------------ permissions

    @property
    def bot_permissions(self) -> int:
        """The bot's guild-level permissions (its managed role). Setting it tells a connected bot
        (GUILD_ROLE_UPDATE). With ADMINISTRATOR (the default) channel overwrites do not apply."""
        return self._bot_permissions

    @bot_permissions.setter
    def bot_permissions(self, value: int) -> None:
        self._bot_permissions = int(value)
        if self._session_id is not None:
            role = dict(self._roles[self._bot_role_id], permissions=str(self._bot_permissions))
            self._spawn(self._dispatch("GUILD_ROLE_UPDATE", {"guild_id": str(self.guild_id), "role": role}))

    def _member_roles(self, uid: int) -> list[int]:
        return list(self._members[uid]["roles"]) if uid in self._members else []

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

    def channel_permissions(self, uid: int, channel_id: int) -> int:
        """The member's permissions in a channel: guild base, then the channel's overwrites (a thread
        uses its parent's), then the implicit denials. In a DM: DM_PERMISSIONS."""
        if int(channel_id) in self._dms:
            return DM_PERMISSIONS
        base = self.member_permissions(uid)
        if base == ALL_PERMISSIONS and (uid == self.owner_id or base & ADMINISTRATOR):
            return ALL_PERMISSIONS
        ch = self._channels.get(int(channel_id))
        if ch is None:
            return base
        if ch["type"] == 11 and ch.get("parent_id"):
            ch = self._channels.get(int(ch["parent_id"]), ch)
        overwrites = {(int(o["type"]), int(o["id"])): o for o in ch.get("permission_overwrites") or []}
        perms = base
        everyone = overwrites.get((0, self.guild_id))
        if everyone:
            perms = (perms & ~int(everyone["deny"])) | int(everyone["allow"])
        allow = deny = 0
        roles = [self._bot_role_id] if uid == self.bot_user_id else self._member_roles(uid)
        for rid in roles:
            ow = overwrites.get((0, rid))
            if ow:
                allow |= int(ow["allow"])
                deny |= int(ow["deny"])
        perms = (perms & ~deny) | allow
        member = overwrites.get((1, uid))
        if member:
            perms = (perms & ~int(member["deny"])) | int(member["allow"])
        if not perms & VIEW_CHANNEL:
            return 0
        if not perms & SEND_MESSAGES:
            perms &= ~(SEND_TTS_MESSAGES | EMBED_LINKS | ATTACH_FILES | MENTION_EVERYONE)
        return perms

    def bot_channel_permissions(self, channel_id: int) -> int:
        return self.channel_permissions(self.bot_user_id, channel_id)

    def _app_permissions(self, channel_id: int | None = None) -> int:
        if channel_id is not None:
            return self.bot_channel_permissions(channel_id)
        return ALL_PERMISSIONS if self.bot_permissions & ADMINISTRATOR else self.bot_permissions

    def _bot_has(self, perm: int, channel_id: int | None = None) -> bool:
        return (self._app_permissions(channel_id) & perm) == perm

    def set_channel_permissions(
        self, channel_id: int, target: str | int = "bot", *, allow: int = 0, deny: int = 0
    ) -> None:
        """Set the channel's permission overwrite for ``target`` ("bot", "everyone", a username, a
        user id or a role name), replacing any earlier one; allow=deny=0 removes it. The bot hears
        about it (CHANNEL_UPDATE), as it would on Discord."""
        ch = self._channels.get(int(channel_id))
        if ch is None or ch["type"] == 11:
            raise AssertionError(
                f"{channel_id} is not a text channel (threads use their parent's overwrites)"
            )
        if target == "bot":
            if deny and self._bot_permissions & ADMINISTRATOR:
                raise AssertionError(
                    "overwrites do not bind an administrator: set fake.bot_permissions without "
                    "ADMINISTRATOR first (e.g. ALL_PERMISSIONS & ~ADMINISTRATOR)"
                )
            otype, oid = 1, self.bot_user_id
        elif target == "everyone":
            otype, oid = 0, self.guild_id
        elif isinstance(target, str) and any(r["name"] == target for r in self._roles.values()):
            otype, oid = 0, next(rid for rid, r in self._roles.items() if r["name"] == target)
        else:
            otype, oid = 1, self._user_id(target)
        ows = [o for o in ch["permission_overwrites"] if (int(o["type"]), int(o["id"])) != (otype, oid)]
        if allow or deny:
            ows.append({"id": str(oid), "type": otype, "allow": str(allow), "deny": str(deny)})
        ch["permission_overwrites"] = ows
        if self._session_id is not None:
            self._spawn(self._dispatch("CHANNEL_UPDATE", copy.deepcopy(ch)))

    # ------------------------------------------------------------------ DMs

    def dm_channel(self, user: str | int) -> int:
        """The bot's DM channel with ``user`` (made on first use, as POST /users/@me/channels does)."""
        uid = self._user_id(user)
        if uid == self.bot_user_id:
            raise AssertionError("the bot has no DM with itself")
        cid = self._dm_of.get(uid)
        if cid is None:
            cid = self._snowflake()
            self._dms[cid] = {
                "id": str(cid),
                "type": 1,
                "last_message_id": None,
                "recipients": [self._users[uid]],
                "flags": 0,
            }
            self._dm_of[uid] = cid
        return cid

    def is_dm(self, channel_id: int | str) -> bool:
        return int(channel_id) in self._dms

    def dm_recipient(self, channel_id: int | str) -> int:
        return int(self._dms[int(channel_id)]["recipients"][0]["id"])

    def close_dms(self, user: str | int, closed: bool = True) -> None:
        """The member stops (or starts again) accepting DMs from the bot: sends get 403 50007."""
        uid = self._user_id(user)
        if closed:
            self.dms_closed.add(uid)
        else:
            self.dms_closed.discard(uid)

    # ------------------------------------------------------------------ payloads

    def _roles_payload(self) -> list[dict]:
        out = []
        for rid, role in self._roles.items():
            role = dict(role)
            if rid == self._bot_role_id:
                role["permissions"] = str(self.bot_permissions)
            out.append(role)
        return out

    def _member_obj(
        self,
        uid: int,
        *,
        with_user: bool = True,
        with_permissions: bool = False,
        channel_id: int | None = None,
    ) -> dict:
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
            perms = (
                self.channel_permissions(uid, channel_id)
                if channel_id is not None
                else self.member_permissions(uid)
            )
            m["permissions"] = str(perms)
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
                    "joined_at": iso(self._created),
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

    attachment_size_limit: int

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

    def delete_channel(self, channel_id: int) -> None:
        """A moderator deletes the channel: its messages go with it; later requests get 404 Unknown Channel."""
        channel = self._channels.pop(channel_id)
        for message in self.messages.values():
            if message["channel_id"] == str(channel_id):
                message["_deleted"] = True
        if self._session_id is not None:
            self._spawn(self._dispatch("CHANNEL_DELETE", dict(channel)))

    def add_thread(self, parent_id: int, name: str) -> int:
        parent = self._channels.get(parent_id)
        if parent is None or parent["type"] != 0:
            raise AssertionError(f"thread parent {parent_id} is not a text channel")
        tid = self._snowflake()
        now = iso(self.clock.now())
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
