"""``RunFences``: the current run of each branch, so an older run's updates are refused.

A dispatch's empty checkpoint carries the branch's new epoch; a copy of the
branch that still runs under an older epoch learns it at its next checkpoint
(``CheckpointError``), and nothing it sends is written. An update of a run the
checkpoint actor never saw dispatched is refused too: every dispatch goes
through the checkpoint actor, so that run was dispatched before it (re)started,
and the coordinator, told of the restart (``CheckpointLost``), dispatches it
again. Fences need not outlive the process.

    fences = RunFences()
    fences.admit(Checkpoint("b", None, epoch=2))             # None: admitted, run 2 is current
    fences.admit(Checkpoint("b", OperationUpdate(..., epoch=1)))  # CheckpointError
"""

from __future__ import annotations

from actors.errors import CheckpointError
from actors.protocol._checkpoint import Checkpoint


class RunFences:
    """Admits a checkpoint when it belongs to its branch's current run (or carries no epoch)."""

    __slots__ = ("_current",)

    def __init__(self) -> None:
        self._current: dict[str, int] = {}  # branch id -> the epoch of its current run

    def admit(self, message: Checkpoint) -> CheckpointError | None:
        """None if ``message`` may be written; else why it is refused."""
        update = message.update
        epoch = message.epoch if update is None else getattr(update, "epoch", None)
        if epoch is None:
            return None
        branch_id = message.branch_id
        fence = self._current.get(branch_id)
        if fence is None and update is None:
            fence = epoch  # a dispatch this actor has not seen a run of: it is the current run
        if fence is not None and epoch >= fence:
            self._current[branch_id] = epoch
            return None
        if fence is None:
            return CheckpointError(
                f"branch {branch_id!r}: run {epoch} was dispatched before the checkpoint "
                "actor restarted; its updates are refused and the coordinator dispatches "
                "the branch again"
            )
        return CheckpointError(
            f"branch {branch_id!r}: run {epoch} was superseded by run {fence}; "
            "its updates are refused and the newer run goes on"
        )

    def current(self, branch_id: str) -> int | None:
        """The epoch of ``branch_id``'s current run, if this actor saw one."""
        return self._current.get(branch_id)
