"""The `face_score` job kind: a LOCAL kind chained to a posted take (parent_id = the take).

run (engine worker thread): hand `faces.score_clip` to the shared process pool and wait there, so the event loop
never holds dlib. postprocess: store the score with the take. deliver: edit the clip's message to show the verdict,
then (a drifted take with auto re-roll on) re-roll it once, or (an automatic re-roll) say which take scored better.
Every deliver step is idempotent, so a deliver repeated after a crash changes nothing twice.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bot.consistency.models import SCORE_KIND, StoredScore, VerdictView
from bot.consistency.service import ConsistencyService
from bot.consistency.wording import score_words, verdict_line, verdict_text
from bot.errors import BudgetExceeded, UserError
from bot.jobs import Fail, Job, KindBase
from bot.media import faces
from bot.takes.models import Take

log = logging.getLogger(__name__)


def _rank(s: StoredScore) -> tuple[int, int]:
    return (s.frames_matching, s.score or 0)


def _worst_first(s: faces.ClipScore) -> tuple[int, int, int]:
    """Drifted before matched before no face; then fewer matching frames, then the lower score."""
    order = {faces.Verdict.DRIFT: 0, faces.Verdict.MATCH: 1, faces.Verdict.NO_FACE: 2}
    return (order[s.verdict], s.frames_matching, s.score or 0)


def _outputs(score: faces.ClipScore) -> dict[str, Any]:
    return {
        "verdict": str(score.verdict),
        "score": score.score,
        "median_distance": score.median_distance,
        "frames_sampled": score.frames_sampled,
        "frames_with_face": score.frames_with_face,
        "frames_matching": score.frames_matching,
        "threshold": score.threshold,
        "text": verdict_text(score.verdict, score.score, score.frames_matching, score.frames_sampled),
    }


class FaceScoreKind(KindBase):
    name = SCORE_KIND
    ledger_prefix = "score"
    noun = "face check"

    def __init__(self, service: ConsistencyService) -> None:
        self.service = service

    def can_deliver(self) -> bool:
        return self.service.outlet.attached

    # Local work (a worker thread) ------------------------------------------------------------------------
    def run(self, job: Job) -> dict[str, Any]:
        a = job.args
        path = Path(a["clip_path"])
        if not path.exists():
            raise Fail("The clip file is no longer on the bot's disk, so its face could not be scored.")
        try:
            if a.get("cast"):
                return self._run_cast(path, a)
            score = self.service.pool.call(
                faces.score_clip,
                str(path),
                [bytes.fromhex(h) for h in a["embeddings"]],
                frames=int(a.get("frames", 8)),
                threshold=float(a["threshold"]),
            )
        except faces.FaceEngineUnavailable as exc:
            raise Fail(f"face checks are off: {exc}") from exc
        except faces.ClipUnreadable as exc:
            raise Fail(f"the clip could not be read for scoring ({exc})") from exc
        return _outputs(score)

    def _run_cast(self, path: Path, a: dict[str, Any]) -> dict[str, Any]:
        """Score the clip against every named character at once (frames decoded once); the take's own figures are
        its worst character's, and it drifted when any of them did."""
        cast = a["cast"]
        scores = self.service.pool.call(
            faces.score_clip_cast,
            str(path),
            [[bytes.fromhex(h) for h in c["embeddings"]] for c in cast],
            frames=int(a.get("frames", 8)),
            threshold=float(a["threshold"]),
        )
        worst = min(scores, key=_worst_first)
        out = _outputs(worst)
        out["cast"] = [
            {
                "character_id": c["character_id"],
                "name": c["name"],
                "position": c["position"],
                "verdict": str(s.verdict),
                "score": s.score,
                "frames_matching": s.frames_matching,
                "frames_sampled": s.frames_sampled,
            }
            for c, s in zip(cast, scores, strict=True)
        ]
        return out

    async def postprocess(self, job: Job) -> dict[str, Any]:
        await self.service.save_score(job)
        return {}

    # Deliver: one edit of the clip's message, nothing posted of its own ----------------------------------
    async def deliver(self, job: Job) -> None:
        """Show the verdict, with what follows from it folded in: a drifted take's automatic re-roll (queued here,
        once), or how an automatic re-roll compares with the take it re-rolled. Idempotent."""
        take = await self.service.takes.get(int(job.args["take_id"]))
        if take is None or take.clip_message_id is None:
            raise Fail("The take this score belongs to is gone.")
        score = await self.service.score_of(take.id)
        if score is None:  # postprocess stores it before this step; a lost row is stored again
            score = await self.service.save_score(job)
        lines = [verdict_line(score, rerolled=False)]
        if score.verdict == faces.Verdict.DRIFT and await self.service.wants_auto_reroll(take):
            lines = [verdict_line(score, rerolled=True), await self._auto_reroll(take)]
        if take.auto_reroll_of is not None:
            lines.extend(await self._compare(take, score))
        await self.service.outlet.get().show_verdict(take, VerdictView(score.verdict, tuple(lines)))

    async def _auto_reroll(self, take: Take) -> str:
        try:
            new = await self.service.auto_reroll(take)
        except BudgetExceeded:  # public: never a figure
            return "auto re-roll: not enough budget for another take; press Re-roll to try yourself."
        except UserError as exc:
            return f"auto re-roll: {exc.message}"
        return f"auto re-roll: take {new.take} is on its way."

    async def _compare(self, take: Take, score: StoredScore) -> list[str]:
        assert take.auto_reroll_of is not None
        original = await self.service.takes.get(take.auto_reroll_of)
        before = await self.service.score_of(take.auto_reroll_of)
        if original is None or before is None:
            return []
        if _rank(score) > _rank(before):
            words = f"this take matches better than take {original.take}"
        elif _rank(score) < _rank(before):
            words = f"take {original.take} still matches better than this one"
        else:
            words = f"this take and take {original.take} match the same"
        return [
            f"auto re-roll of take {original.take}: {words} ({score_words(score)} vs {score_words(before)})."
        ]
