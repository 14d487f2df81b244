"""What the scheduler answers a parked branch: go on, evict itself, or unwind.

A suspending branch sends ``Suspend`` and parks on its reply; the scheduler
answers it with one ``Verdict``:

* ``Resume`` (with the dependency's payload, or None for a timer): go on in
  place; nothing was written, or it was and it does not matter;
* ``EVICT``: the suspension is durable; unwind and free the thread, a replay
  follows when the wait is over;
* ``UNWIND``: stop, aborted; nothing of the suspension is durable (the
  checkpoint process restarted, or a newer run of the branch parked).

Three small classes, not one with an enum field: a verdict crosses a process
per suspension, and an enum member costs microseconds to pickle and load.

    suspend.reply_to.set(Resume(payload))
    suspend.reply_to.set(EVICT)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Resume:
    """Go on in place, with what the branch waited for (None for a timer)."""

    payload: bytes | None = None


@dataclass(frozen=True, slots=True)
class Evict:
    """The suspension is durable: unwind the run and free its thread; a replay follows."""


@dataclass(frozen=True, slots=True)
class Unwind:
    """Stop, aborted: nothing of the suspension is durable; the branch is replayed."""


Verdict = Resume | Evict | Unwind

EVICT = Evict()
UNWIND = Unwind()
