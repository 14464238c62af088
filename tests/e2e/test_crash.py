"""Crash test: shots, re-rolls (button and reaction) and cancels from several members while the subprocess bot is
killed with SIGKILL at random moments; afterwards every take is posted exactly once and captured once from the
right member, or failed/cancelled and released, nothing is held and the database is sound.

`CRASH_KILLS` (default 30) sets the number of kills, `CRASH_SEED` (default 8) the seed of the workload; a failure
prints the seed, and `CRASH_SEED=<seed> pytest tests/e2e/test_crash.py` replays the same workload (timing on a
loaded machine still varies, so a replay is likely but not certain to hit the same window).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from tests import samples
from tests.both_backends import both_backends  # noqa: F401  (30 kills on the SQLite file and on PostgreSQL)
from tests.e2e.helpers import poll_until, read_db, set_anchor
from tests.fakes.discord import DEFAULT_MEMBER_PERMS, text_of
from tests.fakes.fal_fake import Outcome

KILLS = int(os.environ.get("CRASH_KILLS", "30"))
SEED = int(os.environ.get("CRASH_SEED", "8"))
TERMINAL = ("posted", "failed", "cancelled")
_MARKER_RE = re.compile(
    r"^Shot (\d+) \u00b7 take (\d+) \u00b7 \U0001f501"
)  # a clip's footer: shot number, take
BOT_ENV = {
    "FAL_POLL_INTERVAL_S": "0.05",
    "DEFAULT_BUDGET_USD": "1000",
    "MAX_SHOTS_PER_USER": "3",
    "MAX_SHOTS_GLOBAL": "8",
    "LOG_LEVEL": "INFO",
    "GUILD_READY_TIMEOUT_S": "0.05",
}


async def _start_ready(bot_process, fake) -> None:
    """Start the bot and wait until it says it is ready (before that it posts nothing)."""
    before = bot_process.log_path.read_text().count("connected as") if bot_process.log_path.exists() else 0
    await bot_process.start(**BOT_ENV)
    await fake.wait_for(lambda: bot_process.log_path.read_text().count("connected as") > before, 30)


def _custom_ids(msg: dict) -> list[str]:
    out = []
    for row in msg.get("components") or []:
        for comp in row.get("components") or [row]:
            if comp.get("custom_id") and not comp.get("disabled"):
                out.append(comp["custom_id"])
    return out


def _posted_markers(msg: dict) -> list[tuple[int, int]]:
    found = []
    for embed in msg.get("embeds") or []:
        match = _MARKER_RE.match((embed.get("footer") or {}).get("text") or "")
        if match:
            found.append((int(match[1]), int(match[2])))
    return found


def _post_count(fake) -> int:
    return sum(len(_posted_markers(m)) for m in fake.channel_messages(fake.channel_id))


class Workload:
    """Random member actions through the fake Discord, remembering who asked for what."""

    def __init__(self, fake, rng: random.Random, members: list[int]) -> None:
        self.fake = fake
        self.rng = rng
        self.members = members
        self.prompt_owner: dict[str, int] = {}
        self.rerolls: set[tuple[int, int]] = set()  # (shot id clicked or reacted on, member)
        self.actions: Counter[str] = Counter()

    def _messages_with(self, prefix: str) -> list[tuple[dict, str]]:
        found = []
        for msg in self.fake.channel_messages(self.fake.channel_id):
            for cid in _custom_ids(msg):
                if cid.startswith(prefix):
                    found.append((msg, cid))
        return found

    async def act(self) -> None:
        kind = self.rng.choices(["shot", "reroll", "react", "cancel"], weights=[5, 2, 1, 2])[0]
        user = self.rng.choice(self.members)
        try:
            if kind == "shot":
                prompt = f"crash shot {len(self.prompt_owner) + 1} by {user}"
                self.prompt_owner[prompt] = user
                await self.fake.slash("shot", user=user, prompt=prompt)
            elif kind in ("reroll", "react"):
                clips = self._messages_with("shot:reroll:")
                if not clips:
                    return
                msg, cid = self.rng.choice(clips)
                self.rerolls.add((int(cid.rsplit(":", 1)[1]), user))
                if kind == "reroll":
                    await self.fake.click(int(msg["id"]), cid, user=user)
                else:
                    await self.fake.react(int(msg["id"]), "\U0001f501", user=user)
            else:
                progress = self._messages_with("shot:cancel:")
                if not progress:
                    return
                msg, cid = self.rng.choice(progress)
                await self.fake.click(int(msg["id"]), cid, user=self.fake.member("alice"))
        except AssertionError:
            return  # the message went away or its button was disabled meanwhile: a member would see that too
        self.actions[kind] += 1


@pytest.mark.long
@pytest.mark.timeout(900)
async def test_random_sigkills_lose_nothing_and_charge_once(bot_process, fake_discord, fake_fal):
    rng = random.Random(SEED)
    fake_fal.default = Outcome.complete(queued_polls=2, progress_polls=4)
    started = time.monotonic()
    await _start_ready(bot_process, fake_discord)
    await set_anchor(fake_discord, samples.portrait_png())
    members = [fake_discord.member("alice")] + [
        fake_discord.add_member(name, permissions=DEFAULT_MEMBER_PERMS) for name in ("bob", "carol", "dave")
    ]
    work = Workload(fake_discord, rng, members)
    db = bot_process.database

    epochs: list[int] = []  # index of the first fal submission of each bot life
    read_late = 0  # submissions the fake read only after their sender was killed
    for kill in range(KILLS):
        epochs.append(len(fake_fal.submissions))
        if kill:
            await _start_ready(bot_process, fake_discord)
        mode = rng.choice(["random", "random", "on-submit", "on-post"])
        submits, posts = len(fake_fal.submissions), _post_count(fake_discord)
        for _ in range(rng.randint(1, 3)):
            await work.act()
            await asyncio.sleep(rng.uniform(0.0, 0.2))
        if mode == "on-submit":  # right after fal accepted a job: the bot may not have its id yet
            await poll_until(lambda n=submits: len(fake_fal.submissions) > n, 1.0)
        elif mode == "on-post":  # right after Discord stored a clip: the bot may not have recorded it
            await poll_until(lambda n=posts: _post_count(fake_discord) > n, 1.0)
        else:
            await asyncio.sleep(rng.uniform(0.0, 0.6))
        await asyncio.sleep(rng.choice([0.0, 0.0, rng.uniform(0.0, 0.02)]))
        bot_process.kill()
        # What the dead process had sent is read by the fake once this loop runs again: count it in this life.
        unread = len(fake_fal.submissions)
        await fake_fal.settle()
        read_late += len(fake_fal.submissions) - unread
        work.actions[f"kill {mode}"] += 1
    epochs.append(len(fake_fal.submissions))
    killed_at = time.monotonic()

    # The last life: no more kills, let everything finish.
    await _start_ready(bot_process, fake_discord)
    unfinished_sql = "SELECT id, state FROM jobs WHERE state NOT IN ('posted', 'failed', 'cancelled')"
    with contextlib.suppress(AssertionError, TimeoutError):
        await fake_discord.wait_for(lambda: not read_db(db, unfinished_sql), 90)
    await asyncio.sleep(1.5)  # give a late duplicate every chance to appear
    bot_process.stop()
    drained = time.monotonic()

    report = [f"seed {SEED}, {KILLS} kills, actions {dict(work.actions)}"]
    assert not read_db(db, unfinished_sql), (
        f"unfinished takes after the last start: {read_db(db, unfinished_sql)}"
    )
    # The prompt is read from the args in Python: the same on both backends.
    shots = [
        (*row[:-1], json.loads(row[-1]).get("prompt"))
        for row in read_db(
            db,
            "SELECT id, parent_id, seq, user_id, price_micros, state, request_id, result_message_id, args"
            " FROM jobs WHERE kind='take'",
        )
    ]
    take_of = dict(
        ((n, seq), i) for i, n, seq in read_db(db, "SELECT id, number, seq FROM jobs WHERE kind='take'")
    )
    report.append(f"{len(shots)} takes: {dict(Counter(s[5] for s in shots))}")
    assert shots, "the workload made no shots"

    # Posted exactly once, and only the posted ones.
    posts: Counter[int] = Counter()
    message_of: dict[int, int] = {}
    for msg in fake_discord.channel_messages(fake_discord.channel_id):
        for number, seq in _posted_markers(msg):
            shot_id = take_of[(number, seq)]  # members see shot numbers; the ledger and rows use job ids
            posts[shot_id] += 1
            message_of[shot_id] = int(msg["id"])
    problems = []
    for sid, _root, _take, _user, _price, state, _rid, clip_id, _prompt in shots:
        want = 1 if state == "posted" else 0
        if posts[sid] != want:
            problems.append(f"take {sid} ({state}) posted {posts[sid]} times")
        elif state == "posted" and clip_id != message_of[sid]:
            problems.append(f"take {sid} records message {clip_id} but was posted as {message_of[sid]}")

    # Captured once from the right member, or released.
    ledger = defaultdict(list)
    for job_key, kind, user_id, amount in read_db(db, "SELECT job_key, kind, user_id, amount FROM ledger"):
        ledger[job_key].append((kind, user_id, amount))
    root_of = {s[0]: (s[1] or s[0]) for s in shots}
    for sid, root, take, user, price, state, _rid, _clip, prompt in shots:
        entries = ledger.get(f"shot:{sid}", [])
        kinds = Counter(k for k, _, _ in entries)
        if state == "posted":
            if kinds != Counter({"hold": 1, "capture": 1}) or any(u != user for _, u, _ in entries):
                problems.append(f"posted take {sid} has ledger {entries}")
            elif [a for k, _, a in entries if k == "capture"] != [price]:
                problems.append(f"posted take {sid} captured {entries}, price {price}")
        elif kinds and kinds != Counter({"hold": 1, "release": 1}):
            problems.append(f"{state} take {sid} has ledger {entries}")
        if take == 1:
            if work.prompt_owner.get(prompt) != user:
                problems.append(
                    f"take {sid} charged to {user}, but /shot {prompt!r} came from another member"
                )
        elif not any(
            root_of.get(clicked) == (root or sid) and member == user for clicked, member in work.rerolls
        ):
            problems.append(f"re-roll take {sid} charged to {user}, who never asked for a re-roll of #{root}")
    held = read_db(db, "SELECT job_key FROM holds WHERE state='held'")
    if held:
        problems.append(f"holds still held: {held}")
    captured = dict(
        read_db(db, "SELECT user_id, SUM(amount) FROM ledger WHERE kind='capture' GROUP BY user_id")
    )
    delivered: Counter[int] = Counter()
    for s in shots:
        if s[5] == "posted":
            delivered[s[3]] += s[4]
    if captured != {u: v for u, v in delivered.items() if v}:
        problems.append(f"captures per member {captured} != delivered prices {dict(delivered)}")
    integrity = (
        read_db(db, "PRAGMA integrity_check") if isinstance(db, Path) else [("ok",)]
    )  # SQLite's own check
    if integrity != [("ok",)]:
        problems.append(f"integrity_check: {integrity}")

    # One fal job per take, apart from the known window between fal accepting and the id being written.
    stored = {s[6] for s in shots if s[6]}
    window, other = [], []
    for i, sub in enumerate(fake_fal.submissions):
        if sub.request_id in stored:
            continue
        life = next(n for n in range(len(epochs) - 1, -1, -1) if epochs[n] <= i)
        (other if life >= KILLS else window).append((life, sub.arguments.get("prompt")))
    report.append(
        f"fal submits {len(fake_fal.submissions)} for {len(stored)} takes at fal; "
        f"duplicates in the crash window {len(window)} ({read_late} read after the kill), "
        f"other duplicates {len(other)}"
    )
    if other:
        problems.append(f"fal jobs submitted twice without a crash: {other}")
    # ... and each of them is a take that failed there: sent, never stored, and never sent again.
    unstored = Counter(s.arguments.get("prompt") for s in fake_fal.submissions if s.request_id not in stored)
    failed_unstored = Counter(s[-1] for s in shots if s[5] == "failed" and not s[6])
    for prompt, count in unstored.items():
        if count > failed_unstored[prompt]:
            problems.append(
                f"{count} fal jobs for {prompt!r} with no stored id, {failed_unstored[prompt]} takes failed unsent"
            )
    report.append(f"kills took {killed_at - started:.1f} s, final drain {drained - killed_at:.1f} s")
    print("\n".join(report))
    assert not problems, "\n".join([*report, *problems[:30]])


def test_marker_parsing():
    footer = "Shot 12 \u00b7 take 3 \u00b7 \U0001f501 react or press Re-roll for another take \u00b7 Kling"
    assert _posted_markers({"embeds": [{"footer": {"text": footer}}]}) == [(12, 3)]
    assert (
        _posted_markers({"embeds": [{"footer": {"text": "Shot 12 \u00b7 take 3 \u00b7 Kling v3 Pro"}}]}) == []
    )
    assert _custom_ids({"components": [{"type": 1, "components": [{"custom_id": "shot:cancel:4"}]}]}) == [
        "shot:cancel:4"
    ]
    assert text_of({"content": "x"}) == "x"
