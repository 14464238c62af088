"""The job engine: one persisted queue for every kind of work (imports no feature package and no discord).

ADDING_A_KIND.md beside this file says how to add a kind of job.
"""

from bot.jobs.engine import EngineConfig, JobEngine, JobNotFound, NotCancellable
from bot.jobs.kinds import (
    Fail,
    Failure,
    JobKind,
    KindBase,
    Ledger,
    LocalKind,
    Poll,
    ProgressSink,
    RemoteKind,
    Resubmit,
    Retry,
    StepError,
    Uncertain,
)
from bot.jobs.models import Job, NewJob, Prepared
from bot.jobs.outlet import NotAttached, Outlet
from bot.jobs.states import FINAL, IN_FLIGHT, JobState

__all__ = [
    "FINAL",
    "IN_FLIGHT",
    "EngineConfig",
    "Fail",
    "Failure",
    "Job",
    "JobEngine",
    "JobKind",
    "JobNotFound",
    "JobState",
    "KindBase",
    "Ledger",
    "LocalKind",
    "NewJob",
    "NotAttached",
    "NotCancellable",
    "Outlet",
    "Poll",
    "Prepared",
    "ProgressSink",
    "RemoteKind",
    "Resubmit",
    "Retry",
    "StepError",
    "Uncertain",
]
