"""The scheduler: durable timers, deferred suspension checkpoints, and resume-once.

Most suspensions are short (a child that finishes in milliseconds, a retry that
succeeds at once). Writing and evicting a branch for each is wasted work, so a
suspending branch parks on its worker thread and sends ``Suspend`` here; the
suspension's checkpoint is *deferred*:

* resumed before the delay ends -> the deferred checkpoint is **cancelled**:
  nothing is written and the branch goes on in place, without a replay;
* the delay ends first -> the scheduler **applies** it: the suspension is written
  through the checkpoint actor and, once that is acknowledged (a continuation),
  the branch is told to evict itself; its resume later is a replay, asked of the
  coordinator;
* a resume while the apply is in flight resumes the still-parked branch in place:
  it is live in exactly one place;
* **resume once**: the first resume of a suspension takes effect, later ones are
  dropped and counted (``scheduler.duplicate_resumes``); a dependency that is
  done before its branch suspends resumes it at once, with nothing written;
* parked branches are bounded per worker (``max_parked``): past the bound a
  suspension is applied at once rather than holding another thread; an async
  branch parks as a suspended coroutine, holding memory but no thread, and is
  bounded apart (``max_parked_coroutines``, in the thousands);
* resume-once facts (resumed, done early) are kept ``remember_for`` seconds
  (an hour), so a long-running service's scheduler does not grow with every
  branch it ever ran.

Time comes from a ``Clock``; ``Tick`` makes the actor look at it. In a system a
ticker thread sends ``Tick`` at the latest deadline within ``slack`` (5 ms) of
the soonest one (``Deadlines.wake_time``): timers due within the slack resume as
one wave (one message to the coordinator, whose empty checkpoints coalesce into
one store call), none fires early, and a timer due alone fires on time; tests
with a ``FakeClock`` advance the clock and send ``Tick``.
"""

from __future__ import annotations

from typing import Any

import pykka

from actors import tracelog
from actors.bundles import Bundle
from actors.clock import Clock, Tick, Ticker
from actors.protocol._checkpoint import Checkpoint, checkpoints
from actors.protocol._coordinator import CheckpointLost, Durable, ResumeBranches
from actors.protocol._handles import Forward
from actors.protocol._scheduler import (
    DependencyDone,
    ForgetExecution,
    ScheduleResume,
    Suspend,
    SuspensionKey,
)
from actors.records._status import BranchStatus, OpKind
from actors.records._updates import BranchUpdate
from actors.replies import ActorLike
from actors.scheduling._deadlines import DeadlineKind, Deadlines
from actors.scheduling._resume_once import ResumeOnce
from actors.scheduling._suspensions import (
    ParkSite,
    Suspension,
    SuspensionState,
    span_ended,
    suspension_span,
)
from actors.scheduling._verdicts import EVICT, UNWIND, Resume

log = tracelog.get_logger("actors.scheduler")

COUNTERS = ("scheduler.deferred", "scheduler.cancelled", "scheduler.applied",
            "scheduler.duplicate_resumes")


class SchedulerActor(pykka.ThreadingActor):
    """See the module docstring.

        scheduler = SchedulerActor.start(checkpoint=ckpt, coordinator=coord, clock=FakeClock(),
                                         autotick=False)
    """

    def __init__(
        self,
        *,
        checkpoint: ActorLike,
        coordinator: ActorLike,
        clock: Clock,
        self_ref: ActorLike | None = None,
        max_parked: int = 8,
        max_parked_coroutines: int = 4096,
        autotick: bool = True,
        slack: float = 0.005,
        remember_for: float = 3600.0,
    ) -> None:
        super().__init__()
        if slack < 0:
            raise ValueError(f"slack must be >= 0 seconds, got {slack}")
        self._checkpoint = checkpoint
        self._coordinator = coordinator
        self._clock = clock
        self._self_ref = self_ref
        self._max_parked = max_parked
        self._max_parked_coroutines = max_parked_coroutines
        self._autotick = autotick
        self._ticker: Ticker | None = None
        self._counters = dict.fromkeys(COUNTERS, 0)
        self._active: dict[str, Suspension] = {}  # branch id -> its current suspension
        # (worker id, parked as a coroutine) -> branches parked there
        self._parked: dict[ParkSite, int] = {}
        self._deadlines = Deadlines(slack)  # checkpoints to apply, timers due
        # (branch, op) facts of resume-once, each forgotten ``remember_for`` seconds later:
        self._once = ResumeOnce(remember_for)
        # The writes of the message being handled, sent as one message when it is done: a
        # wave of suspensions applied at once is one message to the checkpoint actor, not
        # two per suspension (which filled its mailbox while it filled ours).
        self._writes: list[Checkpoint] = []

    def on_start(self) -> None:
        if self._self_ref is None:
            self._self_ref = self.actor_ref
        if self._autotick:
            self._ticker = Ticker(self._clock, self._tell_tick, "scheduler-ticker")

    def _tell_tick(self) -> None:
        self.actor_ref.tell(Tick())

    def on_stop(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()
        for suspension in self._active.values():  # what the trace shows of them ends here
            span_ended(suspension, "stopped")

    def metrics(self) -> dict[str, int]:
        """The ``scheduler.*`` counters (see ``ActorSystem.metrics``)."""
        return dict(self._counters)

    def parked(self) -> int:
        """How many branches are parked right now, on threads or as coroutines."""
        return sum(self._parked.values())

    def on_receive(self, message: Any) -> Any:
        try:
            return self._handle(message)
        finally:
            self._send_writes()

    def _handle(self, message: Any) -> Any:
        if isinstance(message, Suspend):
            self._suspend(message)
        elif isinstance(message, Bundle):  # a worker loop's suspensions of one turn
            for item in message.items:
                self._handle(item)
            return None
        elif isinstance(message, Tick):
            self._tick()
        elif isinstance(message, DependencyDone):
            self._dependency_done(message)
        elif isinstance(message, Durable):
            self._applied(message)
        elif isinstance(message, ScheduleResume):
            self._schedule_resume(message)
        elif isinstance(message, CheckpointLost):
            self._checkpoint_lost()
        elif isinstance(message, ForgetExecution):
            self._forget_execution(message)
        else:
            return super().on_receive(message)
        now = self._clock.time()
        self._once.forget_older_than(now)
        self._rearm()
        return None

    def remembered(self) -> int:
        """How many (branch, op) resume-once facts are kept right now (bounded by age)."""
        return len(self._once)

    # -- suspending ---------------------------------------------------------------

    def _suspend(self, message: Suspend) -> None:
        key, op = message.key, message.op
        dependency = (key.branch_id, op.op_id)
        if self._once.is_done_early(dependency):
            # Done before the branch parked: resume at once; no checkpoint for it, ever.
            payload = self._once.take_done_early(dependency, self._clock.time())
            message.reply_to.set(Resume(payload))
            log.debug("suspension.resumed_early", branch_id=key.branch_id, op_id=op.op_id)
            return
        now = self._clock.time()
        if op.due_at is not None and op.due_at <= now:
            message.reply_to.set(Resume())
            return
        old = self._active.get(key.branch_id)
        if old is not None and old.key >= key:
            log.warning("suspension.stale", branch_id=key.branch_id, key=repr(key))
            message.reply_to.set(UNWIND)
            return
        if old is not None:
            self._release_parked(old)  # a newer run superseded it: unwind the old thread
            span_ended(old, "superseded")
        suspension = Suspension(key, op.op_id, SuspensionState.DEFERRED, message,
                                 ParkSite(message.worker_id, message.coroutine),
                                 suspension_span(message))
        self._active[key.branch_id] = suspension
        self._once.waited_on(dependency)
        self._counters["scheduler.deferred"] += 1
        parked = self._parked.get(suspension.parked_on, 0) + 1
        self._parked[suspension.parked_on] = parked
        log.debug("suspension.deferred", branch_id=key.branch_id, op_id=op.op_id,
                  delay=message.delay, due_at=op.due_at, worker=message.worker_id,
                  parked=parked, coroutine=message.coroutine)
        bound = self._max_parked_coroutines if message.coroutine else self._max_parked
        if message.delay <= 0 or parked > bound:
            self._apply(suspension)
        else:
            self._deadlines.push(now + message.delay, DeadlineKind.APPLY, key)
        if op.due_at is not None:
            self._deadlines.push(op.due_at, DeadlineKind.DUE, key)

    def _send_writes(self) -> None:
        writes, self._writes = self._writes, []
        if not writes:
            return
        try:
            self._checkpoint.tell(checkpoints(writes))
        except (pykka.ActorDeadError, pykka.Timeout) as exc:
            # Not written: each suspension's continuation hears it and is applied again later.
            log.warning("checkpoint.unsent", writes=len(writes), error=repr(exc))
            for write in writes:
                if write.reply_to is not None:
                    write.reply_to.set_exception((type(exc), exc, None))

    def _schedule_resume(self, message: ScheduleResume) -> None:
        key = SuspensionKey(message.branch_id, message.epoch, -1)
        suspension = Suspension(key, message.op_id, SuspensionState.EVICTED)
        dependency = (message.branch_id, message.op_id)
        if self._once.is_done_early(dependency):  # done while nobody here knew it waited
            self._once.take_done_early(dependency, self._clock.time())
            self._to_coordinator(ResumeBranches(((message.branch_id, message.epoch),)))
            return
        self._active[message.branch_id] = suspension
        if message.due_at is not None:
            self._deadlines.push(message.due_at, DeadlineKind.DUE, key)

    def _to_coordinator(self, message: Any) -> None:
        """A coordinator that is gone (a shutdown, or restarting after a failure) misses this
        resume; a restarted one reloads every timer from the store, so nothing is lost."""
        try:
            self._coordinator.tell(message)
        except (pykka.ActorDeadError, pykka.Timeout) as exc:
            log.info("coordinator.unreachable", message=type(message).__name__, error=repr(exc))

    def _forget_execution(self, message: ForgetExecution) -> None:
        """A cancelled or lost execution: drop its timers; parked copies unwind (they are
        fenced on their workers and their reports are stale)."""
        prefix = f"{message.execution_id}/"
        for branch_id, suspension in list(self._active.items()):
            if branch_id.startswith(prefix):
                del self._active[branch_id]
                self._release_parked(suspension)
                span_ended(suspension, "forgotten")

    # -- time ----------------------------------------------------------------------

    def _tick(self) -> None:
        now = self._clock.time()
        wave: list[tuple[str, int]] = []
        for kind, key in self._deadlines.pop_due(now):
            suspension = self._active.get(key.branch_id)
            if suspension is None or suspension.key != key:
                continue  # resumed already, or superseded by a newer suspension
            if kind is DeadlineKind.APPLY:
                if suspension.state is SuspensionState.DEFERRED:
                    self._apply(suspension)
            else:
                self._resume(suspension, None, wave)
        if wave:
            self._to_coordinator(ResumeBranches(tuple(wave)))  # one message per wave

    def _rearm(self) -> None:
        if self._ticker is not None:
            self._ticker.wake_at(self._deadlines.wake_time())

    # -- applying ------------------------------------------------------------------

    def _apply(self, suspension: Suspension) -> None:
        assert suspension.suspend is not None and self._self_ref is not None
        op = suspension.suspend.op
        suspension.state = SuspensionState.APPLYING
        self._counters["scheduler.applied"] += 1
        status = BranchUpdate(op.execution_id, op.branch_id, BranchStatus.SUSPENDED,
                              epoch=suspension.key.epoch)  # fenced like the run's own writes
        span = suspension.span
        trace = None
        if span is not None:
            span.attributes["durable.suspension.applied"] = True
            trace = span.context
        if op.kind is not OpKind.CHILDREN:  # start_children already made that one durable
            self._writes.append(Checkpoint(op.branch_id, op, trace=trace))
        self._writes.append(Checkpoint(op.branch_id, status,
                                       reply_to=Forward(self._self_ref, suspension.key),
                                       trace=trace))
        log.debug("suspension.applying", branch_id=op.branch_id, op_id=op.op_id)

    def _applied(self, message: Durable) -> None:
        (key,) = message.what
        suspension = self._active.get(key.branch_id)
        if suspension is None or suspension.key != key:
            # Resumed in place while the write was in flight: the branch went on; nothing to do.
            return
        assert suspension.suspend is not None
        if message.error is not None:
            log.error("suspension.apply_failed", branch_id=key.branch_id,
                      error=repr(message.error))
            suspension.state = SuspensionState.DEFERRED  # still parked: tried again later
            again = self._clock.time() + max(suspension.suspend.delay, 0.5)
            self._deadlines.push(again, DeadlineKind.APPLY, key)
            return
        suspension.state = SuspensionState.EVICTED
        self._unpark(suspension)
        suspension.suspend.reply_to.set(EVICT)
        log.debug("suspension.applied", branch_id=key.branch_id, op_id=suspension.op_id)

    # -- resuming ------------------------------------------------------------------

    def _dependency_done(self, message: DependencyDone) -> None:
        dependency = (message.branch_id, message.op_id)
        suspension = self._active.get(message.branch_id)
        if suspension is not None and suspension.op_id == message.op_id:
            if not message.durable and suspension.state is SuspensionState.EVICTED:
                return  # its replay reads the log: wait for the durable word
            wave: list[tuple[str, int]] = []
            self._resume(suspension, message.payload, wave)
            if not message.durable:
                self._once.expect_confirmation(dependency, self._clock.time())
            if wave:
                self._to_coordinator(ResumeBranches(tuple(wave)))
        elif self._once.done_unwaited(dependency, self._clock.time(), message.payload,
                                      message.durable):
            self._counters["scheduler.duplicate_resumes"] += 1
            log.info("resume.duplicate", branch_id=message.branch_id, op_id=message.op_id)

    def _resume(self, suspension: Suspension, payload: bytes | None,
                wave: list[tuple[str, int]]) -> None:
        key = suspension.key
        del self._active[key.branch_id]
        self._once.resumed((key.branch_id, suspension.op_id), self._clock.time())
        if suspension.parked:
            assert suspension.suspend is not None
            if suspension.state is SuspensionState.DEFERRED:
                self._counters["scheduler.cancelled"] += 1
            self._unpark(suspension)
            suspension.state = SuspensionState.RESUMED
            span_ended(suspension, "resumed_in_place")
            suspension.suspend.reply_to.set(Resume(payload))
            log.debug("suspension.resumed_in_place", branch_id=key.branch_id,
                      op_id=suspension.op_id)
        else:  # evicted: the branch is replayed from its log
            suspension.state = SuspensionState.RESUMED
            span_ended(suspension, "replayed")
            wave.append((key.branch_id, key.epoch))

    def _checkpoint_lost(self) -> None:
        """The coordinator dispatches every running branch again: let parked copies unwind."""
        for branch_id, suspension in list(self._active.items()):
            if suspension.parked:
                del self._active[branch_id]
                self._release_parked(suspension)

    def _release_parked(self, suspension: Suspension) -> None:
        """Unwind a parked run whose suspension is not durable: it reports itself aborted.

        Not "evict": a run evicted reports SUSPENDED, and the coordinator, if it has not
        dispatched the branch anew yet (its CheckpointLost may come after this one's),
        would wait for a timer that neither this scheduler nor the store holds.
        """
        if suspension.parked and suspension.suspend is not None:
            self._unpark(suspension)
            suspension.state = SuspensionState.RESUMED
            span_ended(suspension, "released")
            suspension.suspend.reply_to.set(UNWIND)

    def _unpark(self, suspension: Suspension) -> None:
        where = suspension.parked_on
        self._parked[where] = max(0, self._parked.get(where, 0) - 1)

