"""The progress edit queue's rule for messages this process has not edited itself (`cogs/shots/edits.py`): after a
restart, or for a take another process took to fal and this one goes on with (issue #18), an edit that would say
what the message already says is not sent; anything else is."""

from __future__ import annotations

import asyncio

import pytest

from bot.jobs import JobState
from bot.takes.models import Take
from cogs.shots.edits import ProgressEdits
from cogs.shots.publisher import AT_SERVICE, shows_its_look_already

pytestmark = pytest.mark.asyncio


def _take(take_id: int, state: JobState, *, progress: int | None = 500) -> Take:
    return Take(
        id=take_id, guild_id=1, channel_id=2, user_id=3, root_id=take_id, take=1, prompt="p", negative_prompt=None,
        duration_s=5, aspect_ratio="16:9", audio=False, anchor_version_id=1, upload_limit_bytes=None,
        endpoint="e", backend="fal", price_micros=1, state=state, request_id="r", queue_position=None,
        progress_message_id=progress, reply_to_message_id=None, clip_message_id=None, output_url=None,
        clip_path=None, error=None, created_at=0.0, submitted_at=None, started_at=None, finished_at=None,
        job_key=f"take:{take_id}",
    )  # fmt: skip


def _looks(take: Take) -> object:
    """As the publisher: every state past the queue shows the one "Making the clip" text."""
    return "making" if take.state in AT_SERVICE else str(take.state)


async def test_a_take_this_process_has_not_shown_is_edited_only_when_its_message_would_change():
    sent: list[tuple[int, JobState]] = []

    async def show(take: Take) -> None:
        sent.append((take.id, take.state))

    edits = ProgressEdits(show, _looks, lambda: 0.01, shows_its_look_already)
    edits.take_changed(_take(1, JobState.RUNNING))  # queued → fal by another process: the text it shows
    edits.take_changed(_take(2, JobState.FAILED))  # ended: the message must say so
    edits.take_changed(_take(3, JobState.RUNNING, progress=None))  # no message known: posted by the edit
    edits.take_changed(_take(4, JobState.WAITING))  # back in the queue: not what "Making the clip" says
    await asyncio.sleep(0.2)
    assert sorted(sent) == [(2, JobState.FAILED), (3, JobState.RUNNING), (4, JobState.WAITING)]
    edits.take_changed(_take(1, JobState.FAILED))  # take 1's look is known now: its change is shown
    await asyncio.sleep(0.2)
    assert sent[-1] == (1, JobState.FAILED)
    await edits.close()
