"""Durable executions on top of the runtime: where the actors of ``actors/`` are placed.

* the checkpoint actor in a process of its own, the only writer of the store,
  which also takes and renews this system's execution leases;
* ``SystemConfig.workers`` worker processes, each running branches on a pool;
* the scheduler and the digest actor, each in a process of its own;
* the coordinator in the service process (it answers ``run.status()`` and
  ``run.result()`` locally), reading the store through a read-only connection.
  It is supervised like the others: one that fails is started again and claims
  its executions back from the store. A host whose service process cannot host
  actors (Ray) gives it a process of its own instead (``StoreCoordinatorActor``).

Every framework process is restarted when it dies; past its restart budget it
keeps being tried at a slower pace while every waiting caller is told why
(``ProcessFaultError``). All of it starts on the first ``map``/``parallel``/
``metrics`` call, or at start when the store holds executions to recover.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pykka.messages import ProxyCall

from actors import tracelog
from actors.branches._spec import BranchSpec
from actors.clock import SystemClock
from actors.coordinator._actor import CoordinatorActor
from actors.errors import UnknownExecutionError
from actors.policies import Completion
from actors.protocol._checkpoint import ReleaseLeases
from actors.protocol._coordinator import (
    DeleteExecution,
    StartExecution,
    StoreChanged,
    SystemFault,
    Wire,
)
from actors.scheduling._actor import SchedulerActor
from actors.store._contract import Store
from runtime import otel, serialization, span_shipping
from runtime.config import RestartPolicy, SystemConfig
from runtime.durable._blob_gc import collect_blobs
from runtime.durable._callbacks import settle_callback
from runtime.durable._checkpoint_process import StoreCheckpointActor, default_executor_id
from runtime.durable._coordinator_process import StoreCoordinatorActor
from runtime.durable._executions import Execution, cancelled, new_execution, retried
from runtime.durable._faults import (
    CHECKPOINT_RANK,
    COORDINATOR_RANK,
    SCHEDULER_RANK,
    ServiceFaults,
)
from runtime.durable._liveness import this_executor
from runtime.durable._refs import RefServices
from runtime.durable._store_url import absolute_store_url
from runtime.errors import ProcessFaultError, Timeout
from runtime.processes._contract import Host
from runtime.processes._host import HostedActor
from runtime.processes._placement import Placement
from runtime.processes._process_host import ProcessHost
from runtime.remote._actor_ref import SELF, ActorRef
from runtime.stores import DEFAULT_PATH, listen_for_changes, open_store, read_only_url
from runtime.transport._future import Future, get_all

log = tracelog.get_logger("runtime.durable")

# Framework processes restart quickly after a crash; their state is in the store. Past the
# budget they are tried every 10 s while callers are told the cause.
SERVICE_RESTART = RestartPolicy(max_restarts=10, backoff=0.05, max_backoff=2.0, within=60.0,
                                then_every=10.0)


def service_restart(config: SystemConfig) -> RestartPolicy:
    return config.service_restart or SERVICE_RESTART
_COORDINATOR = "coordinator"


class DurableServices:
    """The checkpoint actor, the workers, the scheduler and the coordinator of one system.

        services = DurableServices(host, config, store_url=None)  # the embedded SQLite store
    """

    def __init__(self, host: Host, config: SystemConfig, store_url: str | None) -> None:
        self._host = host
        self._config = config
        if store_url is None:
            DEFAULT_PATH.parent.mkdir(parents=True, exist_ok=True)  # the embedded default
        self.store_url = absolute_store_url(store_url)
        self.executor = this_executor(config.executor_id or default_executor_id())
        self.faults: dict[str, BaseException] = {}  # process name -> why it cannot run now
        self._closing = False
        self._spans = self._start_span_sink()
        restart = service_restart(config)
        self.checkpoint: ActorRef[Any] = host.spawn(
            StoreCheckpointActor, (self.store_url,), dict(
                synchronous=config.sqlite_synchronous,
                lock_timeout=config.store_lock_timeout, batching=config.checkpoint_batching,
                executor=self.executor, lease_seconds=config.lease_seconds),
            name="checkpoint", restart=restart, registered=False, stop_rank=CHECKPOINT_RANK,
            placement=Placement.STORE,
        )
        self.reader: Store = open_store(read_only_url(self.store_url),
                                        lock_timeout=config.store_lock_timeout)
        self.coordinator_generation = 0
        self._hosted: HostedActor | None = None
        self.coordinator: ActorRef[Any] = self._place_coordinator(restart)
        self.scheduler: ActorRef[Any] = host.spawn(
            SchedulerActor, (), dict(
                checkpoint=self.checkpoint, coordinator=self.coordinator,
                clock=SystemClock(), self_ref=SELF, max_parked=config.parked_per_worker,
                max_parked_coroutines=config.max_parked_coroutines),
            name="scheduler", restart=restart, registered=False, stop_rank=SCHEDULER_RANK,
            placement=Placement.NEAR_SERVICE,
        )
        self.refs = RefServices(host, self.store_url, restart)  # the digest actor
        self.workers: list[ActorRef[Any]] = [
            host.spawn(self.refs.worker_class, (), dict(
                **self.refs.worker_options,
                checkpoint=self.checkpoint, coordinator=self.coordinator,
                threads=config.worker_threads,
                serialize=serialization.dumps_naming_culprit,
                deserialize=serialization.loads, future_factory=Future,
                worker_id=f"worker-{i}", scheduler=self.scheduler,
                suspend_delay=config.suspend_checkpoint_delay,
                suspend_delays=dict(config.suspend_delays or {}),
                lease_wait=config.lease_seconds,
                hold_runs=True),  # until the coordinator says which are current
                name=f"worker-{i}", restart=restart, registered=False,
                placement=Placement.WORKER)
            for i in range(config.workers)
        ]
        names = {ref.actor_id: ref.name for ref in
                 (self.checkpoint, self.scheduler, self.refs.digest, *self.workers)}
        if self._hosted is None:
            names[self.coordinator.actor_id] = _COORDINATOR
        host.add_hooks(ServiceFaults(self, host, names))
        self.rewire()
        if self._hosted is not None:
            threading.Thread(target=self._watch_coordinator, name="da-coordinator-watch",
                             daemon=True).start()
        # A store that notifies (PostgreSQL): the coordinator reads what changed at once.
        self.changes = listen_for_changes(
            self.store_url, lambda ids: self.coordinator.tell(StoreChanged(ids)))

    # -- spans, for the application's tracer provider --------------------------------------

    def _start_span_sink(self) -> HostedActor | None:
        """Where the other processes' spans arrive, when OpenTelemetry is installed here
        (and the service process hosts actors: not on Ray)."""
        if not otel.available() or not isinstance(self._host, ProcessHost):
            return None
        otel.install_service_sink()
        found = self._host.hosted_here(span_shipping.SINK_ID)
        if found is not None and found.accepting:
            return found  # an earlier start of these services failed half-way: keep it
        return self._host.host_here(span_shipping.SINK_ID, span_shipping.SpanSinkActor)

    def _coordinator_options(self) -> dict[str, Any]:
        config = self._config
        return {
            "checkpoint": self.checkpoint,
            "serialize": serialization.dumps, "deserialize": serialization.loads,
            "executor": self.executor.executor_id, "lease_seconds": config.lease_seconds,
            "recover": config.recover, "poll_interval": config.poll_interval,
        }

    def _place_coordinator(self, restart: RestartPolicy) -> ActorRef[Any]:
        """In the service process if the host can host here; else in a process of its own."""
        host = self._host
        if isinstance(host, ProcessHost):
            self._hosted = self._start_coordinator()
            return host.ref_here(_COORDINATOR, "CoordinatorActor")
        return host.spawn(
            StoreCoordinatorActor, (read_only_url(self.store_url),),
            dict(self._coordinator_options(), lock_timeout=self._config.store_lock_timeout),
            name=_COORDINATOR, restart=restart, registered=False,
            stop_rank=COORDINATOR_RANK, placement=Placement.STORE)  # it reads the store

    def close_span_sink(self) -> None:
        """Once every other process has stopped (and sent its last spans)."""
        ref = None if self._spans is None else self._spans.pykka_ref
        if ref is not None and ref.is_alive():
            ref.stop(block=True, timeout=5)

    # -- the coordinator, supervised ----------------------------------------------------

    def _start_coordinator(self) -> HostedActor:
        host = self._host
        assert isinstance(host, ProcessHost)
        return host.host_here(_COORDINATOR, CoordinatorActor, (), {
            **self._coordinator_options(), "reader": self.reader,
            # Run epochs above every epoch an earlier coordinator of this system issued.
            "epoch_base": self.coordinator_generation * 1_000_000_000,
        })

    def rewire(self) -> None:
        """Tell the coordinator (new, or restarted) the workers, the scheduler and the faults."""
        self.coordinator.tell(Wire(self.coordinator, tuple(self.workers), self.scheduler))
        for name, fault in self.faults.items():
            self.coordinator.tell(SystemFault(name, fault))

    def _watch_coordinator(self) -> None:
        """Restart the coordinator if it fails; it claims its executions back from the store."""
        while True:
            hosted = self._hosted
            assert hosted is not None
            hosted.finished.wait()
            if self._closing or not hosted.failed:
                return
            log.error("coordinator.failed", action="restart",
                      generation=self.coordinator_generation + 1)
            self.coordinator_generation += 1
            try:
                self._hosted = self._start_coordinator()
                self.rewire()
            except Exception as exc:  # nothing can run without it: say so to every caller
                log.error("coordinator.restart_failed", error=repr(exc))
                self.faults[_COORDINATOR] = ProcessFaultError(  # nothing runs without it
                    _COORDINATOR, f"the coordinator failed and could not be restarted: {exc!r}")
                return

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
        """Write a callback's outcome, then resume its branch once (``_callbacks``)."""
        return settle_callback(self, callback_id, ok, outcome)

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
        if self._hosted is None:  # in a process of its own
            try:
                self.coordinator.stop(block=True, timeout=5)
            except Exception as exc:  # gone already: its process ends with the others
                log.info("coordinator.stop_skipped", error=repr(exc))
            return
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


__all__ = ["SERVICE_RESTART", "DurableServices", "service_restart"]
