"""The scheduler: durable timers, deferred suspension checkpoints, and resume-once.
"""

from actors.scheduling._actor import Deadlines, SchedulerActor

__all__ = [
    "Deadlines",
    "SchedulerActor",
]
