"""The checkpoint actor: turns a stream of ``Checkpoint`` messages into store transactions.

It is the store's only writer. Branches ``tell`` it ``Checkpoint`` messages; it
answers each waiter on ``msg.reply_to`` once its batch is durable.

Batching
--------
The actor only feeds a ``CheckpointBatcher`` (``_batcher.py``; its whole policy is
one ``BatchingPolicy``): it hands it the checkpoints it is told and those it takes
from its inbox, commits each batch the batcher hands out, waits when it asks
for a wait, and answers the waiters in the order the batcher plans. A message
that is not a told ``Checkpoint`` (a proxy call, ``stop``, an ``ask``) closes the
batch at once and is handled in its turn by pykka's loop. Checkpoints still in
the inbox when the actor stops are written before it goes, so none is left
unanswered.

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
(``actors/checkpointing/_inbox.py``) through pykka's ``_create_actor_inbox`` hook, and the
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
from collections.abc import Callable, Iterable
from typing import Any

import pykka

from actors import spans, tracelog
from actors.checkpointing._batcher import CheckpointBatch, CheckpointBatcher
from actors.checkpointing._fences import RunFences
from actors.checkpointing._inbox import PeekableInbox
from actors.checkpointing._lease_desk import LeaseDesk, split_refused
from actors.checkpointing._policy import BatchingPolicy
from actors.clock import Clock
from actors.errors import CheckpointError, LeaseLostError
from actors.protocol._checkpoint import DESK_MESSAGES, Checkpoint, Checkpoints, WatchFaults
from actors.protocol._coordinator import StoreFault
from actors.records._leases import ExecutorInfo
from actors.records._rows import BranchLog
from actors.replies import ActorLike, ReplyTo
from actors.store._contract import Store

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


class CheckpointActor(pykka.ThreadingActor):
    """Batches ``Checkpoint`` messages into store commits; see the module docstring.

        ref = CheckpointActor.start(store=MemoryStore(), clock=FakeClock(),
                                    batching=BatchingPolicy(max_ops=250, window=0.01))
        ref.tell(Checkpoint("b1", None, reply_to=reply))   # reply.get() -> BranchLog
    """

    _create_actor_inbox = staticmethod(PeekableInbox)  # pykka's hook: batching peeks into it

    def __init__(
        self,
        store: Store,
        clock: Clock,
        batching: BatchingPolicy | None = None,
        executor: str | None = None,
        lease_seconds: float = 10.0,
        is_dead: Callable[[ExecutorInfo], bool] | None = None,
    ) -> None:
        super().__init__()
        self._store = store
        self._clock = clock
        self._policy = BatchingPolicy() if batching is None else batching
        self._batcher = CheckpointBatcher(self._policy, clock)
        self._counters = dict.fromkeys(COUNTERS, 0)
        self._fences = RunFences()
        self._lost: dict[str, BaseException] = {}  # branch id -> store error that lost its update
        self._log = tracelog.get_logger("actors.checkpoint").bind(actor="checkpoint")
        # With an executor id, writes are fenced by the leases it holds (``LeaseDesk``).
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
            self._write(message.items, loaded=len(message.items) > 1)
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
            # Nobody can send to a stopped actor: waiting for more is pointless.
            self._write(pending, loaded=False, linger=False)

    def _admit(self, message: Checkpoint) -> bool:
        """Fencing (``RunFences``): an update from an older run of its branch is refused."""
        refused = self._fences.admit(message)
        if refused is None:
            return True
        self._counters["checkpoint.fenced"] += 1
        self._log.warning("checkpoint.fenced", branch_id=message.branch_id,
                          epoch=message.epoch if message.update is None
                          else getattr(message.update, "epoch", None),
                          current=self._fences.current(message.branch_id))
        if message.reply_to is not None:
            self._reply_error(message.reply_to, message.branch_id, refused)
        return False

    def _write(self, messages: Iterable[Checkpoint], loaded: bool, linger: bool = True) -> None:
        """Commit ``messages`` and the checkpoints that queue behind them, as the batcher says."""
        admitted = [m for m in messages if self._admit(m)]
        if not admitted:
            return
        batcher = self._batcher
        batcher.feed(admitted, loaded=loaded, linger=linger)
        inbox = self.actor_inbox
        while True:
            while batcher.hungry and (taken := self._take()) is not None:
                batcher.take(taken)
            step = batcher.next(other_waiting=not inbox.empty())
            if step is None:
                return
            if isinstance(step, CheckpointBatch):
                self._commit(step)
            elif not (isinstance(inbox, PeekableInbox) and inbox.wait_for_message(step)):
                batcher.quiet()

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

    def _commit(self, batch: CheckpointBatch) -> None:
        read_logs = batch.read_logs
        counters = self._counters
        counters["checkpoint.store_calls"] += 1
        counters["checkpoint.batches"] += 1
        counters["checkpoint.empty_requests"] += len(batch.empties)
        started = time.perf_counter()
        if batch.streamed:
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
            self._commit(CheckpointBatch(self._policy, keep))

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
            for logs in self._store.read_logs(read_logs, self._policy.stream_chunk):
                self._answer([m for b in logs for m in waiting.pop(b)], logs)
        except BaseException as exc:
            rest = (m for msgs in waiting.values() for m in msgs)
            self._fail(CheckpointBatch(self._policy, rest), exc)
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
        warned: set[str] = set()
        waiters: list[Checkpoint] = []
        for msg in messages:
            if msg.reply_to is None:
                continue
            if lost and msg.branch_id in lost:
                warned.add(msg.branch_id)
                error = _lost_update_error(msg.branch_id, lost[msg.branch_id])
                self._reply_error(msg.reply_to, msg.branch_id, error)
            else:
                waiters.append(msg)
        for branch_id in warned:
            del lost[branch_id]
        alone, grouped = self._batcher.answer_order(waiters)
        for msg in alone:
            self._reply(msg.reply_to, msg.branch_id, _value(msg, logs))
        for kind, members in grouped:
            try:  # the handles of one recipient, answered in one message
                kind.set_group([(m.reply_to, _value(m, logs)) for m in members])
            except Exception as exc:
                self._log.warning("checkpoint.reply_failed", handles=len(members),
                                  error=repr(exc))

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

    def _reply(self, reply_to: ReplyTo | None, branch_id: str, value: Any) -> None:
        assert reply_to is not None  # only waiters are answered
        try:
            reply_to.set(value)
        except Exception as exc:  # a gone or already-answered waiter must not stop the others
            self._log.warning("checkpoint.reply_failed", branch=branch_id, error=repr(exc))

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

def _value(message: Checkpoint, logs: dict[str, BranchLog]) -> BranchLog | None:
    """What a written checkpoint's waiter is answered: an empty's log, an update's None."""
    return logs[message.branch_id] if message.update is None else None


def _is_told_checkpoint(envelope: Any) -> bool:
    return envelope.reply_to is None and isinstance(envelope.message, Checkpoint)
