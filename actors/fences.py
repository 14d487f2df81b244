"""``RunFences``: what a worker knows about which of its runs are stale.

The checkpoint actor refuses a stale run's writes, but only when it writes: a
run queued behind others, or one between two steps, would still call its next
step function before learning it was superseded. The coordinator therefore
fences runs on the workers before it dispatches them again (``FenceRuns``),
and the worker checks before a queued run starts and before every operation:

* a run of a branch older than the branch's fenced epoch is stale (the branch
  was dispatched again after the checkpoint actor or the coordinator restarted);
* every run of a fenced execution is stale (cancelled, or its lease was lost);
* past ``valid_until`` (``LeaseValidUntil``) the system's leases are not
  confirmed: another system may own the work by now, so an operation waits for
  the next renewal (a paused process that wakes up starts nothing until then).

    fences = RunFences()
    fences.update(FenceRuns(branches=(("e/0", 7),)))
    fences.stale("e", "e/0", epoch=6)     # 'superseded by run 7'
"""

from __future__ import annotations

import threading
import time

from actors.control import FenceRuns


class RunFences:
    """See the module docstring; safe to share between a worker's threads."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._epochs: dict[str, int] = {}  # branch id -> oldest run epoch still current
        self._executions: set[str] = set()
        self.valid_until: float | None = None  # None: no leases to confirm (never told)

    def update(self, fence: FenceRuns) -> None:
        with self._lock:
            for branch_id, epoch in fence.branches:
                if epoch > self._epochs.get(branch_id, -1):
                    self._epochs[branch_id] = epoch
            self._executions.update(fence.executions)

    def confirm(self, deadline: float) -> None:
        with self._lock:
            if self.valid_until is None or deadline > self.valid_until:
                self.valid_until = deadline
                self._lock.notify_all()

    def stale(self, execution_id: str, branch_id: str, epoch: int | None) -> str | None:
        """Why the run ``epoch`` of ``branch_id`` must not go on, or None."""
        if execution_id in self._executions:
            return f"execution {execution_id!r} was cancelled here, or another system took it"
        current = self._epochs.get(branch_id)
        if epoch is not None and current is not None and epoch < current:
            return f"superseded by run {current}"
        return None

    def wait_confirmed(self, timeout: float) -> bool:
        """Whether the leases are confirmed now, waiting up to ``timeout`` for a renewal."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self.valid_until is not None and time.monotonic() >= self.valid_until:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
        return True


__all__ = ["RunFences"]
