"""Durable executions on top of the runtime: where the actors of ``actors/`` are placed.

* the checkpoint actor in a process of its own, the only writer of the store,
  which also takes and renews this system's execution leases;
* ``SystemConfig.workers`` worker processes, each running branches on a pool;
* the scheduler and the digest actor, each in a process of its own;
* the coordinator in the service process (it answers ``run.status()`` and
  ``run.result()`` locally), reading the store through a read-only connection.
  It is supervised like the others: one that fails is started again and claims
  its executions back from the store.

Every framework process is restarted when it dies; past its restart budget it
keeps being tried at a slower pace while every waiting caller is told why
(``ProcessFaultError``). All of it starts on the first ``map``/``parallel``/
``metrics`` call, or at start when the store holds executions to recover.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pykka.messages import ProxyCall

from actors import tracelog
from actors.branches._callbacks import parse_callback_id
from actors.branches._spec import BranchSpec
from actors.branches._stored_errors import decode_error, encode_error
from actors.checkpointing._actor import CheckpointActor
from actors.clock import SystemClock
from actors.coordinator._actor import CoordinatorActor
from actors.errors import (
    CallbackError,
    CallbackTimeoutError,
    LeaseLostError,
    UnknownCallbackError,
    UnknownExecutionError,
)
from actors.policies import Completion
from actors.protocol._checkpoint import Checkpoint, ReleaseLeases, SettleInStore
from actors.protocol._coordinator import (
    CheckpointLost,
    DeleteExecution,
    SchedulerLost,
    StartExecution,
    StoreChanged,
    SystemFault,
    Wire,
    WorkerBack,
    WorkerLost,
)
from actors.protocol._scheduler import DependencyDone
from actors.records._leases import ExecutorInfo
from actors.records._status import ExecutionStatus, OpKind, OpStatus
from actors.records._updates import OperationUpdate
from actors.scheduling._actor import SchedulerActor
from actors.store._contract import Store
from runtime import otel, serialization, span_shipping
from runtime.config import RestartPolicy, SystemConfig
from runtime.durable._blob_gc import collect_blobs
from runtime.durable._executions import Execution, cancelled, new_execution, retried
from runtime.durable._liveness import executor_is_dead, this_executor
from runtime.durable._refs import RefServices
from runtime.errors import ActorDeadError, ProcessFaultError, Timeout
from runtime.processes._host import HostedActor
from runtime.remote._actor_ref import SELF, ActorRef
from runtime.stores import DEFAULT_PATH, listen_for_changes, open_store, read_only_url
from runtime.transport._future import Future, get_all

if TYPE_CHECKING:
    from runtime.system import ActorSystem

log = tracelog.get_logger("runtime.durable")

# Framework processes restart quickly after a crash; their state is in the store. Past the
# budget they are tried every 10 s while callers are told the cause.
SERVICE_RESTART = RestartPolicy(max_restarts=10, backoff=0.05, max_backoff=2.0, within=60.0,
                                then_every=10.0)


def service_restart(config: SystemConfig) -> RestartPolicy:
    return config.service_restart or SERVICE_RESTART
_COORDINATOR = "coordinator"


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
    """The checkpoint actor as hosted by the runtime: it opens its store in its own process
    and registers its system there as an executor."""

    def __init__(self, store_url: str, *, synchronous: str, lock_timeout: float, max_ops: int,
                 max_bytes: int, window: float, executor: ExecutorInfo,
                 lease_seconds: float) -> None:
        store = open_store(store_url, synchronous=synchronous, lock_timeout=lock_timeout)
        try:
            found = store.read_executor(executor.executor_id)
            alive = found is None or not executor_is_dead(found[0])
            store.register_executor(executor, lease_seconds, time.time(), alive=alive)
        except BaseException:
            store.close()
            raise
        super().__init__(store=store, clock=SystemClock(), max_ops=max_ops, max_bytes=max_bytes,
                         window=window, executor=executor.executor_id,
                         lease_seconds=lease_seconds, is_dead=executor_is_dead)


def default_executor_id() -> str:
    return f"{this_executor('').host}-{uuid.uuid4().hex[:8]}"


class DurableServices:
    """The checkpoint actor, the workers, the scheduler and the coordinator of one system."""

    def __init__(self, system: ActorSystem) -> None:
        config = system.config
        self._system = system
        self._config = config
        if system.store_url is None:
            DEFAULT_PATH.parent.mkdir(parents=True, exist_ok=True)  # the embedded default
        self.store_url = absolute_store_url(system.store_url)
        self.executor = this_executor(config.executor_id or default_executor_id())
        self.faults: dict[str, BaseException] = {}  # process name -> why it cannot run now
        self._closing = False
        self._spans = self._start_span_sink()
        self.checkpoint: ActorRef[Any] = system.spawn(
            StoreCheckpointActor, self.store_url, synchronous=config.sqlite_synchronous,
            lock_timeout=config.store_lock_timeout, max_ops=config.checkpoint_max_ops,
            max_bytes=config.checkpoint_max_bytes, window=config.checkpoint_window,
            executor=self.executor, lease_seconds=config.lease_seconds,
            name="checkpoint", restart=service_restart(config),
        )
        self.reader: Store = open_store(read_only_url(self.store_url),
                                        lock_timeout=config.store_lock_timeout)
        self.coordinator: ActorRef[Any] = ActorRef(
            system_id=system.id, address=system.node.address, actor_id=_COORDINATOR,
            name=_COORDINATOR, class_name="CoordinatorActor",
        )
        self.coordinator_generation = 0
        self._hosted = self._start_coordinator()
        self.scheduler: ActorRef[Any] = system.spawn(
            SchedulerActor, checkpoint=self.checkpoint, coordinator=self.coordinator,
            clock=SystemClock(), self_ref=SELF, max_parked=config.parked_per_worker,
            max_parked_coroutines=config.max_parked_coroutines,
            name="scheduler", restart=service_restart(config),
        )
        restart = service_restart(config)
        self.refs = RefServices(system, self.store_url, restart)  # the digest actor
        self.workers: list[ActorRef[Any]] = [
            system.spawn(self.refs.worker_class, **self.refs.worker_options,
                         checkpoint=self.checkpoint, coordinator=self.coordinator,
                         threads=config.worker_threads,
                         serialize=serialization.dumps_naming_culprit,
                         deserialize=serialization.loads, future_factory=Future,
                         name=f"worker-{i}", worker_id=f"worker-{i}", restart=restart,
                         scheduler=self.scheduler,
                         suspend_delay=config.suspend_checkpoint_delay,
                         suspend_delays=dict(config.suspend_delays or {}),
                         lease_wait=config.lease_seconds,
                         hold_runs=True)  # until the coordinator says which are current
            for i in range(config.workers)
        ]
        self._worker_index = {ref.actor_id: i for i, ref in enumerate(self.workers)}
        self._names = {ref.actor_id: ref.name for ref in
                       (self.checkpoint, self.scheduler, self.refs.digest, *self.workers)}
        supervisor = system._supervisor
        supervisor.on_crash = self._on_crash
        supervisor.on_give_up = self._on_give_up
        supervisor.on_recovered = self._on_recovered
        supervisor.on_boot_failed = self._on_boot_failed
        supervisor.on_ready = self._on_ready
        self._wire()
        threading.Thread(target=self._watch_coordinator, name="da-coordinator-watch",
                         daemon=True).start()
        # A store that notifies (PostgreSQL): the coordinator reads what changed at once.
        self.changes = listen_for_changes(
            self.store_url, lambda ids: self.coordinator.tell(StoreChanged(ids)))

    # -- spans, for the application's tracer provider --------------------------------------

    def _start_span_sink(self) -> HostedActor | None:
        """Where the other processes' spans arrive, when OpenTelemetry is installed here."""
        if not otel.available():
            return None
        otel.install_service_sink()
        found = self._system.node.actors.get(span_shipping.SINK_ID)
        if isinstance(found, HostedActor) and found.accepting:
            return found  # an earlier start of these services failed half-way: keep it
        hosted = HostedActor(self._system.node, span_shipping.SINK_ID, span_shipping.SINK_ID)
        hosted.start(span_shipping.SpanSinkActor, (), {})
        return hosted

    def close_span_sink(self) -> None:
        """Once every other process has stopped (and sent its last spans)."""
        ref = None if self._spans is None else self._spans.pykka_ref
        if ref is not None and ref.is_alive():
            ref.stop(block=True, timeout=5)

    # -- the coordinator, supervised ----------------------------------------------------

    def _start_coordinator(self) -> HostedActor:
        config = self._config
        hosted = HostedActor(self._system.node, _COORDINATOR, _COORDINATOR)
        hosted.start(CoordinatorActor, (), {
            "checkpoint": self.checkpoint, "reader": self.reader,
            "serialize": serialization.dumps, "deserialize": serialization.loads,
            "executor": self.executor.executor_id, "lease_seconds": config.lease_seconds,
            "recover": config.recover, "poll_interval": config.poll_interval,
            # Run epochs above every epoch an earlier coordinator of this system issued.
            "epoch_base": self.coordinator_generation * 1_000_000_000,
        })
        return hosted

    def _wire(self) -> None:
        self.coordinator.tell(Wire(self.coordinator, tuple(self.workers), self.scheduler))
        for name, fault in self.faults.items():
            self.coordinator.tell(SystemFault(name, fault))

    def _watch_coordinator(self) -> None:
        """Restart the coordinator if it fails; it claims its executions back from the store."""
        while True:
            hosted = self._hosted
            hosted.finished.wait()
            if self._closing or not hosted.failed:
                return
            log.error("coordinator.failed", action="restart",
                      generation=self.coordinator_generation + 1)
            self.coordinator_generation += 1
            try:
                self._hosted = self._start_coordinator()
                self._wire()
            except Exception as exc:  # nothing can run without it: say so to every caller
                log.error("coordinator.restart_failed", error=repr(exc))
                self.faults[_COORDINATOR] = ProcessFaultError(  # nothing runs without it
                    _COORDINATOR, f"the coordinator failed and could not be restarted: {exc!r}")
                return

    # -- processes that crashed, gave up, came back ----------------------------------

    def _on_crash(self, actor_id: str) -> None:
        """A lost worker's runs go to the others at once; a lost checkpoint process fences
        every run on the workers at once; the rest waits for the restart."""
        index = self._worker_index.get(actor_id)
        if index is not None:
            self.coordinator.tell(WorkerLost(str(index)))
        elif actor_id == self.checkpoint.actor_id:
            # Every run a worker holds is dispatched again once it is back: told now, no
            # queued run starts a step meanwhile (its result would be refused, its body rerun).
            for worker in self.workers:
                self._tell_unless_down(worker, CheckpointLost())

    def _on_ready(self, actor_id: str) -> None:
        """A restarted process listens again: give it (and tell about) what it lost."""
        index = self._worker_index.get(actor_id)
        if index is not None:
            self.coordinator.tell(WorkerBack(str(index)))
        elif actor_id == self.checkpoint.actor_id:
            self._tell_unless_down(self.scheduler, CheckpointLost())  # parked copies unwind...
            self.coordinator.tell(CheckpointLost())  # ...as the coordinator dispatches anew
        elif actor_id == self.scheduler.actor_id:
            self.coordinator.tell(SchedulerLost())

    def _tell_unless_down(self, ref: ActorRef[Any], message: Any) -> None:
        """Tell ``ref`` now, or not at all if its process is down.

        A crash hook runs on the supervisor's thread, which is also what restarts a
        process that is down: waiting for one (a ref's restart grace) would hold up
        every restart for that long. A restarted actor starts empty anyway.
        """
        now: ActorRef[Any] = ActorRef(system_id=ref.system_id, address=ref.address,
                                      actor_id=ref.actor_id, name=ref.name,
                                      class_name=ref.class_name, restart_grace=0.0)
        try:
            now.tell(message)
        except ActorDeadError:
            log.info("crash.not_told", actor=ref.name, message=type(message).__name__,
                     reason="its process is down too; it restarts empty")

    def _on_give_up(self, actor_id: str, why: str) -> None:
        name = self._names.get(actor_id)
        if name is None:
            return  # a user's actor: its RestartPolicy said what happens
        fault = ProcessFaultError(name, why)
        self._down(actor_id, name, fault)

    def _down(self, actor_id: str, name: str, fault: BaseException) -> None:
        """The service's senders fail at once to it (none waits out a restart grace)."""
        self.faults[name] = fault
        child = self._system._supervisor.children.get(actor_id)
        if child is not None:
            self._system.node.mark_down(child.spec.address, str(fault))
        self.coordinator.tell(SystemFault(name, fault))

    def _on_boot_failed(self, actor_id: str, error: BaseException) -> None:
        """A restart could not boot: its own error is the fault (a read-only store, say)."""
        name = self._names.get(actor_id)
        if name is not None:
            self._down(actor_id, name, error)

    def _on_recovered(self, actor_id: str) -> None:
        """A process that was down runs again: callers may wait for it; resynchronise."""
        name = self._names.get(actor_id)
        if name is None or self.faults.pop(name, None) is None:
            return
        child = self._system._supervisor.children.get(actor_id)
        if child is not None:
            self._system.node.mark_up(child.spec.address)
        self.coordinator.tell(SystemFault(name, None))
        self._on_ready(actor_id)  # what it lost while down is sent again now that it listens

    def raise_if_unavailable(self) -> None:
        """A new call fails at once, typed, while a framework process cannot be kept alive."""
        for fault in self.faults.values():
            raise fault

    # -- executions ------------------------------------------------------------------------

    def start(self, kind: str, specs: Sequence[BranchSpec], execution_id: str,
              max_concurrency: int | None, completion: Completion,
              timeout: float | None, wait: float) -> Execution:
        trace = self._begin_trace(kind, execution_id, specs)
        try:
            new = new_execution(execution_id, kind, specs, completion, max_concurrency, timeout,
                                trace)
            self.raise_if_unavailable()
            reply: Future[Any] = Future()
            self.coordinator.tell(StartExecution(execution_id, kind, tuple(specs),
                                                 max_concurrency, completion, reply, new, trace))
            try:
                started = reply.get(timeout=wait)
            except Timeout:
                self.raise_if_unavailable()
                raise Timeout(
                    f"execution {execution_id!r} was not durable within {wait}s") from None
        except BaseException:
            otel.discard(trace)
            raise
        if started not in (None, "created"):
            otel.discard(trace)  # it existed: its own span, from its first start, goes on
        return Execution(self, execution_id, started or "created")

    def _begin_trace(self, kind: str, execution_id: str, specs: Sequence[BranchSpec]) -> Any:
        """The execution's span under the caller's, if the application traces (else None)."""
        if self._spans is None:
            return None
        classes = {spec.branch_cls.__qualname__ for spec in specs}
        name = next(iter(classes)) if kind == "map" and len(classes) == 1 else None
        return otel.begin_execution(kind, execution_id, name, len(specs))

    def execution(self, execution_id: str) -> Execution:
        if self.reader.read_execution(execution_id) is None:
            raise UnknownExecutionError(f"no execution {execution_id!r} in this system's store")
        return Execution(self, execution_id, "stored")

    def executions(self, status: Any = None) -> list[Execution]:
        records = self.reader.read_executions(status)
        return [Execution(self, r.execution_id, "stored") for r in reversed(records)]

    def cancel(self, execution_id: str) -> bool:
        return cancelled(self, execution_id)

    def retry(self, execution_id: str) -> Execution:
        return retried(self, execution_id)

    def delete(self, execution_id: str) -> bool:
        record = self.reader.read_execution(execution_id)
        payloads = list(self.reader.read_payloads(execution_id)) if record is not None else []
        reply: Future[bool] = Future()
        self.coordinator.tell(DeleteExecution(execution_id, reply))
        deleted = reply.get(timeout=60)
        if deleted and payloads:
            collect_blobs(self.reader, Path(self.refs.blob_dir), payloads, execution_id)
        return deleted

    def settle_callback(self, callback_id: str, ok: bool, outcome: Any) -> bool:
        """Write a callback's outcome, then resume its branch once; see ``complete_callback``.

        If this system runs the execution, the outcome is written with its lease and its
        branch is resumed at once; otherwise it is written for the owner, who resumes it
        at its next lease round.
        """
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
        self.checkpoint.tell(Checkpoint(branch_id, update, reply_to=reply))
        owned = True
        try:
            reply.get(timeout=30)
        except LeaseLostError:  # another system runs it: write it for that owner
            owned = False
            settled: Future[Any] = Future()
            self.checkpoint.tell(SettleInStore(update, settled))
            settled.get(timeout=30)
        stored = self._callback_op(callback_id, branch_id, op_id)
        if stored.status is not update.status or stored.payload != update.payload:
            # Its timeout was written first: the first outcome stands (see the store).
            raise CallbackTimeoutError(f"callback {callback_id!r} timed out while completing it")
        if owned:
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

    # -- stopping ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the coordinator (no new dispatch) before the processes stop.

        A coordinator that does not stop in time is left to the process's end; the
        stores are closed by ``close_stores`` whatever happened here.
        """
        self._closing = True
        if self.changes is not None:
            self.changes.close()
        ref = self._hosted.pykka_ref
        if ref is not None and ref.is_alive():
            ref.stop(block=True, timeout=5)

    def release_leases(self, timeout: float) -> None:
        """Once the workers are stopped: give the leases up, so another system takes over now."""
        reply: Future[Any] = Future()
        try:
            self.checkpoint.tell(ReleaseLeases((), reply, everything=True))
            reply.get(timeout=timeout)
        except Exception as exc:  # gone or slow: the leases expire by themselves
            log.info("lease.release_skipped", error=repr(exc))

    def close_stores(self) -> None:
        self.close_span_sink()
        self.reader.close()
        self.refs.close()


def has_work_to_recover(store_url: str, lock_timeout: float) -> bool:
    """Whether a store (that exists) holds unfinished executions: a system starts its
    durable services at once for them, without waiting for a ``map``."""
    try:
        reader = open_store(read_only_url(store_url), lock_timeout=lock_timeout)
    except Exception:
        return False
    try:
        return any(reader.read_executions(status) for status in
                   (ExecutionStatus.RUNNING, ExecutionStatus.SUSPENDED))
    finally:
        reader.close()


def recover_at_start(system: ActorSystem, config: SystemConfig) -> None:
    """Start the durable services of ``system`` if its store has work to recover; look again
    every lease while nothing started them (another system on the store may die later)."""
    url = absolute_store_url(system.store_url)
    if system.store_url is None and not DEFAULT_PATH.exists():
        return
    while not system.closed and not system.durable_started:
        if has_work_to_recover(url, config.store_lock_timeout):
            try:
                system.start_durable()
            except Exception as exc:
                log.error("recovery.start_failed", error=repr(exc))
            return
        if system.wait_closed(config.lease_seconds):
            return
