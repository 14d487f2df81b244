"""``RayProcessHost``: the process host (``runtime.processes.Host``) on a Ray cluster.

Each actor of the system, the framework's included, is a pykka actor in a Ray
actor of its own (``ActorHost``): a process on some node of the cluster. Its
``ActorRef`` names the host's Ray actor (a named actor of the system's namespace),
so it pickles and works from the service process and every other host. The
service process is Ray's driver: it starts the hosts, watches them
(``RaySupervisor``) and stops them in rank order, and it sends to them through
the system's ``RayTransport``; each host registers one of its own for the same
system, so the actors reach each other directly, as they do over sockets.

Placement (``runtime.processes.Placement``):

* ``WORKER``: ``SystemConfig.ray_worker_options`` (default ``{"num_cpus": 1}``),
  so that the workers spread over the nodes by their resources;
* ``STORE``: the service's own node, where a SQLite file is (``store_anywhere``:
  anywhere, for a server store);
* ``NEAR_SERVICE``: preferably the service's node (it asks them often);
* ``ANY``: wherever Ray likes, with no CPU reserved.

    host = RayProcessHost("sys-1", SystemConfig())     # connects to Ray if not connected
    ref = host.spawn(Counter, name="counter")
    host.stop_children(time.monotonic() + 5, 5.0); host.kill_remaining(); host.close()
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
from typing import Any, TypeVar

import pykka
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from actors import tracelog
from actors._compat.pykka import stop_message
from runtime import serialization, tracing
from runtime.config import RestartPolicy, SystemConfig
from runtime.durable._liveness import process_gone
from runtime.errors import ActorDeadError
from runtime.processes._exits import ProcessExit
from runtime.processes._hooks import HookList, ProcessHooks
from runtime.processes._host_parts import ActorNames, stop_in_ranks
from runtime.processes._placement import Placement
from runtime.processes._registry import Entry
from runtime.processes._supervisor import ChildState
from runtime.raybackend import replies
from runtime.raybackend.connection import connect, disconnect
from runtime.raybackend.host import HostSpec
from runtime.raybackend.registry import RayRegistry
from runtime.raybackend.starting import start_hosted
from runtime.raybackend.supervision import RayChild, RaySupervisor, SupervisorHooks
from runtime.raybackend.transport import RayTransport
from runtime.remote._actor_ref import ActorRef
from runtime.transport import ActorAddress, register, withdraw

A = TypeVar("A", bound=pykka.Actor)

log = tracelog.get_logger("runtime.raybackend")

DEFAULT_WORKER_OPTIONS: dict[str, Any] = {"num_cpus": 1}
_open: set[RayProcessHost] = set()  # the Ray systems of this process not closed yet
_open_lock = threading.Lock()
_EXIT_WAIT = 10.0  # seconds the hosts of this node get to exit after their Ray actors end
_END_AFTER = 2.0  # seconds a host whose actor stopped by itself runs on before it is ended


class RayProcessHost:
    """Spawns, supervises and stops the Ray actors of one system (see the module docstring)."""

    def __init__(self, system_id: str, config: SystemConfig, *,
                 store_anywhere: bool = False) -> None:
        self._owns_ray = connect(config)
        with _open_lock:
            _open.add(self)
        self.system_id = system_id
        self.config = config
        self.closed = False
        self.store_anywhere = store_anywhere
        self.node_id: str = ray.get_runtime_context().get_node_id()
        self._transport = RayTransport(system_id)
        register(self._transport)
        self._names = ActorNames()
        self._hooks = HookList()
        self._stop_ranks: dict[str, int] = {}
        self._dir = tempfile.mkdtemp(prefix="da-ray-")
        self._registry = RayRegistry()  # mirrored into pykka.ActorRegistry of every host
        self._entries: dict[str, Entry] = {}  # actor id -> its entry, for the registered
        # Stopped through a ref here (its stop reply came): off the registry at once.
        self._transport.on_stopped = lambda actor_id: self._registry.down(actor_id, self._hosts())
        self._supervisor = RaySupervisor(SupervisorHooks(
            on_exit=self._exited,
            on_crash=lambda actor_id: self._tell("on_crash", actor_id),
            on_give_up=lambda actor_id, why: self._tell("on_give_up", actor_id, why),
            on_recovered=lambda actor_id: self._tell("on_recovered", actor_id),
            on_boot_failed=lambda actor_id, error: self._tell("on_boot_failed", actor_id, error),
            on_ready=self._ready,
            stopped_on_purpose=lambda child: self._transport.is_stopped(child.actor_id),
        ))

    @property
    def scratch_dir(self) -> str:
        """A private directory (mode 0700) on the service's node, removed when it closes."""
        return self._dir

    # -- hooks -------------------------------------------------------------------------

    def add_hooks(self, hooks: ProcessHooks) -> None:
        """Be told of crashes, give-ups, recoveries, failed boots, restarts and stop ranks."""
        self._hooks.add(hooks)

    def _tell(self, hook: str, *args: Any) -> None:
        self._hooks.tell(hook, *args)

    def _exited(self, child: RayChild) -> None:
        self._registry.down(child.actor_id, self._hosts())
        if child.state is ChildState.STOPPED:  # seen by its watch: its stop's answer may be
            self._transport.stopped(self._address(child), end_after=_END_AFTER)  # under way

    def _ready(self, actor_id: str) -> None:
        entry = self._entries.get(actor_id)
        if entry is not None:  # registered again under the same URN, as it restarted
            self._registry.up(entry, self._hosts())
        self._tell("on_ready", actor_id)

    def _hosts(self) -> list[Any]:
        return [c.handle for c in self._supervisor.live_children()]

    # -- spawning -----------------------------------------------------------------------

    def spawn(self, actor_class: type[A], args: tuple[Any, ...] = (),
              kwargs: dict[str, Any] | None = None, *, name: str | None = None,
              restart: RestartPolicy | None = None, registered: bool = True,
              stop_rank: int = 0, placement: Placement = Placement.ANY) -> ActorRef[A]:
        """Start ``actor_class(*args, **kwargs)`` in a new Ray actor; its ref once it runs.

        ``registered=False`` keeps it out of the system's registry (the framework's own
        actors). The constructor's exception is re-raised here.
        """
        if self.closed:
            raise ActorDeadError("this actor system is shut down; start a new one")
        number, name = self._names.reserve(actor_class, name, restart)
        try:
            ref: ActorRef[A] = self._spawn(actor_class, args, kwargs or {}, f"a{number}", name,
                                           restart, placement, registered)
        except BaseException:
            self._names.release(name)
            raise
        self._stop_ranks[ref.actor_id] = stop_rank
        return ref

    def _spawn(self, actor_class: type[A], args: tuple[Any, ...], kwargs: dict[str, Any],
               actor_id: str, name: str, restart: RestartPolicy | None,
               placement: Placement, registered: bool) -> ActorRef[A]:
        config = self.config
        grace = 0.0 if restart is None else restart.max_backoff + config.spawn_timeout
        process = self._transport.new_process_name()
        ref: ActorRef[A] = ActorRef(system_id=self.system_id, address=process,
                                    actor_id=actor_id, name=name,
                                    class_name=actor_class.__name__, restart_grace=grace)
        entry = Entry(ref, serialization.dumps(actor_class)) if registered else None
        spec = HostSpec(system_id=self.system_id, process=process,
                        class_name=actor_class.__name__, role=f"actor:{name}",
                        restart_grace=grace, trace_path=config.trace_path,
                        app_logging=tracing.app_config_for_children(),
                        registry=self._registry.snapshot(also=entry))
        options = {"name": process, **self._placed(placement),
                   "max_restarts": 0 if restart is None else -1, "max_task_retries": 0}
        hosted: type[pykka.ThreadingActor] = actor_class  # type: ignore[assignment]  # checked
        handle_ref, (pid, node_id) = start_hosted(
            hosted, args, kwargs, name=name, options=options,
            spawn_timeout=config.spawn_timeout, actor_id=actor_id, spec=spec)
        self._transport.adopt(process, handle_ref)
        self._supervisor.add(RayChild(actor_id=actor_id, name=name, process=process,
                                      handle=handle_ref.handle, policy=restart, pid=pid,
                                      node_id=node_id))
        if entry is not None:
            self._entries[actor_id] = entry
            self._registry.up(entry, self._hosts())
        log.debug("actor.spawned", name=name, pid=pid, node=node_id)
        return ref

    def _placed(self, placement: Placement) -> dict[str, Any]:
        """Ray's options for a host placed so."""
        if placement is Placement.WORKER:
            return {"num_cpus": 0, **(self.config.ray_worker_options or DEFAULT_WORKER_OPTIONS)}
        if placement is Placement.STORE and not self.store_anywhere:
            return {"num_cpus": 0, "scheduling_strategy": NodeAffinitySchedulingStrategy(
                self.node_id, soft=False)}
        if placement in (Placement.NEAR_SERVICE, Placement.STORE):
            return {"num_cpus": 0, "scheduling_strategy": NodeAffinitySchedulingStrategy(
                self.node_id, soft=True)}
        return {"num_cpus": 0}

    # -- what the host knows ------------------------------------------------------------

    def _address(self, child: RayChild) -> ActorAddress:
        return ActorAddress(self.system_id, child.process, child.actor_id, child.name)

    def processes(self) -> dict[str, int]:
        """Each running host by name, with its pid (on its node)."""
        return {c.name: c.pid for c in self._supervisor.live_children()}

    def nodes(self) -> dict[str, str]:
        """Each running host by name, with the Ray node id it runs on."""
        return {c.name: c.node_id for c in self._supervisor.live_children()}

    def pid_of(self, actor_id: str) -> int | None:
        child = self._supervisor.children.get(actor_id)
        return None if child is None else child.pid

    def exit_of(self, actor_id: str) -> ProcessExit | None:
        child = self._supervisor.children.get(actor_id)
        if child is None or child.state in (ChildState.RUNNING, ChildState.STOPPING):
            return None
        return child.exit

    def state_of(self, actor_id: str) -> ChildState | None:
        child = self._supervisor.children.get(actor_id)
        return None if child is None else child.state

    def pids(self, running_only: bool = False) -> set[int]:
        return {c.pid for c in self._supervisor.children.values()
                if not running_only or c.state in (ChildState.RUNNING, ChildState.STOPPING)}

    def mark_down(self, actor_id: str, why: str) -> None:
        """The service's sends to ``actor_id`` fail at once with ``why``."""
        self._transport.mark_down(actor_id, why)

    def mark_up(self, actor_id: str) -> None:
        self._transport.mark_down(actor_id, None)

    # -- stopping -------------------------------------------------------------------------

    def stop_children(self, deadline: float, budget: float) -> None:
        """Stop every actor, by ascending ``stop_rank``, and wait until ``deadline``."""
        del budget
        self.closed = True
        children = self._supervisor.live_children()
        for child in children:
            child.state = ChildState.STOPPING
        by_id = {c.actor_id: c for c in children}
        stop_in_ranks({a: self._stop_ranks.get(a, 0) for a in by_id},
                      lambda actor_id: self._transport.ask(self._address(by_id[actor_id]),
                                                           stop_message()),
                      self._tell, deadline)

    def kill_remaining(self) -> None:
        """No restart after this: every host's Ray actor ends."""
        self.closed = True
        self._supervisor.close()
        for child in list(self._supervisor.children.values()):
            with contextlib.suppress(Exception):  # gone already
                ray.kill(child.handle, no_restart=True)
            if child.state is not ChildState.DEAD:
                child.state = ChildState.STOPPED

    def close(self) -> None:
        """Withdraw the transport and the registry, wait for this node's hosts to exit,
        remove the scratch dir."""
        self._registry.close()
        withdraw(self._transport)
        self._transport.forget()
        self._supervisor.forget()
        with _open_lock:
            _open.discard(self)
            if not _open:
                replies.release_inbox()
        here = [c.pid for c in self._supervisor.children.values() if c.node_id == self.node_id]
        deadline = time.monotonic() + _EXIT_WAIT
        for pid in here:
            while not process_gone(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
        shutil.rmtree(self._dir, ignore_errors=True)
        disconnect(self._owns_ray)


__all__ = ["DEFAULT_WORKER_OPTIONS", "RayProcessHost"]
