"""``FakeDiscord``: the aiohttp app (REST, gateway, CDN on one 127.0.0.1 port), the route table, the
REST plumbing (body parsing, auth, size limits, faults, the request log) and the observation helpers
tests use. The behaviour itself lives in the mixins next to this file.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import yarl
from aiohttp import web

from .cdn import CdnMixin
from .common import (
    MAX_BODY,
    MIB,
    ApiError,
    CapturedFile,
    CapturedRequest,
    guess_type,
    is_template,
    json_response,
)
from .faults import DropConnection, FaultRule, Faults, compile_template, parse_route
from .gateway import GatewayMixin
from .rest_commands import CommandsMixin
from .rest_guild import GuildRoutesMixin
from .rest_interactions import InteractionsMixin
from .rest_messages import MessagesMixin
from .state import StateMixin
from .views import Msg, summarize

log = logging.getLogger("tests.fakes.discord")

_SNOWFLAKE = r"\d+"
# placeholder -> what it matches in a path (default: a snowflake)
_PARAM_PATTERNS = {
    "interaction_token": r"[^/]+",
    "webhook_token": r"[^/]+",
    "emoji": r"[^/]+",
}

# (method, route template in discord.py's spelling, handler, needs bot auth)
ROUTES: list[tuple[str, str, str, bool]] = [
    ("GET", "/users/@me", "_h_me", True),
    ("GET", "/users/{user_id}", "_h_user", True),
    ("POST", "/users/@me/channels", "_h_create_dm", True),
    ("GET", "/oauth2/applications/@me", "_h_app_info", True),
    ("GET", "/applications/@me", "_h_app_info", True),
    ("GET", "/gateway", "_h_gateway", False),
    ("GET", "/gateway/bot", "_h_gateway_bot", True),
    ("PUT", "/applications/{application_id}/commands", "_h_put_global_commands", True),
    ("GET", "/applications/{application_id}/commands", "_h_get_global_commands", True),
    ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands", "_h_put_guild_commands", True),
    ("GET", "/applications/{application_id}/guilds/{guild_id}/commands", "_h_get_guild_commands", True),
    ("POST", "/interactions/{interaction_id}/{interaction_token}/callback", "_h_callback", False),
    ("POST", "/webhooks/{webhook_id}/{webhook_token}", "_h_webhook_execute", False),
    ("GET", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}", "_h_webhook_get", False),
    ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}", "_h_webhook_edit", False),
    ("DELETE", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}", "_h_webhook_delete", False),
    ("GET", "/channels/{channel_id}", "_h_get_channel", True),
    ("POST", "/channels/{channel_id}/typing", "_h_typing", True),
    ("POST", "/channels/{channel_id}/messages", "_h_create_message", True),
    ("GET", "/channels/{channel_id}/messages", "_h_history", True),
    ("GET", "/channels/{channel_id}/messages/{message_id}", "_h_get_message", True),
    ("PATCH", "/channels/{channel_id}/messages/{message_id}", "_h_edit_message", True),
    ("DELETE", "/channels/{channel_id}/messages/{message_id}", "_h_delete_message", True),
    ("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions", "_h_clear_reactions", True),
    ("GET", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}", "_h_reaction_users", True),
    ("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", "_h_put_reaction", True),
    (
        "DELETE",
        "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
        "_h_delete_own_reaction",
        True,
    ),
    (
        "DELETE",
        "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{member_id}",
        "_h_delete_reaction",
        True,
    ),
    ("GET", "/guilds/{guild_id}", "_h_get_guild", True),
    ("GET", "/guilds/{guild_id}/members/{member_id}", "_h_get_member", True),
    ("GET", "/guilds/{guild_id}/members", "_h_list_members", True),
    ("GET", "/guilds/{guild_id}/channels", "_h_guild_channels", True),
    ("GET", "/guilds/{guild_id}/roles", "_h_guild_roles", True),
    ("GET", "/guilds/{guild_id}/threads/active", "_h_active_threads", True),
]


def _route_regex(template: str) -> re.Pattern[str]:
    def param(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "message_id" and template.startswith("/webhooks/"):
            return f"(?P<{name}>@original|\\d+)"
        return f"(?P<{name}>{_PARAM_PATTERNS.get(name, _SNOWFLAKE)})"

    parts = re.split(r"(\{\w+\})", template)
    return re.compile(
        "".join(param(re.match(r"\{(\w+)\}", p)) if p.startswith("{") else re.escape(p) for p in parts)
    )


_COMPILED = [(m, t, _route_regex(t), h, a) for m, t, h, a in ROUTES]


class FakeDiscord(
    StateMixin,
    GatewayMixin,
    CdnMixin,
    MessagesMixin,
    InteractionsMixin,
    CommandsMixin,
    GuildRoutesMixin,
):
    """A fake Discord that an unmodified discord.py 2.7.1 ``Bot`` talks to.

    Usage::

        fake = FakeDiscord()
        await fake.start()
        fake.install()                      # points discord.py at the fake (call before bot.start())
        ... start a commands.Bot(..., guild_ready_timeout=0.05) with any token ...
        await fake.wait_for(lambda: fake.connected.is_set())
        inter = await fake.slash("anchor set", image=fake.make_attachment("a.png", png_bytes))
        reply = await inter.wait_message()            # a Msg
        ...
        await bot.close(); await fake.close()

    The test API, besides ``slash``/``click``/``react``/``post_as`` (what members do; ``dm=True`` or
    ``channel_id=fake.dm_channel(user)`` for a member's DM with the bot, ``close_dms(user)``):

    * typed views: ``msgs(channel_id)``, ``msg(id)``, ``wait_message(predicate)``, and on interactions
      ``.original``, ``.followups``, ``.replies``, ``.wait_message()`` (all ``Msg``, see views.py);
    * raw state: ``messages`` (id -> stored dict), ``channel_messages(cid)``, ``reactions``,
      ``interactions``, ``synced_commands``, ``gateway_events``;
    * the request log: ``requests`` (``CapturedRequest``), ``requests_to(method, route)``,
      ``mark()`` to count from a point on;
    * faults: ``faults`` (faults.py), ``set_channel_permissions``, ``bot_permissions``,
      ``response_deadline``, ``resume_ok``/``reconnect()``, ``clock.advance()``;
    * several guilds (state.py): ``add_guild(name, shard=(k, n))`` -> ``Guild`` (``.guild_id``,
      ``.channel_id``, ``.bot_permissions``, ``.add_text_channel()``, ``.add_member()``, ``.join()``);
      ``slash``/``post_as``/``click``/``react`` in one of its channels act in that guild;
      ``guilds``, ``default_guild``, ``guild(id)``, ``guild_of(channel_id)``, ``join_guild()``;
    * shards (gateway.py): ``recommended_shards`` (GET /gateway/bot), ``sessions`` (one
      ``GatewaySession`` per IDENTIFY: ``.shard``, ``.events``, ``.guild_ids``), ``session_for(guild)``,
      ``guilds_of_shard(k, n)``, ``snowflake_in_shard(k, n)``; ``undelivered_ok`` (an interaction in a
      guild whose shard no session runs goes to no one, instead of failing the test).
    """

    def __init__(self, *, app_id: int = 1000000000000000001, guild_id: int = 1574537586855116802) -> None:
        self.attachment_size_limit: int = 10 * MIB
        self.response_deadline: float = 3.0  # seconds of REAL time for the first callback
        # A callback's answer (with_response) without the message's id: not what Discord sends, a client must cope.
        self.callback_answer_without_message_id = False
        self.requests: list[CapturedRequest] = []
        self.server_errors: list[str] = []  # internal errors of the fake (should stay empty)
        self.base_url = ""
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._saved_install: tuple[Any, Any] | None = None
        self._init_gateway()
        self._init_state(app_id, guild_id)
        self._init_cdn()
        self._init_messages()
        self._init_interactions()
        self._init_commands()
        self.faults = Faults(self)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        app = web.Application(client_max_size=256 * MIB)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest_entry)
        app.router.add_route("GET", "/attachments/{tail:.*}", self._cdn_entry)
        app.router.add_route("GET", "/media/attachments/{tail:.*}", self._cdn_entry)
        app.router.add_route("GET", "/", self._ws_entry)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        log.info("fake discord on %s", self.base_url)

    async def close(self) -> None:
        for ws in list(self._sockets):
            if not ws.closed:
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

    # ------------------------------------------------------------------ REST plumbing

    async def _rest_entry(self, request: web.Request) -> web.StreamResponse:
        path = request.path[len("/api/v10") :] or "/"
        cap = CapturedRequest(
            method=request.method,
            path=path,
            query=dict(request.query),
            headers=dict(request.headers),
            seq=len(self.requests),
        )
        self.requests.append(cap)
        try:
            resp = await self._rest(request, cap)
        except DropConnection:
            cap.status = None
            log.info("dropping the connection of %r on cue", cap)
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)  # never reaches the client
        except ApiError as err:
            if err.status == 400:
                log.warning("fake discord refused %s %s: %s", request.method, path, json.dumps(err.body))
            resp = json_response(err.status, err.body)
        except Exception as exc:
            log.exception("fake discord choked on %s %s", request.method, path)
            cap.error = repr(exc)
            self.server_errors.append(f"{request.method} {path}: {exc!r}")
            resp = json_response(400, {"code": 50035, "message": f"Invalid Form Body (fake: {exc!r})"})
        cap.status = resp.status
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
                data = await part.read(decode=False)
                size += len(data)
                name = part.name or ""
                if name == "payload_json":
                    try:
                        cap.json = json.loads(data.decode() or "null")
                    except ValueError:
                        raise ApiError(400, 50109, "The request body contains invalid JSON.") from None
                elif part.filename is not None or name.startswith("files["):
                    cap.files.append(
                        CapturedFile(
                            part.filename or name,
                            bytes(data),
                            guess_type(part.filename or name, part.headers.get("Content-Type")),
                            field_name=name,
                        )
                    )
        else:
            raw = await request.read()
            size = len(raw)
            if raw:
                try:
                    cap.json = json.loads(raw)
                except ValueError:
                    raise ApiError(400, 50109, "The request body contains invalid JSON.") from None
        return size

    async def _rest(self, request: web.Request, cap: CapturedRequest) -> web.StreamResponse:
        size = await self._read_body(request, cap)
        matched: tuple[str, re.Match[str], str, bool] | None = None
        matched_path = False
        for method, template, pattern, handler_name, needs_auth in _COMPILED:
            m = pattern.fullmatch(cap.path)
            if m is None:
                continue
            matched_path = True
            if method == cap.method:
                matched = (template, m, handler_name, needs_auth)
                break
        if matched is not None:
            cap.route = matched[0]
            cap.params = dict(matched[1].groupdict())
        injected = await self.faults.before(cap)
        if injected is not None:
            return injected
        if size > MAX_BODY or any(len(f.data) > self.attachment_size_limit for f in cap.files):
            raise ApiError(413, 40005, "Request entity too large")
        if matched is None:
            if matched_path:
                raise ApiError(405, 0, "405: Method Not Allowed")
            raise ApiError(404, 0, "404: Not Found")
        _template, m, handler_name, needs_auth = matched
        if needs_auth and not request.headers.get("Authorization", "").startswith("Bot "):
            raise ApiError(401, 0, "401: Unauthorized")
        resp = await getattr(self, handler_name)(cap, **m.groupdict())
        return self.faults.after(cap, resp)

    # ------------------------------------------------------------------ faults (legacy spelling)

    def fail_next(
        self,
        method: str,
        path_regex: str,
        *,
        status: int = 429,
        retry_after: float = 0.3,
        body: dict | None = None,
        times: int = 1,
    ) -> FaultRule:
        """The next ``times`` requests whose method matches (``"*"`` = any) and whose path (without
        /api/v10) matches ``re.search(path_regex)`` get this error instead of being handled.
        (Older spelling of ``faults.rate_limit`` / ``faults.fail``.)"""
        rule = FaultRule(
            kind="rate_limit" if status == 429 else "fail",
            method=method.upper(),
            route=f"{method.upper()} {path_regex}",
            pattern=re.compile(path_regex),
            regex=True,
            times=times,
            status=status,
            body=body,
            retry_after=retry_after,
        )
        self.faults.rules.append(rule)
        return rule

    # ------------------------------------------------------------------ observation

    def msgs(
        self,
        channel_id: int | None = None,
        *,
        include_ephemeral: bool = False,
        author: str | int | None = None,
    ) -> list[Msg]:
        """The channel's messages (default: the main channel), oldest first, as ``Msg``; deleted ones
        never, ephemeral ones only if asked, only ``author``'s (name, id or "bot") if given."""
        cid = channel_id if channel_id is not None else self.channel_id
        raws = self.channel_messages(cid, include_ephemeral=include_ephemeral)
        if author is not None:
            uid = self.bot_user_id if author == "bot" else self._user_id(author)
            raws = [m for m in raws if int(m["author"]["id"]) == uid]
        return [Msg(self, m) for m in raws]

    def msg(self, message_id: int | str) -> Msg:
        """Any stored message (deleted and ephemeral ones too) by id."""
        raw = self.messages.get(int(message_id))
        if raw is None:
            raise AssertionError(f"no message {message_id}")
        return Msg(self, raw)

    async def wait_message(
        self,
        predicate: Callable[[Msg], Any] | None = None,
        *,
        channel_id: int | None = None,
        timeout: float = 10.0,
        include_ephemeral: bool = False,
    ) -> Msg:
        """The first message of the channel (oldest first) matching ``predicate``, waiting for it."""

        def probe() -> Msg | None:
            for m in self.msgs(channel_id, include_ephemeral=include_ephemeral):
                if predicate is None or predicate(m):
                    return m
            return None

        return await self.wait_for(probe, timeout, what="a message matching the predicate")

    def mark(self) -> int:
        """A point in the request log: pass it as ``since=`` to ``requests_to`` to count from here."""
        return len(self.requests)

    def requests_to(
        self,
        method: str,
        route: str | None = None,
        *,
        since: int = 0,
        status: int | None = None,
        **params: Any,
    ) -> list[CapturedRequest]:
        """Requests by method ("*" = any) and route, in order; ``requests_to("POST /channels/{id}/messages")``
        (e.g. ``requests_to(Faults.CREATE)``) works too.

        ``route`` is a template like discord.py's (``"/channels/{channel_id}/messages"``; placeholder
        names are free, ``{id}`` works; literal segments such as ``@original`` must match) or, for
        older tests, a regex searched in the path (anything without a ``{name}`` placeholder).
        ``params`` filter on placeholder values, by the names in ``route`` or discord.py's
        (``channel_id=123``); ``status`` on the answer;
        ``since`` is a ``mark()``.
        """
        if route is None:
            method, route = parse_route(method)
        if is_template(route):
            rx = compile_template(route)

            def hit(r: CapturedRequest) -> bool:
                m = rx.fullmatch(r.path)
                if m is None:
                    return False
                values = {**r.params, **m.groupdict()}  # the route's own names count too
                return all(str(values.get(k)) == str(v) for k, v in params.items())
        else:
            rx = re.compile(route)

            def hit(r: CapturedRequest) -> bool:
                return bool(rx.search(r.path))

        want = method.upper()
        return [
            r
            for r in self.requests[since:]
            if (want == "*" or r.method == want) and hit(r) and (status is None or r.status == status)
        ]

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
        msgs = summarize([Msg(self, m) for m in list(self.messages.values())[-8:]])
        raise AssertionError(
            f"timed out after {timeout}s waiting for {desc}"
            + (f"\nlast exception from the predicate: {last_exc!r}" if last_exc else "")
            + f"\nconnected={self.connected.is_set()} identify_count={self.identify_count}"
            + (f" sessions={self.sessions}" if len(self.sessions) > 1 else "")
            + f"\nrecent requests:\n  {recent or '(none)'}\nrecent messages:\n  {msgs}"
            + (f"\nfake server errors: {self.server_errors}" if self.server_errors else "")
        )
