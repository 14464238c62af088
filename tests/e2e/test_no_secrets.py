"""The suite runs with recognisable fake secrets; they appear in no log line, Discord message or file.

The fixtures in conftest scan every test (root log handler, subprocess output, data dirs, the fake Discord's stored
requests); these tests show the scanners work and drive the subprocess bot through the paths that log the most.
"""

from __future__ import annotations

import logging

import pytest

from tests import samples
from tests.conftest import (
    FAL_TEST_KEY,
    TEST_TOKEN,
    SecretSniffer,
    find_secrets,
    scan_discord_for_secrets,
    scan_tree_for_secrets,
)
from tests.e2e.helpers import set_anchor
from tests.e2e.shots_helpers import run_shot, wait_clips
from tests.fakes.discord import text_of
from tests.fakes.fal_fake import Outcome


def test_the_secrets_are_recognisable():
    assert "SECRET" in FAL_TEST_KEY and "fake-token" in TEST_TOKEN
    assert find_secrets(f"x {TEST_TOKEN} y") and find_secrets(FAL_TEST_KEY.encode())
    assert find_secrets("Authorization: Key ..." + FAL_TEST_KEY.split(":")[1])  # the secret half alone
    assert find_secrets("nothing here") == []


def test_the_log_sniffer_formats_args_and_tracebacks():
    sniffer = SecretSniffer()
    logger = logging.getLogger("tests.secret-canary")
    logger.propagate = False  # keep the canary away from the session-wide sniffer
    logger.addHandler(sniffer)
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("connecting with %s", TEST_TOKEN)  # only in args: caught once formatted
        try:
            raise RuntimeError(f"fal said no to key {FAL_TEST_KEY}")
        except RuntimeError:
            logger.exception("submit failed")
        logger.info("harmless %s", "line")
    finally:
        logger.removeHandler(sniffer)
        logger.propagate = True
    assert len(sniffer.leaks) == 2
    assert "DISCORD_TOKEN" in sniffer.leaks[0] and "FAL_KEY" in sniffer.leaks[1]


def test_the_file_scanner_finds_a_planted_secret(tmp_path):
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "x.bin").write_bytes(b"\x00\x01" + FAL_TEST_KEY.encode() + b"\xff")
    (tmp_path / "clean.txt").write_text("nothing")
    [hit] = scan_tree_for_secrets(tmp_path)
    assert "x.bin" in hit and "FAL_KEY" in hit


@pytest.mark.timeout(180)
async def test_subprocess_bot_leaks_no_secret_in_logs_messages_or_files(bot_process, fake_discord, fake_fal):
    await bot_process.start()
    await set_anchor(fake_discord, samples.portrait_png(), name="Mara")
    fake_fal.script(
        Outcome.complete(), Outcome.validation_error(), Outcome.completed_with_error()
    )  # a 5xx is now retried
    await run_shot(fake_discord, "a clip")
    await run_shot(fake_discord, "refused by fal")
    await run_shot(fake_discord, "fal breaks")
    await wait_clips(fake_discord, 1)
    for command in ("status", "budget"):
        it = await fake_discord.slash(command)
        await it.wait_reply(lambda m: bool(text_of(m) or m.get("embeds")))
    await fake_discord.wait_for(
        lambda: (
            sum("Failed" in text_of(m) for m in fake_discord.channel_messages(fake_discord.channel_id)) >= 2
        ),
        30,
    )
    bot_process.stop()

    output = bot_process.log_path.read_text()
    assert "job 1 posted" in output  # the scan below looked at a real, DEBUG-level log
    assert find_secrets(output) == []
    assert scan_tree_for_secrets(bot_process.data_dir) == []
    assert scan_discord_for_secrets(fake_discord) == []
    assert any(r.json or r.files for r in fake_discord.requests)  # there were bodies to scan
