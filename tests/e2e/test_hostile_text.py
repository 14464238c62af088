"""Anchor names and admin reasons go through clean_text: invisible-only text is refused and changes nothing."""

from __future__ import annotations

from tests import samples
from tests.e2e.helpers import set_anchor
from tests.fakes.discord import DEFAULT_MEMBER_PERMS, text_of

INVISIBLE = "\u200b\u200d\u2060\ufeff\u202e"


async def test_anchor_name_of_invisible_characters_is_refused(bot, runner, fake_discord):
    reply = await set_anchor(fake_discord, samples.portrait_png(), name=INVISIBLE)
    assert "name is empty once invisible characters are removed" in text_of(reply)
    assert reply["_ephemeral"] and not reply.get("mentions")
    assert await runner.services.db.fetchall("SELECT * FROM anchor_versions") == []


async def test_anchor_name_is_cleaned(bot, runner, fake_discord):
    await set_anchor(fake_discord, samples.portrait_png(), name="  Ma\u200bra \u2066 the\t\tbrave ")
    version = await runner.services.anchors.resolve(fake_discord.channel_id)
    assert version.name == "Mara the brave"


async def test_adjust_reason_of_invisible_characters_is_refused(bot, runner, fake_discord):
    bob = fake_discord.add_member("bob", permissions=DEFAULT_MEMBER_PERMS)
    it = await fake_discord.slash(
        "budget-admin adjust", opts={"user": bob, "amount": "2.50", "reason": INVISIBLE}
    )
    reply = await it.wait_reply()
    assert "reason is empty" in text_of(reply) and reply["_ephemeral"]
    view = await runner.services.budget.view(fake_discord.guild_id, bob)
    assert view.spent == 0 and view.recent == []
    it = await fake_discord.slash(
        "budget-admin adjust", opts={"user": bob, "amount": "1", "reason": "re\u200bfund\u0000 late"}
    )
    assert "Charged $1.00" in text_of(await it.wait_reply())
    view = await runner.services.budget.view(fake_discord.guild_id, bob)
    assert [r.description for r in view.recent] == ["Adjustment: refund late"]
