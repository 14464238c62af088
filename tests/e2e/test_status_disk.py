"""/status shows the disk used by the database and the media."""

from __future__ import annotations

import re

from tests import samples
from tests.e2e.helpers import set_anchor


async def test_status_shows_disk_used(bot, runner, fake_discord):
    await set_anchor(fake_discord, samples.portrait_png())
    it = await fake_discord.slash("status")
    reply = await it.wait_reply(lambda m: bool(m.get("embeds")))
    fields = {f["name"]: f["value"] for f in reply["embeds"][0]["fields"]}
    assert "Disk used" in fields, fields
    assert fields["Disk used"].endswith("(database and media)")
    assert re.search(r"\d( bytes| KB| MB)", fields["Disk used"]) and "KiB" not in str(fields)
    assert reply["_ephemeral"]
