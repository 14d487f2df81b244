"""The lease desk: the checkpoint actor's side of ``actors.records``.

The checkpoint actor is its system's only writer, so it is also where the
system's leases are taken, renewed and checked. ``LeaseDesk`` keeps the leases
this executor holds (execution id -> epoch) and

* answers ownership requests (``CreateExecution``, ``ClaimExecution``,
  ``ReopenExecution``, ``RenewLeases``, ``ReleaseLeases``, ``DropLease``) and
  the writes any system may make for an execution owned elsewhere
  (``CancelInStore``, ``SettleInStore``, ``DeleteInStore``), each as one store
  call of its own, between batches;
* gives every batch commit its ``LeaseFence``: a batch that names an execution
  no longer held is refused by the store in the same transaction, and
  ``split_refused`` separates its messages so that the rest can be written.

A desk starts holding nothing: after a restart of the checkpoint process the
coordinator hands it the leases it holds (``HoldLeases``) before it dispatches
anything again, keeping any it took again meanwhile at a newer epoch (a lease
round that reached it first); a coordinator that starts afresh hands it none,
so that the executions this executor owned in an earlier life are claimed
again, at a new epoch, and resumed.

    desk = LeaseDesk(store, clock, executor="svc-1", lease_seconds=10.0)
    desk.handle(ClaimExecution("nightly-1", reply_to=future))   # ExecutionClaim
"""


from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from actors import tracelog
from actors.clock import Clock
from actors.errors import LeaseLostError
from actors.protocol._checkpoint import (
    CancelInStore,
    Checkpoint,
    ClaimExecution,
    CreateExecution,
    DeleteInStore,
    DropLease,
    HoldLeases,
    ReleaseLeases,
    RenewLeases,
    ReopenExecution,
    SettleInStore,
)
from actors.records._leases import ExecutionClaim, ExecutorInfo, LeaseFence
from actors.replies import ReplyTo, exception_of
from actors.store._contract import Store

log = tracelog.get_logger("actors.leasedesk")


class LeaseDesk:
    """The leases one executor holds, and the store calls that take and keep them."""

    def __init__(self, store: Store, clock: Clock, *, executor: str,
                 lease_seconds: float,
                 is_dead: Callable[[ExecutorInfo], bool] | None = None) -> None:
        self._store = store
        self._clock = clock
        self.executor = executor
        self.lease_seconds = lease_seconds
        # Tells whether another executor's process is known gone (same host, dead pid):
        # its leases are taken at once instead of when they expire.
        self._is_dead = is_dead
        self.held: dict[str, int] = {}
        self._log = tracelog.get_logger("actors.leasedesk").bind(actor="checkpoint")

    def fence(self) -> LeaseFence:
        return LeaseFence(self.executor, self.held)

    def handle(self, message: Any) -> None:
        """Answer one ownership request on its ``reply_to``; a store error answers it too."""
        reply_to: ReplyTo | None = getattr(message, "reply_to", None)
        try:
            value = self._call(message)
        except Exception as exc:
            self._log.warning("lease.request_failed", request=type(message).__name__,
                              error=repr(exc))
            if reply_to is not None:
                _answer_error(reply_to, exc)
            return
        if reply_to is not None:
            try:
                reply_to.set(value)
            except Exception as exc:  # a gone waiter must not stop the desk
                self._log.warning("lease.reply_failed", error=repr(exc))

    def _call(self, message: Any) -> Any:
        store, now, seconds = self._store, self._clock.time(), self.lease_seconds
        if isinstance(message, CreateExecution):
            return self._hold(store.create_execution(message.new, self.executor, seconds, now))
        if isinstance(message, ClaimExecution):
            return self._hold(store.claim_execution(message.execution_id, self.executor,
                                                    seconds, now, self._dead_owners()))
        if isinstance(message, ReopenExecution):
            return self._hold(store.reopen_execution(message.execution_id, self.executor,
                                                     seconds, now, message.deadline_at))
        if isinstance(message, RenewLeases):
            dead = self._dead_owners() if message.claim_orphans else ()
            found = store.renew_leases(self.executor, dict(self.held), seconds, now,
                                       message.claim_orphans, message.skip, dead)
            for eid, _ in found.lost:
                self.held.pop(eid, None)
            for claim in found.claimed:
                self._hold(claim)
            return found
        if isinstance(message, ReleaseLeases):
            wanted = list(self.held) if message.everything else message.execution_ids
            released = {e: self.held.pop(e) for e in wanted if e in self.held}
            store.release_leases(self.executor, released, now)
            return None
        if isinstance(message, DropLease):
            self.held.pop(message.execution_id, None)
            return None
        if isinstance(message, HoldLeases):
            held = dict(message.epochs)
            if message.keep_newer:  # never lower an epoch this desk took itself
                for eid, epoch in self.held.items():
                    if epoch > held.get(eid, -1):
                        held[eid] = epoch
            self.held = held
            return None
        if isinstance(message, CancelInStore):  # (whether this call cancelled it, the row)
            before = store.read_execution(message.execution_id)
            record = store.cancel_execution(message.execution_id, now)
            return (before is not None and not before.status.finished, record)
        if isinstance(message, SettleInStore):
            return store.settle_operation(message.update, now)
        if isinstance(message, DeleteInStore):
            self.held.pop(message.execution_id, None)
            return store.delete_execution(message.execution_id)
        raise TypeError(f"the lease desk does not take {type(message).__name__}")

    def _dead_owners(self) -> tuple[str, ...]:
        if self._is_dead is None:
            return ()
        return tuple(info.executor_id for info, _ in self._store.read_executors()
                     if info.executor_id != self.executor and self._is_dead(info))

    def _hold(self, claim: ExecutionClaim) -> ExecutionClaim:
        if claim.lease is not None:
            self.held[claim.lease.execution_id] = claim.lease.epoch
        return claim

    def refused(self, error: LeaseLostError) -> None:
        """The store refused these executions: they are no longer held."""
        for eid in error.execution_ids:
            if self.held.pop(eid, None) is not None:
                self._log.warning("lease.lost", execution_id=eid)


def split_refused(messages: Iterable[Checkpoint], refused: frozenset[str],
                  ) -> tuple[list[Checkpoint], list[Checkpoint]]:
    """(messages to write again, messages of refused executions) of a refused batch.

    An empty checkpoint (a log read) belongs to no execution's writes and is kept.
    """
    keep: list[Checkpoint] = []
    drop: list[Checkpoint] = []
    for message in messages:
        update = message.update
        if update is not None and update.execution_id in refused:
            drop.append(message)
        else:
            keep.append(message)
    return keep, drop


def _answer_error(reply_to: ReplyTo, exc: BaseException) -> None:
    try:
        reply_to.set_exception((type(exc), exc, None))
    except Exception as err:
        log.warning("lease.reply_failed", error=repr(err), original=repr(exception_of(exc)))
