"""What the scheduler answers a parked branch: go on, evict itself, or unwind.

A suspending branch sends ``Suspend`` and parks on its reply; the scheduler
answers it with one ``Verdict``:

* ``RESUME`` (with the dependency's payload, or None for a timer): go on in
  place; nothing was written, or it was and it does not matter;
* ``EVICT``: the suspension is durable; unwind and free the thread, a replay
  follows when the wait is over;
* ``UNWIND``: stop, aborted; nothing of the suspension is durable (the
  checkpoint process restarted, or a newer run of the branch parked).

    suspend.reply_to.set(Verdict.resume(payload))
    suspend.reply_to.set(EVICT)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class VerdictKind(Enum):
    """What a parked branch does next (module docstring)."""

    RESUME = "resume"
    EVICT = "evict"
    UNWIND = "unwind"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The scheduler's answer to a ``Suspend``: ``kind``, and a resume's ``payload``.

        Verdict.resume(b"batch")  # Verdict(kind=VerdictKind.RESUME, payload=b"batch")
    """

    kind: VerdictKind
    payload: bytes | None = None

    @staticmethod
    def resume(payload: bytes | None = None) -> Verdict:
        """Go on in place, with what the branch waited for (None for a timer)."""
        return Verdict(VerdictKind.RESUME, payload)


EVICT = Verdict(VerdictKind.EVICT)
UNWIND = Verdict(VerdictKind.UNWIND)
