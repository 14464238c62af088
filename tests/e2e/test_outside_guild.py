"""Outside a server (DMs): commands, buttons and reactions get one polite refusal (or, for reactions, are ignored)
and change nothing. Budget figures only ever reach their owner.

The fake Discord models one guild; DM events are built here from its public pieces (FakeInteraction, the gateway
dispatch), without changing the fake.
"""

from __future__ import annotations

import logging
import secrets
import time

from tests import samples
from tests.e2e.helpers import set_anchor, text_reply
from tests.e2e.shots_helpers import run_shot, wait_clips
from tests.fakes.discord import DEFAULT_MEMBER_PERMS, FakeDiscord, FakeInteraction, text_of

REFUSAL = "not in direct messages"


def _dm_channel(fake: FakeDiscord, uid: int) -> int:
    cid = fake._snowflake()
    fake._channels[cid] = {
        "id": str(cid),
        "type": 1,
        "recipients": [fake._users[uid]],
        "last_message_id": None,
    }
    return cid


async def _dm_interaction(
    fake: FakeDiscord, *, itype: int, data: dict, user: str | int = "alice", message: dict | None = None
) -> FakeInteraction:
    """An INTERACTION_CREATE from a DM: no guild, a `user` instead of a `member`, context 1 (bot DM)."""
    uid = fake._user_id(user)
    channel_id = _dm_channel(fake, uid)
    iid = fake._snowflake()
    token = f"itok-{iid}-{secrets.token_hex(8)}"
    payload = {
        "id": str(iid),
        "application_id": str(fake.app_id),
        "type": itype,
        "data": data,
        "token": token,
        "version": 1,
        "channel_id": str(channel_id),
        "channel": fake._channels[channel_id],
        "user": fake._users[uid],
        "locale": "en-US",
        "app_permissions": "0",
        "entitlements": [],
        "authorizing_integration_owners": {"1": str(uid)},
        "context": 1,
        "attachment_size_limit": fake.attachment_size_limit,
    }
    if message is not None:
        message = {**message, "channel_id": str(channel_id)}
        payload["message"] = message
    inter = FakeInteraction(
        fake,
        id=iid,
        token=token,
        type=itype,
        user_id=uid,
        channel_id=channel_id,
        payload=payload,
        command=data.get("name"),
        message_id=int(message["id"]) if message else None,
    )
    fake.interactions[iid] = inter
    fake._interactions_by_token[token] = inter
    inter.dispatched_at = time.monotonic()
    await fake._dispatch("INTERACTION_CREATE", payload)
    inter.dispatched_at = time.monotonic()
    return inter


def _bot_messages(fake: FakeDiscord) -> list[dict]:
    return [m for m in fake.messages.values() if int(m["author"]["id"]) == fake.bot_user_id]


async def _shot_count(runner) -> int:
    return len(await runner.services.db.fetchall("SELECT id FROM jobs"))


async def _one_clip(runner, fake) -> dict:
    await set_anchor(fake, samples.portrait_png())
    await run_shot(fake, "a clip")
    [clip] = await wait_clips(fake, 1)
    return clip


def _errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_every_command_is_guild_only(bot, fake_discord):
    commands = fake_discord.synced_commands["global"]
    assert commands
    for cmd in commands:
        assert cmd.get("contexts") == [0] or cmd.get("dm_permission") is False, cmd["name"]


async def test_command_from_a_dm_gets_one_polite_refusal(bot, runner, fake_discord, caplog):
    cmd = next(c for c in fake_discord.synced_commands["global"] if c["name"] == "budget")
    inter = await _dm_interaction(fake_discord, itype=2, data={"id": cmd["id"], "name": "budget", "type": 1})
    reply = await text_reply(inter)
    assert REFUSAL in text_of(reply) and reply["_ephemeral"]
    await fake_discord.wait_for(lambda: True, 0.3)
    assert len(inter.reply_messages()) == 1
    assert "$" not in text_of(reply)
    assert not _errors(caplog)


async def test_button_from_a_dm_is_refused_and_changes_nothing(bot, runner, fake_discord, caplog):
    clip = await _one_clip(runner, fake_discord)
    [custom_id] = [
        c["custom_id"] for row in clip["components"] for c in row["components"] if "reroll" in c["custom_id"]
    ]
    before_shots, before_msgs = await _shot_count(runner), len(_bot_messages(fake_discord))
    message = fake_discord._public(clip)
    inter = await _dm_interaction(
        fake_discord,
        itype=3,
        data={"custom_id": custom_id, "component_type": 2},
        user="alice",
        message=message,
    )
    reply = await text_reply(inter)
    assert REFUSAL in text_of(reply) and reply["_ephemeral"]
    await fake_discord.wait_for(lambda: True, 0.5)
    assert len(inter.reply_messages()) == 1
    assert await _shot_count(runner) == before_shots
    assert len(_bot_messages(fake_discord)) == before_msgs + 1  # the refusal only
    assert not _errors(caplog)


async def test_reaction_in_a_dm_is_ignored_without_errors(bot, runner, fake_discord, caplog):
    clip = await _one_clip(runner, fake_discord)
    alice = fake_discord.member("alice")
    before_shots, before_msgs = await _shot_count(runner), len(fake_discord.messages)
    await fake_discord._dispatch(
        "MESSAGE_REACTION_ADD",
        {
            "user_id": str(alice),
            "channel_id": str(_dm_channel(fake_discord, alice)),
            "message_id": clip["id"],  # even an id the bot knows as a clip
            "emoji": {"id": None, "name": "\U0001f501"},
            "burst": False,
            "type": 0,
            "message_author_id": str(fake_discord.bot_user_id),
        },
    )
    await fake_discord.wait_for(lambda: True, 2.0)  # the listener may look twice for a just-posted clip
    assert await _shot_count(runner) == before_shots
    assert len(fake_discord.messages) == before_msgs
    assert not _errors(caplog)


async def test_reroll_button_without_budget_tells_only_the_presser(bot, runner, fake_discord):
    clip = await _one_clip(runner, fake_discord)
    bob = fake_discord.add_member("bob", permissions=DEFAULT_MEMBER_PERMS)
    await runner.services.budget.set_user_limit(fake_discord.guild_id, bob, 0)
    before = {m["id"] for m in fake_discord.channel_messages(fake_discord.channel_id)}
    custom_id = next(
        c["custom_id"] for row in clip["components"] for c in row["components"] if "reroll" in c["custom_id"]
    )
    inter = await fake_discord.click(int(clip["id"]), custom_id, user=bob)
    reply = await text_reply(inter)
    assert reply["_ephemeral"] and "$" in text_of(reply)  # the figures, to their owner only
    public = [m for m in fake_discord.channel_messages(fake_discord.channel_id) if m["id"] not in before]
    assert all("$" not in text_of(m) for m in public), [text_of(m) for m in public]


async def test_budget_errors_from_commands_are_ephemeral(bot, runner, fake_discord):
    await set_anchor(fake_discord, samples.portrait_png())
    bob = fake_discord.add_member("bob", permissions=DEFAULT_MEMBER_PERMS)
    await runner.services.budget.set_user_limit(fake_discord.guild_id, bob, 0)
    reply = await run_shot(fake_discord, "too expensive", user=bob)
    assert reply["_ephemeral"] and "budget" in text_of(reply)
    assert all("$" not in text_of(m) for m in fake_discord.channel_messages(fake_discord.channel_id))


async def test_reroll_reaction_without_budget_shows_no_figures_in_public(bot, runner, fake_discord):
    """#8: public notices say "not enough budget" without figures.

    This was a leak: the reaction listener posted the BudgetExceeded text ("That would cost $0.56 but you have $0.00
    left of your $0.00 budget") publicly for 12 s. It now says only that there is not enough budget.
    """

    clip = await _one_clip(runner, fake_discord)
    bob = fake_discord.add_member("bob", permissions=DEFAULT_MEMBER_PERMS)
    await runner.services.budget.set_user_limit(fake_discord.guild_id, bob, 0)
    before = {m["id"] for m in fake_discord.messages.values()}
    await fake_discord.react(int(clip["id"]), "\U0001f501", user=bob)
    notice = await fake_discord.wait_for(
        lambda: next(
            (
                m
                for m in fake_discord.messages.values()
                if m["id"] not in before and int(m["author"]["id"]) == fake_discord.bot_user_id
            ),
            None,
        ),
        10,
    )
    assert await _shot_count(runner) == 1
    assert "$" not in text_of(notice) or notice["_ephemeral"], text_of(notice)
