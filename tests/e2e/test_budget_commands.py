"""/budget and /budget-admin through the fake Discord."""

from __future__ import annotations

import csv
import io

import pytest

from bot.money import format_usd
from cogs.budget import REPORT_NAMES_FETCHED
from tests.fakes.discord import DEFAULT_MEMBER_PERMS, MANAGE_GUILD, CommandHidden, text_of


async def test_budget_for_self_shows_spent_held_limit_remaining(bot, runner, fake_discord):
    alice = fake_discord.member("alice")
    budget = runner.services.budget
    await budget.hold(
        job_key="x", guild_id=fake_discord.guild_id, user_id=alice, amount=560_000, description="Shot #1"
    )
    await budget.capture("x")
    await budget.hold(
        job_key="y", guild_id=fake_discord.guild_id, user_id=alice, amount=1_120_000, description="Shot #2"
    )
    it = await fake_discord.slash("budget")
    reply = await it.wait_reply()
    text = text_of(reply)
    assert reply["_ephemeral"]
    for expected in ("$0.56", "$1.12", "$10.00 per month (UTC)", "$8.32", "Resets", "Shot #1", "%"):
        assert expected in text, expected


async def test_budget_of_someone_else_needs_manage_guild(bot, runner, fake_discord):
    bob = fake_discord.add_member("bob", permissions=DEFAULT_MEMBER_PERMS)
    carol = fake_discord.add_member("carol", permissions=DEFAULT_MEMBER_PERMS)
    # alice is an admin: she may look at bob's budget
    it = await fake_discord.slash("budget", opts={"user": bob})
    assert "Budget of bob" in text_of(await it.wait_reply())
    # bob may look at his own, through the option too
    it = await fake_discord.slash("budget", user=bob, opts={"user": bob})
    assert "Budget of bob" in text_of(await it.wait_reply())
    # carol may not look at bob's
    it = await fake_discord.slash("budget", user=carol, opts={"user": bob})
    reply = text_of(await it.wait_reply())
    assert "Manage Server" in reply and "Budget of" not in reply


async def test_member_cannot_use_admin_commands(bot, runner, fake_discord):
    carol = fake_discord.add_member("carol", permissions=DEFAULT_MEMBER_PERMS)
    # Discord hides the admin group from members (default member permissions)...
    with pytest.raises(CommandHidden):
        await fake_discord.slash("budget-admin default", user=carol, limit="99")
    # ...and the bot refuses it too if it arrives anyway.
    for cmd, opts in (
        ("budget-admin default", {"limit": "99"}),
        ("budget-admin set", {"user": carol, "limit": "99"}),
        ("budget-admin cap", {"limit": "99"}),
        ("budget-admin report", {}),
    ):
        it = await fake_discord.slash(cmd, user=carol, enforce_permissions=False, opts=opts)
        assert "Manage Server" in text_of(await it.wait_reply()), cmd
    view = await runner.services.budget.view(fake_discord.guild_id, carol)
    assert (view.limit, view.cap) == (10_000_000, None)


async def test_admin_commands_set_limits(bot, runner, fake_discord):
    bob = fake_discord.add_member("bob", permissions=DEFAULT_MEMBER_PERMS)
    admin = fake_discord.add_member("treasurer", permissions=DEFAULT_MEMBER_PERMS | MANAGE_GUILD)
    budget = runner.services.budget
    g = fake_discord.guild_id

    it = await fake_discord.slash("budget-admin default", user=admin, limit="25")
    assert "$25.00 per member, per month (UTC)" in text_of(await it.wait_reply())  # the period, named
    assert (await budget.view(g, bob)).limit == 25_000_000

    it = await fake_discord.slash("budget-admin set", user=admin, opts={"user": bob, "limit": "$12.50"})
    assert "$12.50 per month (UTC)" in text_of(await it.wait_reply())
    view = await budget.view(g, bob)
    assert (view.limit, view.limit_source) == (12_500_000, "user")

    it = await fake_discord.slash("budget-admin cap", user=admin, limit="100")
    assert "$100.00" in text_of(await it.wait_reply())
    assert (await budget.view(g, bob)).cap == 100_000_000
    it = await fake_discord.slash("budget-admin cap", user=admin, limit="none")
    assert "no spending cap" in text_of(await it.wait_reply())
    assert (await budget.view(g, bob)).cap is None


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        ("-5", "cannot be negative"),
        ("lots", "not an amount"),
        ("1000000000000", "more than the largest"),
        ("9" * 400, "more than the largest"),
        ("1e12", "not an amount"),  # no one writes money with an exponent: "1e3" is refused, not $1,000
        ("5,00", "not an amount"),  # nor with a decimal comma: never read as $500
        ("-0", "cannot be negative"),
        ("NaN", "not an amount"),
    ],
)
async def test_bad_amounts_are_refused_politely(bot, runner, fake_discord, limit, expected):
    it = await fake_discord.slash("budget-admin default", limit=limit)
    assert expected in text_of(await it.wait_reply())
    assert (
        await runner.services.budget.view(fake_discord.guild_id, fake_discord.member("alice"))
    ).limit == 10_000_000


async def test_report_has_embed_and_csv(bot, runner, fake_discord):
    bob = fake_discord.add_member("bob", permissions=DEFAULT_MEMBER_PERMS)
    budget = runner.services.budget
    g = fake_discord.guild_id
    for i, (user, amount) in enumerate(
        [(bob, 560_000), (bob, 560_000), (fake_discord.member("alice"), 1_680_000)]
    ):
        await budget.hold(job_key=f"j{i}", guild_id=g, user_id=user, amount=amount, description=f"Shot #{i}")
        await budget.capture(f"j{i}")
    it = await fake_discord.slash("budget-admin report")
    reply = await it.wait_reply(lambda m: bool(m.get("_files")))
    assert (
        "Total spent $2.80" in text_of(reply)
        and "2 charges" in text_of(reply)
        and "shot" not in text_of(reply)
    )
    csv_files = [f for f in reply["_files"] if f.filename.endswith(".csv")]
    assert len(csv_files) == 1
    rows = list(csv.DictReader(io.StringIO(csv_files[0].data.decode())))
    by_user = {int(r["user_id"]): r for r in rows}
    assert by_user[bob]["spent_usd"] == "1.120000" and by_user[bob]["charges"] == "2"
    assert by_user[bob]["display_name"] == "bob"  # the member's name beside the id
    it = await fake_discord.slash("budget-admin report", period="last month")
    assert "is not a period" in text_of(await it.wait_reply())


async def test_a_report_of_many_departed_members_asks_discord_for_at_most_the_bound(
    bot, runner, fake_discord
):
    """Found in review: the bound on name lookups counted the names found, so members who had left (every lookup
    a 404) were each looked up: 500 of them, 500 requests. It counts the lookups made now."""
    budget, g = runner.services.budget, fake_discord.guild_id
    departed = [900_000_000_000_000_000 + n for n in range(REPORT_NAMES_FETCHED + 50)]
    for i, user in enumerate(departed):
        await budget.hold(job_key=f"j{i}", guild_id=g, user_id=user, amount=10_000, description=f"Shot #{i}")
        await budget.capture(f"j{i}")
    mark = fake_discord.mark()
    it = await fake_discord.slash("budget-admin report")
    reply = await it.wait_reply(lambda m: bool(m.get("_files")))
    assert f"Total spent {format_usd(10_000 * len(departed))}" in text_of(reply)  # made all the same
    lookups = fake_discord.requests_to("GET", "/guilds/{guild_id}/members/{user_id}", since=mark)
    assert len(lookups) == REPORT_NAMES_FETCHED and all(r.status == 404 for r in lookups)


async def test_admin_adjustment_charges_and_credits(bot, runner, fake_discord):
    bob = fake_discord.add_member("bob", permissions=DEFAULT_MEMBER_PERMS)
    it = await fake_discord.slash(
        "budget-admin adjust", opts={"user": bob, "amount": "2.50", "reason": "manual render"}
    )
    assert "Charged $2.50" in text_of(await it.wait_reply())
    it = await fake_discord.slash(
        "budget-admin adjust", opts={"user": bob, "amount": "-1", "reason": "refund"}
    )
    assert "Credited $1.00" in text_of(await it.wait_reply())
    view = await runner.services.budget.view(fake_discord.guild_id, bob)
    assert (view.spent, view.remaining) == (1_500_000, 8_500_000)
    assert [r.description for r in view.recent] == ["Adjustment: refund", "Adjustment: manual render"]
    it = await fake_discord.slash(
        "budget-admin adjust", opts={"user": bob, "amount": "0", "reason": "nothing"}
    )
    assert "changes nothing" in text_of(await it.wait_reply())
    it = await fake_discord.slash(
        "budget-admin adjust",
        user=bob,
        enforce_permissions=False,
        opts={"user": bob, "amount": "-100", "reason": "x"},
    )
    assert "Manage Server" in text_of(await it.wait_reply())
    assert (await runner.services.budget.view(fake_discord.guild_id, bob)).spent == 1_500_000


async def test_bots_have_no_budget_and_nothing_is_set_or_booked_for_one(bot, runner, fake_discord):
    robo = fake_discord.add_member("robo", permissions=DEFAULT_MEMBER_PERMS, bot=True)
    for command, options in (
        ("budget-admin set", {"user": robo, "limit": "50"}),
        ("budget-admin adjust", {"user": robo, "amount": "5", "reason": "test"}),
        ("budget", {"user": robo}),
    ):
        reply = await (await fake_discord.slash(command, opts=options)).wait_reply()
        assert reply["_ephemeral"] and "is a bot" in text_of(reply), (command, text_of(reply))
    view = await runner.services.budget.view(fake_discord.guild_id, robo)
    assert view.limit_source != "user" and view.spent == 0


async def test_someone_who_is_not_a_member_gets_a_polite_answer(bot, runner, fake_discord):
    """Discord resolves a user option to a member only in the server; for someone else discord.py cannot convert
    it: that is an answer for the admin, not an incident."""
    elsewhere = fake_discord.add_guild("Elsewhere")
    gone = fake_discord.add_member("gone", permissions=DEFAULT_MEMBER_PERMS, guild=elsewhere)
    for command, options in (
        ("budget-admin set", {"user": gone, "limit": "50"}),
        ("budget-admin adjust", {"user": gone, "amount": "5", "reason": "test"}),
        ("budget", {"user": gone}),
    ):
        text = text_of(await (await fake_discord.slash(command, opts=options)).wait_reply())
        assert "not a member of this server" in text and "incident" not in text, (command, text)
    assert (await runner.services.budget.view(fake_discord.guild_id, gone)).spent == 0


async def test_a_name_that_looks_like_a_formula_is_text_in_the_report_csv(bot, runner, fake_discord):
    sly = fake_discord.add_member('=HYPERLINK("http://x","y")', permissions=DEFAULT_MEMBER_PERMS)
    budget = runner.services.budget
    await budget.hold(job_key="j", guild_id=fake_discord.guild_id, user_id=sly, amount=560_000, description="Shot")
    await budget.capture("j")
    reply = await (await fake_discord.slash("budget-admin report")).wait_reply(lambda m: bool(m.get("_files")))
    [report] = [f for f in reply["_files"] if f.filename.endswith(".csv")]
    [row] = list(csv.DictReader(io.StringIO(report.data.decode())))
    assert row["display_name"] == "'=HYPERLINK(\"http://x\",\"y\")"
