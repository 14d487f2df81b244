"""``CheckpointBatcher``: which checkpoints go into which store transaction, and when.

A pure object: it is fed the checkpoints its actor takes from the inbox and
says what to do next (commit this batch, wait so long for more, or nothing
left); it never blocks, never touches a store and reads only the clock it is
given, so a test drives it with a fake clock and no actor. The checkpoint
actor feeds it, commits what it hands out and answers the waiters in the order
it plans. Every number it uses is in its ``BatchingPolicy``.

Batching policy
---------------
* **One batch, one transaction.** A batch is committed with one ``store.commit``;
  its waiters are answered only after that call returned.
* **Empties are coalesced.** An empty checkpoint (``update is None``, "make
  everything before me durable and give me my log") costs nothing once its batch
  already has one: all the empties of a batch together count as one op and zero
  bytes, and the one commit answers each with its own branch's ``BranchLog``. The
  logs are read after the batch's updates, so an empty is ordered after every
  update received before it.
* **Limits.** Updates join a batch up to ``max_ops`` ops and ``max_bytes`` bytes
  (``update.nbytes``). The first message that does not fit starts the next batch,
  and everything behind it waits behind it: first in, first out, never reordered.
  An update bigger than ``max_bytes`` goes alone in a batch of its own.
* **Adaptive window.** An idle actor (a lone checkpoint, nothing else waiting)
  writes at once. Under load (more checkpoints already waiting, or the previous
  batch just committed) the batch takes what is waiting until it is full or
  nothing is waiting, then stays open while messages keep coming, for at most
  ``window`` seconds of the clock in all; ``quiet_gap`` real seconds without a new
  message close it early (a lone branch may be blocked on this very batch).
  Most batching is natural: while one commit runs, new checkpoints accumulate in
  the inbox and form the next batch. A message that is not a told ``Checkpoint``
  (a proxy call, ``stop``, an ``ask``) closes the batch at once.
* **Waves are answered as they are read.** A batch of only empties for more
  than ``stream_chunk`` branches writes nothing, so nothing in it needs to be
  durable before its answers go out: its logs are read from one snapshot
  ``stream_chunk`` branches at a time, each chunk answered before the next is read.
* **Answers.** Waiters are answered in batch order, except handles that name a
  recipient (``reply_group``: a worker for a log delivery, the coordinator for a
  branch's final report): with ``group_answers`` those of one recipient go
  together, in their order, after the others, ``bundle_limit`` to a message; when
  several recipients wait they take turns, a bundle each, so the second worker
  does not wait for all of the first one's bundles.

    batcher = CheckpointBatcher(BatchingPolicy(max_ops=2), FakeClock())
    batcher.feed([Checkpoint("b1", u1), Checkpoint("b1", u2), Checkpoint("b1", u3)],
                 loaded=True)
    batcher.next(other_waiting=False)    # a CheckpointBatch of u1, u2
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from actors.checkpointing._policy import BatchingPolicy
from actors.clock import Clock
from actors.protocol._checkpoint import Checkpoint
from actors.records._updates import Update
from actors.replies import reply_group


class CheckpointBatch:
    """The checkpoints of one store transaction, with their op and byte counts.

        batch = CheckpointBatch(BatchingPolicy(max_ops=2))
        batch.add(Checkpoint("b1", None))        # True: the empties' marker, 1 op
        batch.add(Checkpoint("b2", None))        # True: coalesced, free
    """

    __slots__ = ("empties", "messages", "nbytes", "opened", "ops", "policy", "updates")

    def __init__(self, policy: BatchingPolicy, messages: Iterable[Checkpoint] = ()) -> None:
        self.opened = time.perf_counter()  # the batch's span in the trace starts here
        self.policy = policy
        self.messages: list[Checkpoint] = []
        self.updates: list[Update] = []
        self.empties: list[Checkpoint] = []
        self.ops = 0
        self.nbytes = 0
        for message in messages:  # a part of a batch that was formed: taken whole
            self._put(message)

    @property
    def full(self) -> bool:
        return self.ops >= self.policy.max_ops or self.nbytes >= self.policy.max_bytes

    @property
    def read_logs(self) -> list[str]:
        """The branches whose logs the commit reads: those of the empties, each once."""
        return list(dict.fromkeys(m.branch_id for m in self.empties))

    @property
    def streamed(self) -> bool:
        """Only empties, for more branches than a chunk: read and answered chunk by chunk."""
        return not self.updates and len(self.read_logs) > self.policy.stream_chunk

    def add(self, msg: Checkpoint) -> bool:
        """Take ``msg`` if it fits; a first message always fits, however big."""
        update = msg.update
        if update is not None or not self.empties:  # else coalesced: free
            cost = 0 if update is None else update.nbytes
            limits = self.policy
            if self.messages and (self.ops + 1 > limits.max_ops
                                  or self.nbytes + cost > limits.max_bytes):
                return False
        self._put(msg)
        return True

    def _put(self, msg: Checkpoint) -> None:
        update = msg.update
        self.messages.append(msg)
        if update is None:
            if not self.empties:
                self.ops += 1  # the marker all the batch's empties share
            self.empties.append(msg)
        else:
            self.ops += 1
            self.nbytes += update.nbytes
            self.updates.append(update)


class CheckpointBatcher:
    """Forms batches from the checkpoints it is fed; see the module docstring.

    The actor's loop: ``feed`` what it was handed; then, while ``hungry``, ``take``
    the next told checkpoint from the inbox; ask ``next``: a ``CheckpointBatch``
    to commit, a number of seconds to wait for a message (``quiet()`` when none
    came), or ``None`` when nothing is left.

        batcher.feed([message], loaded=False)
        batcher.next(other_waiting=False)    # the batch of that one message: commit it
        batcher.next(other_waiting=False)    # None: nothing left
    """

    def __init__(self, policy: BatchingPolicy, clock: Clock) -> None:
        self.policy = policy
        self._clock = clock
        self._carry: deque[Checkpoint] = deque()  # fed, not yet in a batch
        self._open: CheckpointBatch | None = None
        self._closed = False  # the open batch goes next, whatever else comes
        self._loaded = False
        self._linger = True
        self._deadline: float | None = None

    @property
    def hungry(self) -> bool:
        """Whether the next told checkpoint of the inbox should be taken now."""
        return not self._carry and not self._closed

    def feed(self, messages: Iterable[Checkpoint], *, loaded: bool, linger: bool = True) -> None:
        """Checkpoints handed to the actor at once; ``loaded``: more were waiting behind them.

        ``linger=False`` (a stopping actor, which nobody can send to): never wait for more.
        """
        self._carry.extend(messages)
        self._loaded = loaded
        self._linger = linger
        self._pack()

    def take(self, message: Checkpoint) -> None:
        """A checkpoint taken from the inbox while a batch fills: the actor is loaded."""
        self._loaded = True
        self._carry.append(message)
        self._pack()

    def quiet(self) -> None:
        """The wait ``next`` asked for ended without a message: the open batch goes now."""
        self._closed = True

    def next(self, *, other_waiting: bool) -> CheckpointBatch | float | None:
        """The batch to commit now, seconds to wait for more first, or None when none is left.

        ``other_waiting``: a message that is not a told checkpoint is at the inbox's head.
        """
        batch = self._open
        if batch is None:
            return None
        if (self._closed or not self._loaded or not self._linger or batch.full
                or other_waiting):
            return self._release()
        now = self._clock.monotonic()
        if self._deadline is None:
            self._deadline = now + self.policy.window
        if self._deadline <= now:
            return self._release()
        return min(self._deadline - now, self.policy.quiet_gap)

    def answer_order(self, waiters: Iterable[Checkpoint]
                     ) -> tuple[list[Checkpoint], list[tuple[Any, list[Checkpoint]]]]:
        """Who is answered how: those answered alone, in order, then grouped ones in turns.

        A group is (the handles' class, up to ``bundle_limit`` checkpoints of one
        recipient); the class's ``set_group`` answers them in one message.
        """
        alone: list[Checkpoint] = []
        groups: dict[tuple[type, Any], list[Checkpoint]] = {}
        for message in waiters:
            group = reply_group(message.reply_to) if self.policy.group_answers else None
            if group is None:
                alone.append(message)
            else:
                groups.setdefault(group, []).append(message)
        return alone, list(self._turns(groups))

    def _turns(self, groups: dict[tuple[type, Any], list[Checkpoint]]
               ) -> Iterator[tuple[Any, list[Checkpoint]]]:
        limit = self.policy.bundle_limit
        longest = max((len(members) for members in groups.values()), default=0)
        for start in range(0, longest, limit):
            for (kind, _), members in groups.items():
                if start < len(members):
                    yield kind, members[start:start + limit]

    def _pack(self) -> None:
        """Move carried checkpoints into the open batch (opening one) while they fit."""
        carry = self._carry
        if not carry:
            return
        if self._open is None:
            self._open = CheckpointBatch(self.policy)
        batch = self._open
        while carry and batch.add(carry[0]):
            carry.popleft()
        if carry:
            self._closed = True  # the next one does not fit: this batch is complete

    def _release(self) -> CheckpointBatch:
        batch = self._open
        assert batch is not None
        self._open = None
        self._closed = False
        self._deadline = None
        self._loaded = True  # what arrives during this commit is load: natural batching
        self._pack()
        return batch
