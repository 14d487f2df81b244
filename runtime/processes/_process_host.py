"""``ProcessHost``: actors in OS processes of their own, supervised, behind one node.

The generic half of an ``ActorSystem``: it spawns an actor into a new process
from a spec, waits until it is ready, restarts it by its ``RestartPolicy``,
mirrors the system's registry, and stops everything in rank order. Layers on
top (the durable services) use only its public methods and ``ProcessHooks``,
told by actor id; nothing about sockets, sentinels or exit codes leaks out.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import shutil
import time
from typing import Any, TypeVar

import pykka

from actors import tracelog
from actors._compat.pykka import stop_message
from runtime import serialization, tracing
from runtime._compat import multiprocess as mp_compat
from runtime.config import RestartPolicy, SystemConfig
from runtime.errors import ActorDeadError, SpawnError, Timeout
from runtime.processes._child import BootSpec, child_main
from runtime.processes._exits import ProcessExit
from runtime.processes._hooks import HookList, ProcessHooks
from runtime.processes._host import HostedActor
from runtime.processes._host_parts import ActorNames, stop_in_ranks
from runtime.processes._lifeline import ChildProcess
from runtime.processes._placement import Placement
from runtime.processes._registry import SystemRegistry
from runtime.processes._socket_dirs import make_socket_dir
from runtime.processes._supervisor import Child, ChildState, Supervisor
from runtime.remote._actor_ref import ActorRef
from runtime.transport._future import Future
from runtime.wire._node import Node

A = TypeVar("A", bound=pykka.Actor)

log = tracelog.get_logger("runtime.processes")

_START_ATTEMPTS = 5  # a start the forkserver died under is made again, this many times in all
_PRELOAD = ["runtime.processes", "runtime.system"]  # what the forkserver imports once


class ProcessHost:
    """Spawns, supervises and stops the actor processes of one system.

        host = ProcessHost("sys-1", SystemConfig())
        ref = host.spawn(Counter, name="counter")
        host.stop_children(time.monotonic() + 5, 5.0)
        host.kill_remaining(); host.close()
    """

    def __init__(self, system_id: str, config: SystemConfig) -> None:
        self.system_id = system_id
        self.config = config
        self._secret = secrets.token_bytes(32)
        self._ctx = mp_compat.context(config.start_method, _PRELOAD)
        self._names = ActorNames()
        self._hooks = HookList()
        self._stop_ranks: dict[str, int] = {}
        self.closed = False
        self._dir = make_socket_dir()  # mode 0700: owner only; stale ones removed (and logged)
        self._node = Node(
            system_id=system_id, address=os.path.join(self._dir, "service.sock"),
            secret=self._secret, role="service", mailbox_window=config.mailbox_window,
            send_timeout=config.send_timeout, spin_wait=config.spin_wait,
        ).start()
        self._supervisor = Supervisor(self._start_process, self._new_ready)
        self._registry = SystemRegistry(self._node)  # mirrored into pykka.ActorRegistry
        self._supervisor.on_exit = self._process_exited
        self._supervisor.on_crash = lambda actor_id: self._tell("on_crash", actor_id)
        self._supervisor.on_give_up = lambda actor_id, why: self._tell("on_give_up", actor_id, why)
        self._supervisor.on_recovered = lambda actor_id: self._tell("on_recovered", actor_id)
        self._supervisor.on_boot_failed = (
            lambda actor_id, error: self._tell("on_boot_failed", actor_id, error))
        self._supervisor.on_ready = lambda actor_id: self._tell("on_ready", actor_id)
        mp_compat.helpers_acquired(self)

    @property
    def scratch_dir(self) -> str:
        """A private directory (mode 0700) of this host, removed when it closes."""
        return self._dir

    # -- hooks -------------------------------------------------------------------------

    def add_hooks(self, hooks: ProcessHooks) -> None:
        """Be told of crashes, give-ups, recoveries, failed boots, restarts and stop ranks."""
        self._hooks.add(hooks)

    def _tell(self, hook: str, *args: Any) -> None:
        self._hooks.tell(hook, *args)

    def _process_exited(self, actor_id: str, address: str) -> None:
        self._registry.process_exited(actor_id, address)
        self._node.disconnect(address, "its process exited")

    # -- spawning -----------------------------------------------------------------------

    def spawn(self, actor_class: type[A], args: tuple[Any, ...] = (),
              kwargs: dict[str, Any] | None = None, *, name: str | None = None,
              restart: RestartPolicy | None = None, registered: bool = True,
              stop_rank: int = 0, placement: Placement = Placement.ANY) -> ActorRef[A]:
        """Start ``actor_class(*args, **kwargs)`` in a new process; its ref once it is ready.

        ``registered=False`` keeps it out of the system's registry (the framework's own
        actors); at shutdown lower ``stop_rank`` processes are stopped first. Every
        process of this host is on this machine: ``placement`` changes nothing here.

            ref = host.spawn(Counter, (0,), name="counter")
        """
        if self.closed:
            raise ActorDeadError("this actor system is shut down; start a new one")
        number, name = self._names.reserve(actor_class, name, restart)
        actor_id = f"a{number}"
        del placement  # one machine: every process is beside the service
        try:
            ref: ActorRef[A] = self._spawn(actor_class, args, kwargs or {}, actor_id, name,
                                           restart, registered)
        except BaseException:
            self._names.release(name)
            raise
        self._stop_ranks[actor_id] = stop_rank
        return ref

    def _spawn(self, actor_class: type[A], args: tuple[Any, ...], kwargs: dict[str, Any],
               actor_id: str, name: str, restart: RestartPolicy | None,
               registered: bool) -> ActorRef[A]:
        payload = serialization.dumps_or_raise(
            (actor_class, args, kwargs), f"actor {name!r} (its class or arguments)"
        )
        config = self.config
        grace = 0.0 if restart is None else restart.max_backoff + config.spawn_timeout
        spec = BootSpec(
            system_id=self.system_id, secret=self._secret,
            address=os.path.join(self._dir, f"{actor_id}.sock"), actor_id=actor_id, name=name,
            role=f"actor:{name}", payload=payload, parent_address=self._node.address,
            ready_reply_id=0, trace_path=config.trace_path,
            mailbox_window=config.mailbox_window, send_timeout=config.send_timeout,
            spin_wait=config.spin_wait, class_name=actor_class.__name__, restart_grace=grace,
            app_logging=tracing.app_config_for_children(), registered=registered,
            service_pid=os.getpid(),
        )
        spec, process, ready = self._boot(spec, restart)
        self._supervisor.add(Child(spec, restart, process, ready=ready))
        log.debug("actor.spawned", name=name, pid=process.pid)
        return ActorRef(system_id=self.system_id, address=spec.address, actor_id=actor_id,
                        name=name, class_name=actor_class.__name__, restart_grace=grace)

    def _new_ready(self) -> tuple[int, Future[Any]]:
        fut: Future[Any] = Future()
        return self._node.register(fut, None), fut

    def _start_process(self, spec: BootSpec) -> ChildProcess:
        # The registry as it is now (a restart reuses its spec): the process boots with it.
        spec = dataclasses.replace(spec, registry_snapshot=self._registry.snapshot())
        for attempt in range(1, _START_ATTEMPTS):
            try:
                return self._fork(spec)
            except (EOFError, ConnectionError) as exc:
                # The forkserver died under this start (killed while it forked): nothing was
                # started, and the next start launches a new forkserver once the old is gone.
                if self.config.start_method != "forkserver":
                    raise
                log.warning("process.start_retried", name=spec.name, attempt=attempt,
                            error=repr(exc), reason="the forkserver went away during the start")
                time.sleep(0.05 * attempt)  # backoff: its exit may not be complete yet
        return self._fork(spec)  # the last attempt: what it raises is the caller's

    def _fork(self, spec: BootSpec) -> ChildProcess:
        process = self._ctx.Process(target=child_main, args=(spec,), name=f"da-{spec.name}")
        process.start()
        return ChildProcess(process)

    def _boot(self, spec: BootSpec, restart: RestartPolicy | None,
              ) -> tuple[BootSpec, ChildProcess, Future[Any]]:
        """Start ``spec``'s process and wait until it is ready, within ``spawn_timeout``.

        A process killed by a signal before it was ready (``kill -9`` while the system
        starts) is started again if its actor has a ``RestartPolicy``, as it would be
        once running; one that exits by itself (its constructor raised) is a
        ``SpawnError`` at once.
        """
        deadline = time.monotonic() + self.config.spawn_timeout
        while True:
            reply_id, ready = self._new_ready()
            spec = dataclasses.replace(spec, ready_reply_id=reply_id)
            process = self._start_process(spec)
            code = self._await_ready(ready, process, spec.name, deadline)
            if code is None:
                return spec, process, ready
            if restart is None or code >= 0 or time.monotonic() > deadline:
                raise SpawnError(
                    f"the process of actor {spec.name!r} exited with code {code} "
                    "before it was ready; see the trace or stderr for why"
                )
            log.warning("actor.restarted_before_ready", name=spec.name, exitcode=code)

    def _await_ready(self, ready: Future[Any], process: ChildProcess, name: str,
                     deadline: float) -> int | None:
        """None once ready; the exit code if the process exited first."""
        while True:
            try:
                ready.get(timeout=0.05)
                return None
            except Timeout:
                if process.exitcode is not None:
                    return process.exitcode
                if time.monotonic() > deadline:
                    process.kill()
                    raise SpawnError(
                        f"actor {name!r} was not ready within spawn_timeout="
                        f"{self.config.spawn_timeout}s"
                    ) from None

    # -- actors in this process, and what the host knows --------------------------------

    def host_here(self, actor_id: str, cls: type[pykka.Actor], args: tuple[Any, ...] = (),
                  kwargs: dict[str, Any] | None = None) -> HostedActor:
        """Start ``cls`` in this process, reachable from every process at ``ref_here``.

            hosted = host.host_here("coordinator", CoordinatorActor, (), {...})
        """
        hosted = HostedActor(self._node, actor_id, actor_id)
        hosted.start(cls, args, kwargs or {})
        return hosted

    def hosted_here(self, actor_id: str) -> HostedActor | None:
        """The actor ``actor_id`` hosted in this process, if one is."""
        found = self._node.actors.get(actor_id)
        return found if isinstance(found, HostedActor) else None

    def ref_here(self, actor_id: str, class_name: str) -> ActorRef[Any]:
        """The system-wide ref of the actor ``actor_id`` hosted in this process."""
        return ActorRef(system_id=self.system_id, address=self._node.address,
                        actor_id=actor_id, name=actor_id, class_name=class_name)

    def processes(self) -> dict[str, int]:
        """Each running process by name, with its pid (see ``ActorSystem.processes``)."""
        return {c.spec.name: c.process.pid for c in self._supervisor.live_children()}

    def pid_of(self, actor_id: str) -> int | None:
        """The pid of ``actor_id``'s process as last started (None for no such actor).

            os.kill(host.pid_of(ref.actor_id), signal.SIGKILL)
        """
        child = self._supervisor.children.get(actor_id)
        return None if child is None else int(child.process.pid)

    def exit_of(self, actor_id: str) -> ProcessExit | None:
        """How ``actor_id``'s process last ended (None while it runs, or for no such actor).

            str(host.exit_of(ref.actor_id))  # "SIGKILL", "exit code 3", ...
        """
        child = self._supervisor.children.get(actor_id)
        if child is None or child.process.exitcode is None:
            return None
        return ProcessExit.of(child.process.exitcode, child.ready)

    def state_of(self, actor_id: str) -> ChildState | None:
        """Where ``actor_id``'s process is in its life (None for no such actor).

            wait_until(lambda: host.state_of(ref.actor_id) is ChildState.DEAD)
        """
        child = self._supervisor.children.get(actor_id)
        return None if child is None else child.state

    def pids(self, running_only: bool = False) -> set[int]:
        """The pids of the processes the host tracks (the last start of each), or of those
        not known to have exited."""
        return {c.process.pid for c in self._supervisor.children.values()
                if not running_only or c.process.exitcode is None}

    def mark_down(self, actor_id: str, why: str) -> None:
        """Senders to ``actor_id`` fail at once with ``why`` (none waits out a restart grace)."""
        child = self._supervisor.children.get(actor_id)
        if child is not None:
            self._node.mark_down(child.spec.address, why)

    def mark_up(self, actor_id: str) -> None:
        """Senders to ``actor_id`` wait for it again, as for any restart."""
        child = self._supervisor.children.get(actor_id)
        if child is not None:
            self._node.mark_up(child.spec.address)

    # -- stopping -------------------------------------------------------------------------

    def stop_children(self, deadline: float, budget: float) -> None:
        """Ask every process to stop, by ascending ``stop_rank``, and wait until ``deadline``."""
        self.closed = True
        node = self._node
        node.shutting_down = True
        children = self._supervisor.live_children()
        told = []
        for child in children:
            child.state = ChildState.STOPPING
            with contextlib.suppress(Exception):  # already gone
                told.append(node.send_control(child.spec.address, "shutdown",
                                              child.spec.actor_id))
        # Every process knows the stop is on purpose before any peer of it goes (else it
        # warns about them); bounded, so a wedged child cannot hold the shutdown up.
        told_by = time.monotonic() + min(1.0, budget)
        for ack in told:
            with contextlib.suppress(Exception):
                ack.get(timeout=max(0.0, told_by - time.monotonic()))
        by_id = {c.spec.actor_id: c for c in children}

        def stop(actor_id: str) -> Future[Any]:
            spec = by_id[actor_id].spec
            fut: Future[Any] = Future()
            node.send_message(spec.address, actor_id, spec.name, stop_message(), fut, None)
            return fut

        stop_in_ranks({a: self._stop_ranks.get(a, 0) for a in by_id}, stop, self._tell,
                      deadline)
        for child in children:
            child.process.join(timeout=max(0.0, deadline - time.monotonic()))

    def kill_remaining(self) -> None:
        """No restart after this; every process still running is killed, each on its own."""
        self.closed = True
        quietly("stop the supervisor", self._supervisor.close)
        for child in list(self._supervisor.children.values()):
            quietly(f"end the process of {child.spec.name!r}", _kill_if_running, child)

    def close(self) -> None:
        """Free the registry, the node, the scratch directory and multiprocess's helpers."""
        quietly("close the registry", self._registry.close)
        quietly("close the transport", self._node.close)
        shutil.rmtree(self._dir, ignore_errors=True)
        quietly("stop multiprocess's helpers", mp_compat.helpers_released, self,
                self.config.start_method == "forkserver")


def quietly(what: str, step: Any, *args: Any) -> None:
    """Run one step of a shutdown; a failure is logged, and the shutdown goes on."""
    try:
        step(*args)
    except Exception as exc:
        log.error("system.shutdown_step_failed", step=what, error=repr(exc),
                  action="going on with the shutdown")


def _kill_if_running(child: Child) -> None:
    if child.process.exitcode is None:
        log.warning("actor.killed", name=child.spec.name, reason="did not stop in time")
        child.process.kill()
        child.process.join(timeout=2)
    child.state = ChildState.STOPPED


__all__ = ["ProcessHost", "quietly"]
