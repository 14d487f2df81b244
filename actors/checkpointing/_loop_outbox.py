"""``LoopOutbox``: what a worker loop's runs send in one turn goes as one message per recipient.

A thread-per-branch worker combines checkpoints when threads meet in the
``CheckpointOutbox``; on an event loop nothing meets, since one thread sends for
every async branch, and a wave of thousands of branches would be thousands of
messages each way (a scheduler applying a wave at once then filled the
checkpoint actor's mailbox while the checkpoint actor filled its own). So
sends made during one turn of the loop are queued and go out together when the
turn ends (a callback the first send schedules): the checkpoints as one
``Checkpoints`` message through the worker's ``CheckpointOutbox``, then the
suspensions as ``Bundle``s (``BatchingPolicy.bundle_limit`` each) to the
scheduler. A branch's own messages keep their order; its checkpoints leave
before its suspension.

A send that fails answers its waiters (a sync checkpoint's reply, a
suspension's verdict) with the error, so their branches abort and are replayed;
an update nobody waited for fails its run's next checkpoint (the outbox keeps
the loss).

    outbox = LoopOutbox(loop, worker.outbox.send_all, scheduler_ref.tell)
    outbox.checkpoint(Checkpoint(branch_id, update, reply_to=reply))
    outbox.suspension(Suspend(...))           # both leave when this loop turn ends
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

from actors import tracelog
from actors.bundles import bundle
from actors.checkpointing._policy import BatchingPolicy
from actors.errors import CheckpointError
from actors.protocol._checkpoint import Checkpoint
from actors.protocol._scheduler import Suspend

log = tracelog.get_logger("actors.loop_outbox")


class LoopOutbox:
    """Queues ``Checkpoint`` and ``Suspend`` messages until the loop's turn ends; then sends."""

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 send_checkpoints: Callable[[list[Checkpoint]], None],
                 tell_scheduler: Callable[[Any], None],
                 batching: BatchingPolicy | None = None) -> None:
        self._loop = loop
        self._bundle_limit = (BatchingPolicy() if batching is None else batching).bundle_limit
        self._send_checkpoints = send_checkpoints
        self._tell_scheduler = tell_scheduler
        self._lock = threading.Lock()  # a gate may release a held checkpoint on another thread
        self._checkpoints: list[Checkpoint] = []
        self._suspensions: list[Suspend] = []
        self._flush_due = False
        self.flushes = 0  # turns that sent something, for tests and metrics

    def checkpoint(self, message: Checkpoint) -> None:
        with self._lock:
            self._checkpoints.append(message)
            self._schedule()

    def suspension(self, message: Suspend) -> None:
        with self._lock:
            self._suspensions.append(message)
            self._schedule()

    def _schedule(self) -> None:
        if not self._flush_due:
            self._flush_due = True
            self._loop.call_soon_threadsafe(self.flush)

    def flush(self) -> None:
        """Send what is queued: checkpoints first, then suspensions (on the loop's thread)."""
        with self._lock:
            checkpoints, self._checkpoints = self._checkpoints, []
            suspensions, self._suspensions = self._suspensions, []
            self._flush_due = False
        if not (checkpoints or suspensions):
            return
        self.flushes += 1
        self._send_checkpoints(checkpoints)  # failures reach their waiters (CheckpointOutbox)
        for start in range(0, len(suspensions), self._bundle_limit):
            part = suspensions[start:start + self._bundle_limit]
            try:
                self._tell_scheduler(bundle(part))
            except Exception as exc:  # the scheduler is gone: nothing of these is durable
                log.warning("suspensions.unsent", count=len(part), error=repr(exc))
                for message in part:
                    with contextlib.suppress(Exception):  # a gone waiter must not stop others
                        message.reply_to.set_exception((CheckpointError, CheckpointError(
                            f"the suspension of branch {message.key.branch_id!r} was not sent "
                            f"({type(exc).__name__}: {exc}); nothing of it is durable, and the "
                            "branch is replayed from its log", exc), None))
