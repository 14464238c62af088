"""Two real bot processes on one PostgreSQL (issue #18): shards 0 and 1 of 2, each with a server of its own
shard, work one job queue. 200 takes are asked for in both servers; one process is SIGKILLed in the middle and not
restarted. The survivor takes over the dead process's jobs once their leases run out: every take is posted exactly
once, sent to fal once, captured once, and the ledger's totals equal the prices of what was delivered.

`PROCESS_TAKES` (default 200) sets the number of takes.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections import Counter

import asyncpg
import pytest

from tests import samples
from tests.conftest import BotProcess
from tests.e2e.helpers import original_reply, poll_until, set_anchor
from tests.fakes.discord import FakeDiscord, shard_of, text_of
from tests.fakes.fal_fake import FakeFal, Outcome

pytestmark = pytest.mark.postgres

TAKES = int(os.environ.get("PROCESS_TAKES", "200"))
MEMBERS = ("alice", "bob", "carol", "dave")
LEASE_S = 3
FOOTER = re.compile(r"^Shot (\d+) \u00b7 take (\d+) \u00b7 ")
ENV = {
    "SHARD_COUNT": "2",
    "JOB_LEASE_S": str(LEASE_S),
    "FAL_POLL_INTERVAL_S": "0.1",
    "DEFAULT_BUDGET_USD": "1000",
    "MAX_SHOTS_PER_USER": "12",
    "MAX_SHOTS_GLOBAL": "40",
    "LOG_LEVEL": "INFO",
    "GUILD_READY_TIMEOUT_S": "0.05",
    "POLL_CONCURRENCY": "8",  # fal requests at once: a take is marked as being sent only while it holds one
}
SEND_SLOTS = int(ENV["POLL_CONCURRENCY"])


def _clips(fake: FakeDiscord, channel_id: int) -> list[tuple[int, int]]:
    """(shot number, take) of every clip posted in the channel, one entry per post."""
    found = []
    for message in fake.channel_messages(channel_id):
        for embed in message.get("embeds") or []:
            match = FOOTER.match((embed.get("footer") or {}).get("text") or "")
            if match and message.get("attachments"):
                found.append((int(match[1]), int(match[2])))
    return found


async def _ask(fake: FakeDiscord, channel_id: int, n: int) -> None:
    """`n` /shot commands in the channel, from the members in turn, each answered."""
    for i in range(n):
        it = await fake.slash(
            "shot", user=MEMBERS[i % len(MEMBERS)], channel_id=channel_id, prompt=f"take {channel_id}-{i}"
        )
        reply = await original_reply(it)
        assert "Status" in text_of(reply), text_of(reply)  # its progress message: queued, not refused


async def _start(proc: BotProcess, shard: int, url: str, env: dict[str, str] = ENV) -> None:
    before = proc.log_path.read_text().count("connected as") if proc.log_path.exists() else 0
    await proc.start(DATABASE_URL=url, SHARD_IDS=str(shard), **env)
    assert await poll_until(lambda: proc.log_path.read_text().count("connected as") > before, 60)


async def test_two_processes_one_queue_and_a_sigkill_lose_nothing_and_charge_once(
    fake_discord: FakeDiscord, fake_fal: FakeFal, tmp_path, pg_url
):
    fake_fal.default = Outcome.complete(queued_polls=2, progress_polls=4)
    for name in MEMBERS[1:]:
        fake_discord.add_member(name)
    odd = fake_discord.add_guild("Odd shard", shard=(1, 2), members=MEMBERS)
    channels = {0: fake_discord.channel_id, 1: odd.channel_id}
    assert shard_of(fake_discord.guild_id, 2) == 0 and shard_of(odd.guild_id, 2) == 1
    data = tmp_path / "data"  # one DATA_DIR: the media folder every process mounts
    procs = {s: BotProcess(fake_discord, fake_fal, data, tmp_path / f"bot-{s}.log") for s in (0, 1)}
    try:
        await asyncio.gather(*(_start(p, s, pg_url) for s, p in procs.items()))
        for channel, admin in ((channels[0], "alice"), (channels[1], "odd-shard-owner")):
            done = await set_anchor(fake_discord, samples.portrait_png(), channel_id=channel, user=admin)
            assert "now starts from this image" in text_of(done), text_of(done)
        # Every command is asked (and answered by its shard's process) before the kill: a command in the dead
        # shard's server would reach no one afterwards, as on Discord.
        await asyncio.gather(*(_ask(fake_discord, c, TAKES // 2) for c in channels.values()))
        assert await poll_until(lambda: _posted(fake_discord, channels) >= TAKES // 4, 120)
        assert procs[0].proc is not None
        pid = procs[0].proc.pid
        # The kill lands while it holds jobs: the other process may hold them all for a moment (a loaded CI run
        # killed it in such a moment, and there was nothing to take over).
        async with asyncio.timeout(60):
            while not await _leased_by(pg_url, pid):
                await asyncio.sleep(0.02)
        procs[0].kill()  # in the middle, while it holds jobs in flight; never restarted
        orphans = await _leased_by(pg_url, procs[0].proc.pid)
        sending = {r[0] for r in await _rows(pg_url, "SELECT id FROM jobs WHERE state = 'submitting'")}
        assert await _wait_final(pg_url, 240), "takes still unfinished"
        await _check(pg_url, fake_discord, fake_fal, channels, sending)
        assert orphans > 0, "the killed process held no unfinished job: nothing was taken over"
        assert "connected as" in procs[1].log_path.read_text() and procs[1].proc.poll() is None
    finally:
        for p in procs.values():
            p.stop()


def _posted(fake: FakeDiscord, channels: dict[int, int]) -> int:
    return sum(len(_clips(fake, c)) for c in channels.values())


async def _rows(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def _leased_by(url: str, pid: int) -> int:
    """Unfinished jobs whose lease the process `pid` held (its owner name is host:pid:random)."""
    [row] = await _rows(
        url,
        "SELECT COUNT(*) FROM jobs WHERE lease_owner LIKE $1 AND state NOT IN ('posted', 'failed', 'cancelled')",
        f"%:{pid}:%",
    )
    return int(row[0])


async def _wait_final(url: str, timeout: float) -> bool:
    end = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < end:
        [row] = await _rows(
            url, "SELECT COUNT(*) FROM jobs WHERE state NOT IN ('posted', 'failed', 'cancelled')"
        )
        if row[0] == 0:
            return True
        await asyncio.sleep(0.25)
    return False


async def _check(
    url: str, fake: FakeDiscord, fal: FakeFal, channels: dict[int, int], sending: set[int]
) -> None:
    """Every take posted once, sent to fal once, captured once, the ledger equal to what was delivered. The one
    exception is the window the bot cannot see into: a take the dead process was sending to fal at the kill (fal
    may have accepted it, its request id was not yet stored). Sending it again could run it twice, so such a take
    fails, released, never charged, as after a restart (README, "How it works"). There are at most as many as the
    process's send slots: a take waiting for a slot is still queued (with 40 admitted at once, 18 failed before)."""
    takes = await _rows(
        url, "SELECT id, state, price_micros, ledger_key, request_id, args FROM jobs WHERE kind = 'take'"
    )
    assert len(takes) == TAKES
    failed = {t["id"] for t in takes if t["state"] == "failed"}
    assert failed <= sending, f"failed outside the sending window: {failed - sending}"
    posted = [t for t in takes if t["state"] == "posted"]
    assert len(posted) + len(failed) == TAKES
    assert len(failed) <= SEND_SLOTS, f"{len(failed)} takes failed: more than the dead process could be sending"
    # Posted exactly once each: one clip per (shot, take) in its channel.
    clips = [Counter(_clips(fake, channel)) for channel in channels.values()]
    assert sum(len(c) for c in clips) == len(posted) and all(set(c.values()) <= {1} for c in clips)
    # fal ran each take at most once: one submission per prompt; each posted take's request is its own.
    prompts = Counter(sub.arguments.get("prompt") for sub in fal.submissions_to("kling"))
    assert set(prompts.values()) == {1} and len(prompts) <= TAKES
    assert {t["request_id"] for t in posted} <= {sub.request_id for sub in fal.submissions_to("kling")}
    # Captured once each, the failed ones released; nothing held; totals equal what was delivered.
    holds = await _rows(url, "SELECT state, COUNT(*) AS n FROM holds GROUP BY state")
    expected = {"captured": len(posted), "released": len(failed)}
    assert {h["state"]: h["n"] for h in holds} == {k: n for k, n in expected.items() if n}
    ledger = await _rows(url, "SELECT kind, COUNT(*) AS n, SUM(amount) AS total FROM ledger GROUP BY kind")
    by_kind = {r["kind"]: (r["n"], int(r["total"])) for r in ledger}
    delivered = sum(t["price_micros"] for t in posted)
    assert by_kind["capture"] == (len(posted), delivered)
    assert by_kind["hold"][0] == TAKES
    [dupes] = await _rows(
        url,
        "SELECT COUNT(*) FROM (SELECT job_key, kind FROM ledger GROUP BY job_key, kind HAVING COUNT(*) > 1) AS d",
    )
    assert dupes[0] == 0


async def test_a_rolling_restart_hands_jobs_over_and_buttons_work_whichever_process_runs_the_job(
    fake_discord: FakeDiscord, fake_fal: FakeFal, tmp_path, pg_url
):
    """Shard 0's process takes a /shot; stopped cleanly (SIGTERM) it releases its lease and shard 1's process goes
    on with the job at once; shard 0's process, restarted, receives the Cancel click for it: fal confirms the cancel,
    the hold is released, and the process that runs the job posts nothing."""
    fake_fal.script(Outcome.hold())
    fake_discord.add_guild("Odd shard", shard=(1, 2))
    data = tmp_path / "data"
    procs = {s: BotProcess(fake_discord, fake_fal, data, tmp_path / f"bot-{s}.log") for s in (0, 1)}
    env = {**ENV, "JOB_LEASE_S": "600"}  # a handover that waited for the lease to run out would time out here
    try:
        await _start(procs[0], 0, pg_url, env)
        await set_anchor(fake_discord, samples.portrait_png())
        it = await fake_discord.slash("shot", user="alice", prompt="handed over")
        progress = await original_reply(it)
        assert await poll_until(lambda: fake_fal.submissions and fake_fal.submissions[0].held, 30)
        assert procs[0].proc is not None and await _owner_pid(pg_url) == procs[0].proc.pid
        await _start(procs[1], 1, pg_url, env)
        procs[0].stop()  # a clean stop: its leases are released
        assert procs[1].proc is not None
        assert await _wait_owner(pg_url, procs[1].proc.pid, 30), "shard 1's process did not take the job on"
        await _start(procs[0], 0, pg_url, env)
        custom_id = progress["components"][0]["components"][0]["custom_id"]
        assert custom_id.startswith("shot:cancel:")
        click = await fake_discord.click(int(progress["id"]), custom_id)  # reaches shard 0's process
        assert "cancelled" in text_of(await original_reply(click))
        assert fake_fal.submissions[0].cancelled
        [[state, hold]] = await _rows(
            pg_url, "SELECT j.state, h.state FROM jobs j JOIN holds h ON h.job_key = j.ledger_key"
        )
        assert (state, hold) == ("cancelled", "released")
        fake_fal.release()
        await asyncio.sleep(2)  # every chance for the job's process to (wrongly) post it
        assert _clips(fake_discord, fake_discord.channel_id) == []
    finally:
        for p in procs.values():
            p.stop()


async def _owner_pid(url: str) -> int | None:
    [row] = await _rows(url, "SELECT lease_owner FROM jobs WHERE kind = 'take'")
    return int(row[0].split(":")[-2]) if row[0] else None


async def _wait_owner(url: str, pid: int, timeout: float) -> bool:
    end = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < end:
        if await _owner_pid(url) == pid:
            return True
        await asyncio.sleep(0.1)
    return False
