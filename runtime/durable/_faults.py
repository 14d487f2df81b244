"""What the durable services do when one of their processes crashes, gives up, comes back.

``ServiceFaults`` is the durable layer's ``ProcessHooks`` on the process host: it
moves a lost worker's runs to the others, fences the runs of every worker while the
checkpoint process is down, tells the coordinator which framework process cannot
be kept alive (``ProcessFaultError``) and when it is back, and gives the leases up
once the workers are stopped at shutdown.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from actors import tracelog
from actors.protocol._coordinator import (
    CheckpointLost,
    SchedulerLost,
    SystemFault,
    WorkerBack,
    WorkerLost,
)
from runtime.errors import ActorDeadError, ProcessFaultError
from runtime.processes._contract import Host
from runtime.processes._hooks import ProcessHooks
from runtime.remote._actor_ref import ActorRef

log = tracelog.get_logger("runtime.durable")

CHECKPOINT_RANK = 2  # stopped last: everyone else's final writes and replies go through it
SCHEDULER_RANK = 1
COORDINATOR_RANK = -1  # in a process of its own: stopped first (no new dispatch)


class FaultServices(Protocol):
    """The durable services as the fault hooks see them."""

    coordinator: ActorRef[Any]
    checkpoint: ActorRef[Any]
    scheduler: ActorRef[Any]
    workers: list[ActorRef[Any]]
    faults: dict[str, BaseException]

    def release_leases(self, timeout: float) -> None: ...

    def rewire(self) -> None: ...


class ServiceFaults(ProcessHooks):
    """The durable layer's hooks on the process host (see the module docstring)."""

    def __init__(self, services: FaultServices, host: Host,
                 names: dict[str, str]) -> None:
        self._services = services
        self._host = host
        self._names = names  # actor id -> name, of the framework's processes
        self._worker_index = {ref.actor_id: i for i, ref in enumerate(services.workers)}

    def on_crash(self, actor_id: str) -> None:
        """A lost worker's runs go to the others at once; a lost checkpoint process fences
        every run on the workers at once; the rest waits for the restart."""
        services = self._services
        index = self._worker_index.get(actor_id)
        if index is not None:
            services.coordinator.tell(WorkerLost(str(index)))
        elif actor_id == services.checkpoint.actor_id:
            # Every run a worker holds is dispatched again once it is back: told now, no
            # queued run starts a step meanwhile (its result would be refused, its body rerun).
            for worker in services.workers:
                _tell_unless_down(worker, CheckpointLost())

    def on_ready(self, actor_id: str) -> None:
        """A restarted process listens again: give it (and tell about) what it lost."""
        services = self._services
        index = self._worker_index.get(actor_id)
        if index is not None:
            services.coordinator.tell(WorkerBack(str(index)))
        elif actor_id == services.checkpoint.actor_id:
            _tell_unless_down(services.scheduler, CheckpointLost())  # parked copies unwind...
            services.coordinator.tell(CheckpointLost())  # ...as the coordinator dispatches anew
        elif actor_id == services.scheduler.actor_id:
            services.coordinator.tell(SchedulerLost())
        elif actor_id == services.coordinator.actor_id:
            services.rewire()  # a coordinator in a process of its own restarted empty

    def on_give_up(self, actor_id: str, why: str) -> None:
        name = self._names.get(actor_id)
        if name is None:
            return  # a user's actor: its RestartPolicy said what happens
        self._down(actor_id, name, ProcessFaultError(name, why))

    def on_boot_failed(self, actor_id: str, error: BaseException) -> None:
        """A restart could not boot: its own error is the fault (a read-only store, say)."""
        name = self._names.get(actor_id)
        if name is not None:
            self._down(actor_id, name, error)

    def on_recovered(self, actor_id: str) -> None:
        """A process that was down runs again: callers may wait for it; resynchronise."""
        name = self._names.get(actor_id)
        if name is None or self._services.faults.pop(name, None) is None:
            return
        self._host.mark_up(actor_id)
        self._services.coordinator.tell(SystemFault(name, None))
        self.on_ready(actor_id)  # what it lost while down is sent again now that it listens

    def before_stop_rank(self, rank: int, deadline: float) -> None:
        if rank == CHECKPOINT_RANK:
            # Workers are stopped: give the leases up, so another system takes over now.
            self._services.release_leases(max(0.1, min(2.0, deadline - time.monotonic())))

    def _down(self, actor_id: str, name: str, fault: BaseException) -> None:
        """The service's senders fail at once to it (none waits out a restart grace)."""
        self._services.faults[name] = fault
        self._host.mark_down(actor_id, str(fault))
        self._services.coordinator.tell(SystemFault(name, fault))


def _tell_unless_down(ref: ActorRef[Any], message: Any) -> None:
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


__all__ = ["CHECKPOINT_RANK", "COORDINATOR_RANK", "SCHEDULER_RANK",
           "FaultServices", "ServiceFaults"]
