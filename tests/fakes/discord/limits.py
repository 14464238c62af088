"""What real Discord refuses, as pure functions that raise ``ApiError`` (400, code 50035 Invalid Form Body).

Every rule comes from Discord's docs at the commit named in ../shared/specs/SOURCES.md (cited per rule
below as ``message.mdx``, ``application-commands.mdx``, ``components.mdx`` (developers/components/
reference.mdx), ``receiving-and-responding.mdx``, ``webhook.mdx``, ``reference.mdx``) or from
``openapi.json``. The top-level shape ``{"code": 50035, "message": "Invalid Form Body", "errors": {...}}``
and the field paths are Discord's; where the docs name no per-field error code, the code string is the
fake's own best guess, so tests should assert on the status, the 50035 and the path, not the inner code.

Checked deliberately *not* to refuse what discord.py 2.7.1 sends on its own: ``tts`` on edits, unknown
keys (Discord ignores them), ``nonce`` as a string with ``enforce_nonce``, ``allowed_mentions`` with
``parse`` plus ``replied_user``, ``dm_permission``/``contexts: null`` on guild command syncs.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from .common import (
    FLAG_COMPONENTS_V2,
    FLAG_EPHEMERAL,
    FLAG_IS_VOICE_MESSAGE,
    FLAG_SUPPRESS_EMBEDS,
    FLAG_SUPPRESS_NOTIFICATIONS,
    ITYPE_APPLICATION_COMMAND,
    ITYPE_AUTOCOMPLETE,
    ITYPE_MESSAGE_COMPONENT,
    ITYPE_MODAL_SUBMIT,
    ITYPE_PING,
    OPT_INTEGER,
    OPT_NUMBER,
    OPT_STRING,
    OPT_SUB_COMMAND,
    OPT_SUB_COMMAND_GROUP,
    ApiError,
    CapturedFile,
    FormErrors,
)

# --------------------------------------------------------------------------------------------------
# message flags that may be *set* per operation
#   message.mdx Create Message: SUPPRESS_EMBEDS, SUPPRESS_NOTIFICATIONS, IS_VOICE_MESSAGE, IS_COMPONENTS_V2
#   message.mdx Edit Message: SUPPRESS_EMBEDS and IS_COMPONENTS_V2 (the latter can only be set)
#   receiving-and-responding.mdx callback data: SUPPRESS_EMBEDS, EPHEMERAL, IS_COMPONENTS_V2,
#     IS_VOICE_MESSAGE, SUPPRESS_NOTIFICATIONS; DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE: only EPHEMERAL
#   webhook.mdx Execute Webhook: SUPPRESS_EMBEDS, SUPPRESS_NOTIFICATIONS, IS_COMPONENTS_V2, plus EPHEMERAL
#     for interaction followups (receiving-and-responding.mdx, Create Followup Message)
#   webhook.mdx Edit Webhook Message: SUPPRESS_EMBEDS and IS_COMPONENTS_V2
CREATE_FLAGS = FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_IS_VOICE_MESSAGE | FLAG_COMPONENTS_V2
EDIT_FLAGS = FLAG_SUPPRESS_EMBEDS | FLAG_COMPONENTS_V2
CALLBACK_FLAGS = (
    FLAG_SUPPRESS_EMBEDS
    | FLAG_EPHEMERAL
    | FLAG_COMPONENTS_V2
    | FLAG_IS_VOICE_MESSAGE
    | FLAG_SUPPRESS_NOTIFICATIONS
)
DEFERRED_FLAGS = FLAG_EPHEMERAL
FOLLOWUP_FLAGS = FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_COMPONENTS_V2 | FLAG_EPHEMERAL

OP_FLAGS = {
    "create": CREATE_FLAGS,
    "callback": CALLBACK_FLAGS,
    "deferred": DEFERRED_FLAGS,
    "followup": FOLLOWUP_FLAGS,
}
EDIT_OPS = {"edit", "webhook_edit", "update"}  # changes to an existing message

CONTENT_MAX = 2000  # message.mdx Create Message
NONCE_MAX = 25  # message.mdx Create Message
EMBEDS_MAX = 10
EMBED_TOTAL_MAX = 6000  # message.mdx Embed Limits
STICKERS_MAX = 3
ATTACHMENT_DESCRIPTION_MAX = 1024
MENTION_IDS_MAX = 100  # message.mdx Allowed Mentions Object
MENTION_TYPES = ("roles", "users", "everyone")
ACTION_ROWS_MAX = 5  # components.mdx Legacy Message Component Behavior
ROW_BUTTONS_MAX = 5  # components.mdx Action Row
CUSTOM_ID_MAX = 100
BUTTON_LABEL_MAX = 80
SELECT_OPTIONS_MAX = 25
BUTTON_STYLES = {1, 2, 3, 4, 5, 6}
LINK_STYLE = 5
PREMIUM_STYLE = 6
SELECT_TYPES = {3, 5, 6, 7, 8}


def _len_trimmed(value: Any) -> int:
    return len(str(value).strip()) if value is not None else 0


def _max_len(errs: FormErrors, path: str, value: Any, limit: int) -> None:
    if value is not None and len(str(value)) > limit:
        errs.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _bad_length(errs: FormErrors, path: str, value: Any, low: int, high: int) -> None:
    n = len(value) if isinstance(value, str) else -1
    if not low <= n <= high:
        errs.add(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")


# --------------------------------------------------------------------------------------------------
# messages


def check_embeds(errs: FormErrors, embeds: Any) -> None:
    """message.mdx Embed Limits: title 256, description 4096, 25 fields, field name 256 / value 1024,
    footer text 2048, author name 256, all of them together 6000; whitespace at the ends not counted."""
    if embeds is None:
        return
    if not isinstance(embeds, list):
        errs.add("embeds", "BASE_TYPE_ARRAY", "Must be an array.")
        return
    if len(embeds) > EMBEDS_MAX:
        errs.add("embeds", "BASE_TYPE_MAX_LENGTH", f"Must be {EMBEDS_MAX} or fewer in length.")
    total = 0
    for i, emb in enumerate(embeds):
        p = f"embeds.{i}"
        if not isinstance(emb, dict):
            errs.add(p, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
            continue
        for key, limit in (("title", 256), ("description", 4096)):
            n = _len_trimmed(emb.get(key))
            total += n
            if n > limit:
                errs.add(f"{p}.{key}", "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
        fields = emb.get("fields") or []
        if len(fields) > 25:
            errs.add(f"{p}.fields", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        for j, fld in enumerate(fields):
            for key, limit in (("name", 256), ("value", 1024)):
                raw = fld.get(key) if isinstance(fld, dict) else None
                n = _len_trimmed(raw)
                total += n
                if raw is None or n == 0:
                    errs.add(f"{p}.fields.{j}.{key}", "BASE_TYPE_REQUIRED", "This field is required")
                elif n > limit:
                    errs.add(
                        f"{p}.fields.{j}.{key}",
                        "BASE_TYPE_MAX_LENGTH",
                        f"Must be {limit} or fewer in length.",
                    )
        for key, sub, limit in (("footer", "text", 2048), ("author", "name", 256)):
            obj = emb.get(key)
            if obj is None:
                continue
            raw = obj.get(sub) if isinstance(obj, dict) else None
            n = _len_trimmed(raw)
            total += n
            if raw is None or n == 0:
                errs.add(f"{p}.{key}.{sub}", "BASE_TYPE_REQUIRED", "This field is required")
            elif n > limit:
                errs.add(f"{p}.{key}.{sub}", "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
    if total > EMBED_TOTAL_MAX:
        errs.add("embeds", "MAX_EMBED_SIZE_EXCEEDED", f"Embed size exceeds maximum size of {EMBED_TOTAL_MAX}")


def check_allowed_mentions(errs: FormErrors, am: Any) -> None:
    """message.mdx Allowed Mentions Object: parse values, parse vs users/roles exclusive, 100 ids each."""
    if am is None:
        return
    if not isinstance(am, dict):
        errs.add("allowed_mentions", "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
        return
    parse = am.get("parse")
    if parse is not None:
        if not isinstance(parse, list):
            errs.add("allowed_mentions.parse", "BASE_TYPE_ARRAY", "Must be an array.")
            parse = []
        for i, value in enumerate(parse):
            if value not in MENTION_TYPES:
                errs.add(
                    f"allowed_mentions.parse.{i}",
                    "BASE_TYPE_CHOICES",
                    f"Value must be one of {set(MENTION_TYPES)!r}.",
                )
    for key in ("users", "roles"):
        ids = am.get(key)
        if ids is None:
            continue
        if not isinstance(ids, list):
            errs.add(f"allowed_mentions.{key}", "BASE_TYPE_ARRAY", "Must be an array.")
            continue
        if len(ids) > MENTION_IDS_MAX:
            errs.add(
                f"allowed_mentions.{key}",
                "BASE_TYPE_MAX_LENGTH",
                f"Must be {MENTION_IDS_MAX} or fewer in length.",
            )
        for i, sid in enumerate(ids):
            if not str(sid).isdigit():
                errs.add(
                    f"allowed_mentions.{key}.{i}", "NUMBER_TYPE_COERCE", f'Value "{sid}" is not snowflake.'
                )
        if ids and parse and key in parse:
            errs.add(
                "allowed_mentions",
                "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                f'parse:["{key}"] and {key}: [ids...] are mutually exclusive.',
            )
    if "replied_user" in am and am["replied_user"] is not None and not isinstance(am["replied_user"], bool):
        errs.add("allowed_mentions.replied_user", "BASE_TYPE_BOOLEAN", "Must be either true or false.")


def check_components(errs: FormErrors, comps: Any, *, v2: bool) -> None:
    """components.mdx: legacy messages take up to 5 action rows; a row holds up to 5 buttons or one
    select; custom_id 1-100 and unique in the message; label up to 80; link buttons need a url and no
    custom_id, other buttons a custom_id and no url; premium buttons a sku_id only."""
    if comps is None:
        return
    if not isinstance(comps, list):
        errs.add("components", "BASE_TYPE_ARRAY", "Must be an array.")
        return
    seen_ids: set[str] = set()

    def interactive(comp: dict, p: str) -> None:
        ctype = comp.get("type")
        cid = comp.get("custom_id")
        if ctype == 2:
            style = comp.get("style")
            if style not in BUTTON_STYLES:
                errs.add(f"{p}.style", "BASE_TYPE_CHOICES", f"Value must be one of {sorted(BUTTON_STYLES)}.")
            if comp.get("label") is not None:
                _max_len(errs, f"{p}.label", comp["label"], BUTTON_LABEL_MAX)
            if style == LINK_STYLE:
                if not comp.get("url"):
                    errs.add(f"{p}.url", "BUTTON_LINK_URL_REQUIRED", "A link button requires a url")
                if cid is not None:
                    errs.add(
                        f"{p}.custom_id",
                        "BUTTON_LINK_CANNOT_HAVE_CUSTOM_ID",
                        "A link button cannot have a custom id",
                    )
                return
            if style == PREMIUM_STYLE:
                if not comp.get("sku_id"):
                    errs.add(f"{p}.sku_id", "BASE_TYPE_REQUIRED", "This field is required")
                for key in ("custom_id", "label", "url", "emoji"):
                    if comp.get(key) is not None:
                        errs.add(
                            f"{p}.{key}", "BUTTON_PREMIUM_FIELD_INVALID", "Premium buttons take a sku_id only"
                        )
                return
            if comp.get("url") is not None:
                errs.add(f"{p}.url", "BUTTON_NON_LINK_CANNOT_HAVE_URL", "Only link buttons can have a url")
        elif ctype in SELECT_TYPES:
            opts = comp.get("options")
            if ctype == 3 and (not isinstance(opts, list) or not 1 <= len(opts) <= SELECT_OPTIONS_MAX):
                errs.add(
                    f"{p}.options",
                    "BASE_TYPE_BAD_LENGTH",
                    f"Must be between 1 and {SELECT_OPTIONS_MAX} in length.",
                )
        else:
            return
        if cid is None:
            errs.add(f"{p}.custom_id", "BASE_TYPE_REQUIRED", "This field is required")
            return
        if not isinstance(cid, str) or not 1 <= len(cid) <= CUSTOM_ID_MAX:
            errs.add(
                f"{p}.custom_id", "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {CUSTOM_ID_MAX} in length."
            )
        elif cid in seen_ids:
            errs.add(
                f"{p}.custom_id", "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated"
            )
        else:
            seen_ids.add(cid)

    def walk_v2(items: list, prefix: str) -> None:
        for i, comp in enumerate(items):
            if not isinstance(comp, dict):
                continue
            p = f"{prefix}.{i}"
            interactive(comp, p)
            for key in ("components", "accessory"):
                inner = comp.get(key)
                if isinstance(inner, dict):
                    interactive(inner, f"{p}.{key}")
                elif isinstance(inner, list):
                    walk_v2(inner, f"{p}.{key}")

    if v2:
        walk_v2(comps, "components")
        return
    if len(comps) > ACTION_ROWS_MAX:
        errs.add("components", "BASE_TYPE_MAX_LENGTH", f"Must be {ACTION_ROWS_MAX} or fewer in length.")
    for i, row in enumerate(comps):
        p = f"components.{i}"
        if not isinstance(row, dict) or row.get("type") != 1:
            errs.add(
                p, "COMPONENT_TYPE_INVALID", "Top-level components of a legacy message must be action rows"
            )
            continue
        inner = row.get("components")
        if not isinstance(inner, list) or not inner:
            errs.add(
                f"{p}.components",
                "BASE_TYPE_BAD_LENGTH",
                f"Must be between 1 and {ROW_BUTTONS_MAX} in length.",
            )
            continue
        kinds = [c.get("type") if isinstance(c, dict) else None for c in inner]
        if any(k in SELECT_TYPES for k in kinds) and len(inner) > 1:
            errs.add(
                f"{p}.components", "COMPONENT_LAYOUT_WIDTH_EXCEEDED", "A select takes a whole action row"
            )
        elif len(inner) > ROW_BUTTONS_MAX:
            errs.add(
                f"{p}.components",
                "BASE_TYPE_BAD_LENGTH",
                f"Must be between 1 and {ROW_BUTTONS_MAX} in length.",
            )
        for j, comp in enumerate(inner):
            cp = f"{p}.components.{j}"
            if not isinstance(comp, dict) or comp.get("type") not in {2} | SELECT_TYPES:
                errs.add(cp, "COMPONENT_TYPE_INVALID", "An action row holds buttons or one select")
                continue
            interactive(comp, cp)


def check_flags(errs: FormErrors, flags: Any, op: str, old_flags: int) -> int:
    """The flags a request may set (see the table at the top of this module). Returns them as an int."""
    if flags is None:
        return old_flags if op in EDIT_OPS else 0
    try:
        value = int(flags)
    except (TypeError, ValueError):
        errs.add("flags", "NUMBER_TYPE_COERCE", f'Value "{flags}" is not int.')
        return old_flags
    if op in EDIT_OPS:
        changed = value ^ old_flags
        bad = changed & ~EDIT_FLAGS
        if old_flags & FLAG_COMPONENTS_V2 and not value & FLAG_COMPONENTS_V2:
            bad |= FLAG_COMPONENTS_V2
    else:
        bad = value & ~OP_FLAGS[op]
    if bad:
        errs.add("flags", "MESSAGE_FLAGS_INVALID", f"Flags {bad} cannot be set by this request ({op}).")
    return value


def validate_message_body(
    payload: Any,
    *,
    op: str,
    files: list[CapturedFile] | None = None,
    old_flags: int = 0,
    existing_attachment_ids: set[str] | None = None,
) -> None:
    """Validate a message body (JSON or payload_json) for ``op``:

    ``create`` (POST /channels/{id}/messages), ``edit`` (PATCH of a channel message), ``callback``
    (type-4 data), ``deferred`` (type-5 data), ``update`` (type-7 data), ``followup`` (POST
    /webhooks/{app}/{token}), ``webhook_edit`` (PATCH /webhooks/{app}/{token}/messages/{id}).
    The "at least one of content/embeds/..." rule is checked here for creations; for edits the
    fake checks the resulting message (``require_not_empty``).
    """
    files = files or []
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise ApiError(
            400,
            50035,
            "Invalid Form Body",
            {
                "_errors": [
                    {"code": "MODEL_TYPE_CONVERT", "message": "Only dictionaries may be used in a ModelType"}
                ]
            },
        )
    errs = FormErrors()
    content = payload.get("content")
    if content is not None and not isinstance(content, str):
        errs.add("content", "BASE_TYPE_STRING", "Must be a string.")
    else:
        _max_len(errs, "content", content, CONTENT_MAX)
    if op == "create":
        nonce = payload.get("nonce")
        if nonce is not None:
            if isinstance(nonce, bool) or not isinstance(nonce, int | str):
                errs.add("nonce", "BASE_TYPE_BAD_TYPE", "Must be an integer or a string.")
            elif isinstance(nonce, str):
                _max_len(errs, "nonce", nonce, NONCE_MAX)
            elif not -(2**63) <= nonce < 2**63:
                errs.add("nonce", "NUMBER_TYPE_MAX", "Integer is out of range.")
        enforce = payload.get("enforce_nonce")
        if enforce is not None and not isinstance(enforce, bool):
            errs.add("enforce_nonce", "BASE_TYPE_BOOLEAN", "Must be either true or false.")
        stickers = payload.get("sticker_ids")
        if isinstance(stickers, list) and len(stickers) > STICKERS_MAX:
            errs.add("sticker_ids", "BASE_TYPE_MAX_LENGTH", f"Must be {STICKERS_MAX} or fewer in length.")
    if "tts" in payload and payload["tts"] is not None and not isinstance(payload["tts"], bool):
        errs.add("tts", "BASE_TYPE_BOOLEAN", "Must be either true or false.")
    check_embeds(errs, payload.get("embeds"))
    check_allowed_mentions(errs, payload.get("allowed_mentions"))
    flags = check_flags(errs, payload.get("flags"), op, old_flags)
    v2 = bool(flags & FLAG_COMPONENTS_V2)
    check_components(errs, payload.get("components"), v2=v2)
    if v2:
        # message.mdx: with IS_COMPONENTS_V2 the message can only contain components
        for key in ("content", "embeds", "sticker_ids", "poll"):
            if payload.get(key):
                errs.add(
                    key,
                    "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
                    "Only components can be sent with IS_COMPONENTS_V2",
                )
    check_attachments(errs, payload.get("attachments"), files, existing_attachment_ids or set())
    errs.raise_if_any()
    if op in ("create", "callback", "followup"):
        has_any = (
            bool(content)
            or bool(payload.get("embeds"))
            or bool(payload.get("sticker_ids"))
            or bool(payload.get("components"))
            or bool(files)
            or bool(payload.get("poll"))
            or bool(payload.get("shared_client_theme"))
            or (op == "create" and (payload.get("message_reference") or {}).get("type") == 1)
        )
        if not has_any:
            raise ApiError(400, 50006, "Cannot send an empty message")


def check_attachments(
    errs: FormErrors, attachments: Any, files: list[CapturedFile], existing_ids: set[str]
) -> None:
    """message.mdx Attachment Request Structure: for new files ``id`` is the n of ``files[n]``; on edits
    the ids of attachments to keep. reference.mdx Uploading Files: each ``files[n]`` needs a filename
    and a unique name."""
    indices = set()
    for pos, f in enumerate(files):
        key = f.field_name or f"files[{pos}]"
        if key.startswith("files[") and key.endswith("]"):
            if key[6:-1] in indices:
                errs.add(key, "ATTACHMENT_FIELD_NAME_DUPLICATED", "Each files[n] needs a unique name")
            indices.add(key[6:-1])
        if not f.filename or f.filename == key:
            errs.add(key, "ATTACHMENT_FILENAME_REQUIRED", "A file needs a filename (Content-Disposition)")
    if attachments is None:
        return
    if not isinstance(attachments, list):
        errs.add("attachments", "BASE_TYPE_ARRAY", "Must be an array.")
        return
    seen: set[str] = set()
    for i, meta in enumerate(attachments):
        p = f"attachments.{i}"
        if not isinstance(meta, dict) or meta.get("id") is None:
            errs.add(f"{p}.id", "BASE_TYPE_REQUIRED", "This field is required")
            continue
        aid = str(meta["id"])
        if aid in seen:
            errs.add(f"{p}.id", "ATTACHMENT_ID_DUPLICATED", "Attachment ids must be unique")
        seen.add(aid)
        if aid not in indices and aid not in existing_ids:
            errs.add(
                f"{p}.id",
                "ATTACHMENT_NOT_FOUND",
                f"No files[{aid}] was uploaded and no attachment {aid} exists",
            )
        _max_len(errs, f"{p}.description", meta.get("description"), ATTACHMENT_DESCRIPTION_MAX)


def require_not_empty(msg: dict) -> None:
    """An edit may not leave a message with nothing in it (50006, like a create)."""
    if not (
        msg.get("content")
        or msg.get("embeds")
        or msg.get("attachments")
        or msg.get("components")
        or msg.get("sticker_items")
        or msg.get("poll")
    ):
        raise ApiError(400, 50006, "Cannot send an empty message")


# --------------------------------------------------------------------------------------------------
# interactions

# receiving-and-responding.mdx, Interaction Callback Type: 6 and 7 only for component-based
# interactions; 9 not for MODAL_SUBMIT or PING; 8 answers autocomplete; 1 answers PING.
CALLBACK_TYPES_FOR = {
    1: {ITYPE_PING},
    4: {ITYPE_APPLICATION_COMMAND, ITYPE_MESSAGE_COMPONENT, ITYPE_MODAL_SUBMIT},
    5: {ITYPE_APPLICATION_COMMAND, ITYPE_MESSAGE_COMPONENT, ITYPE_MODAL_SUBMIT},
    6: {ITYPE_MESSAGE_COMPONENT, ITYPE_MODAL_SUBMIT},
    7: {ITYPE_MESSAGE_COMPONENT, ITYPE_MODAL_SUBMIT},
    8: {ITYPE_AUTOCOMPLETE},
    9: {ITYPE_APPLICATION_COMMAND, ITYPE_MESSAGE_COMPONENT},
}
# 10 (PREMIUM_REQUIRED) is deprecated and 12 (LAUNCH_ACTIVITY) needs Activities: the fake's app has neither.


def check_callback_type(rtype: Any, itype: int, *, from_message: bool) -> None:
    if rtype not in (1, 4, 5, 6, 7, 8, 9, 10, 12):
        raise _type_error("Value must be one of (1, 4, 5, 6, 7, 8, 9, 10, 12).")
    allowed = CALLBACK_TYPES_FOR.get(rtype, set())
    if itype not in allowed or (rtype in (6, 7) and not from_message):
        raise _type_error(f"Callback type {rtype} is not valid for interaction type {itype}.")


def _type_error(message: str) -> ApiError:
    errs = FormErrors()
    errs.add("type", "INTERACTION_CALLBACK_TYPE_INVALID", message)
    return ApiError(400, 50035, "Invalid Form Body", errs.errors)


def check_autocomplete(data: dict[str, Any]) -> None:
    """An autocomplete answer (type 8): at most 25 choices, each a name of 1-100 characters and a string value of
    at most 100 (ApplicationCommandOptionStringChoice / IntegerChoice)."""
    errs = FormErrors()
    choices = data.get("choices")
    if not isinstance(choices, list) or len(choices) > 25:
        errs.add("data.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        errs.raise_if_any()
    for n, choice in enumerate(choices):
        _bad_length(errs, f"data.choices.{n}.name", choice.get("name"), 1, 100)
        if isinstance(choice.get("value"), str):
            _max_len(errs, f"data.choices.{n}.value", choice["value"], 100)
    errs.raise_if_any()


def check_modal(data: Any) -> None:
    """receiving-and-responding.mdx Modal: custom_id 1-100, title up to 45, 1-5 components."""
    errs = FormErrors()
    data = data if isinstance(data, dict) else {}
    cid = data.get("custom_id")
    if not isinstance(cid, str) or not 1 <= len(cid) <= CUSTOM_ID_MAX:
        errs.add(
            "data.custom_id", "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {CUSTOM_ID_MAX} in length."
        )
    title = data.get("title")
    if not isinstance(title, str) or not 1 <= len(title) <= 45:
        errs.add("data.title", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 45 in length.")
    comps = data.get("components")
    if not isinstance(comps, list) or not 1 <= len(comps) <= 5:
        errs.add("data.components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
    errs.raise_if_any()


def check_followup(payload: Any, query: dict[str, str]) -> None:
    """receiving-and-responding.mdx Create Followup Message: thread_id, avatar_url and username are
    not supported for interaction followups."""
    errs = FormErrors()
    if "thread_id" in query:
        errs.add(
            "thread_id",
            "INTERACTION_FOLLOWUP_FIELD_UNSUPPORTED",
            "thread_id is not supported for interaction followups",
        )
    if isinstance(payload, dict):
        for key in ("username", "avatar_url"):
            if payload.get(key) is not None:
                errs.add(
                    key,
                    "INTERACTION_FOLLOWUP_FIELD_UNSUPPORTED",
                    f"{key} is not supported for interaction followups",
                )
    errs.raise_if_any()


# --------------------------------------------------------------------------------------------------
# history


def history_query(query: dict[str, str]) -> tuple[str | None, int | None, int]:
    """message.mdx Get Channel Messages: limit 1-100 (default 50); before/after/around mutually
    exclusive. Returns (which, anchor id, limit)."""
    errs = FormErrors()
    limit = 50
    if "limit" in query:
        try:
            limit = int(query["limit"])
        except ValueError:
            errs.add("limit", "NUMBER_TYPE_COERCE", f'Value "{query["limit"]}" is not int.')
        else:
            if limit < 1:
                errs.add("limit", "NUMBER_TYPE_MIN", "int value should be greater than or equal to 1.")
            elif limit > 100:
                errs.add("limit", "NUMBER_TYPE_MAX", "int value should be less than or equal to 100.")
    given = [k for k in ("around", "before", "after") if k in query]
    anchor: int | None = None
    for key in given:
        try:
            anchor = int(query[key])
        except ValueError:
            errs.add(key, "NUMBER_TYPE_COERCE", f'Value "{query[key]}" is not snowflake.')
    if len(given) > 1:
        errs.add("_", "QUERY_PARAMS_EXCLUSIVE", "before, after and around are mutually exclusive")
    errs.raise_if_any()
    return (given[0] if given else None), anchor, limit


# --------------------------------------------------------------------------------------------------
# application commands

MAX_CHAT_INPUT = 100
MAX_USER = 15
MAX_MESSAGE = 15
MAX_COMMANDS = 130  # openapi.json: maxItems of the bulk-overwrite body
COMMAND_CHARS_MAX = 8000  # application-commands.mdx, Slash Commands warning
GUILD_CONTEXT = 0
GUILD_INSTALL = 0


def _name_char_ok(ch: str) -> bool:
    # application-commands.mdx: ^[-_'\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$ (unicode)
    if ch in "-_'":
        return True
    if unicodedata.category(ch)[0] in ("L", "N"):
        return True
    name = unicodedata.name(ch, "")
    return name.startswith(("DEVANAGARI", "THAI"))


def chat_input_name_ok(name: Any) -> bool:
    """The CHAT_INPUT naming rule, including "if there is a lowercase variant ... you must use those"."""
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        return False
    return all(_name_char_ok(ch) and ch.lower() == ch for ch in name)


def _longest(value: Any, localizations: Any) -> int:
    n = len(str(value)) if value is not None else 0
    if isinstance(localizations, dict):
        n = max([n, *(len(str(v)) for v in localizations.values() if v is not None)])
    return n


def command_size(cmd: dict) -> int:
    """application-commands.mdx: name, description and value properties of the command, its options
    (subcommands and groups included) and choices, the longest localization of each counting."""

    def node(obj: dict) -> int:
        n = _longest(obj.get("name"), obj.get("name_localizations"))
        n += _longest(obj.get("description"), obj.get("description_localizations"))
        for choice in obj.get("choices") or []:
            n += _longest(choice.get("name"), choice.get("name_localizations"))
            n += len(str(choice.get("value", "")))
        for opt in obj.get("options") or []:
            if isinstance(opt, dict):
                n += node(opt)
        return n

    return node(cmd)


def _check_options(errs: FormErrors, opts: Any, prefix: str, level: str) -> None:
    """``level`` is what holds the options: "command", "group" or "subcommand"."""
    if opts is None:
        return
    if not isinstance(opts, list):
        errs.add(f"{prefix}options", "BASE_TYPE_ARRAY", "Must be an array.")
        return
    if len(opts) > 25:
        errs.add(f"{prefix}options", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    names: set[str] = set()
    optional_seen = False
    kinds = set()
    for j, opt in enumerate(opts):
        p = f"{prefix}options.{j}"
        if not isinstance(opt, dict):
            errs.add(p, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
            continue
        otype = opt.get("type")
        name = opt.get("name")
        if not chat_input_name_ok(name):
            errs.add(f"{p}.name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
        elif name in names:
            errs.add(
                f"{p}.name", "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS", "Option names must be unique"
            )
        names.add(str(name))
        _bad_length(errs, f"{p}.description", opt.get("description"), 1, 100)
        if otype not in range(1, 12):
            errs.add(f"{p}.type", "BASE_TYPE_CHOICES", "Value must be one of (1, ..., 11).")
            continue
        is_sub = otype in (OPT_SUB_COMMAND, OPT_SUB_COMMAND_GROUP)
        kinds.add("sub" if is_sub else "value")
        # application-commands.mdx, Subcommands and Subcommand Groups: "nesting one level deep within
        # a group" (command > group > subcommand) "is the only kind of nesting supported".
        allowed = {
            "command": None,  # anything, but not subcommands mixed with values (checked below)
            "group": {OPT_SUB_COMMAND},
            "subcommand": set(range(3, 12)),
        }[level]
        if allowed is not None and otype not in allowed:
            errs.add(
                f"{p}.type",
                "APPLICATION_COMMAND_OPTION_NESTING_INVALID",
                "A group holds only subcommands, and a subcommand holds no subcommands or groups",
            )
            continue
        if is_sub:
            inner_level = "group" if otype == OPT_SUB_COMMAND_GROUP else "subcommand"
            _check_options(errs, opt.get("options"), f"{p}.", inner_level)
            continue
        # application-commands.mdx: required options must be listed before optional options
        if opt.get("required"):
            if optional_seen:
                errs.add(
                    f"{p}.required",
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            optional_seen = True
        choices = opt.get("choices")
        if choices is not None:
            if otype not in (OPT_STRING, OPT_INTEGER, OPT_NUMBER):
                errs.add(
                    f"{p}.choices",
                    "APPLICATION_COMMAND_OPTION_CHOICES_INVALID",
                    "Only string, integer and number options take choices",
                )
            if not isinstance(choices, list) or len(choices) > 25:
                errs.add(f"{p}.choices", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
                choices = []
            for k, choice in enumerate(choices):
                cp = f"{p}.choices.{k}"
                if not isinstance(choice, dict):
                    errs.add(cp, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
                    continue
                _bad_length(errs, f"{cp}.name", choice.get("name"), 1, 100)
                value = choice.get("value")
                if otype == OPT_STRING:
                    if not isinstance(value, str) or len(value) > 100:
                        errs.add(
                            f"{cp}.value", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
                        )
                elif isinstance(value, bool) or not isinstance(value, int | float):
                    errs.add(f"{cp}.value", "NUMBER_TYPE_COERCE", f'Value "{value}" is not a number.')
            if choices and opt.get("autocomplete"):
                errs.add(
                    f"{p}.autocomplete",
                    "APPLICATION_COMMAND_AUTOCOMPLETE_CHOICES",
                    "autocomplete may not be set to true if choices are present",
                )
        if otype == OPT_STRING:
            lo, hi = opt.get("min_length"), opt.get("max_length")
            if lo is not None and not (isinstance(lo, int) and 0 <= lo <= 6000):
                errs.add(f"{p}.min_length", "NUMBER_TYPE_MAX", "Must be between 0 and 6000.")
            if hi is not None and not (isinstance(hi, int) and 1 <= hi <= 6000):
                errs.add(f"{p}.max_length", "NUMBER_TYPE_MAX", "Must be between 1 and 6000.")
    if kinds == {"sub", "value"}:
        errs.add(
            f"{prefix}options",
            "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
            "Subcommands and groups cannot be mixed with other options",
        )


def validate_commands(body: Any, *, guild: bool) -> None:
    """A bulk-overwrite body (PUT /applications/{app}/commands or .../guilds/{guild}/commands)."""
    if not isinstance(body, list):
        raise ApiError(
            400,
            50035,
            "Invalid Form Body",
            {"_errors": [{"code": "BASE_TYPE_ARRAY", "message": "Must be an array."}]},
        )
    errs = FormErrors()
    if len(body) > MAX_COMMANDS:
        errs.add("", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_COMMANDS} or fewer in length.")
    seen: set[tuple[str, int]] = set()
    per_type: dict[int, int] = {}
    for i, cmd in enumerate(body):
        p = f"{i}"
        if not isinstance(cmd, dict):
            errs.add(p, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
            continue
        ctype = cmd.get("type") or 1
        per_type[ctype] = per_type.get(ctype, 0) + 1
        name = cmd.get("name")
        if ctype == 1:
            if not chat_input_name_ok(name):
                errs.add(f"{p}.name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
            _bad_length(errs, f"{p}.description", cmd.get("description"), 1, 100)
            _check_options(errs, cmd.get("options"), f"{p}.", "command")
            if command_size(cmd) > COMMAND_CHARS_MAX:
                errs.add(
                    p, "APPLICATION_COMMAND_TOO_LARGE", f"Command exceeds maximum size ({COMMAND_CHARS_MAX})"
                )
        elif ctype in (2, 3):
            _bad_length(errs, f"{p}.name", name, 1, 32)
            if cmd.get("description"):
                errs.add(
                    f"{p}.description",
                    "APPLICATION_COMMAND_DESCRIPTION_INVALID",
                    "User and message commands take an empty description",
                )
            if cmd.get("options"):
                errs.add(
                    f"{p}.options",
                    "APPLICATION_COMMAND_OPTIONS_INVALID",
                    "Only CHAT_INPUT commands take options",
                )
        elif ctype != 4:
            errs.add(f"{p}.type", "BASE_TYPE_CHOICES", "Value must be one of (1, 2, 3, 4).")
        if guild:
            # application-commands.mdx: contexts / integration_types / dm_permission are "only for
            # globally-scoped commands" and "Guild commands don't support the BOT_DM interaction
            # context". discord.py sends dm_permission and contexts/integration_types on guild syncs
            # too (null, or [0] for guild_only commands), which Discord accepts and ignores; the
            # fake refuses only values a guild command cannot have.
            contexts = cmd.get("contexts")
            if contexts is not None and (not isinstance(contexts, list) or set(contexts) - {GUILD_CONTEXT}):
                errs.add(
                    f"{p}.contexts",
                    "APPLICATION_COMMAND_CONTEXTS_GUILD_ONLY",
                    "Guild commands can only use the GUILD interaction context",
                )
            itypes = cmd.get("integration_types")
            if itypes is not None and (not isinstance(itypes, list) or set(itypes) - {GUILD_INSTALL}):
                errs.add(
                    f"{p}.integration_types",
                    "APPLICATION_COMMAND_INTEGRATION_TYPES_GUILD_ONLY",
                    "Guild commands can only be GUILD_INSTALL",
                )
        key = (str(name), ctype)
        if key in seen:
            errs.add(
                f"{p}.name",
                "APPLICATION_COMMANDS_DUPLICATE_NAME",
                f"Application command names must be unique: {name}",
            )
        seen.add(key)
    for ctype, limit in ((1, MAX_CHAT_INPUT), (2, MAX_USER), (3, MAX_MESSAGE)):
        if per_type.get(ctype, 0) > limit:
            errs.add("", "APPLICATION_COMMANDS_TOO_MANY", f"At most {limit} commands of type {ctype}")
    errs.raise_if_any()
