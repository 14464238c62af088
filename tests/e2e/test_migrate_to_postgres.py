"""Issue #18, "Moving up": `anchorshot migrate-to-postgres URL` moves a SQLite database made by the real bot (anchors,
a cast, a scene, posted takes, a take still at fal with its hold) into an empty PostgreSQL database and checks the
copy; a second run refuses; the real bot started on PostgreSQL shows the same anchors and budgets, finishes the take
that was still at fal, and makes new shots whose ids and numbers continue the copied ones."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from bot.jobs import JobState
from tests import faces_samples as fs
from tests import samples
from tests.conftest import ROOT, BotRunner
from tests.e2e.helpers import set_anchor, settled_totals, text_reply
from tests.e2e.shots_helpers import clip_messages, run_shot, wait_posted
from tests.fakes.discord import DEFAULT_MEMBER_PERMS, MANAGE_GUILD, text_of
from tests.fakes.fal_fake import Outcome
from tests.pg import table_counts

pytestmark = [pytest.mark.postgres, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

PASSWORD = "pw-Sekr1t-9f2c"  # the test cluster trusts local connections: a password in the URL is ignored


def cli(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS` with DATA_DIR and nothing else of the bot's settings (no DISCORD_TOKEN)."""
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "FAL_", "DATABASE_", "SHARD_"))
    }
    clean.update({"DATA_DIR": str(data_dir), **env})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def sqlite_facts(path: Path) -> tuple[dict[str, int], list[tuple], list[tuple]]:
    """Row counts of every table (schema_migrations excepted), the ledger's totals per kind, the holds' per state."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        counts = {n: conn.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] for n in names}  # noqa: S608
        ledger = conn.execute(
            "SELECT kind, COUNT(*), SUM(amount) FROM ledger GROUP BY kind ORDER BY kind"
        ).fetchall()
        holds = conn.execute(
            "SELECT state, COUNT(*), SUM(amount) FROM holds GROUP BY state ORDER BY state"
        ).fetchall()
    finally:
        conn.close()
    counts.pop("schema_migrations")
    return counts, ledger, holds


async def pg_facts(url: str) -> tuple[dict[str, int], list[tuple], list[tuple]]:
    conn = await asyncpg.connect(url)
    try:
        counts = await table_counts(conn)
        ledger = await conn.fetch(
            "SELECT kind, COUNT(*), SUM(amount) FROM ledger GROUP BY kind ORDER BY kind"
        )
        holds = await conn.fetch(
            "SELECT state, COUNT(*), SUM(amount) FROM holds GROUP BY state ORDER BY state"
        )
    finally:
        await conn.close()
    return counts, [(k, n, int(s)) for k, n, s in ledger], [(k, n, int(s)) for k, n, s in holds]


def sqlite_rows(path: Path, table: str) -> tuple[list[str], list[tuple]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        columns = [c[1] for c in conn.execute(f'PRAGMA table_info("{table}")')]
        return columns, sorted(conn.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)  # noqa: S608
    finally:
        conn.close()


async def same_rows(path: Path, url: str, tables: list[str]) -> dict[str, int]:
    """Each table's rows, value for value (ints, floats, text, bytes), in SQLite and PostgreSQL; the count of each."""
    conn = await asyncpg.connect(url)
    try:
        seen = {}
        for table in tables:
            columns, before = sqlite_rows(path, table)
            quoted = ", ".join(f'"{c}"' for c in columns)
            after = sorted((tuple(r) for r in await conn.fetch(f'SELECT {quoted} FROM "{table}"')), key=repr)  # noqa: S608
            assert after == before, table
            seen[table] = len(after)
        return seen
    finally:
        await conn.close()


async def pg_value(url: str, sql: str, *args: object) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


def with_password(url: str) -> str:
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@", 1)


SHOT_NUMBER = re.compile(r"Shot (\d+) \u00b7 take 1")


async def _make_everything(runner, fake, fal) -> dict:
    """Through the real bot on SQLite: budgets, a cast of two (real faces, so face scores), a scene of two posted
    shots, two posted /shot takes and a third still at fal (held, its money held)."""
    treasurer = fake.add_member("treasurer", permissions=DEFAULT_MEMBER_PERMS | MANAGE_GUILD)
    bob = fake.add_member("bob", permissions=DEFAULT_MEMBER_PERMS)
    await text_reply(await fake.slash("budget-admin default", user=treasurer, limit="25"))
    await text_reply(
        await fake.slash("budget-admin set", user=treasurer, opts={"user": bob, "limit": "$12.50"})
    )
    await set_anchor(fake, samples.png_bytes(fs.centred_portrait()), name="Mara")
    att = fake.make_attachment("Grace.png", samples.png_bytes(fs.hopper_portrait()), content_type="image/png")
    assert "Grace joined the cast" in text_of(
        await text_reply(await fake.slash("cast add", name="Grace", image=att))
    )

    await text_reply(await fake.slash("scene start", name="Opening"))
    plan = await text_reply(await fake.slash("scene plan", shots="Mara opens the door | Grace waves"))
    [confirm] = [b["custom_id"] for row in plan["components"] for b in row["components"]]
    assert "held" in text_of(await text_reply(await fake.click(int(plan["id"]), confirm)))
    await wait_posted(runner, fake, 2, timeout=60)
    await run_shot(fake, "she turns to the window")
    await run_shot(fake, "he smiles", user=bob)
    await wait_posted(runner, fake, 4, timeout=60)
    await settled_totals(runner, fake)  # no take is between posted and captured

    fal.script(Outcome.hold())
    held = await run_shot(fake, "still at fal when the bot stops")
    await fake.wait_for(lambda: any(s.held for s in fal.submissions), 30)
    services = runner.services

    async def running() -> bool:
        return bool(await services.takes.in_states(JobState.RUNNING))

    await fake.wait_for(running, 30)
    return {"held_number": int(SHOT_NUMBER.search(text_of(held)).group(1)), "bob": bob}


async def _state_of(runner, fake, bob: int) -> dict:
    services = runner.services
    return {
        "anchor": await services.anchors.resolve(fake.channel_id),
        "alice": await services.budget.view(fake.guild_id, fake.member("alice")),
        "bob": await services.budget.view(fake.guild_id, bob),
    }


async def test_migrate_a_real_sqlite_database_then_run_the_bot_on_postgres(
    runner, fake_discord, fake_fal, face_pool, pg_url
):
    await runner.start()
    made = await _make_everything(runner, fake_discord, fake_fal)
    before = await _state_of(runner, fake_discord, made["bob"])
    await runner.stop()
    data_dir = runner.data_dir
    database = data_dir / "anchorshot.sqlite3"
    counts, ledger, holds = sqlite_facts(database)
    assert counts["jobs"] >= 5 and counts["characters"] == 2 and counts["scene_shots"] >= 2, counts
    assert counts["anchor_faces"] >= 2 and counts["user_limits"] == 1 and counts["guild_budgets"] == 1, counts
    assert [h[0] for h in holds] == ["captured", "held"], holds

    started = time.perf_counter()
    done = await asyncio.to_thread(cli, data_dir, "migrate-to-postgres", with_password(pg_url))
    took = time.perf_counter() - started
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    print(f"\nmigrate-to-postgres took {took:.2f} s ({sum(counts.values())} rows):\n" + done.stdout)
    assert all(line.startswith("anchorshot: ") for line in lines) and done.stderr == ""
    assert re.fullmatch(
        rf"anchorshot: copying {re.escape(str(database))} \(schema \d+\) into PostgreSQL at 127\.0\.0\.1:\d+/\w+",
        lines[0],
    ), lines[0]
    tables = len(counts)
    assert (
        f"anchorshot: check row counts: equal in all {tables} tables ({sum(counts.values()):,} rows)" in lines
    )
    assert any(line.startswith("anchorshot: check ledger totals: equal: capture $") for line in lines), lines
    assert any(line.startswith("anchorshot: check hold totals: equal: captured $") for line in lines), lines
    assert any("media" in line and "shared folder every bot process mounts" in line for line in lines), lines
    assert PASSWORD not in done.stdout + done.stderr

    assert await pg_facts(pg_url) == (counts, ledger, holds)
    assert await same_rows(database, pg_url, list(counts)) == counts
    # anchor_versions and characters point at each other: both sides of the cycle are filled in
    assert await pg_value(pg_url, "SELECT COUNT(*) FROM anchor_versions WHERE character_id IS NOT NULL") == 2
    assert await pg_value(pg_url, "SELECT COUNT(*) FROM characters WHERE version_id IS NOT NULL") == 2
    assert await pg_value(pg_url, "SELECT MAX(version) FROM schema_migrations") == max(
        r[0] for r in sqlite3.connect(database).execute("SELECT version FROM schema_migrations")
    )

    again = await asyncio.to_thread(cli, data_dir, "migrate-to-postgres", pg_url)
    assert again.returncode == 2 and again.stdout.count("\n") <= 1, again.stdout + again.stderr
    assert again.stderr.count("\n") == 1 and "is not empty" in again.stderr, again.stderr
    assert await pg_facts(pg_url) == (counts, ledger, holds)  # nothing changed

    copied_max = await pg_value(pg_url, "SELECT MAX(id) FROM jobs")
    on_pg = BotRunner(fake_discord, fake_fal, data_dir, face_pool, pg_url)
    try:
        await on_pg.start()
        assert on_pg.services.db.dialect == "postgresql"
        assert await _state_of(on_pg, fake_discord, made["bob"]) == before

        clips = len(clip_messages(fake_discord))
        fake_fal.release()  # the take that was at fal when the SQLite bot stopped: the PostgreSQL bot posts it
        await wait_posted(on_pg, fake_discord, 5, timeout=60)
        answer = await run_shot(fake_discord, "the first shot on PostgreSQL")
        assert SHOT_NUMBER.search(text_of(answer)).group(1) == str(made["held_number"] + 1)
        await wait_posted(on_pg, fake_discord, 6, timeout=60)
        assert len(clip_messages(fake_discord)) == clips + 2
        newest = await pg_value(pg_url, "SELECT MAX(id) FROM jobs WHERE kind = 'take'")
        assert newest > copied_max
        assert await settled_totals(on_pg, fake_discord) == (
            before["alice"].spent + before["alice"].held * 2,
            0,
        )
    finally:
        await on_pg.stop()
