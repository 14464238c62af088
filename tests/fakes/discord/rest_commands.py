"""Application commands: bulk overwrite (PUT) and list (GET), global and per guild.

Sync bodies are checked against Discord's rules (limits.validate_commands) and refused with 400 50035;
stored commands come back with ids, ``application_id``, ``version`` and Discord's defaults filled in.
``fake.synced_commands`` maps "global" or the guild id (as a string) to the stored list.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from aiohttp import web

from . import limits
from .common import ApiError, CapturedRequest, json_response

if TYPE_CHECKING:
    from .state import Guild


class CommandsMixin:
    app_id: int
    guild_id: int
    guilds: dict[int, Guild]

    def _init_commands(self) -> None:
        self.synced_commands: dict[str, list[dict]] = {}
        self.sync_count = 0
        self._command_ids: dict[tuple[str, str, int], int] = {}

    def _check_app(self, app: str) -> None:
        if int(app) != self.app_id:
            raise ApiError(403, 50001, "Missing Access")

    def _check_guild(self, gid: str) -> Guild:
        g = self.guilds.get(int(gid))
        if g is None:
            raise ApiError(404, 10004, "Unknown Guild")
        return g

    def _store_commands(self, scope: str, body: list[dict], guild_id: int | None) -> list[dict]:
        version = str(self._snowflake())
        out = []
        for cmd in body:
            key = (scope, cmd.get("name", ""), cmd.get("type") or 1)
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
            stored.update({k: v for k, v in copy.deepcopy(cmd).items() if v is not None or k == "contexts"})
            stored.update({"id": str(cid), "application_id": str(self.app_id), "version": version})
            if guild_id is not None:
                stored["guild_id"] = str(guild_id)
            out.append(stored)
        self.synced_commands[scope] = out
        self.sync_count += 1
        return out

    def _find_command(self, name: str, *, dm: bool = False, guild_id: int | None = None) -> dict:
        """The synced CHAT_INPUT command ``name`` (the guild's commands first (default: the default
        guild); in a DM only global ones)."""
        gid = self.guild_id if guild_id is None else guild_id
        for scope in ("global",) if dm else (str(gid), "global"):
            for cmd in self.synced_commands.get(scope, []):
                if cmd["name"] == name and cmd.get("type", 1) == 1:
                    return cmd
        known = sorted({c["name"] for cmds in self.synced_commands.values() for c in cmds})
        raise AssertionError(f"/{name} is not in the synced commands (synced: {known or 'nothing'})")

    async def _h_put_global_commands(self, cap: CapturedRequest, application_id: str) -> web.Response:
        self._check_app(application_id)
        limits.validate_commands(cap.json, guild=False)
        return json_response(200, self._store_commands("global", cap.json, None))

    async def _h_get_global_commands(self, cap: CapturedRequest, application_id: str) -> web.Response:
        self._check_app(application_id)
        return json_response(200, self.synced_commands.get("global", []))

    async def _h_put_guild_commands(
        self, cap: CapturedRequest, application_id: str, guild_id: str
    ) -> web.Response:
        self._check_app(application_id)
        g = self._check_guild(guild_id)
        limits.validate_commands(cap.json, guild=True)
        return json_response(200, self._store_commands(str(g.guild_id), cap.json, g.guild_id))

    async def _h_get_guild_commands(
        self, cap: CapturedRequest, application_id: str, guild_id: str
    ) -> web.Response:
        self._check_app(application_id)
        g = self._check_guild(guild_id)
        return json_response(200, self.synced_commands.get(str(g.guild_id), []))
