"""What every part of the coordinator shares: its state, and the calls between parts.

``CoordinatorActor`` is composed of parts, one concept each (starting
executions, observing them, lease rounds, cancel/retry/delete, faults,
dispatching branches, finishing batches, recovering lost processes). They run on
the one actor thread and share this state; a part calls another through the
methods declared here, which the part that owns them implements:

    class LeaseRounds(CoordinatorCore):
        def _lose(self, eid, record): ...   # the others call self._lose(...)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

from actors.branches._spec import BranchSpec
from actors.clock import Clock, Ticker
from actors.coordinator._batches import Batch, TrackedBranch, TrackedExecution
from actors.coordinator._lease_keeper import LeaseKeeper
from actors.protocol._checkpoint import Checkpoint
from actors.protocol._coordinator import StartExecution, Wire
from actors.records._leases import ExecutionClaim
from actors.records._rows import ExecutionRecord
from actors.records._updates import OperationUpdate
from actors.replies import ActorLike, ReplyTo
from actors.store._contract import Store


class CoordinatorCore:
    """The coordinator's state and the calls its parts make to each other."""

    # Set by CoordinatorActor.__init__.
    _checkpoint: ActorLike
    _reader: Store
    _clock: Clock
    _serialize: Callable[[object], bytes]
    _deserialize: Callable[[bytes], Any]
    _executor: str
    _keeper: LeaseKeeper
    _poll_interval: float
    _ticker: Ticker | None
    # Executions: tracked ones, and requests in flight to the checkpoint actor.
    _executions: dict[str, TrackedExecution]
    _pending_starts: dict[str, list[StartExecution]]  # creations in flight
    _claiming: dict[str, list[StartExecution]]  # claims in flight
    _requests: dict[int, ReplyTo]  # callers of a cancel/retry/delete in flight
    _request_ids: itertools.count[int]
    _unloadable: set[str]  # claimed executions whose classes did not load
    _cancel_replies: dict[str, list[ReplyTo]]  # cancels waiting for the write
    _faults: dict[str, BaseException]  # where -> the fault there now
    # Branches: batches, runs and the workers they run on.
    _batches: dict[str, Batch]
    _branches: dict[str, TrackedBranch]
    _epoch: int  # run epochs grow across every branch: a floor fences them all
    _wiring: Wire | None  # its own ref, the workers' and the scheduler's
    _load: list[int]  # runs dispatched to each worker
    _down: set[int]  # workers lost and not back yet: nothing is sent to them
    _retries: list[tuple[float, str, int]]  # (when, branch, epoch) after an abort
    _finish_retries: list[tuple[float, str, int]]  # (when, batch key, serial)
    _batch_serials: itertools.count[int]
    _wave: list[Checkpoint]  # dispatches of the message being handled

    def _me(self) -> ActorLike:
        return self._wired().self_ref

    # -- the actor (CoordinatorActor) ------------------------------------------------------

    def _wired(self) -> Wire:
        raise NotImplementedError

    def _to_checkpoint(self, message: Any) -> None:
        raise NotImplementedError

    def _to_scheduler(self, message: Any) -> None:
        raise NotImplementedError

    def _workers_tell(self, message: Any) -> None:
        raise NotImplementedError

    def _tell_worker(self, index: int, message: Any) -> None:
        raise NotImplementedError

    def _rearm(self) -> None:
        raise NotImplementedError

    # -- dispatching branches (BranchDispatch) ----------------------------------------------

    def _new_batch(self, key: str, eid: str, specs: Sequence[BranchSpec], completion: Any,
                   max_concurrency: int | None, parent: OperationUpdate | None = None) -> Batch:
        raise NotImplementedError

    def _seed(self, batch: Batch, records: dict[str, Any]) -> None:
        raise NotImplementedError

    def _reload_timers(self, batch: Batch) -> int:
        raise NotImplementedError

    def _after_change(self, batch: Batch) -> None:
        raise NotImplementedError

    def _dispatch(self, branch_id: str) -> None:
        raise NotImplementedError

    def _redispatch(self, branch_ids: Sequence[str]) -> None:
        raise NotImplementedError

    def _release(self, branch: TrackedBranch) -> None:
        raise NotImplementedError

    def _peek_epoch(self) -> int:
        raise NotImplementedError

    def _runs(self, execution_id: str) -> bool:
        raise NotImplementedError

    # -- finishing batches (BatchFinishing) -------------------------------------------------

    def _finish(self, batch: Batch) -> None:
        raise NotImplementedError

    # -- starting executions (ExecutionStarts) ----------------------------------------------

    def _resume_owned(self, claim: ExecutionClaim, given: StartExecution | None,
                      retried: bool = False) -> None:
        raise NotImplementedError

    def _cannot_run(self, claim: ExecutionClaim, error: BaseException) -> None:
        raise NotImplementedError

    def _ask_desk_again(self) -> None:
        raise NotImplementedError

    # -- observing executions (ExecutionObserving) ------------------------------------------

    def _observe(self, record: ExecutionRecord) -> TrackedExecution:
        raise NotImplementedError

    def _finished_from(self, record: ExecutionRecord) -> TrackedExecution:
        raise NotImplementedError

    def _known(self, execution_id: str) -> TrackedExecution:
        raise NotImplementedError

    def _answer_waiters(self, tracked: TrackedExecution) -> None:
        raise NotImplementedError

    def _fail_waiters(self, tracked: TrackedExecution, error: BaseException) -> None:
        raise NotImplementedError

    def _poll_observed(self) -> None:
        raise NotImplementedError

    def _next_poll(self) -> float | None:
        raise NotImplementedError

    # -- faults (FaultWatch) ----------------------------------------------------------------

    def _current_fault(self) -> BaseException | None:
        raise NotImplementedError

    def _with_fault(self, found: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    # -- lease rounds (LeaseRounds) ---------------------------------------------------------

    def _maybe_renew(self) -> None:
        raise NotImplementedError

    def _lose(self, eid: str, record: ExecutionRecord | None) -> None:
        raise NotImplementedError

    def _stop_runs(self, eid: str) -> None:
        raise NotImplementedError

    def _forget_branches(self, eid: str) -> None:
        raise NotImplementedError

    # -- cancel, retry, delete, deadlines (ExecutionManagement) -----------------------------

    def _cancelled(self, tracked: TrackedExecution) -> None:
        raise NotImplementedError

    def _write_cancel(self, eid: str) -> None:
        raise NotImplementedError

    def _check_deadlines(self) -> None:
        raise NotImplementedError

    def _next_deadline(self) -> float | None:
        raise NotImplementedError
