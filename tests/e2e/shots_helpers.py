"""Helpers for the shot tests: run /shot and find the messages it leads to."""

from __future__ import annotations

import re

from tests.e2e.helpers import original_reply
from tests.fakes.discord import FakeDiscord, text_of


def clip_messages(fake: FakeDiscord, channel_id: int | None = None) -> list[dict]:
    """Messages in the channel that carry an mp4 attachment, oldest first."""
    return [
        m
        for m in fake.channel_messages(channel_id or fake.channel_id)
        if any(a["filename"].endswith(".mp4") for a in m.get("attachments", []))
    ]


POSTED_LINE = re.compile(
    r"^\u2705 Shot \d+ \u00b7 take \d+( \(dry run\))? is posted: https://discord\.com/channels/"
)


def progress_messages(fake: FakeDiscord, channel_id: int | None = None) -> list[dict]:
    """Every take's progress message: its Status until the clip is posted, then the one line pointing at it."""
    return [
        m
        for m in fake.channel_messages(channel_id or fake.channel_id)
        if "Status" in text_of(m) or POSTED_LINE.match(m.get("content") or "")
    ]


def is_posted_line(message: dict) -> bool:
    """The progress message has shrunk to one line pointing at the posted clip (no embed, no buttons)."""
    return bool(POSTED_LINE.match(message.get("content") or "")) and not message.get("embeds")


async def run_shot(fake: FakeDiscord, prompt: str, *, user: str | int = "alice", **options: object) -> dict:
    """Run /shot and return the bot's (ephemeral) answer."""
    it = await fake.slash("shot", user=user, prompt=prompt, **options)
    return await original_reply(it)


async def wait_clips(fake: FakeDiscord, count: int, timeout: float = 30.0) -> list[dict]:
    return await fake.wait_for(lambda: (c := clip_messages(fake)) and len(c) >= count and c, timeout=timeout)


async def wait_posted(runner, fake: FakeDiscord, count: int = 1, timeout: float = 30.0) -> None:
    """Wait until `count` takes are POSTED with their clip recorded (the clip is on Discord a moment before)."""
    from bot.jobs import JobState

    async def posted() -> bool:
        takes = await runner.services.takes.in_states(JobState.POSTED)
        return len([t for t in takes if t.clip_message_id]) >= count

    await fake.wait_for(posted, timeout=timeout)
