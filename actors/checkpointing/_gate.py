"""Gating by continuation: a branch's checkpoints wait for the blobs they name, threads do not.

Every checkpoint of a branch run leaves its worker through the run's
``CheckpointGate``. A payload serialized while one of its Refs was pending holds
a placeholder token for that Ref's digest (``actors.refs``); the gate finds the
tokens in the update's bytes (one scan), and:

* none pending, nothing held: the checkpoint goes at once, tokens patched to
  their digests;
* else it is **held**, and a continuation is registered on each pending
  digest. When the last one resolves (on the digest client's thread), the held
  checkpoints are released in the order they were sent, patched. A checkpoint
  behind a held one waits behind it even if it names nothing pending, because
  a branch's updates become durable in order.

No thread waits on a digest: the branch thread that sent a *sync* checkpoint
waits for its acknowledgement, as it always does, and the digest it depends on
is produced by the digest client and actor, never by a branch thread, so a pool
whose every thread is parked this way still drains. If a digest fails (its blob
could not be stored), the held checkpoints fail with ``CheckpointError`` and the
gate refuses the run's later checkpoints: the branch is replayed, its step runs
again, and nothing durable ever names a blob that is not.

    gate = CheckpointGate("exec-1/0")
    with gate.tracking():
        payload = serialize(value)          # pending Refs inside are recorded
    gate.send(Checkpoint("exec-1/0", OperationUpdate(..., payload=payload)), ckpt.tell)
"""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from actors import tracelog
from actors.errors import CheckpointError
from actors.records._updates import BranchUpdate, ExecutionUpdate, OperationUpdate
from actors.refs._pending import PendingDigest
from actors.refs._ref import Ref, collecting, patch, tokens_in

log = tracelog.get_logger("actors.gate")

_UPDATES = (OperationUpdate, BranchUpdate, ExecutionUpdate)


@dataclass(eq=False)
class _Held:
    message: Any
    deliver: Callable[[Any], None]
    refs: list[Ref]


class CheckpointGate:
    """Holds one run's checkpoints that name pending Refs until those blobs are durable."""

    def __init__(self, branch_id: str) -> None:
        self.branch_id = branch_id
        self._lock = threading.Lock()
        self._known: dict[bytes, Ref] = {}  # placeholder token -> Ref, for this run's payloads
        self._held: deque[_Held] = deque()
        self._broken: CheckpointError | None = None

    @property
    def held(self) -> int:
        """How many checkpoints wait for digests (or behind one that does)."""
        return len(self._held)

    def tracking(self) -> collecting:
        """Record the pending Refs of what is serialized inside, to patch their tokens later.

            with gate.tracking():
                payload = serialize(result)
        """
        return collecting(self._known)

    def send(self, message: Any, deliver: Callable[[Any], None]) -> None:
        """``deliver(message)`` now, or once every digest it names is durable, in order.

        ``message`` is a frozen dataclass holding an update (a ``Checkpoint``; a
        ``Suspend``); its ``reply_to``, if any, is failed if a digest fails.
        Raises ``CheckpointError`` once an earlier checkpoint of this run failed.
        """
        with self._lock:
            if self._broken is not None:
                raise self._broken
            if not self._known and not self._held:
                deliver(message)  # nothing of this run ever named a pending Ref
                return
            refs = self._named(message)
            waiting = [r._cell for r in refs if r._cell is not None and not r._cell.done]
            if not waiting and not self._held:
                failed = _failed(refs)
                if failed is not None:
                    raise self._refuse(failed.error)
                deliver(_patched(message, refs))
                return
            self._held.append(_Held(message, deliver, refs))
            behind = len(self._held) - 1
        log.debug("checkpoint.gated", branch_id=self.branch_id, pending=len(waiting),
                  behind=behind)
        for cell in waiting:
            cell.add_done_callback(self._release)

    def _named(self, message: Any) -> list[Ref]:
        found: dict[bytes, Ref] = {}
        for update in _updates_of(message):
            for data in _payloads_of(update):
                for token in tokens_in(data):
                    ref = self._known.get(token)
                    if ref is not None:
                        found[token] = ref
        return list(found.values())

    def _release(self, _cell: PendingDigest | None = None) -> None:
        """The continuation: send every held checkpoint whose digests are all known, in order."""
        with self._lock:
            while self._held and all(ref.done for ref in self._held[0].refs):
                held = self._held.popleft()
                failed = _failed(held.refs)
                if failed is not None:
                    self._break(held, failed.error)
                    return
                try:
                    held.deliver(_patched(held.message, held.refs))
                except Exception as exc:  # the checkpoint actor is gone: nothing was written
                    self._break(held, exc)
                    return
                log.debug("checkpoint.released", branch_id=self.branch_id,
                          digests=[ref.wait().hex() for ref in held.refs])

    def _refuse(self, cause: BaseException | None) -> CheckpointError:
        """Refuse this run's checkpoints from now on: one names a blob that was never stored."""
        self._broken = CheckpointError(
            f"checkpoint of branch {self.branch_id!r} was not written: a Ref it names was "
            f"never stored ({cause!r}); the branch will be replayed from its log", cause)
        log.error("checkpoint.gate_failed", branch_id=self.branch_id, error=repr(cause),
                  dropped=len(self._held) + 1)
        return self._broken

    def _break(self, first: _Held, cause: BaseException | None) -> None:
        error = self._refuse(cause)
        for held in (first, *self._held):
            reply_to = getattr(held.message, "reply_to", None)
            if reply_to is not None:
                try:
                    reply_to.set_exception((CheckpointError, error, None))
                except Exception as exc:  # a waiter that is gone must not stop the others
                    log.warning("checkpoint.reply_failed", error=repr(exc))
        self._held.clear()


def _failed(refs: list[Ref]) -> PendingDigest | None:
    """The first of ``refs`` whose save failed: it has no digest and never will."""
    return next((r._cell for r in refs
                 if r._cell is not None and r._cell.done and r._cell.digest is None), None)


def _updates_of(message: Any) -> Iterator[Any]:
    if isinstance(message, _UPDATES):
        yield message
        return
    for f in dataclasses.fields(message):
        value = getattr(message, f.name)
        if isinstance(value, _UPDATES):
            yield value


def _payloads_of(update: Any) -> Iterator[bytes]:
    for f in dataclasses.fields(update):
        value = getattr(update, f.name)
        if isinstance(value, bytes):
            yield value


def _patched(message: Any, refs: list[Ref]) -> Any:
    """``message`` with the placeholder tokens of ``refs`` replaced by their digests."""
    digests = {r._cell.token: r._cell.digest for r in refs
               if r._cell is not None and r._cell.digest is not None}
    if not digests:
        return message
    if isinstance(message, _UPDATES):
        return _patched_update(message, digests)
    changes = {f.name: _patched_update(getattr(message, f.name), digests)
               for f in dataclasses.fields(message)
               if isinstance(getattr(message, f.name), _UPDATES)}
    return dataclasses.replace(message, **changes)


def _patched_update(update: Any, digests: dict[bytes, bytes]) -> Any:
    changes = {f.name: patch(getattr(update, f.name), digests)
               for f in dataclasses.fields(update) if isinstance(getattr(update, f.name), bytes)}
    return dataclasses.replace(update, **changes)
