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
    recommended_shards: int
    _users: dict[int, dict]
    _channels: dict[int, dict]
    # guilds, _check_guild(), _guild_obj(), _member_obj(), _roles_payload() come from state.py and
    # rest_commands.py; _session_start_limit() from gateway.py

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
                "approximate_guild_count": len(self.guilds),
                "integration_types_config": {"0": {}},
            },
        )

    async def _h_gateway(self, cap: CapturedRequest) -> web.Response:
        return json_response(200, {"url": f"ws://127.0.0.1:{self.port}"})

    async def _h_gateway_bot(self, cap: CapturedRequest) -> web.Response:
        """GatewayBotResponse (openapi.json): the url, the recommended shard count
        (``fake.recommended_shards``) and the session start limit (``remaining`` counts the IDENTIFYs)."""
        return json_response(
            200,
            {
                "url": f"ws://127.0.0.1:{self.port}",
                "shards": self.recommended_shards,
                "session_start_limit": self._session_start_limit(),
            },
        )

    async def _h_get_guild(self, cap: CapturedRequest, guild_id: str) -> web.Response:
        g = self._check_guild(guild_id)
        d = self._guild_obj(full=False, guild=g)
        if truthy_query(cap.query.get("with_counts")):
            d["approximate_member_count"] = len(g._members)
            d["approximate_presence_count"] = 0
        return json_response(200, d)

    async def _h_get_member(self, cap: CapturedRequest, guild_id: str, member_id: str) -> web.Response:
        g = self._check_guild(guild_id)
        if int(member_id) not in g._members:
            raise ApiError(404, 10007, "Unknown Member")
        return json_response(200, self._member_obj(int(member_id), guild=g))

    async def _h_list_members(self, cap: CapturedRequest, guild_id: str) -> web.Response:
        g = self._check_guild(guild_id)
        return json_response(200, [self._member_obj(uid, guild=g) for uid in sorted(g._members)])

    def _guild_channels(self, guild_id: str) -> list[dict]:
        return [c for c in self._channels.values() if c.get("guild_id") == str(int(guild_id))]

    async def _h_guild_channels(self, cap: CapturedRequest, guild_id: str) -> web.Response:
        self._check_guild(guild_id)
        return json_response(200, [c for c in self._guild_channels(guild_id) if c["type"] != 11])

    async def _h_guild_roles(self, cap: CapturedRequest, guild_id: str) -> web.Response:
        g = self._check_guild(guild_id)
        return json_response(200, self._roles_payload(g))

    async def _h_active_threads(self, cap: CapturedRequest, guild_id: str) -> web.Response:
        self._check_guild(guild_id)
        return json_response(
            200, {"threads": [c for c in self._guild_channels(guild_id) if c["type"] == 11], "members": []}
        )
