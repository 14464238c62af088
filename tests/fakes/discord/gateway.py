"""The gateway websocket at ``/``: HELLO, heartbeats, IDENTIFY -> READY + GUILD_CREATE, RESUME with replay,
RECONNECT on cue, and DISPATCH of events filtered by the identified intents and routed by shard.

Frames are plain JSON text (discord.py inflates only binary frames, so ``compress=zlib-stream`` is ignored).

Sessions and shards (developers/events/gateway.mdx, Sharding): every IDENTIFY makes a ``GatewaySession``
(``fake.sessions``) for its ``shard: [shard_id, shard_count]`` ([0, 1] when the IDENTIFY has none). A
guild's events go to every session whose shard is ``(guild_id >> 22) % shard_count``; events without a
guild (DMs) to shard 0 only. READY lists the session's guilds (unavailable), then each comes as
GUILD_CREATE. Several sessions can be connected at once (two processes, or one AutoShardedClient);
a new IDENTIFY for the same [shard_id, shard_count] ends the older session (its socket is closed with
4000), which keeps "the bot restarted" simple. A client that closes with 1000 or 1001 ends its session;
events dispatched while a session lives but its socket is down (op 7, a dropped connection) are kept
and replayed on RESUME.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from typing import Any

from aiohttp import WSMsgType, web

from .common import EVENT_INTENTS, json_response

log = logging.getLogger("tests.fakes.discord")


class GatewaySession:
    """One IDENTIFYed gateway session: one shard of one bot.

    ``shard`` ([shard_id, shard_count] as a tuple), ``session_id``, ``intents``, ``identify_payload``,
    ``events`` (every dispatch actually sent to it, (t, d)), ``guild_ids`` (the guilds READY listed),
    ``connected`` (a socket is up and ready for dispatches).
    """

    def __init__(self, session_id: str, shard: tuple[int, int], identify: dict) -> None:
        self.session_id = session_id
        self.shard_id, self.shard_count = shard
        self.shard_sent = identify.get("shard") is not None
        self.identify_payload = identify
        self.intents = int(identify.get("intents") or 0)
        self.seq = 0
        self.event_log: list[dict] = []
        self.events: list[tuple[str, dict]] = []
        self.guild_ids: list[int] = []
        self.ws: web.WebSocketResponse | None = None
        self.ready = False  # the socket takes dispatches (False after op 7 until RESUME)

    def __repr__(self) -> str:
        return f"<GatewaySession {self.session_id} shard={list(self.shard)} connected={self.connected}>"

    @property
    def shard(self) -> tuple[int, int]:
        return (self.shard_id, self.shard_count)

    @property
    def connected(self) -> bool:
        return self.ready and self.ws is not None and not self.ws.closed

    def covers(self, guild_id: int | None) -> bool:
        """Whether this session gets the events of ``guild_id`` (None: a DM, shard 0 only)."""
        if guild_id is None:
            return self.shard_id == 0
        return (int(guild_id) >> 22) % self.shard_count == self.shard_id


class GatewayMixin:
    port: int
    app_id: int
    bot_user_id: int
    _users: dict[int, dict]
    server_errors: list[str]
    # guilds, _guild_obj() and _member_obj() come from state.py

    def _init_gateway(self) -> None:
        self.identify_count = 0  # IDENTIFYs, every shard counted
        self.resume_count = 0
        self.heartbeat_count = 0
        self.connected = asyncio.Event()  # some session is up (see sessions / session_for for shards)
        self.gateway_events: list[tuple[str, dict]] = []  # every dispatch actually sent (t, d), all sessions
        self.identify_payload: dict | None = None  # the last IDENTIFY's d
        self.identify_payloads: list[dict] = []
        self.resume_ok: bool = True  # False: answer the next RESUME with INVALID_SESSION(false)
        self.recommended_shards = 1  # GET /gateway/bot "shards"
        self.max_concurrency = 1  # GET /gateway/bot session_start_limit.max_concurrency
        self.session_start_total = 1000
        self.sessions: list[GatewaySession] = []  # live sessions, oldest first
        # What members do (slash, click, react) waits up to 10 s for a session that gets the guild's events, then
        # fails the test. True: when no session covers that shard at all, the event goes to no one at once, as
        # Discord's does when the shard is not connected (a bot that runs only some shards).
        self.undelivered_ok = False
        self._first_identify_at: float | None = None
        self._tasks: set[asyncio.Task] = set()
        self._sockets: set[web.WebSocketResponse] = set()
        self._ws_session: dict[web.WebSocketResponse, GatewaySession] = {}
        self._send_lock = asyncio.Lock()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _has_sessions(self) -> bool:
        return bool(self.sessions)

    def _update_connected(self) -> None:
        if any(s.connected for s in self.sessions):
            self.connected.set()
        else:
            self.connected.clear()

    def session_for(self, guild: Any = None) -> GatewaySession | None:
        """The live session that gets ``guild``'s events (a Guild or id; None: DMs, shard 0), newest first."""
        gid = None if guild is None else int(guild)
        for sess in reversed(self.sessions):
            if sess.covers(gid):
                return sess
        return None

    def guilds_of_shard(self, shard_id: int, shard_count: int) -> list[int]:
        """The ids of the guilds whose events go to shard ``shard_id`` of ``shard_count``."""
        return [gid for gid in self.guilds if (gid >> 22) % shard_count == shard_id]  # type: ignore[attr-defined]

    async def _send_ws(self, ws: web.WebSocketResponse, payload: dict) -> None:
        try:
            await ws.send_str(json.dumps(payload))
        except Exception as exc:  # connection went away under us
            log.debug("gateway send failed: %r", exc)

    async def _dispatch(
        self, t: str, d: dict, *, intent: int | None = None, guild_id: int | str | None = None
    ) -> None:
        """Send a DISPATCH (op 0) to every session of the event's shard: the guild of ``guild_id`` or
        ``d["guild_id"]``; none: shard 0 (DMs). ``intent``: the intent the event needs when it is not
        the guild one (DM events)."""
        gid = guild_id if guild_id is not None else d.get("guild_id")
        targets = [s for s in self.sessions if s.covers(int(gid) if gid else None)]
        if not targets:
            log.debug("no gateway session for %s (guild %s); dropping it", t, gid)
        for sess in targets:
            await self._dispatch_to(sess, t, d, intent=intent)

    async def _dispatch_to(self, sess: GatewaySession, t: str, d: dict, *, intent: int | None = None) -> None:
        """Send one DISPATCH to one session. Buffered for RESUME while its socket is down."""
        need = intent if intent is not None else EVENT_INTENTS.get(t)
        if need and not (sess.intents & need):
            log.debug("not dispatching %s to %s: intent %s not identified", t, sess, need)
            return
        async with self._send_lock:
            if sess not in self.sessions:
                return  # ended meanwhile
            sess.seq += 1
            payload = {"op": 0, "t": t, "s": sess.seq, "d": d}
            sess.event_log.append(payload)
            ws = sess.ws
            if ws is not None and sess.ready and not ws.closed:
                await self._send_ws(ws, payload)
                sess.events.append((t, d))
                self.gateway_events.append((t, d))

    async def reconnect(self, *, resume: bool = True, shard_id: int | None = None) -> None:
        """Ask the client to reconnect (op 7): every connected session, or those of ``shard_id``. With
        resume=False the following RESUME is refused (INVALID_SESSION false) so the client identifies
        again. Events until the RESUME are kept and replayed."""
        targets = [s for s in self.sessions if s.connected and (shard_id is None or s.shard_id == shard_id)]
        if not targets:
            raise AssertionError("no gateway connection")
        if not resume:
            self.resume_ok = False
        for sess in targets:
            sess.ready = False
            self._update_connected()
            assert sess.ws is not None
            await self._send_ws(sess.ws, {"op": 7, "d": None, "s": None, "t": None})

    async def _ensure_connected(self, guild_id: int | None = None) -> None:
        """Wait (10 s at most) for a connected session that gets ``guild_id``'s events (None: DMs); with
        ``undelivered_ok``, not at all when no session (connected or resuming) covers its shard."""
        deadline = time.monotonic() + 10.0
        while True:
            if any(s.connected and s.covers(guild_id) for s in self.sessions):
                return
            if self.undelivered_ok and not any(s.covers(guild_id) for s in self.sessions):
                log.info("no gateway session gets the events of %s: they go to no one", guild_id)
                return
            if time.monotonic() >= deadline:
                where = f"guild {guild_id}" if guild_id is not None else "DMs (shard 0)"
                raise AssertionError(
                    f"the bot is not connected to the fake gateway for {where}; sessions: {self.sessions}"
                )
            await asyncio.sleep(0.01)

    async def _ws_entry(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return json_response(404, {"code": 0, "message": "404: Not Found"})
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self._sockets.add(ws)
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
            self._sockets.discard(ws)
            sess = self._ws_session.pop(ws, None)
            if sess is not None and sess.ws is ws:
                sess.ws = None
                sess.ready = False
                if ws.close_code in (1000, 1001) and sess in self.sessions:
                    # gateway.mdx: closing with 1000 or 1001 invalidates the session (no RESUME)
                    self.sessions.remove(sess)
            self._update_connected()
        return ws

    async def _close_ws_soon(self, ws: web.WebSocketResponse | None, code: int = 4000) -> None:
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                await ws.close(code=code)

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
            await self._request_members(ws, d or {})
        elif op in (3, 4):
            pass  # presence / voice state: ignored
        else:
            log.warning("fake gateway: unknown op %r", op)

    async def _request_members(self, ws: web.WebSocketResponse, d: dict) -> None:
        """op 8: one GUILD_MEMBERS_CHUNK with every member, to the session that asked."""
        sess = self._ws_session.get(ws)
        if sess is None:
            return
        gids = d.get("guild_id")
        for gid in gids if isinstance(gids, list) else [gids]:
            guild = self.guilds.get(int(gid)) if gid is not None else None  # type: ignore[attr-defined]
            if guild is None or not sess.covers(guild.guild_id):
                continue
            members = [self._member_obj(uid, guild=guild) for uid in guild._members]  # type: ignore[attr-defined]
            await self._dispatch_to(
                sess,
                "GUILD_MEMBERS_CHUNK",
                {
                    "guild_id": str(guild.guild_id),
                    "members": members,
                    "chunk_index": 0,
                    "chunk_count": 1,
                    "not_found": [],
                    "nonce": d.get("nonce"),
                },
            )

    async def _identify(self, ws: web.WebSocketResponse, d: dict) -> None:
        shard = d.get("shard")
        if shard is not None:
            ok = (
                isinstance(shard, list)
                and len(shard) == 2
                and all(isinstance(x, int) and not isinstance(x, bool) for x in shard)
                and 0 <= shard[0] < shard[1]
            )
            if not ok:
                # developers/topics/opcodes-and-status-codes.mdx: 4010 Invalid shard
                await ws.close(code=4010, message=b"Invalid shard.")
                return
            key = (shard[0], shard[1])
        else:
            key = (0, 1)
        self.identify_count += 1
        self.identify_payload = d
        self.identify_payloads.append(d)
        if self._first_identify_at is None:
            self._first_identify_at = time.time()
        sess = GatewaySession(f"fake-session-{self.identify_count}-{secrets.token_hex(4)}", key, d)
        async with self._send_lock:
            for old in [s for s in self.sessions if s.shard == key]:
                self.sessions.remove(old)
                old.ready = False
                if old.ws is not ws:
                    self._spawn(self._close_ws_soon(old.ws))
            prev = self._ws_session.get(ws)
            if prev is not None and prev in self.sessions:
                self.sessions.remove(prev)  # a second IDENTIFY on one socket
            self.sessions.append(sess)
            self._ws_session[ws] = sess
            sess.ws = ws
            sess.ready = True
        guilds = [g for gid, g in self.guilds.items() if sess.covers(gid)]  # type: ignore[attr-defined]
        sess.guild_ids = [g.guild_id for g in guilds]
        ready: dict[str, Any] = {
            "v": 10,
            "user": self._users[self.bot_user_id],
            "session_id": sess.session_id,
            "session_type": "normal",
            "resume_gateway_url": f"ws://127.0.0.1:{self.port}/",
            "guilds": [{"id": str(g.guild_id), "unavailable": True} for g in guilds],
            "application": {"id": str(self.app_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "auth": {},
        }
        if sess.shard_sent:  # gateway-events.mdx, Ready: "if sent when identifying"
            ready["shard"] = [sess.shard_id, sess.shard_count]
        await self._dispatch_to(sess, "READY", ready)
        for g in guilds:
            await self._dispatch_to(sess, "GUILD_CREATE", self._guild_obj(full=True, guild=g))  # type: ignore[attr-defined]
        self._update_connected()

    async def _resume(self, ws: web.WebSocketResponse, d: dict) -> None:
        self.resume_count += 1
        sess = next((s for s in self.sessions if s.session_id == d.get("session_id")), None)
        if not self.resume_ok or sess is None:
            self.resume_ok = True  # only refuse once
            async with self._send_lock:
                if sess is not None:
                    self.sessions.remove(sess)
            await self._send_ws(ws, {"op": 9, "d": False, "s": None, "t": None})
            self._update_connected()
            return
        last = int(d.get("seq") or 0)
        async with self._send_lock:
            old = sess.ws
            sess.ws = ws
            self._ws_session[ws] = sess
            if old is not None and old is not ws:
                self._ws_session.pop(old, None)
                self._spawn(self._close_ws_soon(old))
            sess.ready = True
            for payload in sess.event_log:
                if payload["s"] > last:
                    await self._send_ws(ws, payload)
                    sess.events.append((payload["t"], payload["d"]))
                    self.gateway_events.append((payload["t"], payload["d"]))
            sess.seq += 1
            resumed = {"op": 0, "t": "RESUMED", "s": sess.seq, "d": {}}
            sess.event_log.append(resumed)
            await self._send_ws(ws, resumed)
        self._update_connected()

    def _session_start_limit(self) -> dict:
        day_ms = 24 * 3600 * 1000
        if self._first_identify_at is None:
            reset_after = day_ms
        else:
            reset_after = max(0, day_ms - int((time.time() - self._first_identify_at) * 1000))
        return {
            "total": self.session_start_total,
            "remaining": max(0, self.session_start_total - self.identify_count),
            "reset_after": reset_after,
            "max_concurrency": self.max_concurrency,
        }
