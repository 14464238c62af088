"""Issue #19 end to end: everyday use by a team (who is told what, what it costs before paying, no dead ends)."""

from __future__ import annotations

import logging
import re

from tests import samples
from tests.e2e.helpers import set_anchor, settled_totals
from tests.e2e.shots_helpers import progress_messages, run_shot, wait_clips
from tests.fakes.discord import DEFAULT_MEMBER_PERMS, text_of


async def _final(fake, message: dict, words: str, timeout: float = 30.0) -> dict:
    return await fake.wait_for(
        lambda: (m := fake.messages[int(message["id"])]) and words in text_of(m) and m, timeout=timeout
    )


async def _status(fake) -> str:
    it = await fake.slash("status")
    return text_of(await it.wait_reply(lambda m: bool(text_of(m))))


async def test_a_refused_key_tells_members_plainly_and_the_admins_once(
    runner, fake_discord, fake_fal, caplog
):
    alerts = fake_discord.add_text_channel("bot-admins")
    await runner.start(alert_channel_id=alerts)
    await set_anchor(fake_discord, samples.portrait_png())
    bob = fake_discord.add_member("bob", permissions=DEFAULT_MEMBER_PERMS)
    caplog.set_level(logging.INFO)
    fake_fal.fail_next("submit", 2, status=401)
    await run_shot(fake_discord, "first try")
    await run_shot(fake_discord, "second try", user=bob)
    for progress in progress_messages(fake_discord):
        final = await _final(fake_discord, progress, "Failed")
        text = text_of(final)
        assert "Videos can't be made right now; the bot's admins have been told." in text
        assert not re.search(r"\bfal\b|FAL_KEY|401", text), text
    posted = [m for m in fake_discord.channel_messages(alerts)]
    assert len(posted) == 1 and "FAL_KEY" in text_of(posted[0]) and not posted[0]["_pinged"]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and "needs an operator" in r.getMessage()]
    assert len(errors) == 1
    assert "Needs an admin" in await _status(fake_discord)
    assert await settled_totals(runner, fake_discord) == (0, 0)
    assert await settled_totals(runner, fake_discord, "bob") == (0, 0)

    # Once fal takes a job again, the fault is over: /status no longer lists it.
    await run_shot(fake_discord, "third try")
    await wait_clips(fake_discord, 1)
    assert "Needs an admin" not in await _status(fake_discord)
    assert len(fake_discord.channel_messages(alerts)) == 1
