"""The job engine: one persisted queue for every kind of work (imports no feature package and no discord)."""

from bot.jobs.engine import EngineConfig, JobEngine, JobNotFound, NotCancellable
from bot.jobs.kinds import (
    Fail,
    JobKind,
    Ledger,
    Poll,
    Prepared,
    ProgressSink,
    Resubmit,
    Retry,
    StepError,
    Uncertain,
)
from bot.jobs.models import Job
from bot.jobs.states import DISPLAY, FINAL, JobState

__all__ = [
    "DISPLAY",
    "FINAL",
    "EngineConfig",
    "Fail",
    "Job",
    "JobEngine",
    "JobKind",
    "JobNotFound",
    "JobState",
    "Ledger",
    "NotCancellable",
    "Poll",
    "Prepared",
    "ProgressSink",
    "Resubmit",
    "Retry",
    "StepError",
    "Uncertain",
]
