"""Shared pieces of the fake Discord: constants, the clock, errors, captured requests, small helpers."""

from __future__ import annotations

import datetime as _dt
import io
import json
import mimetypes
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

# --------------------------------------------------------------------------------------------------
# permission bits (developers/topics/permissions.mdx)
CREATE_INSTANT_INVITE = 1 << 0
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
SEND_TTS_MESSAGES = 1 << 12
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
USE_APPLICATION_COMMANDS = 1 << 31
USE_EXTERNAL_EMOJIS = 1 << 18
SEND_MESSAGES_IN_THREADS = 1 << 38
# discord.Permissions.all().value in discord.py 2.7.1
ALL_PERMISSIONS = 8866461766385663

DEFAULT_MEMBER_PERMS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | READ_MESSAGE_HISTORY
    | ADD_REACTIONS
    | USE_APPLICATION_COMMANDS
    | ATTACH_FILES
    | EMBED_LINKS
)

# what the bot may do in a DM with a member (receiving-and-responding.mdx: app_permissions in DMs
# include ATTACH_FILES | EMBED_LINKS | MENTION_EVERYONE, and USE_EXTERNAL_EMOJIS with the bot user)
DM_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | READ_MESSAGE_HISTORY
    | ADD_REACTIONS
    | ATTACH_FILES
    | EMBED_LINKS
    | MENTION_EVERYONE
    | USE_EXTERNAL_EMOJIS
    | USE_APPLICATION_COMMANDS
)

# gateway intents
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_GUILD_MESSAGE_REACTIONS = 1 << 10
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_DIRECT_MESSAGE_REACTIONS = 1 << 13

EVENT_INTENTS = {
    "CHANNEL_CREATE": INTENT_GUILDS,
    "CHANNEL_UPDATE": INTENT_GUILDS,
    "GUILD_ROLE_CREATE": INTENT_GUILDS,
    "GUILD_ROLE_UPDATE": INTENT_GUILDS,
    "THREAD_CREATE": INTENT_GUILDS,
    "GUILD_MEMBER_ADD": INTENT_GUILD_MEMBERS,
    "MESSAGE_CREATE": INTENT_GUILD_MESSAGES,
    "MESSAGE_UPDATE": INTENT_GUILD_MESSAGES,
    "MESSAGE_DELETE": INTENT_GUILD_MESSAGES,
    "MESSAGE_REACTION_ADD": INTENT_GUILD_MESSAGE_REACTIONS,
    "MESSAGE_REACTION_REMOVE": INTENT_GUILD_MESSAGE_REACTIONS,
    "MESSAGE_REACTION_REMOVE_ALL": INTENT_GUILD_MESSAGE_REACTIONS,
}

# message flags (developers/resources/message.mdx, Message Flags)
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
FLAG_IS_VOICE_MESSAGE = 1 << 13
FLAG_COMPONENTS_V2 = 1 << 15

DISCORD_EPOCH_MS = 1420070400000
MIB = 1024 * 1024
MAX_BODY = 25 * MIB
INTERACTION_TOKEN_TTL = 900.0
CDN_URL_TTL = 24 * 3600.0

# application command option types
OPT_SUB_COMMAND = 1
OPT_SUB_COMMAND_GROUP = 2
OPT_STRING = 3
OPT_INTEGER = 4
OPT_BOOLEAN = 5
OPT_USER = 6
OPT_CHANNEL = 7
OPT_ROLE = 8
OPT_MENTIONABLE = 9
OPT_NUMBER = 10
OPT_ATTACHMENT = 11

# interaction types
ITYPE_PING = 1
ITYPE_APPLICATION_COMMAND = 2
ITYPE_MESSAGE_COMPONENT = 3
ITYPE_AUTOCOMPLETE = 4
ITYPE_MODAL_SUBMIT = 5


class CommandHidden(Exception):  # noqa: N818 - name fixed by the API the tests use
    """Discord would not offer this command to this member (missing default_member_permissions)."""


@dataclass
class CapturedFile:
    filename: str
    data: bytes
    content_type: str | None = (
        None  # guessed from the filename like Discord does (discord.py sends octet-stream)
    )
    field_name: str = field(default="", compare=False, repr=False)  # multipart field, e.g. "files[0]"


@dataclass
class CapturedRequest:
    """One HTTP request the fake received (REST under /api/v10, and CDN downloads).

    ``route`` is the route template in discord.py's spelling (``/channels/{channel_id}/messages``),
    ``params`` its values; both are None/empty for paths the fake does not know.
    """

    method: str
    path: str  # decoded, without /api/v10
    query: dict[str, str]
    json: Any = None
    files: list[CapturedFile] = field(default_factory=list)
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # set when the fake itself choked on the request (-> 400)
    route: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    fault: str | None = None  # the injected fault that shaped the answer, if any
    note: str | None = None  # what else the fake did that a test may want to know (e.g. a nonce replay)
    seq: int = 0  # position in fake.requests

    def __repr__(self) -> str:
        extra = f" [{self.fault}]" if self.fault else ""
        return f"<{self.method} {self.path} -> {self.status}{extra}>"


class FakeClock:
    """Wall clock for the fake: real time plus an offset that ``advance`` moves forward.

    Interaction tokens (15 min), CDN url expiry (24 h) and the nonce window are judged against this
    clock; snowflakes and timestamps are made from it too, so discord.py's ``created_at`` follows it.
    """

    def __init__(self) -> None:
        self._offset = 0.0

    def now(self) -> float:
        return time.time() + self._offset

    def now_dt(self) -> _dt.datetime:
        return _dt.datetime.fromtimestamp(self.now(), _dt.UTC)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("FakeClock only moves forward")
        self._offset += seconds


class ApiError(Exception):
    """An error answer in Discord's JSON shape ``{"code", "message", "errors"?}``."""

    def __init__(self, status: int, code: int, message: str, errors: dict | None = None):
        super().__init__(f"{status} {code} {message}" + (f" {json.dumps(errors)}" if errors else ""))
        self.status = status
        self.body: dict[str, Any] = {"code": code, "message": message}
        if errors is not None:
            self.body["errors"] = errors


class FormErrors:
    """Collects field errors and raises them as one 400 Invalid Form Body (code 50035).

    Paths are dotted, like Discord's nesting: ``"embeds.0.title"`` becomes
    ``{"embeds": {"0": {"title": {"_errors": [{"code", "message"}]}}}}``; ``""`` is the body itself.
    """

    def __init__(self) -> None:
        self.errors: dict[str, Any] = {}

    def add(self, path: str, code: str, message: str) -> None:
        node = self.errors
        for part in [p for p in str(path).split(".") if p != ""]:
            node = node.setdefault(part, {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ApiError(400, 50035, "Invalid Form Body", self.errors)


def form_error(path: str, code: str, message: str) -> ApiError:
    """400 Invalid Form Body with Discord's nested ``errors`` shape (path like "embeds.0.title")."""
    errs = FormErrors()
    errs.add(path, code, message)
    return ApiError(400, 50035, "Invalid Form Body", errs.errors)


def error_paths(body: dict) -> list[str]:
    """The dotted paths and codes of a 50035 body, e.g. ``["embeds.0.title: BASE_TYPE_MAX_LENGTH"]``."""
    out: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            if key == "_errors":
                out.extend(f"{prefix}: {e.get('code')}" for e in value)
            else:
                walk(value, f"{prefix}.{key}" if prefix else str(key))

    walk(body.get("errors") or {}, "")
    return out


def truthy_query(value: str | None) -> bool:
    """Discord's boolean query strings: True/true/1 (developers/reference.mdx, Boolean Query Strings)."""
    return value in ("True", "true", "1")


def text_of(msg: dict | None) -> str:
    """Content + embed titles/descriptions/field names+values/footers, joined by newlines."""
    if not msg:
        return ""
    parts: list[str] = []
    if msg.get("content"):
        parts.append(msg["content"])
    parts.extend(embed_parts(msg.get("embeds") or []))
    return "\n".join(parts)


def embed_parts(embeds: list[dict]) -> list[str]:
    parts: list[str] = []
    for emb in embeds:
        for key in ("title", "description"):
            if emb.get(key):
                parts.append(str(emb[key]))
        for fld in emb.get("fields") or []:
            parts.append(str(fld.get("name", "")))
            parts.append(str(fld.get("value", "")))
        footer = emb.get("footer") or {}
        if footer.get("text"):
            parts.append(str(footer["text"]))
    return parts


def iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).isoformat()


def json_response(status: int, obj: Any, headers: dict[str, str] | None = None) -> web.Response:
    # Content-Type must be exactly application/json: discord.py compares it verbatim.
    hdrs = {"Content-Type": "application/json"}
    if headers:
        hdrs.update(headers)
    return web.Response(status=status, body=json.dumps(obj).encode(), headers=hdrs)


def image_dims(data: bytes) -> tuple[int | None, int | None]:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            return im.width, im.height
    except Exception:  # not an image, or PIL missing
        return None, None


def guess_type(filename: str, sent: str | None) -> str | None:
    guessed, _ = mimetypes.guess_type(filename)
    if guessed:
        return guessed
    return sent


def find_component(components: list[dict], custom_id: str) -> dict | None:
    for comp in components or []:
        if comp.get("custom_id") == custom_id:
            return comp
        for key in ("components", "accessory"):
            inner = comp.get(key)
            if isinstance(inner, dict):
                inner = [inner]
            if isinstance(inner, list):
                found = find_component(inner, custom_id)
                if found is not None:
                    return found
    return None


def iter_components(components: list[dict]) -> list[dict]:
    """Every component, depth first (rows before their children)."""
    out: list[dict] = []
    for comp in components or []:
        out.append(comp)
        for key in ("components", "accessory"):
            inner = comp.get(key)
            if isinstance(inner, dict):
                inner = [inner]
            if isinstance(inner, list):
                out.extend(iter_components(inner))
    return out


_PLACEHOLDER = re.compile(r"\{[^{}/]+\}")


def normalise_route(template: str) -> str:
    """``/channels/{id}/messages`` and ``/channels/{channel_id}/messages`` compare equal."""
    return _PLACEHOLDER.sub("{}", template.strip())


def is_template(path: str) -> bool:
    return bool(re.search(r"\{[A-Za-z_][A-Za-z0-9_]*\}", path))
