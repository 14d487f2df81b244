"""The scheduler: durable timers, deferred suspension checkpoints, and resume-once.
"""

from actors.scheduling._actor import SchedulerActor
from actors.scheduling._deadlines import DeadlineKind, Deadlines
from actors.scheduling._verdicts import EVICT, UNWIND, Evict, Resume, Unwind, Verdict

__all__ = [
    "EVICT",
    "UNWIND",
    "DeadlineKind",
    "Deadlines",
    "Evict",
    "Resume",
    "SchedulerActor",
    "Unwind",
    "Verdict",
]
