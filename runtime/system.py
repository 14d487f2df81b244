"""``ActorSystem``: a process host with durable executions composed on it."""

from __future__ import annotations

import atexit
import math
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any, Literal, TypeVar

import pykka

from actors import tracelog
from actors.errors import CallbackFailedError
from actors.policies import Completion
from actors.records._status import ExecutionStatus
from runtime import admission, tracing
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
from runtime.durable._recovery import recover_at_start
from runtime.durable._services import DurableServices
from runtime.errors import ActorDeadError, ConfigurationError
from runtime.processes._contract import Host
from runtime.processes._process_host import ProcessHost, quietly
from runtime.remote._actor_ref import ActorRef

A = TypeVar("A", bound=pykka.Actor)

log = tracelog.get_logger("runtime.system")


class ActorSystem(AsyncSystem):
    """Hosts actors in OS processes of their own and lets any process talk to any actor.

        with ActorSystem(config=SystemConfig(workers=2)) as system:
            ref = system.spawn(Counter, name="counter")
            assert ref.ask("count") == 0

    Leaving the block, ``shutdown()``, an exception, Ctrl-C, or the death of the
    service process (any signal) leaves no child process behind. In a coroutine,
    ``async with ActorSystem(...) as system`` starts and stops it off the loop
    (``runtime.aio``). ``system.host`` is its process host (``runtime.processes.Host``).

    ``backend="ray"`` runs every actor, the framework's too, as a Ray actor of its
    own on a Ray cluster (``pip install 'durable-actors[ray]'``; ``SystemConfig``'s
    ``ray_*`` fields, and docs/ray.md).
    """

    def __init__(self, store: str | None = None, config: SystemConfig | None = None,
                 backend: Literal["local", "ray"] = "local") -> None:
        if config is not None and not isinstance(config, SystemConfig):
            raise ConfigurationError(f"config must be a SystemConfig, got {type(config).__name__}")
        if backend not in ("local", "ray"):
            raise ConfigurationError(f"backend={backend!r} is not one of 'local', 'ray'")
        self.config = config or SystemConfig()
        self.backend = backend
        self.store_url = admission.check_store(store)
        self.id = f"sys-{uuid.uuid4().hex[:12]}"
        self._lock = threading.Lock()
        self._durable_lock = threading.Lock()
        self._closed = False
        self._closed_event = threading.Event()
        # The framework's own chain: structlog's configuration stays the application's.
        tracing.configure(system_id=self.id, role="service", trace_path=self.config.trace_path)
        self.host: Host = (ProcessHost(self.id, self.config) if backend == "local"
                           else _ray_host(self.id, self.config, self.store_url))
        self._durable: DurableServices | None = None
        atexit.register(self.shutdown)
        log.info("system.started", system=self.id, backend=backend,
                 start_method=self.config.start_method)
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
        return self.host.spawn(actor_class, args, kwargs, name=name, restart=restart)

    # -- durable executions -------------------------------------------------------

    def _services(self) -> DurableServices:
        if self._closed:
            raise ActorDeadError("this actor system is shut down; start a new one")
        with self._durable_lock:
            if self._closed:
                raise ActorDeadError("this actor system is shut down; start a new one")
            if self._durable is None:
                self._durable = DurableServices(self.host, self.config, self.store_url)
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
        return self.host.processes()

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
        durable = self._durable
        try:
            if durable is not None:
                quietly("close the durable services", durable.close)
            # By rank: users' actors and workers, the scheduler, the checkpoint actor last.
            quietly("stop the actors", self.host.stop_children, deadline, budget)
        finally:
            self.host.kill_remaining()
            if durable is not None:
                quietly("close the stores", durable.close_stores)
            self.host.close()
            atexit.unregister(self.shutdown)
        log.info("system.stopped", system=self.id)


def _ray_host(system_id: str, config: SystemConfig, store_url: str | None) -> Host:
    """The Ray backend's process host; ``ConfigurationError`` without the ``[ray]`` extra."""
    try:
        from runtime.raybackend.process_host import RayProcessHost  # noqa: PLC0415 - optional extra [ray]
    except ImportError as exc:
        raise ConfigurationError(
            "backend='ray' needs Ray: pip install 'durable-actors[ray]' "
            f"({exc})") from None
    server = store_url is not None and store_url.partition("://")[0].lower() in (
        "postgresql", "postgres")
    return RayProcessHost(system_id, config, store_anywhere=server)
