"""The guilds the fake serves: users, members, roles, channels (with permission overwrites), the bot's
DM channels with members, and the guild/member payloads discord.py reads. Messages and reactions are stored here too (``messages``,
``reactions``); rest_messages.py makes and changes them.

Guilds: one default guild (``fake.guild_id``, ``fake.channel_id``: what every helper uses unless told
otherwise) and any number added with ``fake.add_guild(name)``, each with its own @everyone role (id =
guild id), bot role and permissions, members and channels. Users are global (a user can be a member of
several guilds); a channel belongs to one guild (its ``guild_id``) and everything about a channel
(permissions, message and event payloads, interactions) is answered for that guild.

Permissions follow Discord's computation (developers/topics/permissions.mdx): the guild base from
@everyone and the member's roles (owner and ADMINISTRATOR get everything), then the channel's
overwrites (@everyone, the member's roles, the member), then the implicit rules (no VIEW_CHANNEL:
nothing; no SEND_MESSAGES: no ATTACH_FILES, EMBED_LINKS, MENTION_EVERYONE, SEND_TTS_MESSAGES).
Threads take their parent's overwrites.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .server import FakeDiscord


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard a guild's events go to: ``(guild_id >> 22) % shard_count`` (Discord's sharding formula,
    developers/events/gateway.mdx, Sharding)."""
    return (int(guild_id) >> 22) % int(shard_count)


class Guild:
    """One guild of the fake: ``fake.add_guild(name)`` returns it, ``fake.default_guild`` is the first.

    ``guild_id`` (also ``id``; its @everyone role has that id too), ``name``, ``channel_id`` (its first
    text channel), ``owner_id``, ``member_role_id``, ``bot_role_id``;
    ``bot_permissions`` (the bot's managed role here; setting it tells a connected bot);
    ``add_text_channel(name)``, ``add_member(username, ...)``, ``join(user, ...)``,
    ``member_permissions(user)``, ``is_member(user)``, ``shard(count)``, ``channel_ids``, ``member_ids``.
    """

    def __init__(self, fake: FakeDiscord, guild_id: int, name: str) -> None:
        self._fake = fake
        self.guild_id = guild_id
        self.name = name
        self.channel_id = 0
        self.owner_id = 0
        self.created = fake.clock.now()
        self._roles: dict[int, dict] = {}
        self._members: dict[int, dict] = {}
        self._bot_role_id = 0
        self._member_role_id = 0
        self._bot_permissions = ALL_PERMISSIONS

    def __repr__(self) -> str:
        return f"<Guild {self.guild_id} {self.name!r}>"

    def __int__(self) -> int:
        return self.guild_id

    @property
    def id(self) -> int:
        return self.guild_id

    @property
    def bot_permissions(self) -> int:
        """The bot's guild-level permissions here (its managed role). ADMINISTRATOR (the default):
        channel overwrites do not apply."""
        return self._bot_permissions

    @bot_permissions.setter
    def bot_permissions(self, value: int) -> None:
        self._fake._set_bot_permissions(self, value)

    @property
    def member_role_id(self) -> int:
        """The "member" role (DEFAULT_MEMBER_PERMS) that members added with default permissions have."""
        return self._member_role_id

    @property
    def bot_role_id(self) -> int:
        return self._bot_role_id

    @property
    def member_ids(self) -> list[int]:
        return list(self._members)

    @property
    def channel_ids(self) -> list[int]:
        """Its text channels and threads, oldest first."""
        return [cid for cid, ch in self._fake._channels.items() if ch.get("guild_id") == str(self.guild_id)]

    def is_member(self, user: str | int) -> bool:
        return self._fake._user_id(user) in self._members

    def member_permissions(self, user: str | int) -> int:
        return self._fake.member_permissions(self._fake._user_id(user), guild=self)

    def add_text_channel(self, name: str) -> int:
        return self._fake.add_text_channel(name, guild=self)

    def add_member(self, username: str, *, permissions: int = DEFAULT_MEMBER_PERMS, bot: bool = False) -> int:
        return self._fake.add_member(username, permissions=permissions, bot=bot, guild=self)

    def join(self, user: str | int, *, permissions: int = DEFAULT_MEMBER_PERMS) -> int:
        return self._fake.join_guild(user, self, permissions=permissions)

    def shard(self, shard_count: int) -> int:
        return shard_of(self.guild_id, shard_count)


class StateMixin:
    """Guilds, members, roles, channels and their permissions."""

    app_id: int
    bot_user_id: int
    guild_id: int
    # _spawn(), _dispatch() and _has_sessions() come from gateway.py's GatewayMixin

    def _init_state(self, app_id: int, guild_id: int) -> None:
        self.app_id = app_id
        self.bot_user_id = app_id
        self.guild_id = guild_id
        self.clock = FakeClock()
        self.messages: dict[int, dict] = {}
        self.reactions: dict[int, list[tuple[str, int]]] = {}
        self._last_snowflake = 0

        self.guilds: dict[int, Guild] = {}  # guild id -> Guild, the default one first
        self._users: dict[int, dict] = {}
        self._channels: dict[int, dict] = {}  # the channels and threads of every guild
        self._username_ids: dict[str, int] = {}
        self._dms: dict[int, dict] = {}  # DM channels of the bot with members
        self._dm_of: dict[int, int] = {}  # user id -> DM channel id
        self.dms_closed: set[int] = set()  # members who do not take DMs (send: 403 50007)

        g = Guild(self, guild_id, "Test Guild")  # type: ignore[arg-type]
        self.guilds[guild_id] = g
        self._make_roles(g, with_admin=False)
        self._add_user(app_id, "testbot", bot=True)
        g._members[app_id] = self._member_state([g._bot_role_id])
        admin_role = self._snowflake()
        g._roles[admin_role] = self._role_obj(admin_role, "admin", ADMINISTRATOR, position=2)
        member_role = self._snowflake()
        g._member_role_id = member_role
        g._roles[member_role] = self._role_obj(member_role, "member", DEFAULT_MEMBER_PERMS, position=1)
        alice = self._snowflake()
        self._add_user(alice, "alice", global_name="Alice")
        g._members[alice] = self._member_state([admin_role])
        g.owner_id = alice
        g.channel_id = self._new_text_channel("general", g)
        self.channel_id = g.channel_id

    # ------------------------------------------------------------------ the default guild (older spellings)

    @property
    def default_guild(self) -> Guild:
        """The guild of ``fake.guild_id`` / ``fake.channel_id``."""
        return self.guilds[self.guild_id]

    @property
    def guild_name(self) -> str:
        return self.default_guild.name

    @guild_name.setter
    def guild_name(self, value: str) -> None:
        self.default_guild.name = value

    @property
    def owner_id(self) -> int:
        """The default guild's owner (alice), also the application's owner."""
        return self.default_guild.owner_id

    @property
    def _members(self) -> dict[int, dict]:
        return self.default_guild._members

    @property
    def _roles(self) -> dict[int, dict]:
        return self.default_guild._roles

    @property
    def _bot_role_id(self) -> int:
        return self.default_guild._bot_role_id

    @property
    def _member_role_id(self) -> int:
        return self.default_guild._member_role_id

    # ------------------------------------------------------------------ ids / objects

    def _snowflake(self) -> int:
        ms = int(self.clock.now() * 1000) - DISCORD_EPOCH_MS
        sf = max(ms << 22, self._last_snowflake + 1)
        self._last_snowflake = sf
        return sf

    def snowflake_in_shard(self, shard_id: int, shard_count: int) -> int:
        """A fresh snowflake whose guild would go to shard ``shard_id`` of ``shard_count``
        (``(id >> 22) % shard_count == shard_id``): its timestamp is moved up to shard_count - 1 ms."""
        if not 0 <= shard_id < shard_count:
            raise AssertionError(f"shard {shard_id} is not one of 0..{shard_count - 1}")
        sf = self._snowflake()
        ts = sf >> 22
        while ts % shard_count != shard_id:
            ts += 1
        if ts != sf >> 22:
            sf = ts << 22
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

    def _make_roles(self, g: Guild, *, with_admin: bool = True) -> None:
        """@everyone (id = the guild's id) and the bot's managed role; with_admin: also "admin" and
        "member" (the default guild makes those itself, in its historical order)."""
        g._roles[g.guild_id] = self._role_obj(g.guild_id, "@everyone", 0, position=0)
        bot_role = self._snowflake()
        g._bot_role_id = bot_role
        g._roles[bot_role] = self._role_obj(
            bot_role, "testbot", 0, position=1, managed=True, tags={"bot_id": str(self.app_id)}
        )
        if with_admin:
            admin_role = self._snowflake()
            g._roles[admin_role] = self._role_obj(admin_role, "admin", ADMINISTRATOR, position=2)
            member_role = self._snowflake()
            g._member_role_id = member_role
            g._roles[member_role] = self._role_obj(member_role, "member", DEFAULT_MEMBER_PERMS, position=1)

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

    def _member_state(self, roles: list[int]) -> dict:
        return {"roles": roles, "joined_at": iso(self.clock.now())}

    def _new_text_channel(self, name: str, guild: Guild | None = None) -> int:
        g = guild if guild is not None else self.default_guild
        cid = self._snowflake()
        self._channels[cid] = {
            "id": str(cid),
            "type": 0,
            "guild_id": str(g.guild_id),
            "name": name,
            "position": sum(
                1 for c in self._channels.values() if c["type"] == 0 and c.get("guild_id") == str(g.guild_id)
            ),
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

    # ------------------------------------------------------------------ guilds

    def guild(self, guild: Guild | int | str | None = None) -> Guild:
        """A guild by handle, id or name; None: the default guild."""
        if guild is None:
            return self.default_guild
        if isinstance(guild, Guild):
            return guild
        if isinstance(guild, str) and not guild.isdigit():
            for g in self.guilds.values():
                if g.name == guild:
                    return g
            raise AssertionError(f"no guild named {guild!r}; guilds: {list(self.guilds.values())}")
        g = self.guilds.get(int(guild))
        if g is None:
            raise AssertionError(f"unknown guild {guild}; guilds: {list(self.guilds.values())}")
        return g

    def guild_of(self, channel_id: int | str) -> Guild | None:
        """The guild of a channel or thread; None for a DM (or a channel the fake does not know)."""
        ch = self._channels.get(int(channel_id))
        if ch is None or not ch.get("guild_id"):
            return None
        return self.guilds.get(int(ch["guild_id"]))

    def _guild_of_channel_or_default(self, channel_id: int | str | None) -> Guild:
        if channel_id is None:
            return self.default_guild
        return self.guild_of(channel_id) or self.default_guild

    def add_guild(
        self,
        name: str = "Other Guild",
        *,
        owner: str | int | None = None,
        members: Iterable[str | int] | None = None,
        shard: tuple[int, int] | None = None,
        guild_id: int | None = None,
    ) -> Guild:
        """A new guild with the bot in it, a "general" text channel (``.channel_id``), its own
        @everyone/bot/"admin"/"member" roles and ``bot_permissions`` (ALL_PERMISSIONS).

        Members: every user who is a member of some guild already (``members=None``; like users who are
        in both servers) or the given ones, with DEFAULT_MEMBER_PERMS (the "member" role); ``owner``
        (default: a new user "<name>-owner") owns it. ``shard=(k, n)``: its id is chosen so that it
        goes to shard k of n; ``guild_id``: that id. A connected bot gets GUILD_CREATE (the bot was
        invited) on the guild's shard."""
        if guild_id is not None and shard is not None:
            raise AssertionError("pass either guild_id or shard")
        if guild_id is None:
            guild_id = self.snowflake_in_shard(*shard) if shard is not None else self._snowflake()
        elif guild_id in self.guilds or guild_id in self._channels or guild_id in self._users:
            raise AssertionError(f"id {guild_id} is taken")
        else:
            self._last_snowflake = max(self._last_snowflake, guild_id)
        g = Guild(self, guild_id, name)  # type: ignore[arg-type]
        self._make_roles(g)
        if owner is None:
            slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "guild"
            username, n = f"{slug}-owner", 1
            while username in self._username_ids:
                n += 1
                username = f"{slug}-owner{n}"
            owner_id = self._snowflake()
            self._add_user(owner_id, username)
        else:
            owner_id = self._user_id(owner)
        g.owner_id = owner_id
        if members is None:
            uids = [uid for uid in self._users if any(uid in o._members for o in self.guilds.values())]
        else:
            uids = [self._user_id(u) for u in members]
        g._members[self.bot_user_id] = self._member_state([g._bot_role_id])
        for uid in [owner_id, *uids]:
            if uid not in g._members:
                g._members[uid] = self._member_state([g._member_role_id])
        g.channel_id = self._new_text_channel("general", g)
        self.guilds[guild_id] = g
        if self._has_sessions():
            # a guild the bot joins comes without "unavailable" (discord.py tells a join from a guild
            # becoming available by that: state.py, parse_guild_create)
            d = self._guild_obj(full=True, guild=g)
            del d["unavailable"]
            self._spawn(self._dispatch("GUILD_CREATE", d, guild_id=guild_id))
        return g

    # ------------------------------------------------------------------ permissions

    @property
    def bot_permissions(self) -> int:
        """The bot's guild-level permissions in the default guild (its managed role; per guild:
        ``guild.bot_permissions``). Setting it tells a connected bot (GUILD_ROLE_UPDATE). With
        ADMINISTRATOR (the default) channel overwrites do not apply."""
        return self.default_guild._bot_permissions

    @bot_permissions.setter
    def bot_permissions(self, value: int) -> None:
        self._set_bot_permissions(self.default_guild, value)

    def _set_bot_permissions(self, g: Guild, value: int) -> None:
        g._bot_permissions = int(value)
        if self._has_sessions():
            role = dict(g._roles[g._bot_role_id], permissions=str(g._bot_permissions))
            self._spawn(self._dispatch("GUILD_ROLE_UPDATE", {"guild_id": str(g.guild_id), "role": role}))

    def _member_roles(self, uid: int, guild: Guild | None = None) -> list[int]:
        g = guild if guild is not None else self.default_guild
        return list(g._members[uid]["roles"]) if uid in g._members else []

    def member_permissions(self, uid: int, guild: Guild | int | None = None) -> int:
        """The member's guild-level permissions as Discord computes them (owner/admin -> all), in the
        default guild or ``guild``."""
        g = self.guild(guild)
        if uid == g.owner_id:
            return ALL_PERMISSIONS
        if uid == self.bot_user_id:
            perms = g._bot_permissions
        else:
            if uid not in g._members:
                raise AssertionError(f"user {uid} is not a member of {g!r}")
            perms = int(g._roles[g.guild_id]["permissions"])
            for rid in g._members[uid]["roles"]:
                perms |= int(g._roles[rid]["permissions"])
        return ALL_PERMISSIONS if perms & ADMINISTRATOR else perms

    def channel_permissions(self, uid: int, channel_id: int) -> int:
        """The member's permissions in a channel: the guild base (the channel's guild), then the channel's
        overwrites (a thread uses its parent's), then the implicit denials. In a DM: DM_PERMISSIONS.
        Not a member of the channel's guild: 0."""
        cid = int(channel_id)
        if cid in self._dms:
            return DM_PERMISSIONS
        ch = self._channels.get(cid)
        if ch is None:
            return self.member_permissions(uid)
        g = self.guild_of(cid)
        if g is None:
            return DM_PERMISSIONS  # a channel outside any guild
        if uid not in g._members:
            return 0
        base = self.member_permissions(uid, g)
        if base == ALL_PERMISSIONS and (uid == g.owner_id or base & ADMINISTRATOR):
            return ALL_PERMISSIONS
        if ch["type"] == 11 and ch.get("parent_id"):
            ch = self._channels.get(int(ch["parent_id"]), ch)
        overwrites = {(int(o["type"]), int(o["id"])): o for o in ch.get("permission_overwrites") or []}
        perms = base
        everyone = overwrites.get((0, g.guild_id))
        if everyone:
            perms = (perms & ~int(everyone["deny"])) | int(everyone["allow"])
        allow = deny = 0
        roles = [g._bot_role_id] if uid == self.bot_user_id else self._member_roles(uid, g)
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
        perms = self.bot_permissions
        return ALL_PERMISSIONS if perms & ADMINISTRATOR else perms

    def _bot_has(self, perm: int, channel_id: int | None = None) -> bool:
        return (self._app_permissions(channel_id) & perm) == perm

    def set_channel_permissions(
        self, channel_id: int, target: str | int = "bot", *, allow: int = 0, deny: int = 0
    ) -> None:
        """Set the channel's permission overwrite for ``target`` ("bot", "everyone", a username, a
        user id or a role name of the channel's guild), replacing any earlier one; allow=deny=0 removes
        it. The bot hears about it (CHANNEL_UPDATE), as it would on Discord."""
        ch = self._channels.get(int(channel_id))
        g = self.guild_of(channel_id)
        if ch is None or ch["type"] == 11 or g is None:
            raise AssertionError(
                f"{channel_id} is not a text channel (threads use their parent's overwrites)"
            )
        if target == "bot":
            if deny and g._bot_permissions & ADMINISTRATOR:
                where = "fake.bot_permissions" if g is self.default_guild else "guild.bot_permissions"
                raise AssertionError(
                    f"overwrites do not bind an administrator: set {where} without "
                    "ADMINISTRATOR first (e.g. ALL_PERMISSIONS & ~ADMINISTRATOR)"
                )
            otype, oid = 1, self.bot_user_id
        elif target == "everyone":
            otype, oid = 0, g.guild_id
        elif isinstance(target, str) and any(r["name"] == target for r in g._roles.values()):
            otype, oid = 0, next(rid for rid, r in g._roles.items() if r["name"] == target)
        else:
            otype, oid = 1, self._user_id(target)
        ows = [o for o in ch["permission_overwrites"] if (int(o["type"]), int(o["id"])) != (otype, oid)]
        if allow or deny:
            ows.append({"id": str(oid), "type": otype, "allow": str(allow), "deny": str(deny)})
        ch["permission_overwrites"] = ows
        if self._has_sessions():
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

    def _roles_payload(self, guild: Guild | None = None) -> list[dict]:
        g = guild if guild is not None else self.default_guild
        out = []
        for rid, role in g._roles.items():
            role = dict(role)
            if rid == g._bot_role_id:
                role["permissions"] = str(g._bot_permissions)
            out.append(role)
        return out

    def _member_obj(
        self,
        uid: int,
        *,
        with_user: bool = True,
        with_permissions: bool = False,
        channel_id: int | None = None,
        guild: Guild | None = None,
    ) -> dict:
        """The member object of ``uid`` in ``guild`` (default: the guild of ``channel_id``, else the
        default guild)."""
        g = guild if guild is not None else self._guild_of_channel_or_default(channel_id)
        st = g._members[uid]
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
                else self.member_permissions(uid, g)
            )
            m["permissions"] = str(perms)
        return m

    def _guild_obj(self, *, full: bool, guild: Guild | None = None) -> dict:
        g = guild if guild is not None else self.default_guild
        gid = str(g.guild_id)
        d: dict[str, Any] = {
            "id": gid,
            "name": g.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": str(g.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": self._roles_payload(g),
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
            mine = [c for c in self._channels.values() if c.get("guild_id") == gid]
            d.update(
                {
                    "unavailable": False,
                    "member_count": len(g._members),
                    "large": False,
                    "joined_at": iso(g.created),
                    "channels": [c for c in mine if c["type"] != 11],
                    "threads": [c for c in mine if c["type"] == 11],
                    "members": [self._member_obj(uid, guild=g) for uid in g._members],
                    "voice_states": [],
                    "presences": [],
                    "stage_instances": [],
                    "guild_scheduled_events": [],
                    "soundboard_sounds": [],
                }
            )
        return d

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

    def add_member(
        self,
        username: str,
        *,
        permissions: int = DEFAULT_MEMBER_PERMS,
        bot: bool = False,
        guild: Guild | int | None = None,
    ) -> int:
        """A new user, member of the default guild (or ``guild``) with ``permissions`` (the "member"
        role, or a role of their own for other permissions). A connected bot gets GUILD_MEMBER_ADD."""
        if username in self._username_ids:
            raise AssertionError(f"user {username!r} already exists")
        uid = self._snowflake()
        self._add_user(uid, username, bot=bot)
        self._join(uid, self.guild(guild), permissions)
        return uid

    def join_guild(
        self, user: str | int, guild: Guild | int, *, permissions: int = DEFAULT_MEMBER_PERMS
    ) -> int:
        """An existing user joins another guild (GUILD_MEMBER_ADD there); returns the user id."""
        uid = self._user_id(user)
        g = self.guild(guild)
        if uid in g._members:
            raise AssertionError(f"{user!r} is already a member of {g!r}")
        self._join(uid, g, permissions)
        return uid

    def _join(self, uid: int, g: Guild, permissions: int) -> None:
        if permissions == DEFAULT_MEMBER_PERMS:
            roles = [g._member_role_id]
        else:
            rid = self._snowflake()
            name = self._users[uid]["username"]
            g._roles[rid] = self._role_obj(rid, f"perms-{name}", permissions, position=1)
            roles = [rid]
        g._members[uid] = self._member_state(roles)
        if self._has_sessions():
            if roles[0] != g._member_role_id:
                self._spawn(
                    self._dispatch(
                        "GUILD_ROLE_CREATE", {"guild_id": str(g.guild_id), "role": g._roles[roles[0]]}
                    )
                )
            d = self._member_obj(uid, guild=g)
            d["guild_id"] = str(g.guild_id)
            self._spawn(self._dispatch("GUILD_MEMBER_ADD", d))

    def add_text_channel(self, name: str, *, guild: Guild | int | None = None) -> int:
        """A new text channel in the default guild (or ``guild``); CHANNEL_CREATE to a connected bot."""
        cid = self._new_text_channel(name, self.guild(guild))
        if self._has_sessions():
            self._spawn(self._dispatch("CHANNEL_CREATE", dict(self._channels[cid])))
        return cid

    def delete_channel(self, channel_id: int) -> None:
        """A moderator deletes the channel: its messages go with it; later requests get 404 Unknown Channel."""
        channel = self._channels.pop(channel_id)
        for message in self.messages.values():
            if message["channel_id"] == str(channel_id):
                message["_deleted"] = True
        if self._has_sessions():
            self._spawn(self._dispatch("CHANNEL_DELETE", dict(channel)))

    def add_thread(self, parent_id: int, name: str) -> int:
        """A public thread under a text channel (of any guild); THREAD_CREATE to a connected bot."""
        parent = self._channels.get(parent_id)
        g = self.guild_of(parent_id)
        if parent is None or parent["type"] != 0 or g is None:
            raise AssertionError(f"thread parent {parent_id} is not a text channel")
        tid = self._snowflake()
        now = iso(self.clock.now())
        self._channels[tid] = {
            "id": str(tid),
            "type": 11,
            "guild_id": str(g.guild_id),
            "parent_id": str(parent_id),
            "name": name,
            "owner_id": str(g.owner_id),
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
        if self._has_sessions():
            d = dict(self._channels[tid])
            d["newly_created"] = True
            self._spawn(self._dispatch("THREAD_CREATE", d))
        return tid
