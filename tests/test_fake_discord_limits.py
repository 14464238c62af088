"""The fake Discord refuses what Discord refuses (tests/fakes/discord/limits.py), and only that.

Each case names the rule's source (see ../shared/specs/SOURCES.md). The end-to-end side (that
discord.py's own traffic is accepted) is in tests/test_fake_discord.py.
"""

from __future__ import annotations

import copy

import pytest

from tests.fakes.discord import ApiError, CapturedFile, error_paths
from tests.fakes.discord.limits import (
    chat_input_name_ok,
    check_autocomplete,
    check_callback_type,
    check_followup,
    check_modal,
    command_size,
    validate_commands,
    validate_message_body,
)

# what discord.py 2.7.1 sends for a bulk overwrite (from the shared sample payloads)
SYNC_BODY = [
    {
        "name": "anchor",
        "description": "Anchor image",
        "type": 1,
        "options": [
            {
                "name": "set",
                "description": "Set the anchor image",
                "type": 1,
                "options": [{"type": 11, "name": "image", "description": "\u2026", "required": True}],
            }
        ],
        "nsfw": False,
        "dm_permission": True,
        "default_member_permissions": None,
        "contexts": None,
        "integration_types": None,
    },
    {
        "name": "budget",
        "description": "Show remaining budget",
        "type": 1,
        "options": [],
        "nsfw": False,
        "dm_permission": True,
        "default_member_permissions": None,
        "contexts": None,
        "integration_types": None,
    },
]


def refused(fn, *args, **kw) -> ApiError:
    with pytest.raises(ApiError) as ei:
        fn(*args, **kw)
    return ei.value


def paths(err: ApiError) -> list[str]:
    assert err.status == 400 and err.body["code"] == 50035 and err.body["message"] == "Invalid Form Body"
    return [p.split(":")[0] for p in error_paths(err.body)]


# --------------------------------------------------------------------------------------------------
# application commands (application-commands.mdx)


def cmd(name: str = "shot", description: str = "Make a shot", **kw) -> dict:
    return {"name": name, "description": description, "type": 1, **kw}


def opt(name: str, otype: int = 3, description: str = "An option", **kw) -> dict:
    return {"name": name, "type": otype, "description": description, **kw}


def test_discord_py_sync_bodies_are_accepted():
    validate_commands(SYNC_BODY, guild=False)
    validate_commands(SYNC_BODY, guild=True)  # dm_permission and contexts: null are sent on guild syncs too
    guild_only = [cmd(dm_permission=False, contexts=[0], integration_types=[0])]
    validate_commands(guild_only, guild=True)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("shot", True),
        ("anchor-set", True),
        ("it's", True),
        ("café", True),
        ("नमस्ते", True),  # Devanagari, with combining marks
        ("สวัสดี", True),  # Thai
        ("日本", True),  # uncased letters
        ("x" * 32, True),
        ("Shot", False),  # a lowercase variant exists: it must be used
        ("ÄB", False),
        ("my cmd", False),
        ("shot!", False),
        ("", False),
        ("x" * 33, False),
    ],
)
def test_command_name_rule(name, ok):
    assert chat_input_name_ok(name) is ok
    if not ok:
        assert "0.name" in paths(refused(validate_commands, [cmd(name)], guild=False))


@pytest.mark.parametrize(
    ("command", "path"),
    [
        (cmd(description=""), "0.description"),
        (cmd(description="x" * 101), "0.description"),
        (cmd(options=[opt(f"o{i}") for i in range(26)]), "0.options"),
        (cmd(options=[opt("a"), opt("b", required=True)]), "0.options.1.required"),
        (cmd(options=[opt("a"), opt("a")]), "0.options.1.name"),
        (cmd(options=[opt("A")]), "0.options.0.name"),
        (cmd(options=[opt("a", description="")]), "0.options.0.description"),
        (
            cmd(options=[opt("a", choices=[{"name": f"c{i}", "value": str(i)} for i in range(26)])]),
            "0.options.0.choices",
        ),
        (cmd(options=[opt("a", choices=[{"name": "x" * 101, "value": "v"}])]), "0.options.0.choices.0.name"),
        (cmd(options=[opt("a", choices=[{"name": "n", "value": "v" * 101}])]), "0.options.0.choices.0.value"),
        (cmd(options=[opt("a", 4, choices=[{"name": "n", "value": "v"}])]), "0.options.0.choices.0.value"),
        (cmd(options=[opt("a", 5, choices=[{"name": "n", "value": 1}])]), "0.options.0.choices"),
        (
            cmd(options=[opt("a", autocomplete=True, choices=[{"name": "n", "value": "v"}])]),
            "0.options.0.autocomplete",
        ),
        (cmd(options=[opt("a", min_length=6001)]), "0.options.0.min_length"),
        (cmd(options=[opt("a", max_length=0)]), "0.options.0.max_length"),
        (cmd(options=[opt("a", 12)]), "0.options.0.type"),
        # one level of nesting: command > group > subcommand
        (cmd(options=[opt("sub", 1, options=[opt("deeper", 1)])]), "0.options.0.options.0.type"),
        (cmd(options=[opt("sub", 1, options=[opt("grp", 2)])]), "0.options.0.options.0.type"),
        (cmd(options=[opt("grp", 2, options=[opt("grp2", 2)])]), "0.options.0.options.0.type"),
        (cmd(options=[opt("grp", 2, options=[opt("value", 3)])]), "0.options.0.options.0.type"),
        (
            cmd(options=[opt("grp", 2, options=[opt("s", 1, options=[opt("g", 2)])])]),
            "0.options.0.options.0.options.0.type",
        ),
        (cmd(options=[opt("sub", 1), opt("value", 3)]), "0.options"),
        ({"name": "Pin Message", "type": 3, "description": "no"}, "0.description"),
        ({"name": "Pin", "type": 2, "description": "", "options": [opt("a")]}, "0.options"),
    ],
)
def test_command_structure_refusals(command, path):
    assert path in paths(refused(validate_commands, [command], guild=False))


def test_command_nesting_that_discord_allows():
    ok = cmd(
        options=[
            opt("grp", 2, options=[opt("s", 1, options=[opt("a", required=True), opt("b", 11)])]),
            opt("sub", 1, options=[opt("c", 4, choices=[{"name": "one", "value": 1}])]),
        ]
    )
    validate_commands([ok], guild=False)


def test_command_size_is_8000_characters_with_longest_localizations():
    choices = [{"name": "n" * 100, "value": "v" * 100} for _ in range(25)]  # 5,000 a option
    big = cmd(options=[opt("a", choices=choices), opt("b", choices=copy.deepcopy(choices))])
    assert command_size(big) > 8000
    assert "0" in paths(refused(validate_commands, [big], guild=False))
    small = cmd(options=[opt("a", choices=choices)])
    validate_commands([small], guild=False)
    loc = cmd(description="d", description_localizations={"de": "x" * 100})
    assert command_size(loc) == len("shot") + 100


def test_contexts_and_integration_types_only_make_sense_on_global_commands():
    dms = cmd(contexts=[0, 1])
    validate_commands([dms], guild=False)
    assert "0.contexts" in paths(refused(validate_commands, [dms], guild=True))
    user_install = cmd(integration_types=[1])
    validate_commands([user_install], guild=False)
    assert "0.integration_types" in paths(refused(validate_commands, [user_install], guild=True))


def test_command_list_limits():
    assert "1.name" in paths(refused(validate_commands, [cmd(), cmd()], guild=False))
    validate_commands([cmd(), {"name": "shot", "type": 2, "description": ""}], guild=False)  # other type
    assert "" in paths(refused(validate_commands, [cmd(f"c{i}") for i in range(101)], guild=False))
    err = refused(validate_commands, {"name": "x"}, guild=False)
    assert err.body["code"] == 50035


# --------------------------------------------------------------------------------------------------
# message bodies (message.mdx, components.mdx)


def embed(**kw) -> dict:
    return {"type": "rich", **kw}


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ({"content": "x" * 2001}, "content"),
        ({"content": 5}, "content"),
        ({"embeds": [embed(title="t")] * 11}, "embeds"),
        ({"embeds": [embed(title="x" * 257)]}, "embeds.0.title"),
        ({"embeds": [embed(description="x" * 4097)]}, "embeds.0.description"),
        ({"embeds": [embed(fields=[{"name": "n", "value": "v"}] * 26)]}, "embeds.0.fields"),
        ({"embeds": [embed(fields=[{"name": "x" * 257, "value": "v"}])]}, "embeds.0.fields.0.name"),
        ({"embeds": [embed(fields=[{"name": "n", "value": "x" * 1025}])]}, "embeds.0.fields.0.value"),
        ({"embeds": [embed(fields=[{"name": "  ", "value": "v"}])]}, "embeds.0.fields.0.name"),
        ({"embeds": [embed(footer={"text": "x" * 2049})]}, "embeds.0.footer.text"),
        ({"embeds": [embed(author={"name": "x" * 257})]}, "embeds.0.author.name"),
        ({"embeds": [embed(description="x" * 4000), embed(description="x" * 2001)]}, "embeds"),
        ({"content": "x", "allowed_mentions": {"parse": ["user"]}}, "allowed_mentions.parse.0"),
        ({"content": "x", "allowed_mentions": {"parse": ["users"], "users": ["1"]}}, "allowed_mentions"),
        ({"content": "x", "allowed_mentions": {"parse": ["roles"], "roles": [2]}}, "allowed_mentions"),
        (
            {"content": "x", "allowed_mentions": {"users": [str(i) for i in range(101)]}},
            "allowed_mentions.users",
        ),
        ({"content": "x", "nonce": "n" * 26}, "nonce"),
        ({"content": "x", "nonce": 1.5}, "nonce"),
        ({"content": "x", "enforce_nonce": "yes"}, "enforce_nonce"),
        ({"content": "x", "flags": 64}, "flags"),  # EPHEMERAL cannot be set on a channel message
        ({"content": "x", "flags": 1 << 15}, "content"),  # IS_COMPONENTS_V2 takes components only
        ({"content": "x", "sticker_ids": ["1", "2", "3", "4"]}, "sticker_ids"),
        ({"content": "x", "attachments": [{"id": 1}]}, "attachments.0.id"),
    ],
)
def test_message_create_refusals(payload, path):
    assert path in paths(refused(validate_message_body, payload, op="create"))


def test_message_limits_are_inclusive_and_trim_whitespace():
    validate_message_body({"content": "x" * 2000}, op="create")
    validate_message_body({"content": "x", "nonce": "n" * 25}, op="create")
    validate_message_body({"content": "x", "nonce": 2**63 - 1, "enforce_nonce": True}, op="create")
    validate_message_body({"embeds": [embed(title="  " + "x" * 256 + "  ")]}, op="create")
    six_thousand = [
        embed(description="x" * 4000),
        embed(description="x" * 1000, title="t" * 256, footer={"text": "f" * 744}),
    ]
    validate_message_body({"embeds": six_thousand}, op="create")
    validate_message_body(
        {"content": "x", "allowed_mentions": {"parse": ["users", "roles"], "users": []}}, op="create"
    )
    validate_message_body(
        {"content": "x", "allowed_mentions": {"parse": [], "users": [1, "2"], "replied_user": False}},
        op="create",
    )
    validate_message_body({"content": "x", "flags": 4 | 4096}, op="create")


def test_a_message_needs_something_in_it():
    for op in ("create", "callback", "followup"):
        err = refused(validate_message_body, {"content": "", "embeds": [], "tts": False}, op=op)
        assert (err.status, err.body["code"]) == (400, 50006)
    validate_message_body({"components": [row(button("a"))]}, op="create")
    validate_message_body({}, op="create", files=[CapturedFile("a.png", b"x", field_name="files[0]")])
    validate_message_body({"message_reference": {"type": 1, "message_id": "1"}}, op="create")  # a forward
    validate_message_body({"tts": False}, op="edit")  # edits are judged by their result


def row(*components) -> dict:
    return {"type": 1, "components": list(components)}


def button(custom_id: str | None, style: int = 1, **kw) -> dict:
    b = {"type": 2, "style": style, "label": kw.pop("label", "Go"), **kw}
    if custom_id is not None:
        b["custom_id"] = custom_id
    return b


@pytest.mark.parametrize(
    ("components", "path"),
    [
        ([row(button(f"b{i}")) for i in range(6)], "components"),
        ([row(*[button(f"b{i}") for i in range(6)])], "components.0.components"),
        ([row()], "components.0.components"),
        ([button("top-level")], "components.0"),
        ([row(button("a", label="x" * 81))], "components.0.components.0.label"),
        ([row(button("x" * 101))], "components.0.components.0.custom_id"),
        ([row(button(""))], "components.0.components.0.custom_id"),
        ([row(button("same")), row(button("same"))], "components.1.components.0.custom_id"),
        ([row(button(None))], "components.0.components.0.custom_id"),
        ([row(button("a", url="https://x.example"))], "components.0.components.0.url"),
        ([row(button("a", style=5, url="https://x.example"))], "components.0.components.0.custom_id"),
        ([row(button(None, style=5))], "components.0.components.0.url"),
        ([row(button("a", style=9))], "components.0.components.0.style"),
        (
            [row({"type": 3, "custom_id": "s", "options": [{"label": "l", "value": "v"}]}, button("b"))],
            "components.0.components",
        ),
        (
            [
                row(
                    {
                        "type": 3,
                        "custom_id": "s",
                        "options": [{"label": "l", "value": str(i)} for i in range(26)],
                    }
                )
            ],
            "components.0.components.0.options",
        ),
    ],
)
def test_legacy_component_refusals(components, path):
    assert path in paths(
        refused(validate_message_body, {"content": "x", "components": components}, op="create")
    )


def test_components_discord_py_sends_are_accepted():
    comps = [
        row(
            button("a"),
            button(None, style=5, url="https://x.example", label="Docs"),
            button("c", disabled=True),
        ),
        row(
            {
                "type": 3,
                "custom_id": "s",
                "options": [{"label": "l", "value": "v"}],
                "min_values": 1,
                "max_values": 1,
            }
        ),
        row(*[button(f"r{i}") for i in range(5)]),
        row(button("x" * 100)),
        row(button("d", label="x" * 80)),
    ]
    validate_message_body({"content": "x", "components": comps}, op="create")


@pytest.mark.parametrize(
    ("op", "old", "new", "ok"),
    [
        ("edit", 0, 4, True),  # SUPPRESS_EMBEDS on
        ("edit", 4, 0, True),  # and off
        ("edit", 4096, 4096 | 4, True),  # earlier flags sent back unchanged are fine
        ("edit", 0, 4096, False),  # SUPPRESS_NOTIFICATIONS is set at creation only
        ("edit", 1 << 15, 0, False),  # IS_COMPONENTS_V2 cannot be unset
        ("webhook_edit", 0, 64, False),
        ("update", 0, 4, True),
        ("callback", 0, 64 | 4 | 4096, True),
        ("callback", 0, 1 << 7, False),  # LOADING is Discord's to set
        ("deferred", 0, 64, True),
        ("deferred", 0, 64 | 4096, False),  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE: only EPHEMERAL
        ("followup", 0, 64 | 4096 | 4, True),
        ("followup", 0, 1 << 13, False),
        ("create", 0, 1 << 13, True),  # IS_VOICE_MESSAGE may be set on create
    ],
)
def test_flags_per_operation(op, old, new, ok):
    payload = {"content": "x", "flags": new} if not new & (1 << 15) else {"flags": new}
    if ok:
        validate_message_body(payload, op=op, old_flags=old)
    else:
        assert "flags" in paths(refused(validate_message_body, payload, op=op, old_flags=old))


def test_attachment_ids_match_uploaded_files():
    files = [
        CapturedFile("a.mp4", b"x", field_name="files[0]"),
        CapturedFile("b.png", b"y", field_name="files[1]"),
    ]
    validate_message_body(
        {"attachments": [{"id": 0}, {"id": "1", "description": "d"}]}, op="create", files=files
    )
    assert "attachments.0.id" in paths(
        refused(validate_message_body, {"attachments": [{"id": 2}]}, op="create", files=files)
    )
    assert "attachments.1.id" in paths(
        refused(validate_message_body, {"attachments": [{"id": 0}, {"id": 0}]}, op="create", files=files)
    )
    assert "attachments.0.description" in paths(
        refused(
            validate_message_body,
            {"attachments": [{"id": 0, "description": "x" * 1025}]},
            op="create",
            files=files,
        )
    )
    twice = [CapturedFile("a", b"x", field_name="files[0]"), CapturedFile("b", b"y", field_name="files[0]")]
    assert "files[0]" in paths(refused(validate_message_body, {"content": "x"}, op="create", files=twice))
    # on an edit, ids of attachments already on the message are kept
    validate_message_body({"attachments": [{"id": "99"}]}, op="edit", existing_attachment_ids={"99"})
    assert "files[0]" in paths(
        refused(
            validate_message_body,
            {"content": "x"},
            op="create",
            files=[CapturedFile("files[0]", b"x", field_name="files[0]")],
        )
    )


def test_error_shape_is_discords():
    err = refused(validate_message_body, {"embeds": [embed(title="x" * 257)]}, op="create")
    assert err.body == {
        "code": 50035,
        "message": "Invalid Form Body",
        "errors": {
            "embeds": {
                "0": {
                    "title": {
                        "_errors": [
                            {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 256 or fewer in length."}
                        ]
                    }
                }
            }
        },
    }


# --------------------------------------------------------------------------------------------------
# interactions (receiving-and-responding.mdx)


@pytest.mark.parametrize(
    ("rtype", "itype", "from_message", "ok"),
    [
        (4, 2, False, True),
        (5, 2, False, True),
        (6, 2, False, False),  # DEFERRED_UPDATE_MESSAGE: components only
        (7, 2, False, False),
        (6, 3, True, True),
        (7, 3, True, True),
        (7, 5, True, True),  # a modal opened from a component
        (7, 5, False, False),
        (8, 2, False, False),
        (8, 4, False, True),
        (9, 2, False, True),
        (9, 5, True, False),  # no modal in answer to a modal
        (1, 2, False, False),
        (10, 2, False, False),
        (12, 2, False, False),
        (3, 2, False, False),
    ],
)
def test_callback_types_per_interaction_type(rtype, itype, from_message, ok):
    if ok:
        check_callback_type(rtype, itype, from_message=from_message)
    else:
        assert "type" in paths(refused(check_callback_type, rtype, itype, from_message=from_message))


def test_modal_and_followup_rules():
    check_modal(
        {
            "custom_id": "m",
            "title": "Ask",
            "components": [row({"type": 4, "custom_id": "t", "label": "L", "style": 1})],
        }
    )
    assert "data.title" in paths(
        refused(check_modal, {"custom_id": "m", "title": "x" * 46, "components": [row()]})
    )
    assert "data.components" in paths(
        refused(check_modal, {"custom_id": "m", "title": "t", "components": []})
    )
    check_followup({"content": "x", "flags": 64}, {"wait": "1"})
    assert "thread_id" in paths(refused(check_followup, {"content": "x"}, {"thread_id": "1"}))
    assert "username" in paths(refused(check_followup, {"content": "x", "username": "u"}, {}))
    assert "avatar_url" in paths(refused(check_followup, {"content": "x", "avatar_url": "https://a"}, {}))


def test_autocomplete_answer_limits():
    check_autocomplete({"choices": [{"name": "n" * 100, "value": "v" * 100}, {"name": "five", "value": 5}]})
    check_autocomplete({"choices": []})
    assert "data.choices" in paths(refused(check_autocomplete, {"choices": [{"name": "n", "value": "v"}] * 26}))
    assert "data.choices.0.name" in paths(refused(check_autocomplete, {"choices": [{"name": "", "value": "v"}]}))
    assert "data.choices.1.name" in paths(
        refused(check_autocomplete, {"choices": [{"name": "n", "value": 1}, {"name": "n" * 101, "value": 2}]})
    )
    assert "data.choices.0.value" in paths(
        refused(check_autocomplete, {"choices": [{"name": "n", "value": "v" * 101}]})
    )
