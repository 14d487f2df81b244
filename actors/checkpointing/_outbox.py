"""``CheckpointOutbox``: a worker's checkpoints, sent together when branch threads meet.

Every branch thread of a worker sends its checkpoints to the same checkpoint
actor. Sent one message each, a busy worker costs the checkpoint actor one
decode, one envelope and one inbox round per update: under a resume wave that,
not SQLite, is where the checkpoint process spends its time. The outbox combines
them without adding a thread or a timer:

* a thread that finds no send in progress sends its message at once, so a lone
  branch waits for nothing;
* a message handed in while another thread is sending waits in the queue, and
  the sending thread, once its send returned, takes everything queued as one
  ``Checkpoints`` message (at most ``BatchingPolicy.outbox_limit`` per message),
  until the queue is
  empty;
* one queue drained in order by one thread at a time keeps each branch's order
  (and the transport keeps the order of one process's messages to one actor).

A send that fails (the checkpoint actor is gone, its mailbox stayed full past
``send_timeout``) leaves nothing written. The sending thread raises the error for
its own message, as a lone send would; every other waiter of that message is
answered with ``CheckpointError``; a branch whose update nobody waited for learns
of the loss at its next checkpoint, which raises ``CheckpointError``. No branch is
told "durable" after an earlier update of its own was lost.

    outbox = CheckpointOutbox(checkpoint_ref.tell)
    outbox.send(Checkpoint("b1", update, reply_to=future))
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from actors.checkpointing._policy import BatchingPolicy
from actors.errors import CheckpointError
from actors.protocol._checkpoint import Checkpoint, checkpoints


class CheckpointOutbox:
    """Sends ``Checkpoint`` messages through ``tell``, combining those that queue up."""

    def __init__(self, tell: Callable[[Any], None],
                 batching: BatchingPolicy | None = None) -> None:
        self._tell = tell
        self._limit = (BatchingPolicy() if batching is None else batching).outbox_limit
        self._lock = threading.Lock()
        self._queue: list[Checkpoint] = []
        self._sending = False
        # (branch, run epoch) -> why an unwatched update of that run was lost
        self._lost: dict[tuple[str, int | None], BaseException] = {}
        self.messages = 0  # messages told, for tests and metrics
        self.combined = 0  # checkpoints that travelled with others

    def send(self, message: Checkpoint) -> None:
        """Send ``message`` now, or with the ones queued behind a send in progress."""
        with self._lock:
            lost = self._lost.pop(_run_of(message), None)
            if lost is not None:
                raise CheckpointError(
                    f"an earlier checkpoint of branch {message.branch_id!r} that nobody waited "
                    f"for was not sent ({type(lost).__name__}: {lost}); replay the branch from "
                    "its log before going on", lost)
            self._queue.append(message)
            if self._sending:
                return  # the thread that is sending takes it with the next batch
            self._sending = True
        own_error = self._drain(message)
        if own_error is not None:
            raise own_error

    def send_all(self, messages: list[Checkpoint]) -> None:
        """Send ``messages`` in order, together (with any queued behind a send in progress).

        Nobody waits here: a failed send answers the waiters of the messages with
        ``CheckpointError`` and fails their runs' next checkpoints, as for others' messages.
        """
        refused: list[tuple[Checkpoint, BaseException]] = []
        with self._lock:
            for message in messages:
                run = _run_of(message)
                lost = self._lost.get(run)
                if lost is None:
                    self._queue.append(message)
                    continue
                # An earlier update of its run was lost: nothing after it may be written; a
                # waiter learns it (and its run is replayed), which settles that loss.
                refused.append((message, lost))
                if message.reply_to is not None:
                    del self._lost[run]
            start = bool(self._queue) and not self._sending
            if start:
                self._sending = True
        for message, lost in refused:
            if message.reply_to is not None:
                with contextlib.suppress(Exception):
                    message.reply_to.set_exception((CheckpointError, CheckpointError(
                        f"an earlier checkpoint of branch {message.branch_id!r} that nobody "
                        f"waited for was not sent ({type(lost).__name__}: {lost}); replay the "
                        "branch from its log before going on", lost), None))
        if start:
            self._drain(None)

    def _drain(self, own: Checkpoint | None) -> BaseException | None:
        own_error: BaseException | None = None
        while True:
            with self._lock:
                if not self._queue:
                    self._sending = False
                    return own_error
                batch = self._queue[:self._limit]
                del self._queue[:self._limit]
            self.messages += 1
            self.combined += len(batch) - 1
            try:
                self._tell(checkpoints(batch))
            except Exception as exc:  # nothing of this message was sent
                own_error = self._failed(batch, own, exc) or own_error

    def _failed(self, batch: list[Checkpoint], own: Checkpoint | None,
                error: Exception) -> BaseException | None:
        own_error: BaseException | None = None
        for message in batch:
            if message is own:
                own_error = error
            elif message.reply_to is not None:
                with contextlib.suppress(Exception):  # a gone waiter must not stop the others
                    message.reply_to.set_exception((CheckpointError, CheckpointError(
                        f"checkpoint of branch {message.branch_id!r} was not sent: "
                        f"{type(error).__name__}: {error}", error), None))
            else:
                with self._lock:
                    self._lost.setdefault(_run_of(message), error)
        return own_error


def _run_of(message: Checkpoint) -> tuple[str, int | None]:
    """The run a checkpoint belongs to: a loss in one run is not the next run's business."""
    return message.branch_id, getattr(message.update, "epoch", None)
