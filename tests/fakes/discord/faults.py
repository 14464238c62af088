"""Misbehaviour on cue: ``fake.faults``.

Routes are written ``"METHOD /template"`` in discord.py's spelling, e.g. ``Faults.CREATE`` =
``"POST /channels/{channel_id}/messages"``; placeholders match one path segment and literal parts must
match (``"PATCH /webhooks/{webhook_id}/{webhook_token}/messages/@original"`` matches only edits of
the original response). ``when`` is an optional predicate on the ``CapturedRequest`` (``.json``,
``.files``, ``.params``): only matching requests use up the rule. Every rule returns a ``FaultRule``
whose ``hits`` count the requests it shaped; requests it shaped carry ``fault=<kind>`` in
``fake.requests``.

What discord.py 2.7.1 does with each answer (http.py ``HTTPClient.request``): it re-sends a request
answered 500, 502, 504 or 524 by itself (up to 5 tries, sleeping 1, 3, 5, 7 s), and one answered 429
with a ``Via`` header after ``retry_after``; 503 and other 5xx raise ``DiscordServerError`` at once;
a dropped connection raises ``aiohttp.ServerDisconnectedError`` at once (aiohttp re-sends an
idempotent PUT/DELETE/GET once on a dropped keep-alive connection, never a POST or PATCH).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .common import CapturedRequest, json_response
from .views import Msg

if TYPE_CHECKING:
    from .server import FakeDiscord


def compile_template(template: str) -> re.Pattern[str]:
    """``/channels/{channel_id}/messages`` -> a regex that fullmatches such paths (named groups)."""
    out = []
    used: set[str] = set()
    pos = 0
    for m in re.finditer(r"\{([^{}/]*)\}", template):
        out.append(re.escape(template[pos : m.start()]))
        name = m.group(1)
        if re.fullmatch(r"[A-Za-z_]\w*", name) and name not in used:
            used.add(name)
            out.append(f"(?P<{name}>[^/]+)")
        else:
            out.append("[^/]+")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out))


def parse_route(spec: str) -> tuple[str, str]:
    method, _, path = spec.strip().partition(" ")
    if not path.startswith("/"):
        raise ValueError(f'a route is "METHOD /path/{{param}}", got {spec!r}')
    return method.upper(), path.strip()


@dataclass
class FaultRule:
    kind: str  # "fail", "rate_limit", "store_then_fail", "slow"
    method: str  # "*" = any
    route: str  # as given, for messages
    pattern: re.Pattern[str]
    regex: bool = False  # pattern is searched (legacy fail_next), not fullmatched
    times: int | None = 1  # None: until cleared
    when: Callable[[CapturedRequest], Any] | None = None
    status: int = 500
    body: dict | None = None
    drop: bool = False
    retry_after: float = 0.3
    is_global: bool = False
    scope: str = "user"
    bucket: str | None = None
    seconds: float = 0.0
    hits: int = 0
    requests: list[CapturedRequest] = field(default_factory=list)

    def matches(self, cap: CapturedRequest) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.method not in ("*", cap.method):
            return False
        if self.regex:
            if not self.pattern.search(cap.path):
                return False
        elif not self.pattern.fullmatch(cap.path):
            return False
        return self.when is None or bool(self.when(cap))

    def use(self, cap: CapturedRequest) -> None:
        self.hits += 1
        self.requests.append(cap)
        if self.times is not None:
            self.times -= 1
        cap.fault = self.kind

    @property
    def spent(self) -> bool:
        return self.times is not None and self.times <= 0


class DropConnection(Exception):  # noqa: N818 - a signal, not an error
    """Raised inside the fake to close the client's connection without an answer."""


class Faults:
    """Faults for ``fake.faults``; see the module docstring for the route syntax."""

    CREATE = "POST /channels/{channel_id}/messages"
    EDIT = "PATCH /channels/{channel_id}/messages/{message_id}"
    DELETE = "DELETE /channels/{channel_id}/messages/{message_id}"
    HISTORY = "GET /channels/{channel_id}/messages"
    FETCH = "GET /channels/{channel_id}/messages/{message_id}"
    REACT = "PUT /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me"
    CALLBACK = "POST /interactions/{interaction_id}/{interaction_token}/callback"
    FOLLOWUP = "POST /webhooks/{webhook_id}/{webhook_token}"
    EDIT_ORIGINAL = "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/@original"
    EDIT_FOLLOWUP = "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}"

    def __init__(self, fake: FakeDiscord) -> None:
        self._fake = fake
        self.rules: list[FaultRule] = []

    def _add(self, kind: str, route: str, **kw: Any) -> FaultRule:
        method, path = parse_route(route)
        rule = FaultRule(kind=kind, method=method, route=route, pattern=compile_template(path), **kw)
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Forget every rule (spent or not)."""
        self.rules.clear()

    # ------------------------------------------------------------------ the faults

    def store_then_fail(
        self,
        times: int = 1,
        *,
        route: str = CREATE,
        when: Callable[[CapturedRequest], Any] | None = None,
        status: int = 500,
        drop: bool = False,
    ) -> FaultRule:
        """The next ``times`` matching requests are carried out (a message create is stored, echoed
        on the gateway, counted for its nonce) but answered with ``status`` (default 500, which
        discord.py re-sends by itself) or, with ``drop=True``, by closing the connection with no
        answer. E.g. ``store_then_fail(when=lambda r: r.files)`` for "the post with the clip"."""
        return self._add("store_then_fail", route, times=times, when=when, status=status, drop=drop)

    def fail(
        self,
        route: str,
        *,
        times: int = 1,
        status: int = 502,
        body: dict | None = None,
        drop: bool = False,
        when: Callable[[CapturedRequest], Any] | None = None,
    ) -> FaultRule:
        """The next ``times`` matching requests are answered ``status`` (or dropped) and NOT carried
        out. Default body: ``{"code": 0, "message": "<status>: injected"}``."""
        return self._add("fail", route, times=times, status=status, body=body, drop=drop, when=when)

    def rate_limit(
        self,
        route: str,
        *,
        times: int = 1,
        retry_after: float = 0.3,
        is_global: bool = False,
        scope: str | None = None,
        bucket: str | None = None,
        when: Callable[[CapturedRequest], Any] | None = None,
    ) -> FaultRule:
        """The next ``times`` matching requests get a 429 as Discord sends it (developers/topics/
        rate-limits.mdx): ``Via: 1.1 google`` (without it discord.py assumes a Cloudflare ban),
        ``Retry-After``, body ``{"message", "retry_after", "global"}``; a per-route limit carries
        ``X-RateLimit-Limit/Remaining/Reset/Reset-After/Bucket`` and ``X-RateLimit-Scope: user`` (or
        ``scope``), a global one ``X-RateLimit-Global: true`` and ``X-RateLimit-Scope: global``."""
        return self._add(
            "rate_limit",
            route,
            times=times,
            retry_after=retry_after,
            is_global=is_global,
            scope=scope or ("global" if is_global else "user"),
            bucket=bucket,
            when=when,
        )

    def slow(
        self,
        route: str,
        seconds: float,
        *,
        times: int | None = None,
        when: Callable[[CapturedRequest], Any] | None = None,
    ) -> FaultRule:
        """Matching requests are answered ``seconds`` later (real time); ``times=None``: until cleared.
        The request is carried out after the delay, like a slow server."""
        return self._add("slow", route, times=times, seconds=seconds, when=when)

    async def busy_channel(
        self,
        channel_id: int | None = None,
        count: int = 300,
        *,
        after: int | None = None,
        users: tuple[str, ...] = ("carol", "dave", "erin"),
        dispatch: bool = True,
    ) -> list[Msg]:
        """Members post ``count`` messages now (newest in the channel; made members if needed), so that
        anything posted before them (e.g. ``after``, the bot's progress message) is that deep in the
        history. ``dispatch=False`` skips the MESSAGE_CREATE events (faster; a stopped bot misses them
        anyway)."""
        fake = self._fake
        cid = channel_id if channel_id is not None else fake.channel_id
        if after is not None:
            anchor = fake.messages.get(int(after))
            if anchor is None or anchor["channel_id"] != str(cid):
                raise AssertionError(f"message {after} is not in channel {cid}")
        guild = fake.guild_of(cid)
        for name in users:
            if name not in fake._username_ids:
                fake.add_member(name, guild=guild)
            elif guild is not None and not guild.is_member(name):
                fake.join_guild(name, guild)
        out = []
        for i in range(count):
            out.append(
                await fake.post_as(
                    users[i % len(users)], f"chatter {i + 1}", channel_id=cid, dispatch=dispatch
                )
            )
        return out

    # ------------------------------------------------------------------ used by the server

    def _take(self, cap: CapturedRequest, kinds: tuple[str, ...]) -> FaultRule | None:
        for rule in self.rules:
            if rule.kind in kinds and rule.matches(cap):
                rule.use(cap)
                return rule
        return None

    async def before(self, cap: CapturedRequest) -> web.StreamResponse | None:
        """Called before the fake handles a request: delays, then refusals (which replace handling)."""
        slow = self._take(cap, ("slow",))
        if slow is not None:
            await asyncio.sleep(slow.seconds)
        rule = self._take(cap, ("fail", "rate_limit"))
        if rule is None:
            return None
        if rule.drop:
            raise DropConnection()
        if rule.kind == "rate_limit":
            return self._429(rule, cap)
        return json_response(rule.status, rule.body or {"code": 0, "message": f"{rule.status}: injected"})

    def after(self, cap: CapturedRequest, resp: web.StreamResponse) -> web.StreamResponse:
        """Called after a successful answer: store_then_fail replaces it."""
        if not 200 <= resp.status < 300:
            return resp
        rule = self._take(cap, ("store_then_fail",))
        if rule is None:
            return resp
        if rule.drop:
            raise DropConnection()
        return json_response(rule.status, {"code": 0, "message": f"{rule.status}: Internal Server Error"})

    @staticmethod
    def _429(rule: FaultRule, cap: CapturedRequest) -> web.Response:
        ra = rule.retry_after
        body = {"message": "You are being rate limited.", "retry_after": ra, "global": rule.is_global}
        headers = {"Via": "1.1 google", "Retry-After": str(max(1, math.ceil(ra)))}
        if rule.is_global:
            headers.update({"X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"})
        else:
            bucket = rule.bucket or hashlib.sha1(f"{cap.method} {cap.route}".encode()).hexdigest()[:16]  # noqa: S324
            headers.update(
                {
                    "X-RateLimit-Limit": "5",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": f"{time.time() + ra:.3f}",
                    "X-RateLimit-Reset-After": f"{ra:.3f}",
                    "X-RateLimit-Bucket": bucket,
                    "X-RateLimit-Scope": rule.scope,
                }
            )
        return json_response(429, body, headers)
