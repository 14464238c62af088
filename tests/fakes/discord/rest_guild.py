"""Identity, application, gateway-URL and guild read routes (what discord.py asks at start-up and
when it fetches members, channels or roles)."""

from __future__ import annotations

from aiohttp import web

from .common import ApiError, CapturedRequest, json_response, truthy_query


class GuildRoutesMixin:
    app_id: int
    port: int
    bot_user_id: int
    owner_id: int
    _users: dict[int, dict]
    _members: dict[int, dict]
    _channels: dict[int, dict]

    async def _h_me(self, cap: CapturedRequest) -> web.Response:
        return json_response(200, self._users[self.bot_user_id])

    async def _h_user(self, cap: CapturedRequest, user_id: str) -> web.Response:
        user = self._users.get(int(user_id))
        if user is None:
            raise ApiError(404, 10013, "Unknown User")
        return json_response(200, user)

    async def _h_app_info(self, cap: CapturedRequest) -> web.Response:
        return json_response(
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
        return json_response(200, {"url": f"ws://127.0.0.1:{self.port}"})

    async def _h_gateway_bot(self, cap: CapturedRequest) -> web.Response:
        return json_response(
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

    async def _h_get_guild(self, cap: CapturedRequest, guild_id: str) -> web.Response:
        self._check_guild(guild_id)
        g = self._guild_obj(full=False)
        if truthy_query(cap.query.get("with_counts")):
            g["approximate_member_count"] = len(self._members)
            g["approximate_presence_count"] = 0
        return json_response(200, g)

    async def _h_get_member(self, cap: CapturedRequest, guild_id: str, member_id: str) -> web.Response:
        self._check_guild(guild_id)
        if int(member_id) not in self._members:
            raise ApiError(404, 10007, "Unknown Member")
        return json_response(200, self._member_obj(int(member_id)))

    async def _h_list_members(self, cap: CapturedRequest, guild_id: str) -> web.Response:
        self._check_guild(guild_id)
        return json_response(200, [self._member_obj(uid) for uid in sorted(self._members)])

    async def _h_guild_channels(self, cap: CapturedRequest, guild_id: str) -> web.Response:
        self._check_guild(guild_id)
        return json_response(200, [c for c in self._channels.values() if c["type"] != 11])

    async def _h_guild_roles(self, cap: CapturedRequest, guild_id: str) -> web.Response:
        self._check_guild(guild_id)
        return json_response(200, self._roles_payload())

    async def _h_active_threads(self, cap: CapturedRequest, guild_id: str) -> web.Response:
        self._check_guild(guild_id)
        return json_response(
            200, {"threads": [c for c in self._channels.values() if c["type"] == 11], "members": []}
        )
