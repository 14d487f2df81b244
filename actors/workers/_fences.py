"""``RunFences``: what a worker knows about which of its runs are stale.

The checkpoint actor refuses a stale run's writes, but only when it writes: a
run queued behind others, or one between two steps, would still call its next
step function before learning it was superseded. The coordinator therefore
fences runs on the workers before it dispatches them again (``FenceRuns``),
and the worker checks before a queued run starts and before every operation:

* a run of a branch older than the branch's fenced epoch is stale (the branch
  was dispatched again after the checkpoint actor or the coordinator restarted);
* a run older than its execution's floor is stale: every run of a cancelled or
  lost execution (``FENCE_ALL``), the runs from before a retry or a re-claim;
* a run given before the worker saw its checkpoint process go away is stale: the
  coordinator dispatches every such run again (``fence_all_before``); so is a run
  older than the worker's ``RunsFrom`` (given to its previous process);
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

from actors.protocol._worker import FENCE_ALL, FenceRuns


class RunFences:
    """See the module docstring; safe to share between a worker's threads."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._epochs: dict[str, int] = {}  # branch id -> oldest run epoch still current
        self._floors: dict[str, int] = {}  # execution id -> oldest run epoch still current
        self.valid_until: float | None = None  # None: no leases to confirm (never told)
        self.floor_all = 0  # every run older than this is stale (see floor_reason)
        self.floor_reason = ""

    def update(self, fence: FenceRuns) -> None:
        with self._lock:
            for branch_id, epoch in fence.branches:
                if epoch > self._epochs.get(branch_id, -1):
                    self._epochs[branch_id] = epoch
            self._floors.update(fence.executions)
            self._lock.notify_all()  # an operation waiting for a renewal may be stale now

    def fence_all_before(self, epoch: int, reason: str) -> None:
        with self._lock:
            if epoch > self.floor_all:
                self.floor_all, self.floor_reason = epoch, reason
                self._lock.notify_all()

    def confirm(self, deadline: float) -> None:
        with self._lock:
            if self.valid_until is None or deadline > self.valid_until:
                self.valid_until = deadline
                self._lock.notify_all()

    def stale(self, execution_id: str, branch_id: str, epoch: int | None) -> str | None:
        """Why the run ``epoch`` of ``branch_id`` must not go on, or None."""
        if epoch is not None and epoch < self.floor_all:
            return self.floor_reason
        floor = self._floors.get(execution_id)
        if floor is not None and (epoch is None or epoch < floor):
            if floor >= FENCE_ALL:
                return f"execution {execution_id!r} was cancelled, or another system took it"
            return f"execution {execution_id!r} was taken up again from run {floor}"
        current = self._epochs.get(branch_id)
        if epoch is not None and current is not None and epoch < current:
            return f"superseded by run {current}"
        return None

    def check(self, execution_id: str, branch_id: str, epoch: int | None,
              timeout: float) -> str | None:
        """Why the run must stop before its next operation, or None to go on.

        Past ``valid_until`` it waits, up to ``timeout``, for a renewal or a fence.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                reason = self.stale(execution_id, branch_id, epoch)
                if reason is not None:
                    return reason
                if self.valid_until is None or time.monotonic() < self.valid_until:
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return "this system's leases were not confirmed in time (is the store down?)"
                self._lock.wait(remaining)
