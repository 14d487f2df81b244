"""The checkpoint actor: turns a stream of ``Checkpoint`` messages into store transactions.

It is the store's only writer. Branches ``tell`` it ``Checkpoint`` messages; it
answers each waiter on ``msg.reply_to`` once its batch is durable.

Batching policy
---------------
* **One batch, one transaction.** A batch is committed with one ``store.commit``;
  its waiters are answered only after that call returned.
* **Empties are coalesced before batching.** An empty checkpoint (``update is
  None``, "make everything before me durable and give me my log") costs nothing
  once its batch already has one: all the empties of a batch together count as
  one op and zero bytes, and the one commit answers each with its own branch's
  ``BranchLog`` (``read_logs`` = their distinct branch ids). The logs are read
  after the batch's updates, so an empty is ordered after every update received
  before it.
* **Limits.** Updates join a batch up to ``max_ops`` ops and ``max_bytes``
  bytes (``update.nbytes``). The first message that does not fit starts the next
  batch, and everything behind it waits behind it: first in, first out, never
  reordered. An update bigger than ``max_bytes`` goes alone in a batch of its own.
* **Adaptive window.** An idle actor (a lone checkpoint, nothing else waiting)
  writes at once. Under load (more checkpoints already waiting, or the previous
  batch just flushed) it takes what is waiting into the batch until the batch is
  full or nothing is waiting, then keeps taking messages while they keep coming,
  for at most ``window`` seconds of its clock in all; 1 ms without a new message
  ends the window early (a lone branch may be blocked on this very batch, and
  waiting out the window would add it to every step). Most batching is natural:
  while one commit runs, new checkpoints accumulate in the inbox and form the
  next batch. The deadline is read from the clock; each wait blocks on the inbox
  and wakes the moment a message arrives.
  A message that is not a told ``Checkpoint`` (a proxy call, ``stop``, an
  ``ask``) ends the batch at once and is handled in its turn by pykka's loop.
* **Answers.** After a commit each waiter is answered in batch order, except
  handles that name a recipient (``reply_group``: a worker for a log delivery,
  the coordinator for a branch's final report, the asking process for a waiting
  future): those of one recipient are answered together, in their order, after
  the others: ``Bundle``s of up to 64 messages, or one frame of replies. A wave
  of 1,000 resumes on two workers costs 16 messages out of this actor, not
  1,000; when several recipients wait, they are answered 64 at a time in turns,
  so the second worker does not wait for all of the first one's bundles.
* **Waves are answered as they are read.** A batch of only empties for more
  than ``STREAM_CHUNK`` branches writes nothing, so nothing in it needs to be
  durable before its answers go out: its logs are read from one snapshot
  (``store.read_logs``, still one store call) ``STREAM_CHUNK`` branches at a
  time, and each chunk is answered before the next is read. The workers start on
  the first logs while the rest are read and pickled.
* **Stop.** Checkpoints still in the inbox when the actor stops are written
  before it goes, so none is left unanswered.

Failure policy
--------------
A failed ``store.commit`` fails every waiter of its batch (sync updates and
empties) with ``CheckpointError`` carrying the store's error (``.original`` and
``__cause__``); nothing of that batch is counted or reported as written. The
actor stays up and the next batch tries again: a commit is atomic, so a failed
one left nothing behind, and the store may recover (disk space freed, lock
released). Failed updates are not retried by the actor: a poison update would
otherwise fail every later batch. A failed update nobody waited for (``reply_to
is None``) is logged at error level and counted in ``checkpoint.lost_updates``;
because its branch was never told, the next waiter of that branch is answered
with ``CheckpointError`` too, so no branch is told "durable" while an earlier
update of its own was lost.

Batching looks into the inbox: the actor installs a ``PeekableInbox``
(``actors/inbox.py``) through pykka's ``_create_actor_inbox`` hook, and the
runtime hosts it with a tracing subclass of that inbox, so batching works the
same in one process and across processes.

    store, clock = MemoryStore(), FakeClock()
    ref = CheckpointActor.start(store=store, clock=clock)
    done = pykka.ThreadingFuture()
    ref.tell(Checkpoint("b1", OperationUpdate(...), reply_to=done))
    done.get(timeout=5)                      # None once durable
    ref.proxy().metrics().get()["checkpoint.batches"]   # 1
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import pykka

from actors import spans, tracelog
from actors.clock import Clock
from actors.errors import CheckpointError, LeaseLostError
from actors.faults import StoreFault, WatchFaults
from actors.inbox import PeekableInbox
from actors.leasedesk import DESK_MESSAGES, LeaseDesk, split_refused
from actors.messages import (
    BUNDLE_LIMIT,
    ActorLike,
    BranchLog,
    Checkpoint,
    Checkpoints,
    ReplyTo,
    Update,
    reply_group,
)
from actors.ownership import ExecutorInfo
from actors.store import Store

COUNTERS = (
    "checkpoint.store_calls",
    "checkpoint.batches",
    "checkpoint.updates",
    "checkpoint.empty_requests",
    "checkpoint.empty_batches",
    "checkpoint.failed_batches",
    "checkpoint.lost_updates",
    "checkpoint.fenced",  # updates refused: they came from a run older than the current one
)


class CheckpointBatch:
    """The checkpoints of one store transaction, with their op and byte counts.

        batch = CheckpointBatch(max_ops=2, max_bytes=1024)
        batch.add(Checkpoint("b1", None))        # True: the empties' marker, 1 op
        batch.add(Checkpoint("b2", None))        # True: coalesced, free
    """

    __slots__ = ("empties", "max_bytes", "max_ops", "messages", "nbytes", "opened", "ops",
                 "updates")

    def __init__(self, max_ops: int, max_bytes: int) -> None:
        self.opened = time.perf_counter()  # the batch's span in the trace starts here
        self.max_ops = max_ops
        self.max_bytes = max_bytes
        self.messages: list[Checkpoint] = []
        self.updates: list[Update] = []
        self.empties: list[Checkpoint] = []
        self.ops = 0
        self.nbytes = 0

    @property
    def full(self) -> bool:
        return self.ops >= self.max_ops or self.nbytes >= self.max_bytes

    def add(self, msg: Checkpoint) -> bool:
        """Take ``msg`` if it fits; a first message always fits, however big."""
        update = msg.update
        if update is None and self.empties:
            self.empties.append(msg)  # coalesced into the marker already counted
            self.messages.append(msg)
            return True
        cost = 0 if update is None else update.nbytes
        if self.messages and (self.ops + 1 > self.max_ops or self.nbytes + cost > self.max_bytes):
            return False
        self.ops += 1
        self.nbytes += cost
        self.messages.append(msg)
        if update is None:
            self.empties.append(msg)
        else:
            self.updates.append(update)
        return True


_QUIET_GAP = 0.001  # seconds without a new message that end a batch's window
STREAM_CHUNK = 2 * BUNDLE_LIMIT  # branches per chunk of a wave's logs: a bundle each for 2 workers


class CheckpointActor(pykka.ThreadingActor):
    """Batches ``Checkpoint`` messages into store commits; see the module docstring.

        ref = CheckpointActor.start(store=MemoryStore(), clock=FakeClock(),
                                    max_ops=250, max_bytes=750 * 1024, window=0.01)
        ref.tell(Checkpoint("b1", None, reply_to=reply))   # reply.get() -> BranchLog
    """

    _create_actor_inbox = staticmethod(PeekableInbox)  # pykka's hook: batching peeks into it

    def __init__(
        self,
        store: Store,
        clock: Clock,
        max_ops: int = 250,
        max_bytes: int = 750 * 1024,
        window: float = 0.01,
        quiet_gap: float = _QUIET_GAP,
        executor: str | None = None,
        lease_seconds: float = 10.0,
        is_dead: Callable[[ExecutorInfo], bool] | None = None,
    ) -> None:
        super().__init__()
        if max_ops < 1 or max_bytes < 1 or window < 0 or quiet_gap < 0:
            raise ValueError(
                f"checkpoint limits must be max_ops >= 1, max_bytes >= 1, window >= 0 and "
                f"quiet_gap >= 0; got max_ops={max_ops}, max_bytes={max_bytes}, "
                f"window={window}, quiet_gap={quiet_gap}"
            )
        self._store = store
        self._clock = clock
        self._max_ops = max_ops
        self._max_bytes = max_bytes
        self._window = window
        self._quiet_gap = quiet_gap  # real seconds without a new message that end a window
        self._counters = dict.fromkeys(COUNTERS, 0)
        self._fences: dict[str, int] = {}  # branch id -> the epoch of its current run
        self._lost: dict[str, BaseException] = {}  # branch id -> store error that lost its update
        self._log = tracelog.get_logger("actors.checkpoint").bind(actor="checkpoint")
        # With an executor id, writes are fenced by the leases it holds (actors/leasedesk.py).
        self._desk = None if executor is None else LeaseDesk(
            store, clock, executor=executor, lease_seconds=lease_seconds, is_dead=is_dead)
        self._fault_watcher: ActorLike | None = None  # told when the store fails and recovers
        self._store_fault: BaseException | None = None

    def metrics(self) -> dict[str, int]:
        """Monotonic counters: ``ref.proxy().metrics().get()["checkpoint.batches"]``."""
        return dict(self._counters)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Checkpoint):
            self._write([message], loaded=not self.actor_inbox.empty())
            return None
        if isinstance(message, Checkpoints):
            self._write(list(message.items), loaded=len(message.items) > 1)
            return None
        if isinstance(message, DESK_MESSAGES):
            if self._desk is None:
                raise TypeError("this checkpoint actor has no executor id: it holds no leases")
            self._desk.handle(message)
            return None
        if isinstance(message, WatchFaults):
            self._fault_watcher = message.watcher
            if self._store_fault is not None:
                message.watcher.tell(StoreFault(self._store_fault))
            return None
        return super().on_receive(message)

    def on_stop(self) -> None:
        # Checkpoints told before the stop was handled are still written, not left unanswered.
        pending = self._take_all()
        if pending:
            self._window = 0.0  # nobody can send to a stopped actor: waiting for more is pointless
            self._write(pending, loaded=False)

    def _admit(self, message: Checkpoint) -> bool:
        """Fencing: an update from an older run of its branch than the one dispatched is refused.

        A dispatch's empty checkpoint carries the branch's new epoch; a copy of the
        branch that still runs under an older epoch learns it at its next checkpoint
        (``CheckpointError``), and nothing it sends is written. An update of a run this
        actor never saw dispatched is refused too: every dispatch goes through the
        checkpoint actor, so that run was dispatched before it (re)started, and the
        coordinator, told of the restart (``CheckpointLost``), dispatches it again.
        Fences need not outlive the process.
        """
        update = message.update
        epoch = message.epoch if update is None else getattr(update, "epoch", None)
        if epoch is None:
            return True
        branch_id = message.branch_id
        fence = self._fences.get(branch_id)
        if fence is None and update is None:
            fence = epoch  # a dispatch this actor has not seen a run of: it is the current run
        if fence is not None and epoch >= fence:
            self._fences[branch_id] = epoch
            return True
        self._counters["checkpoint.fenced"] += 1
        self._log.warning("checkpoint.fenced", branch_id=branch_id, epoch=epoch, current=fence)
        if message.reply_to is not None:
            if fence is None:
                error = CheckpointError(
                    f"branch {branch_id!r}: run {epoch} was dispatched before the checkpoint "
                    "actor restarted; its updates are refused and the coordinator dispatches "
                    "the branch again"
                )
            else:
                error = CheckpointError(
                    f"branch {branch_id!r}: run {epoch} was superseded by run {fence}; "
                    "its updates are refused and the newer run goes on"
                )
            self._reply_error(message.reply_to, branch_id, error)
        return False

    def _write(self, messages: Iterable[Checkpoint], loaded: bool) -> None:
        """Commit ``messages`` and whatever checkpoints queue behind them, batch by batch."""
        carry = deque(m for m in messages if self._admit(m))
        while carry:
            batch = CheckpointBatch(self._max_ops, self._max_bytes)
            while carry and batch.add(carry[0]):
                carry.popleft()
            if not carry:
                self._fill(batch, carry, loaded)
            self._commit(batch)
            loaded = True  # what arrived during that commit is load: natural batching
            if not carry:
                following = self._take()
                if following is not None:
                    carry.append(following)

    def _fill(self, batch: CheckpointBatch, carry: deque[Checkpoint], loaded: bool) -> None:
        """Move waiting checkpoints into ``batch``; under load wait up to the window for more."""
        deadline: float | None = None
        while True:
            msg = self._take()
            if msg is not None:
                loaded = True
                if not batch.add(msg):
                    carry.append(msg)
                    return
                continue
            # Idle, full, or a message that is not ours to batch waits: commit now.
            if not loaded or batch.full or not self.actor_inbox.empty():
                return
            now = self._clock.monotonic()
            if deadline is None:
                deadline = now + self._window
            # Fill while messages keep coming; a quiet inbox ends the window early: a lone
            # sender may be blocked on this very batch, and nobody else is sending.
            quiet = min(deadline - now, self._quiet_gap)
            if deadline <= now or not self._wait_for_message(quiet):
                return

    def _take(self) -> Checkpoint | None:
        """The next inbox message if it is a told ``Checkpoint``, removed from the inbox."""
        inbox = self.actor_inbox
        if not isinstance(inbox, PeekableInbox):
            return None
        while True:
            envelope = inbox.take_head_if(_is_told_checkpoint)
            if envelope is None:
                return None  # an ask() or a non-checkpoint goes through pykka's loop, in its turn
            message: Checkpoint = envelope.message
            if self._admit(message):
                return message

    def _take_all(self) -> list[Checkpoint]:
        """Every told ``Checkpoint`` left in the inbox; other messages stay, in order."""
        inbox = self.actor_inbox
        if not isinstance(inbox, PeekableInbox):
            return []
        return [e.message for e in inbox.take_all_if(_is_told_checkpoint)]

    def _wait_for_message(self, timeout: float) -> bool:
        """Block until the inbox holds a message or ``timeout`` real seconds pass."""
        inbox = self.actor_inbox
        if not isinstance(inbox, PeekableInbox):
            return False
        return inbox.wait_for_message(timeout)

    def _commit(self, batch: CheckpointBatch) -> None:
        read_logs = list(dict.fromkeys(m.branch_id for m in batch.empties))
        counters = self._counters
        counters["checkpoint.store_calls"] += 1
        counters["checkpoint.batches"] += 1
        counters["checkpoint.empty_requests"] += len(batch.empties)
        started = time.perf_counter()
        if not batch.updates and len(read_logs) > STREAM_CHUNK:
            self._answer_as_read(batch, read_logs, started)
            return
        desk = self._desk
        try:
            if desk is None:
                logs = self._store.commit(batch.updates, read_logs, self._clock.time())
            else:
                logs = self._store.commit(batch.updates, read_logs, self._clock.time(),
                                          fence=desk.fence())
        except LeaseLostError as exc:
            self._refused(batch, exc)
            return
        except BaseException as exc:
            self._fail(batch, exc)
            self._trace_batch(batch, exc)
            if not isinstance(exc, Exception):
                raise
            return
        if batch.updates:  # a read alone says nothing about a store that cannot write
            self._store_ok()
        counters["checkpoint.updates"] += len(batch.updates)
        if batch.empties:
            counters["checkpoint.empty_batches"] += 1
        self._log_batch(batch, started)
        self._trace_batch(batch)
        self._answer(batch.messages, logs)

    def _refused(self, batch: CheckpointBatch, error: LeaseLostError) -> None:
        """Answer the refused executions' waiters with ``error``; write the rest again."""
        assert self._desk is not None
        self._desk.refused(error)
        self._counters["checkpoint.fenced"] += 1
        keep, drop = split_refused(batch.messages, frozenset(error.execution_ids))
        for msg in drop:
            if msg.reply_to is not None:
                self._reply_error(msg.reply_to, msg.branch_id, error)
        if keep:
            rest = CheckpointBatch(self._max_ops, self._max_bytes)
            for msg in keep:
                rest.add(msg)
            self._commit(rest)

    def _store_ok(self) -> None:
        if self._store_fault is not None:
            self._store_fault = None
            self._log.info("store.recovered")
            if self._fault_watcher is not None:
                self._fault_watcher.tell(StoreFault(None))

    def _store_failed(self, exc: BaseException) -> None:
        first = self._store_fault is None or type(self._store_fault) is not type(exc)
        self._store_fault = exc
        if first and self._fault_watcher is not None:
            self._fault_watcher.tell(StoreFault(exc))

    def _answer_as_read(self, batch: CheckpointBatch, read_logs: list[str],
                        started: float) -> None:
        """A batch of only empties: answer each chunk of logs as soon as it is read.

        Nothing of the batch is written, so no answer waits on durability. Should the
        store fail part-way, the waiters already answered keep their logs and the
        others are failed, as a failed batch's are.
        """
        waiting: dict[str, list[Checkpoint]] = {}
        for msg in batch.messages:
            waiting.setdefault(msg.branch_id, []).append(msg)
        try:
            for logs in self._store.read_logs(read_logs, STREAM_CHUNK):
                self._answer([m for b in logs for m in waiting.pop(b)], logs)
        except BaseException as exc:
            rest = CheckpointBatch(self._max_ops, self._max_bytes)
            for msg in (m for msgs in waiting.values() for m in msgs):
                rest.add(msg)
            self._fail(rest, exc)
            if not isinstance(exc, Exception):
                raise
            return
        self._counters["checkpoint.empty_batches"] += 1
        self._log_batch(batch, started)
        self._trace_batch(batch)

    def _log_batch(self, batch: CheckpointBatch, started: float) -> None:
        self._log.debug(
            "checkpoint.batch", ops=batch.ops, bytes=batch.nbytes, updates=len(batch.updates),
            empties=len(batch.empties), duration_ms=round((time.perf_counter() - started) * 1e3, 3),
            batch_ms=round((time.perf_counter() - batch.opened) * 1e3, 3),
            # A batch serves many branches: not the one whose message's context is bound now.
            execution_id=None, branch_id=None, op_id=None,
        )

    def _trace_batch(self, batch: CheckpointBatch, error: BaseException | None = None) -> None:
        """A span for the batch under each span whose checkpoints it wrote (or failed)."""
        traced = [m.trace for m in batch.messages if m.trace is not None]
        if not traced:
            return
        end_ns = time.time_ns()
        start_ns = end_ns - int((time.perf_counter() - batch.opened) * 1e9)
        by_context = {m.trace: m for m in batch.messages if m.trace is not None}

        def part(context: spans.TraceContext, count: int) -> spans.Attributes:
            message = by_context[context]
            update = message.update
            eid = getattr(update, "execution_id", None) or message.branch_id.split("/", 1)[0]
            return {"durable.execution.id": eid, "durable.checkpoint.served": count}

        spans.record_shared("checkpoint batch", traced, start_ns, end_ns, {
            "durable.checkpoint.batch": self._counters["checkpoint.batches"],
            "durable.checkpoint.ops": batch.ops,
            "durable.checkpoint.updates": len(batch.updates),
            "durable.checkpoint.empties": len(batch.empties),
            "durable.checkpoint.bytes": batch.nbytes,
        }, error, part)

    def _answer(self, messages: Iterable[Checkpoint], logs: dict[str, BranchLog]) -> None:
        """Answer the waiters of written ``messages``: an empty with its branch's log."""
        lost = self._lost
        told: set[str] = set()
        groups: dict[tuple[type, Any], list[tuple[Any, Any]]] = {}
        for msg in messages:
            reply_to, branch_id = msg.reply_to, msg.branch_id
            if reply_to is None:
                continue
            if lost and branch_id in lost:
                told.add(branch_id)
                error = _lost_update_error(branch_id, lost[branch_id])
                self._reply_error(reply_to, branch_id, error)
                continue
            value = logs[branch_id] if msg.update is None else None
            group = reply_group(reply_to)
            if group is None:
                self._reply(reply_to, branch_id, value)
            else:
                groups.setdefault(group, []).append((reply_to, value))
        for branch_id in told:
            del lost[branch_id]
        self._reply_groups(groups)

    def _fail(self, batch: CheckpointBatch, exc: BaseException) -> None:
        """Fail every waiter of ``batch``; remember branches whose unwatched update was lost."""
        self._counters["checkpoint.failed_batches"] += 1
        self._store_failed(exc)
        last_by_branch = {m.branch_id: m for m in batch.messages}
        unwatched = [m for m in batch.messages if m.reply_to is None and m.update is not None]
        self._counters["checkpoint.lost_updates"] += len(unwatched)
        for branch_id, last in last_by_branch.items():
            # A branch whose last message here had no waiter was not told of the loss.
            if last.reply_to is None and last.update is not None:
                self._lost[branch_id] = exc
        self._log.error(
            "checkpoint.batch_failed", error=repr(exc), updates=len(batch.updates),
            empties=len(batch.empties), lost_updates=len(unwatched),
            lost_branches=sorted({m.branch_id for m in unwatched})[:20],
        )
        for msg in batch.messages:
            if msg.reply_to is not None:
                self._reply_error(msg.reply_to, msg.branch_id, CheckpointError(
                    f"checkpoint of branch {msg.branch_id!r} was not written: the store failed "
                    f"with {type(exc).__name__}: {exc}; nothing of its batch of "
                    f"{len(batch.updates)} updates was written, retry it once the store is back",
                    original=exc,
                ))

    def _reply(self, reply_to: ReplyTo, branch_id: str, value: Any) -> None:
        try:
            reply_to.set(value)
        except Exception as exc:  # a gone or already-answered waiter must not stop the others
            self._log.warning("checkpoint.reply_failed", branch=branch_id, error=repr(exc))

    def _reply_groups(self, groups: dict[tuple[type, Any], list[tuple[Any, Any]]]) -> None:
        """Answer each recipient's group, ``BUNDLE_LIMIT`` at a time, recipients in turn.

        One group goes out whole. Several take turns: a wave's 1,000 log deliveries
        for two workers are sixteen bundles of 64, pickled one after the other here;
        in turns, the second worker starts on its first bundle while the first works
        on its own, instead of once the first worker's last bundle has left.
        """
        if len(groups) <= 1:
            for (kind, _), answers in groups.items():
                self._reply_group(kind, answers)
            return
        for start in range(0, max(len(a) for a in groups.values()), BUNDLE_LIMIT):
            for (kind, _), answers in groups.items():
                if start < len(answers):
                    self._reply_group(kind, answers[start:start + BUNDLE_LIMIT])

    def _reply_group(self, kind: Any, answers: list[tuple[Any, Any]]) -> None:
        """Answer handles of one recipient together: one message instead of one each."""
        try:
            kind.set_group(answers)
        except Exception as exc:
            self._log.warning("checkpoint.reply_failed", handles=len(answers), error=repr(exc))

    def _reply_error(self, reply_to: ReplyTo, branch_id: str, error: CheckpointError) -> None:
        try:
            reply_to.set_exception((CheckpointError, error, None))
        except Exception as exc:
            self._log.warning("checkpoint.reply_failed", branch=branch_id, error=repr(exc))


def _lost_update_error(branch_id: str, original: BaseException) -> CheckpointError:
    return CheckpointError(
        f"an earlier checkpoint of branch {branch_id!r} that nobody waited for was lost when "
        f"the store failed ({type(original).__name__}: {original}); the branch's log misses it, "
        "so replay the branch from its log (send an empty checkpoint) before going on",
        original=original,
    )


__all__ = ["COUNTERS", "STREAM_CHUNK", "CheckpointActor", "CheckpointBatch"]


def _is_told_checkpoint(envelope: Any) -> bool:
    return envelope.reply_to is None and isinstance(envelope.message, Checkpoint)
