"""Completing and failing ``ctx.create_callback`` ids from outside: write once, resume once."""

from __future__ import annotations

import time
from typing import Any, Protocol

from actors import tracelog
from actors.branches._callbacks import parse_callback_id
from actors.branches._stored_errors import decode_error, encode_error
from actors.errors import CallbackError, CallbackTimeoutError, LeaseLostError, UnknownCallbackError
from actors.protocol._checkpoint import Checkpoint, SettleInStore
from actors.protocol._scheduler import DependencyDone
from actors.records._status import OpKind, OpStatus
from actors.records._updates import OperationUpdate
from actors.store._contract import Store
from runtime import serialization
from runtime.remote._actor_ref import ActorRef
from runtime.transport._future import Future

log = tracelog.get_logger("runtime.durable")


class CallbackServices(Protocol):
    """What settling a callback needs of the durable services."""

    reader: Store
    checkpoint: ActorRef[Any]
    scheduler: ActorRef[Any]


def settle_callback(services: CallbackServices, callback_id: str, ok: bool,
                    outcome: Any) -> bool:
    """Write a callback's outcome, then resume its branch once; see ``complete_callback``.

    If this system runs the execution, the outcome is written with its lease and its
    branch is resumed at once; otherwise it is written for the owner, who resumes it
    at its next lease round.

        settle_callback(services, callback_id, True, {"approved": True})
    """
    branch_id, op_id = parse_callback_id(callback_id)
    op = _callback_op(services.reader, callback_id, branch_id, op_id)
    if op.status in (OpStatus.SUCCEEDED, OpStatus.FAILED):
        return _already_settled(callback_id, op, ok, outcome)
    if op.due_at is not None and time.time() > op.due_at:
        raise CallbackTimeoutError(f"callback {callback_id!r} timed out; too late to complete")
    payload = serialization.dumps_or_raise((ok, outcome), f"the outcome of {callback_id!r}")
    update = OperationUpdate(op.execution_id, branch_id, op_id, OpKind.CALLBACK, op.name,
                             OpStatus.SUCCEEDED if ok else OpStatus.FAILED,
                             payload=payload if ok else None,
                             error=None if ok else encode_error(outcome, serialization.dumps))
    reply: Future[Any] = Future()
    services.checkpoint.tell(Checkpoint(branch_id, update, reply_to=reply))
    owned = True
    try:
        reply.get(timeout=30)
    except LeaseLostError:  # another system runs it: write it for that owner
        owned = False
        settled: Future[Any] = Future()
        services.checkpoint.tell(SettleInStore(update, settled))
        settled.get(timeout=30)
    stored = _callback_op(services.reader, callback_id, branch_id, op_id)
    if stored.status is not update.status or stored.payload != update.payload:
        # Its timeout was written first: the first outcome stands (see the store).
        raise CallbackTimeoutError(f"callback {callback_id!r} timed out while completing it")
    if owned:
        services.scheduler.tell(DependencyDone(branch_id, op_id, payload))
    return True


def _callback_op(reader: Store, callback_id: str, branch_id: str, op_id: str) -> Any:
    log = reader.read_log(branch_id)
    op = log.by_op_id().get(op_id)
    if log.branch is None or op is None or op.kind is not OpKind.CALLBACK:
        raise UnknownCallbackError(
            f"no callback {callback_id!r} in the store: check the id, or wait until the "
            "branch has created it"
        )
    return op


def _already_settled(callback_id: str, op: Any, ok: bool, outcome: Any) -> bool:
    if op.status is OpStatus.FAILED and op.error is not None:
        error = decode_error(op.error, serialization.loads)
        if isinstance(error, CallbackTimeoutError):
            raise CallbackTimeoutError(f"callback {callback_id!r} timed out; too late")
    same = ok and op.status is OpStatus.SUCCEEDED and op.payload == serialization.dumps(
        (ok, outcome))
    if same or (not ok and op.status is OpStatus.FAILED):
        log.info("callback.already_settled", callback_id=callback_id)
        return False  # idempotent: the same outcome again changes nothing
    raise CallbackError(
        f"callback {callback_id!r} was already settled with another outcome; it stays as it was"
    )


__all__ = ["CallbackServices", "settle_callback"]
