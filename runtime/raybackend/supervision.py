"""Watching hosts on Ray, and applying each actor's ``RestartPolicy`` to Ray's restarts.

The local backend waits on each child's process sentinel; on Ray each host has
one pending call to its ``stopped`` method, which returns when its actor stops
and fails with ``RayActorError`` the moment Ray knows the host's process died
(``kill -9``, a lost node, the actor's own failure). One thread waits on all of
them at once (``ray.wait``).

Ray restarts a crashed host itself, in a new process behind the same handle, so
every ``ActorRef`` to it keeps working from every node; a host started with a
policy has ``max_restarts=-1``. The supervisor counts the crashes against the
policy as the local one does: within the budget it waits for the restarted host
to boot (``booted``), then tells ``on_ready``; past it the host is killed for good
(``ray.kill(no_restart=True)``), or with ``then_every`` left to Ray's restarts
while ``on_give_up`` reports it until a restart has held for a while. Ray restarts
at once: the policy's backoff applies only to a restart whose boot failed.

    supervisor = RaySupervisor(hooks)
    supervisor.add(child)
    ...
    supervisor.close()
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ray

from actors import tracelog
from runtime.config import RestartPolicy
from runtime.processes._exits import ProcessExit
from runtime.processes._supervisor import ChildState, held_again, judge_crash
from runtime.raybackend.outcomes import settle
from runtime.transport._future import Future

log = tracelog.get_logger("runtime.raybackend.supervision")

_POLL = 0.2  # seconds between looks for new hosts and recoveries
_ASK_AGAIN = 0.5  # seconds before asking a host that could not be reached whether it runs


class RayExit(ProcessExit):
    """How a host on Ray ended, as Ray reported it (Ray does not give the exit code)."""

    def __init__(self, cause: str, before_ready: bool = False) -> None:
        self.cause = cause
        super().__init__(None, None, before_ready)

    def __reduce__(self) -> tuple[Any, ...]:
        return (RayExit, (self.cause, self.before_ready))

    def describe(self) -> str:
        return self.cause


def exit_of(error: BaseException) -> RayExit:
    """Ray's error for a host's death, as its exit: the first line of Ray's message."""
    text = str(error).strip()
    first = text.splitlines()[0] if text else ""
    return RayExit(f"{type(error).__name__}: {first}" if first else type(error).__name__)


@dataclass(eq=False)
class RayChild:
    """A supervised host: its actor, Ray handle, policy, and where it is in its life."""

    actor_id: str
    name: str
    process: str  # the host's Ray actor name: the address in its ActorRef
    handle: Any
    policy: RestartPolicy | None
    pid: int
    node_id: str
    state: ChildState = ChildState.RUNNING
    restarts: list[float] = field(default_factory=list)
    given_up: bool = False
    started_at: float = field(default_factory=time.monotonic)
    exit: ProcessExit | None = None
    watch: Any = None  # the pending ``stopped`` call while it runs
    reviving: Any = None  # the pending ``booted`` call while Ray restarts it
    ask_again_at: float | None = None  # when to call ``booted`` again (it was unreachable)


@dataclass
class SupervisorHooks:
    """What the supervisor tells its process host, by actor id."""

    on_exit: Callable[[RayChild], None]
    on_crash: Callable[[str], None]
    on_give_up: Callable[[str, str], None]
    on_recovered: Callable[[str], None]
    on_boot_failed: Callable[[str, BaseException], None]
    on_ready: Callable[[str], None]
    stopped_on_purpose: Callable[[RayChild], bool]  # a ref's stop() ended it, not a crash


class RaySupervisor:
    """Owns the hosts of one system on Ray: their watches, crashes and restarts."""

    def __init__(self, hooks: SupervisorHooks) -> None:
        self._hooks = hooks
        self.children: dict[str, RayChild] = {}
        self._lock = threading.Lock()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="da-ray-supervisor", daemon=True)
        self._thread.start()

    def add(self, child: RayChild) -> None:
        child.watch = child.handle.stopped.remote()
        with self._lock:
            self.children[child.actor_id] = child

    def live_children(self) -> list[RayChild]:
        with self._lock:
            return [c for c in self.children.values()
                    if c.state in (ChildState.RUNNING, ChildState.STOPPING)]

    def close(self) -> None:
        self._closing = True
        self._thread.join(timeout=5)

    def forget(self) -> None:
        """Drop every Ray handle and pending call, while Ray is still connected: one
        deleted after its job ended would call into the next job's worker."""
        with self._lock:
            for child in self.children.values():
                child.watch = child.reviving = child.handle = None

    # -- the loop ---------------------------------------------------------------------

    def _run(self) -> None:
        while not self._closing:
            now = time.monotonic()
            with self._lock:
                pending: dict[Any, tuple[RayChild, str]] = {}
                for child in self.children.values():
                    again = child.ask_again_at
                    if again is not None and again <= now:
                        child.ask_again_at = None
                        if child.state is ChildState.RESTARTING and child.handle is not None:
                            child.reviving = child.handle.booted.remote()
                    if child.watch is not None:
                        pending[child.watch] = (child, "watch")
                    if child.reviving is not None:
                        pending[child.reviving] = (child, "boot")
            if not pending:
                time.sleep(_POLL)
            else:
                try:
                    done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=_POLL)
                except Exception as exc:  # Ray itself went away (shut down under us)
                    if not self._closing:
                        log.error("ray.supervisor_failed", error=repr(exc))
                    return
                for ready in done:
                    child, what = pending[ready]
                    try:
                        if what == "watch":
                            self._watched(child, ready)
                        else:
                            self._booted(child, ready)
                    except Exception as exc:  # one host's trouble must not stop the others'
                        log.error("ray.supervision_step_failed", actor=child.name,
                                  error=repr(exc))
            self._check_recovered()

    def _hook(self, hook: Callable[..., Any], *args: Any) -> None:
        try:
            hook(*args)
        except Exception as exc:  # a hook must not stop the supervisor
            log.error("supervisor.hook_failed", error=repr(exc))

    def _watched(self, child: RayChild, ready: Any) -> None:
        child.watch = None
        try:
            ray.get(ready)
            error: BaseException | None = None
        except ray.exceptions.RayActorError as exc:
            error = exc
        if error is None or child.state is ChildState.STOPPING or self._closing or (
                self._hooks.stopped_on_purpose(child)):
            child.state = ChildState.STOPPED  # its actor stopped: a stop, not a crash
            child.exit = exit_of(error) if error is not None else RayExit("stopped")
            self._hook(self._hooks.on_exit, child)
            log.debug("actor.exited", name=child.name)
            return
        self._crashed(child, exit_of(error))

    def _crashed(self, child: RayChild, how: ProcessExit) -> None:
        child.exit = how
        self._hook(self._hooks.on_exit, child)
        self._hook(self._hooks.on_crash, child.actor_id)
        now = time.monotonic()
        policy = child.policy
        verdict = judge_crash(policy, child.restarts, now, child.name, how)
        if verdict.restart:
            assert policy is not None
            child.restarts = [*verdict.recent, now]
            self._revive(child)  # Ray restarts it at once: the verdict's delay is not kept
            log.warning("actor.crashed", name=child.name, how=str(how), action="restart",
                        restart=len(verdict.recent) + 1, of=policy.max_restarts)
            return
        why = verdict.why
        if verdict.then_every is not None:
            child.restarts = verdict.recent
            self._revive(child)  # Ray restarts it at once: the fault stands until one holds
            log.error("actor.crashed", name=child.name, how=str(how),
                      action="Ray restarts it", reason=why)
        else:
            child.state = ChildState.DEAD
            _kill(child.handle)
            log.warning("actor.crashed", name=child.name, how=str(how), action="none",
                        reason="no restart policy" if policy is None else "restart limit reached")
        if not child.given_up:
            child.given_up = True
            self._hook(self._hooks.on_give_up, child.actor_id, why)

    def _revive(self, child: RayChild) -> None:
        """Wait for Ray's restart of ``child``: its ``booted`` answers once it runs again."""
        child.state = ChildState.RESTARTING
        if child.ask_again_at is None:
            child.reviving = child.handle.booted.remote()

    def _booted(self, child: RayChild, ready: Any) -> None:
        child.reviving = None
        if self._closing:
            return
        try:
            data = ray.get(ready)
        except ray.exceptions.ActorUnavailableError:
            # Not restarted yet, and Ray does not know it is gone yet (a lost node is seen
            # by its health checks, seconds later): ask again, this is no new crash.
            child.ask_again_at = time.monotonic() + _ASK_AGAIN
            return
        except ray.exceptions.RayActorError as exc:  # died again before it was ready
            child.ask_again_at = time.monotonic() + _ASK_AGAIN  # never in a tight loop
            self._crashed(child, RayExit(exit_of(exc).cause, before_ready=True))
            return
        started: Future[tuple[int, str]] = Future()
        settle(started, data)
        try:
            child.pid, child.node_id = started.get(timeout=0)
        except Exception as exc:  # its constructor raised: a crash, after the policy's delay
            child.given_up = True  # a fault until a restart holds
            self._hook(self._hooks.on_boot_failed, child.actor_id, exc)
            attempt = len(child.restarts)
            delay = child.policy.delay(max(1, attempt)) if child.policy is not None else 0.0
            timer = threading.Timer(delay, self._boot_failed, (child, exc))
            timer.daemon = True  # a service that ends is not held up by it
            timer.start()
            return
        child.state = ChildState.RUNNING
        child.started_at = time.monotonic()
        child.watch = child.handle.stopped.remote()
        log.info("actor.restarted", name=child.name, pid=child.pid)
        self._hook(self._hooks.on_ready, child.actor_id)

    def _boot_failed(self, child: RayChild, error: BaseException) -> None:
        """A restart whose constructor raised ends its process: Ray restarts it again."""
        if self._closing or child.state is not ChildState.RESTARTING:
            return
        ray.kill(child.handle, no_restart=False)
        self._crashed(child, ProcessExit(None, error))

    def _check_recovered(self) -> None:
        now = time.monotonic()
        with self._lock:
            back = [c for c in self.children.values()
                    if held_again(c.given_up, c.state, c.started_at, now)]
        for child in back:
            child.given_up = False
            log.info("actor.recovered", name=child.name)
            self._hook(self._hooks.on_recovered, child.actor_id)


def _kill(handle: Any) -> None:
    try:
        ray.kill(handle, no_restart=True)
    except Exception as exc:  # gone already
        log.debug("ray.kill_failed", error=repr(exc))


__all__ = ["RayChild", "RayExit", "RaySupervisor", "SupervisorHooks", "exit_of"]
