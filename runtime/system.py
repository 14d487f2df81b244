"""``ActorSystem``: the composition root that puts actors into processes and wires them."""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import math
import os
import secrets
import select
import shutil
import threading
import time
import uuid
import weakref
from collections.abc import Iterable
from typing import Any, TypeVar

import multiprocess
import pykka

from actors import tracelog
from actors.errors import CallbackFailedError
from actors.policies import Completion
from actors.records._status import ExecutionStatus
from runtime import admission, serialization, tracing
from runtime.aio import AsyncSystem
from runtime.config import RestartPolicy, SystemConfig
from runtime.durable._executions import (
    Execution,
    check_timeout,
    map_specs,
    new_execution_id,
    parallel_specs,
    validate_execution_id,
)
from runtime.durable._services import DurableServices, recover_at_start
from runtime.errors import ActorDeadError, ConfigurationError, SpawnError, Timeout
from runtime.processes._child import BootSpec, child_main
from runtime.processes._lifeline import ChildProcess
from runtime.processes._registry import SystemRegistry
from runtime.processes._socket_dirs import make_socket_dir
from runtime.processes._supervisor import Child, Supervisor
from runtime.remote._actor_ref import ActorRef
from runtime.transport._future import Future
from runtime.wire._node import Node

A = TypeVar("A", bound=pykka.Actor)

log = tracelog.get_logger("runtime.system")

_live_systems: weakref.WeakSet[ActorSystem] = weakref.WeakSet()
_forkserver_lock = threading.Lock()


def _without_main(original: Any) -> Any:
    """Wrap multiprocess's preparation data so our children never re-run ``__main__``.

    With spawn and forkserver, multiprocess re-imports the service's main script in
    every child (hence the ``if __name__ == "__main__"`` idiom). Our children need
    nothing from it: actor classes travel by value with cloudpickle. So for our own
    processes (named ``da-*``) the main-module entries are dropped, and a service
    script works without that idiom.
    """

    def preparation_data(name: str) -> Any:
        data = original(name)
        if name.startswith("da-"):
            data.pop("init_main_from_path", None)
            data.pop("init_main_from_name", None)
        return data

    preparation_data.__wrapped__ = original  # type: ignore[attr-defined]
    return preparation_data


def _patch_preparation() -> None:
    from multiprocess import spawn

    if not hasattr(spawn.get_preparation_data, "__wrapped__"):
        spawn.get_preparation_data = _without_main(spawn.get_preparation_data)


def _context(method: str) -> Any:
    _patch_preparation()
    ctx = multiprocess.get_context(method)
    if method == "forkserver":
        # Children fork from a server that has already imported the runtime, so a
        # spawn costs a fork, not an interpreter start (see docs/design.md).
        ctx.set_forkserver_preload(["runtime.processes", "runtime.system"])
    return ctx


class _TrackerWatch:
    """Whether the service relies on multiprocess's resource tracker for resources of its own.

    Stopping the tracker makes it unlink everything still registered with it: a
    semaphore of the service's own ``multiprocess`` lock or pool, which a process
    started later can then no longer open ("leaked semaphore" warnings and a
    ``FileNotFoundError`` in the child). Every registration of this process
    passes through the tracker's ``_send``, so a thin wrapper there keeps the
    names registered and not yet unregistered; a tracker that was running before
    the first system started is the service's too.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._registered: set[tuple[str, str]] = set()
        self.found_running = False  # a tracker ran before the first live system started

    def install(self) -> None:
        """Wrap the tracker's ``_send`` once per process; note whether it already runs."""
        from multiprocess import resource_tracker

        tracker = resource_tracker._resource_tracker
        if tracker._pid is not None:
            self.found_running = True
        send = tracker._send
        if getattr(send, "__wrapped__", None) is not None:
            return

        def counting_send(cmd: str, name: str, rtype: str) -> None:
            send(cmd, name, rtype)
            with self._lock:
                if cmd == "REGISTER":
                    self._registered.add((name, rtype))
                elif cmd == "UNREGISTER":
                    self._registered.discard((name, rtype))

        counting_send.__wrapped__ = send  # type: ignore[attr-defined]
        tracker._send = counting_send

    def service_uses_it(self) -> str | None:
        """Why the tracker must keep running, or None when only our systems used it."""
        with self._lock:
            held = len(self._registered)
        if held:
            return f"the service holds {held} multiprocess resource(s) registered with it"
        if self.found_running:
            return "it was running before the system started"
        return None


_tracker_watch = _TrackerWatch()
_START_ATTEMPTS = 5  # a start the forkserver died under is made again, this many times in all


def _stop_forkserver() -> None:
    """Stop the forkserver and its resource tracker once nothing in this process needs them.

    Both are children of the service process; left running they would outlive
    the system that started them. But the service may fork processes of its own
    from the same forkserver (a ``multiprocess`` forkserver pool): each of them
    holds both helpers' pipes, and the tracker, once stopped, would unlink the
    semaphores those processes still use when it exits. So while the forkserver
    has live children (ours are gone by now) both are left running; they go with
    the service process. The tracker is left running, too, while the service holds
    resources of its own registered with it (``_TrackerWatch``). A stopped helper
    gets ``_HELPER_EXIT_WAIT`` to exit (something forked from it that we could not
    see keeps it up: it exits with that, reaped by a daemon thread), and the next
    user starts a fresh one.
    """
    from multiprocess import forkserver, resource_tracker, util

    with _forkserver_lock:
        if _live_systems:
            return
        server = forkserver._forkserver
        with server._lock:
            pid, alive, address = (server._forkserver_pid, server._forkserver_alive_fd,
                                   server._forkserver_address)
            if pid is not None and _has_live_children(pid):
                log.debug("process.forkserver_kept", pid=pid,
                          reason="processes of the service's own were forked from it")
                return
            if pid is not None and alive is not None:
                server._forkserver_pid = server._forkserver_alive_fd = None
                server._forkserver_address = None
                os.close(alive)  # EOF on its "alive" pipe asks it to exit
                _reap(pid, "forkserver")
                if address and not util.is_abstract_socket_namespace(address):
                    with contextlib.suppress(OSError):
                        os.unlink(address)
        kept_because = _tracker_watch.service_uses_it()
        if kept_because is not None:
            log.debug("process.resource_tracker_kept", reason=kept_because)
            return
        tracker = resource_tracker._resource_tracker
        with tracker._lock:
            if tracker._fd is not None and tracker._pid is not None:
                pid = tracker._pid
                os.close(tracker._fd)
                tracker._fd = tracker._pid = None
                _reap(pid, "resource tracker")


def _has_live_children(pid: int) -> bool:
    """Whether a process other than a zombie has ``pid`` as its parent (False without /proc)."""
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    found = _state_and_parent(f.read())
            except OSError:
                continue  # gone meanwhile
            if found is not None and found[0] != "Z" and found[1] == pid:
                return True
    return False


def _state_and_parent(stat: str) -> tuple[str, int] | None:
    """A ``/proc/<pid>/stat`` line's state and parent pid; None for a process gone meanwhile.

    A process that exits while it is read can leave the read empty (seen in CI).
    The name, in parentheses, may hold spaces and parentheses itself: read after the last.
    """
    end = stat.rfind(")")
    fields = stat[end + 2:].split(maxsplit=2) if end >= 0 else []
    if len(fields) < 2 or not fields[1].isdigit():
        return None
    return fields[0], int(fields[1])


_HELPER_EXIT_WAIT = 2.0  # seconds a stopped forkserver or tracker gets to exit before we go on


def _reap(pid: int, what: str) -> None:
    """Collect the exit of child ``pid``, or hand that to a daemon thread after a short wait."""
    with contextlib.suppress(OSError):
        pidfd = os.pidfd_open(pid)
        try:
            select.select([pidfd], [], [], _HELPER_EXIT_WAIT)  # readable once it has exited
        finally:
            os.close(pidfd)
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return  # reaped already
    if not done:
        log.debug("process.helper_still_used", helper=what, pid=pid,
                  reason="processes forked from it still run; it exits with them")
        threading.Thread(target=_wait_for, args=(pid,), name="da-reap", daemon=True).start()


def _wait_for(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


class ActorSystem(AsyncSystem):
    """Hosts actors in OS processes of their own and lets any process talk to any actor.

        with ActorSystem(config=SystemConfig(workers=2)) as system:
            ref = system.spawn(Counter, name="counter")
            assert ref.ask("count") == 0

    Leaving the block, ``shutdown()``, an exception, Ctrl-C, or the death of the
    service process (any signal) leaves no child process behind. In a coroutine,
    ``async with ActorSystem(...) as system`` starts and stops it off the loop
    (``runtime.aio``).
    """

    def __init__(self, store: str | None = None, config: SystemConfig | None = None) -> None:
        if config is not None and not isinstance(config, SystemConfig):
            raise ConfigurationError(f"config must be a SystemConfig, got {type(config).__name__}")
        self.config = config or SystemConfig()
        self.store_url = admission.check_store(store)
        self.id = f"sys-{uuid.uuid4().hex[:12]}"
        self._secret = secrets.token_bytes(32)
        self._ctx = _context(self.config.start_method)
        self._names: set[str] = set()
        self._counter = 0
        self._lock = threading.Lock()
        self._durable_lock = threading.Lock()
        self._closed = False
        self._closed_event = threading.Event()
        # The framework's own chain: structlog's configuration stays the application's.
        tracing.configure(system_id=self.id, role="service", trace_path=self.config.trace_path)
        self._dir = make_socket_dir()  # mode 0700: owner only; stale ones removed (and logged)
        self.node = Node(
            system_id=self.id, address=os.path.join(self._dir, "service.sock"),
            secret=self._secret, role="service", mailbox_window=self.config.mailbox_window,
            send_timeout=self.config.send_timeout, spin_wait=self.config.spin_wait,
        ).start()
        self._supervisor = Supervisor(self._start_process, self._new_ready)
        self._registry = SystemRegistry(self.node)  # mirrored into pykka.ActorRegistry
        self._supervisor.on_exit = self._process_exited
        self._spawning_services = threading.local()  # the system's own actors: unregistered
        self._durable: DurableServices | None = None
        with _forkserver_lock:
            if not _live_systems:
                _tracker_watch.install()
            _live_systems.add(self)
        atexit.register(self.shutdown)
        log.info("system.started", system=self.id, start_method=self.config.start_method)
        if self.config.recover:
            # Executions left unfinished in the store (a crashed service, another instance
            # that died) are taken over without anyone calling map() again.
            threading.Thread(target=recover_at_start, args=(self, self.config),
                             name="da-recover", daemon=True).start()

    # -- context manager --------------------------------------------------------

    def __enter__(self) -> ActorSystem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def durable_started(self) -> bool:
        return self._durable is not None

    def start_durable(self) -> None:
        """Start the durable services now (they start by themselves on first use)."""
        self._services()

    def wait_closed(self, timeout: float) -> bool:
        """Block until the system is shut down or ``timeout`` seconds pass; whether it is."""
        return self._closed_event.wait(timeout)

    # -- spawning -----------------------------------------------------------------

    def _new_ready(self) -> tuple[int, Future[Any]]:
        fut: Future[Any] = Future()
        return self.node.register(fut, None), fut

    def _process_exited(self, actor_id: str, address: str) -> None:
        self._registry.process_exited(actor_id, address)
        self.node.disconnect(address, "its process exited")

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

    def spawn(
        self,
        actor_class: type[A],
        *args: Any,
        name: str | None = None,
        restart: RestartPolicy | None = None,
        **kwargs: Any,
    ) -> ActorRef[A]:
        """Start ``actor_class(*args, **kwargs)`` in a new process; return its ref.

        ``actor_class`` is any ``pykka.ThreadingActor`` subclass, also one defined in
        ``__main__`` or in a function. The constructor's exception is re-raised here.
        """
        if self._closed:
            raise ActorDeadError("this actor system is shut down; start a new one")
        if not (isinstance(actor_class, type) and issubclass(actor_class, pykka.ThreadingActor)):
            raise ConfigurationError(
                f"spawn() takes a pykka.ThreadingActor subclass, got {actor_class!r}"
            )
        admission.check_actor_options(name, restart)
        with self._lock:
            self._counter += 1
            number = self._counter
            if name is None:
                name = f"{actor_class.__name__}-{number}"
            if name in self._names:
                raise ConfigurationError(f"an actor named {name!r} already exists in this system")
            self._names.add(name)
        actor_id = f"a{number}"
        payload = serialization.dumps_or_raise(
            (actor_class, args, kwargs), f"actor {name!r} (its class or arguments)"
        )
        grace = 0.0 if restart is None else restart.max_backoff + self.config.spawn_timeout
        spec = BootSpec(
            system_id=self.id, secret=self._secret,
            address=os.path.join(self._dir, f"{actor_id}.sock"), actor_id=actor_id, name=name,
            role=f"actor:{name}", payload=payload, parent_address=self.node.address,
            ready_reply_id=0, trace_path=self.config.trace_path,
            mailbox_window=self.config.mailbox_window, send_timeout=self.config.send_timeout,
            spin_wait=self.config.spin_wait, class_name=actor_class.__name__, restart_grace=grace,
            app_logging=tracing.app_config_for_children(),
            registered=not getattr(self._spawning_services, "active", False),
            service_pid=os.getpid(),
        )
        try:
            spec, process, ready = self._boot(spec, restart)
        except BaseException:
            with self._lock:
                self._names.discard(name)  # nothing runs under it: the name can be used again
            raise
        self._supervisor.add(Child(spec, restart, process, ready=ready))
        log.debug("actor.spawned", name=name, pid=process.pid)
        return ActorRef(system_id=self.id, address=spec.address, actor_id=actor_id, name=name,
                        class_name=actor_class.__name__, restart_grace=grace)

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

    # -- durable executions -------------------------------------------------------

    def _services(self) -> DurableServices:
        if self._closed:
            raise ActorDeadError("this actor system is shut down; start a new one")
        with self._durable_lock:
            if self._closed:
                raise ActorDeadError("this actor system is shut down; start a new one")
            if self._durable is None:
                self._spawning_services.active = True
                try:
                    self._durable = DurableServices(self)
                finally:
                    self._spawning_services.active = False
            return self._durable

    def map(
        self,
        branch_class: type[Any],
        items: Iterable[Any],
        *,
        max_concurrency: int | None = None,
        execution_id: str | None = None,
        completion: Completion | None = None,
        timeout: float | None = None,
    ) -> Execution:
        """Run ``branch_class().run(ctx, item)`` for every item, durably; the execution handle.

        ``execution_id`` names the execution: if the store already holds it, from this
        system or any other on the store, this is a handle to it (the system holding
        its lease runs it, the others observe it); a different class or different
        items under that id raise ``ExecutionMismatchError``. ``completion`` defaults
        to fail-fast (``Completion.all_successful()``). ``timeout`` is a deadline in
        seconds: past it the execution is cancelled.

            run = system.map(Resize, ["a.png", "b.png"], max_concurrency=100)
            thumbnails = run.result(timeout=60).values()
        """
        admission.check_concurrency(max_concurrency)
        admission.check_completion(completion)
        eid = validate_execution_id(new_execution_id() if execution_id is None else execution_id)
        specs = map_specs(eid, branch_class, items)
        admission.check_branches("map", specs)  # what the coordinator cannot pickle kills it
        return self._start("map", specs, eid, max_concurrency, completion, timeout)

    def parallel(
        self,
        branches: Iterable[Any],
        *,
        execution_id: str | None = None,
        completion: Completion | None = None,
        timeout: float | None = None,
    ) -> Execution:
        """Run different branch classes side by side (classes, or ``(cls, input)`` pairs).

            run = system.parallel([FetchPrices, (FetchStock, "sku-1")], execution_id="p-1")
        """
        admission.check_completion(completion)
        eid = validate_execution_id(new_execution_id() if execution_id is None else execution_id)
        specs = parallel_specs(eid, branches)
        admission.check_branches("parallel", specs)
        return self._start("parallel", specs, eid, None, completion, timeout)

    def _start(self, kind: str, specs: Any, eid: str, max_concurrency: int | None,
               completion: Completion | None, timeout: float | None) -> Execution:
        deadline = check_timeout(timeout, f"{kind}")
        if deadline == 0:
            raise ConfigurationError(f"{kind}(timeout=0) would cancel it at once; give seconds > 0")
        return self._services().start(kind, specs, eid, max_concurrency,
                                      completion or Completion.all_successful(), deadline,
                                      self.config.spawn_timeout)

    def execution(self, execution_id: str) -> Execution:
        """The handle of a stored execution, from any system on the store.

        Raises ``UnknownExecutionError`` if the store holds none.

            run = system.execution("nightly-1")
            run.status(), run.progress()
        """
        return self._services().execution(validate_execution_id(execution_id))

    def executions(self, status: str | None = None) -> list[Execution]:
        """Handles of the stored executions (or those with ``status``), newest first.

            [run.id for run in system.executions(status="FAILED")]
        """
        wanted = None
        if status is not None:
            try:
                wanted = ExecutionStatus(status)
            except ValueError:
                raise ConfigurationError(
                    f"status={status!r} is not one of "
                    f"{', '.join(s.value for s in ExecutionStatus)}") from None
        return self._services().executions(wanted)

    def cancel(self, execution_id: str) -> bool:
        """Cancel an execution from any system: no new step starts, suspended branches never
        resume, ``result()`` raises ``ExecutionCancelledError``. False if it had finished.

            system.cancel("nightly-1")
        """
        return self._services().cancel(validate_execution_id(execution_id))

    def retry(self, execution_id: str) -> Execution:
        """Run a FAILED or CANCELLED execution again from its log, on this system.

        Steps that succeeded are not run again; failed branches run again.

            run = system.retry("nightly-1"); run.result(timeout=600)
        """
        return self._services().retry(validate_execution_id(execution_id))

    def delete(self, execution_id: str) -> bool:
        """Delete a finished execution: its rows, and the blobs no other execution refers to.

        Raises ``ExecutionStateError`` for an unfinished one (cancel it first); False if
        there was none.
        """
        return self._services().delete(validate_execution_id(execution_id))

    def complete_callback(self, callback_id: str, value: Any = None) -> bool:
        """Complete ``ctx.create_callback``'s id with ``value``; its branch resumes once.

        Returns True, or False when it was already completed with the same value
        (idempotent, and reported). Raises ``UnknownCallbackError`` for an id the
        store does not hold, ``CallbackTimeoutError`` once it timed out, and
        ``CallbackError`` if it was settled with another outcome.

            system.complete_callback(request["callback_id"], {"approved": True})
        """
        return self._services().settle_callback(callback_id, True, value)

    def fail_callback(self, callback_id: str, error: BaseException | str) -> bool:
        """Fail the callback: ``ctx.wait_for_callback`` raises ``error`` in its branch."""
        if not isinstance(error, BaseException):
            error = CallbackFailedError(str(error))
        return self._services().settle_callback(callback_id, False, error)

    def metrics(self) -> dict[str, int]:
        """Monotonic counters since the system started; their names are part of the API.

        | name | counts |
        |---|---|
        | `checkpoint.store_calls` | store round trips of the checkpoint actor (writes and reads) |
        | `checkpoint.batches` | batches written, one store transaction each |
        | `checkpoint.updates` | updates written |
        | `checkpoint.empty_requests` | empty checkpoints (log requests of resuming branches) |
        | `checkpoint.empty_batches` | batches that answered at least one empty checkpoint |
        | `scheduler.deferred` | suspension checkpoints deferred |
        | `scheduler.cancelled` | deferred checkpoints cancelled by an early resume |
        | `scheduler.applied` | deferred checkpoints written |
        | `scheduler.duplicate_resumes` | resumes dropped: the suspension had resumed already |
        | `digest.blobs_written` | distinct blobs stored |
        | `digest.dedup_hits` | saves whose blob was stored already |
        | `branch.replays` | branch runs that started from a non-empty log |
        | `branch.evictions` | branches that left their worker thread while suspended |
        | `step.executions` | step functions actually called (not answered from the log) |

        Other counters the actors keep (``checkpoint.fenced``, ``branch.runs``, ...)
        are there too, for diagnosis; their names may change.

            system.metrics()["step.executions"]
        """
        return self._services().metrics()

    def processes(self) -> dict[str, int]:
        """Each running process of the system by name, with its pid.

        The framework's (``checkpoint``, ``scheduler``, ``digest``, ``worker-0``, ...)
        once the first ``map``/``parallel`` started them, and every spawned actor by
        its name; a restarted process shows its new pid, one waiting for its
        restart is absent. ``ps`` shows the same names: ``durable-actors: <name>``.

            os.kill(system.processes()["worker-0"], signal.SIGSTOP)
        """
        return {c.spec.name: c.process.pid for c in self._supervisor.live_children()}

    # -- shutdown -------------------------------------------------------------------

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop every actor and process of the system; idempotent, and once begun it never raises.

        Each actor gets ``stop_timeout`` seconds (or ``timeout``) to finish the
        messages already in its inbox; a process still running after that is
        killed, whatever state it is in (stopped by a signal, restarting, its
        actor stuck). A step that fails on the way is logged and the rest goes on.
        """
        if timeout is not None and not 0 <= timeout < math.inf:  # before anything is closed
            raise ValueError(f"shutdown(timeout={timeout!r}): give finite seconds >= 0, or None "
                             "for SystemConfig.stop_timeout")
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._closed_event.set()
        with self._durable_lock:  # a start under way ends first; none begins after
            pass
        budget = self.config.stop_timeout if timeout is None else timeout
        deadline = time.monotonic() + budget
        try:
            if self._durable is not None:
                _quietly("close the durable services", self._durable.close)
            _quietly("stop the actors", self._stop_children, deadline, budget)
        finally:
            self._release()
        log.info("system.stopped", system=self.id)

    def _stop_children(self, deadline: float, budget: float) -> None:
        self.node.shutting_down = True
        children = self._supervisor.live_children()
        told = []
        for child in children:
            child.state = "stopping"
            with contextlib.suppress(Exception):  # already gone
                told.append(self.node.send_control(child.spec.address, "shutdown",
                                                   child.spec.actor_id))
        # Every process knows the stop is on purpose before any peer of it goes (else it
        # warns about them); bounded, so a wedged child cannot hold the shutdown up.
        told_by = time.monotonic() + min(1.0, budget)
        for ack in told:
            with contextlib.suppress(Exception):
                ack.get(timeout=max(0.0, told_by - time.monotonic()))
        # Users' actors and workers first, the scheduler next, the checkpoint actor last:
        # everyone else's final writes and replies go through it.
        for rank in (0, 1, 2):
            if rank == 2 and self._durable is not None:
                # Workers are stopped: give the leases up, so another system takes over now.
                self._durable.release_leases(max(0.1, min(2.0, deadline - time.monotonic())))
            stops = []
            for child in (c for c in children if _stop_rank(c.spec.name) == rank):
                fut: Future[Any] = Future()
                try:
                    self.node.send_message(child.spec.address, child.spec.actor_id,
                                           child.spec.name, pykka.messages._ActorStop(), fut, None)
                    stops.append(fut)
                except Exception:
                    pass  # already gone
            for fut in stops:
                with contextlib.suppress(Exception):
                    fut.get(timeout=max(0.0, deadline - time.monotonic()))
        for child in children:
            child.process.join(timeout=max(0.0, deadline - time.monotonic()))

    def _release(self) -> None:
        """Kill what still runs, then free the system's resources; each step on its own."""
        _quietly("stop the supervisor", self._supervisor.close)  # no restart after this
        for child in list(self._supervisor.children.values()):
            _quietly(f"end the process of {child.spec.name!r}", _kill_if_running, child)
        if self._durable is not None:
            _quietly("close the stores", self._durable.close_stores)
        _quietly("close the registry", self._registry.close)
        _quietly("close the transport", self.node.close)
        shutil.rmtree(self._dir, ignore_errors=True)
        _live_systems.discard(self)
        atexit.unregister(self.shutdown)
        if self.config.start_method == "forkserver":
            _quietly("stop multiprocess's helpers", _stop_forkserver)


def _quietly(what: str, step: Any, *args: Any) -> None:
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
    child.state = "stopped"


def _stop_rank(name: str) -> int:
    return {"scheduler": 1, "checkpoint": 2}.get(name, 0)
