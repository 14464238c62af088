"""Small helpers shared by the end-to-end tests."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import sqlite3
import time
from pathlib import Path
from typing import Any

import asyncpg
from PIL import Image

from bot.db.postgres import to_postgres
from bot.jobs import JobState
from tests.fakes.discord import FakeDiscord, FakeInteraction, text_of


async def set_anchor(
    fake: FakeDiscord,
    png: bytes,
    *,
    channel_id: int | None = None,
    user: str = "alice",
    filename: str = "anchor.png",
    **extra: object,
) -> dict:
    """Run /anchor set with an upload and return the bot's reply message; once it is set, also wait for the
    public line that tells the channel (it follows the reply), so a test counting requests starts after it."""
    channel = channel_id or fake.channel_id
    told = len(_anchor_lines(fake, channel))
    att = fake.make_attachment(filename, png, content_type="image/png")
    it = await fake.slash("anchor set", user=user, channel_id=channel_id, image=att, **extra)
    # Deferred at once; the answer follows the image checks, the first of them in a new bot process loading the
    # face models (seconds; more on a loaded machine). Discord keeps the token 15 minutes.
    reply = await original_reply(it, timeout=30)
    if "now starts from this image" in text_of(reply):
        await fake.wait_for(lambda: len(_anchor_lines(fake, channel)) > told, 10)
    return reply


def _anchor_lines(fake: FakeDiscord, channel_id: int) -> list[dict]:
    return [m for m in fake.channel_messages(channel_id) if "\U0001f3ad" in text_of(m)]


async def original_reply(it: FakeInteraction, timeout: float = 10.0) -> dict:
    """The bot's answer to an interaction: its original response (filled, never a followup after a defer)."""
    reply = await text_reply(it, timeout)
    assert it.original is not None and it.original.id == int(reply["id"]), (it.original, reply)
    assert it.followups == [], it.followups
    return reply


async def text_reply(it: FakeInteraction, timeout: float = 10.0) -> dict:
    """The bot's first reply to the interaction that has text (a deferral has none)."""
    return await it.wait_reply(lambda m: bool(text_of(m)), timeout=timeout)


def decode_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        return img.size


async def unrecord_post(runner: Any) -> None:
    """Put the rows back as they were between Discord storing a clip and the bot recording it (a crash there)."""
    db = runner.services.db
    await db.execute("UPDATE jobs SET state='posting', result_message_id=NULL, finished_at=NULL")
    await db.execute("UPDATE holds SET state='held', settled_at=NULL")
    await db.execute("DELETE FROM ledger WHERE kind='capture'")


async def settled_totals(runner: Any, fake: FakeDiscord, user: str | int = "alice") -> tuple[int, int]:
    """(spent, held) of a member once no job is being marked posted.

    A result is on Discord a moment before its capture is booked (reads do not queue behind that write), so wait
    for jobs in POSTING to move on first; one stuck posting, as some faults make, is read as it is after 3 s.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(3):
            while await runner.services.jobs.in_states(JobState.POSTING):
                await asyncio.sleep(0.02)
    uid = fake.member(user) if isinstance(user, str) else user
    view = await runner.services.budget.view(fake.guild_id, uid)
    return view.spent, view.held


def read_db(db: Path | str, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows from a bot's database, read-only (the bot may be running, or killed, beside it): its SQLite file, or
    a PostgreSQL URL (the same SQL text, with `?` placeholders, as the stores write it)."""
    if isinstance(db, str):
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # its own event loop: callers may be in one
            return pool.submit(asyncio.run, _read_postgres(db, sql, params)).result(timeout=30)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


async def _read_postgres(url: str, sql: str, params: tuple) -> list[tuple]:
    text, _names = to_postgres(sql)
    conn = await asyncpg.connect(url)
    try:
        return [tuple(r) for r in await conn.fetch(text, *params)]
    finally:
        await conn.close()


async def poll_until(predicate: Any, timeout: float) -> bool:
    """Poll every 2 ms (the fakes live in this event loop: the bot may not even have the answer yet); whether
    `predicate` came true within `timeout` (no error when it did not: a crash test kills at any moment)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        await asyncio.sleep(0.002)
    return False
