"""Durable executions on top of the runtime: where the actors of ``actors/`` are placed.

* the checkpoint actor in a process of its own, the only writer of the store;
* ``SystemConfig.workers`` worker processes, each running branches on a pool;
* the coordinator in the service process (it answers ``run.status()`` and
  ``run.result()`` locally), reading the store through a read-only connection.

All of it starts on the first ``map``/``parallel``/``metrics`` call, so a system
used only for ``spawn`` stays light.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from pykka.messages import ProxyCall

from actors.branch import BranchSpec, check_branch_class, decode_error, encode_error
from actors.callbacks import parse_callback_id
from actors.checkpoint import CheckpointActor
from actors.clock import SystemClock
from actors.errors import CallbackError, CallbackTimeoutError, UnknownCallbackError
from actors.execution import ExecutionActor
from actors.messages import (
    AwaitResult,
    Checkpoint,
    CheckpointLost,
    DependencyDone,
    DescribeExecution,
    OperationUpdate,
    OpKind,
    OpStatus,
    StartExecution,
    Wire,
    WorkerLost,
)
from actors.policies import BatchResult, Completion
from actors.scheduler import SchedulerActor
from actors.store import Store
from runtime import serialization
from runtime.blobs import RefServices
from runtime.config import RestartPolicy
from runtime.errors import ConfigurationError, Timeout
from runtime.future import Future, get_all
from runtime.host import HostedActor
from runtime.ref import SELF, ActorRef
from runtime.stores import DEFAULT_PATH, open_store, read_only_url

if TYPE_CHECKING:
    from runtime.system import ActorSystem

log = structlog.get_logger("runtime.durable")

# Framework processes restart quickly after a crash; their state is in the store.
SERVICE_RESTART = RestartPolicy(max_restarts=10, backoff=0.05, max_backoff=2.0, within=60.0)


def absolute_store_url(url: str | None) -> str:
    """The store URL with an absolute path, so every process opens the same file."""
    if url is None:
        return f"sqlite:///{DEFAULT_PATH.resolve()}"
    scheme, sep, rest = url.partition("://")
    if scheme.lower() != "sqlite" or not sep:
        return url
    path, q, query = rest.partition("?")
    if path.startswith("/") and not path.startswith("//"):
        absolute = Path(path[1:]).resolve()
        return f"sqlite:///{absolute}{q}{query}"
    return url


class StoreCheckpointActor(CheckpointActor):
    """The checkpoint actor as hosted by the runtime: it opens its store in its own process."""

    def __init__(self, store_url: str, *, synchronous: str, lock_timeout: float, max_ops: int,
                 max_bytes: int, window: float) -> None:
        super().__init__(store=open_store(store_url, synchronous=synchronous,
                                          lock_timeout=lock_timeout),
                         clock=SystemClock(), max_ops=max_ops, max_bytes=max_bytes, window=window)


class Execution:
    """The handle of one execution: its id, status, progress and result.

        run = system.map(Resize, items, execution_id="nightly-1")
        run.status()               # "RUNNING" | "SUSPENDED" | "SUCCEEDED" | "FAILED"
        run.progress()             # {"done": 3, "running": 2, "suspended": 0, "failed": 0, ...}
        result = run.result(timeout=60)
    """

    def __init__(self, services: DurableServices, execution_id: str, started: str) -> None:
        self._services = services
        self.id = execution_id
        self.started = started  # "created" | "resumed" | "finished"

    def __repr__(self) -> str:
        return f"<Execution {self.id!r} {self.status()}>"

    def status(self) -> str:
        status: str = self.progress()["status"]
        return status

    def progress(self) -> dict[str, Any]:
        """Counts of the execution's branches: done, running, suspended, failed, pending."""
        found: dict[str, Any] = self._services.coordinator.ask(DescribeExecution(self.id),
                                                              timeout=30)
        return found

    def result(self, timeout: float | None = None) -> BatchResult:
        """Block until the execution has finished; its ``BatchResult``.

        Raises ``Timeout`` if it has not finished within ``timeout`` seconds.
        """
        future: Future[BatchResult] = Future()
        self._services.coordinator.tell(AwaitResult(self.id, future))
        return future.get(timeout=timeout)


class DurableServices:
    """The checkpoint actor, the workers and the coordinator of one system."""

    def __init__(self, system: ActorSystem) -> None:
        config = system.config
        if system.store_url is None:
            DEFAULT_PATH.parent.mkdir(parents=True, exist_ok=True)  # the embedded default
        self.store_url = absolute_store_url(system.store_url)
        self.checkpoint: ActorRef[Any] = system.spawn(
            StoreCheckpointActor, self.store_url, synchronous=config.sqlite_synchronous,
            lock_timeout=config.store_lock_timeout, max_ops=config.checkpoint_max_ops,
            max_bytes=config.checkpoint_max_bytes, window=config.checkpoint_window,
            name="checkpoint", restart=SERVICE_RESTART,
        )
        self.reader: Store = open_store(_read_only(self.store_url),
                                        lock_timeout=config.store_lock_timeout)
        hosted = HostedActor(system.node, "coordinator", "coordinator")
        hosted.start(ExecutionActor, (), {
            "checkpoint": self.checkpoint, "reader": self.reader,
            "serialize": serialization.dumps, "deserialize": serialization.loads,
        })
        self._hosted = hosted
        self.coordinator: ActorRef[Any] = ActorRef(
            system_id=system.id, address=system.node.address, actor_id="coordinator",
            name="coordinator", class_name="ExecutionActor",
        )
        self.scheduler: ActorRef[Any] = system.spawn(
            SchedulerActor, checkpoint=self.checkpoint, coordinator=self.coordinator,
            clock=SystemClock(), self_ref=SELF, max_parked=config.parked_per_worker,
            name="scheduler", restart=SERVICE_RESTART,
        )
        self.refs = RefServices(system, self.store_url, SERVICE_RESTART)  # the digest actor
        self.workers: list[ActorRef[Any]] = [
            system.spawn(self.refs.worker_class, **self.refs.worker_options,
                         checkpoint=self.checkpoint, coordinator=self.coordinator,
                         threads=config.worker_threads, serialize=serialization.dumps,
                         deserialize=serialization.loads, future_factory=Future,
                         name=f"worker-{i}", worker_id=f"worker-{i}", restart=SERVICE_RESTART,
                         scheduler=self.scheduler,
                         suspend_delay=config.suspend_checkpoint_delay,
                         suspend_delays=dict(config.suspend_delays or {}))
            for i in range(config.workers)
        ]
        self._worker_index = {ref.actor_id: i for i, ref in enumerate(self.workers)}
        system._supervisor.on_crash = self._on_crash
        self.coordinator.tell(Wire(self.coordinator, tuple(self.workers), self.scheduler))

    def _on_crash(self, actor_id: str) -> None:
        index = self._worker_index.get(actor_id)
        if index is not None:
            self.coordinator.tell(WorkerLost(str(index)))
        elif actor_id == self.checkpoint.actor_id:
            self.scheduler.tell(CheckpointLost())  # parked copies unwind first...
            self.coordinator.tell(CheckpointLost())  # ...as the coordinator dispatches anew

    def start(self, kind: str, specs: Sequence[BranchSpec], execution_id: str,
              max_concurrency: int | None, completion: Completion,
              timeout: float) -> Execution:
        reply: Future[Any] = Future()
        self.coordinator.tell(StartExecution(execution_id, kind, tuple(specs), max_concurrency,
                                             completion, reply))
        try:
            started = reply.get(timeout=timeout)
        except Timeout:
            raise Timeout(f"execution {execution_id!r} was not durable within {timeout}s") from None
        return Execution(self, execution_id, started or "created")

    def settle_callback(self, callback_id: str, ok: bool, outcome: Any) -> bool:
        """Write a callback's outcome, then resume its branch once; see ``complete_callback``."""
        branch_id, op_id = parse_callback_id(callback_id)
        op = self._callback_op(callback_id, branch_id, op_id)
        if op.status in (OpStatus.SUCCEEDED, OpStatus.FAILED):
            return self._already_settled(callback_id, op, ok, outcome)
        if op.due_at is not None and time.time() > op.due_at:
            raise CallbackTimeoutError(f"callback {callback_id!r} timed out; too late to complete")
        payload = serialization.dumps_or_raise((ok, outcome), f"the outcome of {callback_id!r}")
        update = OperationUpdate(op.execution_id, branch_id, op_id, OpKind.CALLBACK, op.name,
                                 OpStatus.SUCCEEDED if ok else OpStatus.FAILED,
                                 payload=payload if ok else None,
                                 error=None if ok else encode_error(outcome, serialization.dumps))
        reply: Future[Any] = Future()
        self.checkpoint.tell(Checkpoint(branch_id, update, sync=True, reply_to=reply))
        reply.get(timeout=30)
        stored = self._callback_op(callback_id, branch_id, op_id)
        if stored.status is not update.status or stored.payload != update.payload:
            # Its timeout was written first: the first outcome stands (see the store).
            raise CallbackTimeoutError(f"callback {callback_id!r} timed out while completing it")
        self.scheduler.tell(DependencyDone(branch_id, op_id, payload))
        return True

    def _callback_op(self, callback_id: str, branch_id: str, op_id: str) -> Any:
        log = self.reader.read_log(branch_id)
        op = log.by_op_id().get(op_id)
        if log.branch is None or op is None or op.kind is not OpKind.CALLBACK:
            raise UnknownCallbackError(
                f"no callback {callback_id!r} in the store: check the id, or wait until the "
                "branch has created it"
            )
        return op

    def _already_settled(self, callback_id: str, op: Any, ok: bool, outcome: Any) -> bool:
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

    def metrics(self) -> dict[str, int]:
        # One ProxyCall each, all at once: a proxy() would first ask for the actor's attributes.
        asks = [actor.ask(ProxyCall(("metrics",), (), {}), block=False)
                for actor in (self.checkpoint, self.scheduler, self.refs.digest, *self.workers)]
        totals: dict[str, int] = {}
        for counts in get_all(asks, timeout=30):
            for name, value in counts.items():
                totals[name] = totals.get(name, 0) + value
        return totals

    def close(self) -> None:
        ref = self._hosted.pykka_ref
        if ref is not None and ref.is_alive():
            ref.stop(block=True, timeout=5)
        self.reader.close()
        self.refs.close()


def _read_only(url: str) -> str:
    return read_only_url(url)


def map_specs(execution_id: str, branch_cls: Any, items: Iterable[Any]) -> list[BranchSpec]:
    cls = check_branch_class(branch_cls)
    return [BranchSpec(execution_id, f"{execution_id}/{i}", cls, item, i)
            for i, item in enumerate(items)]


def parallel_specs(execution_id: str, branches: Iterable[Any]) -> list[BranchSpec]:
    specs = []
    for i, entry in enumerate(branches):
        if isinstance(entry, tuple) and len(entry) == 2:
            cls, item = entry
        else:
            cls, item = entry, None
        specs.append(BranchSpec(execution_id, f"{execution_id}/{i}", check_branch_class(cls),
                                item, i))
    return specs


def new_execution_id() -> str:
    return f"exec-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"


def validate_execution_id(execution_id: str) -> str:
    if not isinstance(execution_id, str) or not execution_id or "/" in execution_id:
        raise ConfigurationError(
            f"execution_id must be a non-empty string without '/', got {execution_id!r}"
        )
    return execution_id


__all__ = ["DurableServices", "Execution"]
