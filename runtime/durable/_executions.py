"""The ``Execution`` handle, and what a new execution is made of, built at the caller.

``system.map``/``parallel`` build the rows of a new execution in the caller's
thread: every item and branch class is pickled there, so a bad one raises
``SerializationError`` naming it, at the call, and never reaches the
coordinator; the fingerprint that tells a different execution under the same id
is computed there too.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from actors.branches._actor import check_branch_class
from actors.branches._spec import BranchSpec
from actors.coordinator._faults import describe_fault
from actors.policies import BatchResult, Completion
from actors.protocol._coordinator import (
    AwaitResult,
    CancelExecution,
    CurrentFault,
    DescribeExecution,
    RetryExecution,
)
from actors.records._leases import BranchInput, NewExecution
from actors.records._specs import BranchClassRef, ExecutionSpec, class_ref, fingerprint_of
from runtime import admission, serialization
from runtime.aio import AwaitableExecution
from runtime.errors import ConfigurationError, Timeout
from runtime.remote._actor_ref import ActorRef
from runtime.transport._future import Future


class ExecutionServices(Protocol):
    """What an ``Execution`` handle needs of its system's durable services."""

    coordinator: ActorRef[Any]
    coordinator_generation: int

    def cancel(self, execution_id: str) -> bool: ...

    def retry(self, execution_id: str) -> Execution: ...

_ASK_TIMEOUT = 30.0  # seconds a status question may take (the coordinator answers at once)
_REREGISTER = 1.0  # seconds between checks that the coordinator that holds our wait is alive


class Execution(AwaitableExecution):
    """The handle of one execution: its id, status, progress and result.

        run = system.map(Resize, items, execution_id="nightly-1")
        run.status()               # "RUNNING" | "SUSPENDED" | "SUCCEEDED" | "FAILED" | "CANCELLED"
        run.progress()             # {"done": 3, "running": 2, "suspended": 0, "failed": 0, ...}
        result = run.result(timeout=60)
        result = await run         # in a coroutine: the loop runs on meanwhile (runtime.aio)

    A handle works from any system on the store: the system holding the
    execution's lease runs it, the others observe it through the store.
    ``started`` says what the call that made the handle found: "created",
    "resumed", "finished", "observing" (another system runs it) or "stored"
    (``system.execution(id)``).
    """

    def __init__(self, services: ExecutionServices, execution_id: str, started: str) -> None:
        self._services = services
        self.id = execution_id
        self.started = started

    def __repr__(self) -> str:
        return f"<Execution {self.id!r} {self.status()}>"

    def status(self) -> str:
        status: str = self.progress()["status"]
        return status

    def progress(self) -> dict[str, Any]:
        """Counts of the execution's branches (done, running, suspended, failed, pending),
        its ``status``, and ``fault`` while a store or process fault holds it up."""
        found: dict[str, Any] = self._services.coordinator.ask(DescribeExecution(self.id),
                                                              timeout=_ASK_TIMEOUT)
        return found

    def result(self, timeout: float | None = None) -> BatchResult:
        """Block until the execution has finished; its ``BatchResult``.

        Raises ``Timeout`` if it has not finished within ``timeout`` seconds, chained
        (``__cause__``) to the fault that held it up, if any;
        ``ExecutionCancelledError`` if it was cancelled; a lasting fault (a read-only
        store, a process that cannot be kept alive) at once, typed.
        """
        timeout = check_timeout(timeout, "result")
        deadline = None if timeout is None else time.monotonic() + timeout
        services = self._services
        while True:
            generation = services.coordinator_generation
            future: Future[BatchResult] = Future()
            services.coordinator.tell(AwaitResult(self.id, future))
            while True:
                remaining = None if deadline is None else deadline - time.monotonic()
                wait = _REREGISTER if remaining is None else max(0.0, min(remaining, _REREGISTER))
                try:
                    return future.get(timeout=wait)
                except Timeout:
                    if remaining is not None and remaining <= _REREGISTER:
                        raise self._timed_out(timeout) from self._fault()
                    if services.coordinator_generation != generation:
                        break  # its coordinator was restarted: wait on the new one

    def _fault(self) -> BaseException | None:
        try:
            fault: BaseException | None = self._services.coordinator.ask(
                CurrentFault(self.id), timeout=5)
        except Exception:
            return None
        return fault

    def _timed_out(self, timeout: float | None) -> Timeout:
        fault = self._fault()
        held = "" if fault is None else f"; it is held up by {describe_fault(fault)}"
        return Timeout(f"execution {self.id!r} did not finish within {timeout}s{held}")

    def cancel(self) -> bool:
        """``system.cancel(self.id)``."""
        return self._services.cancel(self.id)

    def retry(self) -> Execution:
        """``system.retry(self.id)``."""
        return self._services.retry(self.id)


def check_timeout(timeout: float | None, what: str) -> float | None:
    """``timeout`` if it is None or seconds >= 0 (``inf``: None); else ``ConfigurationError``."""
    try:
        return admission.check_timeout(timeout, f"{what}()")
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def map_specs(execution_id: str, branch_cls: Any, items: Iterable[Any]) -> list[BranchSpec]:
    """One ``BranchSpec`` per item of a ``map``, in input order."""
    cls = check_branch_class(branch_cls)
    return [BranchSpec(execution_id, f"{execution_id}/{i}", cls, item, i)
            for i, item in enumerate(items)]


def parallel_specs(execution_id: str, branches: Iterable[Any]) -> list[BranchSpec]:
    """One ``BranchSpec`` per branch class (or ``(cls, input)`` pair) of a ``parallel``."""
    specs = []
    for i, entry in enumerate(branches):
        if isinstance(entry, tuple) and len(entry) == 2:
            cls, item = entry
        else:
            cls, item = entry, None
        specs.append(BranchSpec(execution_id, f"{execution_id}/{i}", check_branch_class(cls),
                                item, i))
    return specs


def new_execution(eid: str, kind: str, specs: Sequence[BranchSpec], completion: Completion,
                  max_concurrency: int | None, timeout: float | None,
                  trace: Any = None) -> NewExecution:
    """The rows of a new execution; ``SerializationError`` names a bad item or class."""
    refs: dict[type, BranchClassRef] = {}
    for branch in specs:
        cls = branch.branch_cls
        if cls not in refs:
            refs[cls] = class_ref(cls, _pickler(
                f"branch class {cls.__qualname__} of {kind}() execution {eid!r}"))
    classes = [branch.branch_cls for branch in specs]
    stored = tuple(refs[c] for c in classes) if kind == "parallel" else tuple(refs.values())
    spec = ExecutionSpec(kind, stored, max_concurrency, completion, timeout, trace)
    inputs = tuple(
        BranchInput(s.branch_id, s.index, serialization.dumps_or_raise(
            s.input, f"item {s.index} of {kind}() execution {eid!r}"))
        for s in specs)
    fingerprint = fingerprint_of(kind, classes, [s.input for s in specs], serialization.dumps)
    deadline = None if timeout is None else time.time() + timeout
    return NewExecution(eid, kind, fingerprint, serialization.dumps(spec), inputs, deadline)


def _pickler(what: str) -> Callable[[object], bytes]:
    def pickle_class(cls: object) -> bytes:
        return serialization.dumps_or_raise(cls, what)

    return pickle_class


def new_execution_id() -> str:
    """A fresh execution id, for a caller that names none."""
    return f"exec-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"


def validate_execution_id(execution_id: object) -> str:
    """``execution_id`` if it can name an execution, else ``ConfigurationError``."""
    # A blank id must not become a random one: a restarted service could never resume it.
    if (not isinstance(execution_id, str) or not execution_id.strip() or "/" in execution_id
            or not execution_id.isprintable()):
        raise ConfigurationError(
            f"execution_id must be a printable, non-blank string without '/' (or None for a "
            f"new id), got {execution_id!r}"
        )
    return execution_id


def retried(services: ExecutionServices, execution_id: str) -> Execution:
    reply: Future[Any] = Future()
    services.coordinator.tell(RetryExecution(execution_id, reply))
    return Execution(services, execution_id, reply.get(timeout=_ASK_TIMEOUT))


def cancelled(services: ExecutionServices, execution_id: str) -> bool:
    reply: Future[bool] = Future()
    services.coordinator.tell(CancelExecution(execution_id, reply))
    return reply.get(timeout=_ASK_TIMEOUT)
