"""The gateway websocket at ``/``: HELLO, heartbeats, IDENTIFY -> READY + GUILD_CREATE, RESUME with replay,
RECONNECT on cue, and DISPATCH of events filtered by the identified intents.

Frames are plain JSON text (discord.py inflates only binary frames, so ``compress=zlib-stream`` is ignored).
Events dispatched while the session lives but no socket is up are kept and replayed on RESUME.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from typing import Any

from aiohttp import WSMsgType, web

from .common import EVENT_INTENTS, json_response

log = logging.getLogger("tests.fakes.discord")


class GatewayMixin:
    port: int
    app_id: int
    bot_user_id: int
    _users: dict[int, dict]
    server_errors: list[str]
    # _guild_obj(), _member_obj() and _members come from state.py

    def _init_gateway(self) -> None:
        self.identify_count = 0
        self.resume_count = 0
        self.heartbeat_count = 0
        self.connected = asyncio.Event()
        self.gateway_events: list[tuple[str, dict]] = []  # every dispatch actually sent (t, d)
        self.identify_payload: dict | None = None
        self.resume_ok: bool = True  # False: answer the next RESUMEs with INVALID_SESSION(false)
        self._tasks: set[asyncio.Task] = set()
        self._ws: web.WebSocketResponse | None = None
        self._ws_ready = False
        self._session_id: str | None = None
        self._seq = 0
        self._event_log: list[dict] = []
        self._send_lock = asyncio.Lock()
        self._intents = 0

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_ws(self, ws: web.WebSocketResponse, payload: dict) -> None:
        try:
            await ws.send_str(json.dumps(payload))
        except Exception as exc:  # connection went away under us
            log.debug("gateway send failed: %r", exc)

    async def _dispatch(self, t: str, d: dict, *, intent: int | None = None) -> None:
        """Send a DISPATCH (op 0). Buffered for RESUME while the session lives but no socket is up.
        ``intent``: the intent the event needs when it is not the guild one (DM events)."""
        need = intent if intent is not None else EVENT_INTENTS.get(t)
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

    async def _ensure_connected(self) -> None:
        if not self.connected.is_set():
            try:
                await asyncio.wait_for(self.connected.wait(), 10.0)
            except TimeoutError:
                raise AssertionError("the bot is not connected to the fake gateway") from None

    async def _ws_entry(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return json_response(404, {"code": 0, "message": "404: Not Found"})
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
