"""Watching each child's process sentinel, and restarting crashed actors.

One thread in the service process waits on every child's sentinel at once, so
a crash (``kill -9`` included) is seen the moment the kernel reaps the process.
A child that exits while nobody asked it to stop has crashed; with a
``RestartPolicy`` it is started again, after a backoff, at the same address.
Past the policy's budget it stays dead, or (``then_every``) is tried again at
that pace while ``on_give_up`` tells the system why it cannot be kept alive;
``on_recovered`` tells it when a restart held again.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from typing import Any

from multiprocess.connection import wait

from actors import tracelog
from runtime.config import RestartPolicy
from runtime.processes._child import EXIT_STOPPED, BootSpec
from runtime.processes._exits import ProcessExit, boot_error_of

log = tracelog.get_logger("runtime.supervisor")

HELD = 2.0  # seconds a restarted child must run before a given-up one counts as recovered


class ChildState(Enum):
    """Where a supervised process is in its life."""

    RUNNING = "running"
    STOPPING = "stopping"  # asked to stop: its exit is not a crash
    STOPPED = "stopped"
    RESTARTING = "restarting"  # crashed; started again at ``restart_due``
    DEAD = "dead"  # crashed past its policy (or without one): never started again


_WATCHED = (ChildState.RUNNING, ChildState.STOPPING)


@dataclass(eq=False)
class Child:
    """A supervised actor process: its boot spec, restart policy, process and restart history."""

    spec: BootSpec
    policy: RestartPolicy | None
    process: Any
    state: ChildState = ChildState.RUNNING
    restarts: list[float] = field(default_factory=list)
    restart_due: float | None = None
    exit_codes: list[int] = field(default_factory=list)
    ready: Any = None  # the boot's ready future: its error says why a boot failed
    given_up: bool = False  # past its restart budget (and told so)
    started_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class CrashVerdict:
    """What a ``RestartPolicy`` says of one more crash (both backends' supervisors ask it).

    ``restart``: within the budget, start it again after ``delay``; else
    ``then_every`` is the slower pace to keep trying at (None: never again), and
    ``why`` says so, for people. ``recent`` are the restarts still in the window.
    """

    restart: bool
    delay: float
    recent: list[float]
    why: str
    then_every: float | None


def judge_crash(policy: RestartPolicy | None, restarts: list[float], now: float, name: str,
                how: object) -> CrashVerdict:
    """The verdict on a crash of ``name`` (exit ``how``) at ``now``, after ``restarts``.

        judge_crash(RestartPolicy(max_restarts=3), [], time.monotonic(), "worker-0", "SIGKILL")
    """
    recent = [t for t in restarts if policy is not None and now - t < policy.within]
    if policy is not None and len(recent) < policy.max_restarts:
        return CrashVerdict(True, policy.delay(len(recent) + 1), recent, "", None)
    why = (f"the {name} process crashed {len(recent) + 1} times in {policy.within:g} s: last "
           f"exit {how}") if policy is not None else f"the {name} process crashed: {how}"
    return CrashVerdict(False, 0.0, recent, why, None if policy is None else policy.then_every)


def held_again(given_up: bool, state: ChildState, started_at: float, now: float) -> bool:
    """Whether a child past its restart budget has run ``HELD`` seconds since its last start:
    it counts as recovered (both backends' supervisors ask it)."""
    return given_up and state is ChildState.RUNNING and now - started_at > HELD


def describe_exit(code: int | None, ready: Any) -> str:
    """How a child ended, for people: a signal's name, a boot error, an exit code."""
    return ProcessExit.of(code, ready).describe()


class Supervisor:
    """Owns the children of one system: their processes, exits and restarts."""

    def __init__(self, start_process: Callable[[BootSpec], Any],
                 new_ready: Callable[[], tuple[int, Any]]) -> None:
        self._start_process = start_process
        self._new_ready = new_ready
        self.children: dict[str, Child] = {}
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        self._closing = False
        # Told (actor id, address) of every child that exited, crash or not, first: nothing
        # is sent into its dead connection after that (the hooks below send to its next
        # incarnation), and the registry withdraws it.
        self.on_exit: Callable[[str, str], None] | None = None
        self.on_crash: Callable[[str], None] | None = None  # told the actor id of a crash
        # Told (actor id, why) when a child's restart budget ran out, and (actor id) when
        # a restart after that has held for a while.
        self.on_give_up: Callable[[str, str], None] | None = None
        self.on_recovered: Callable[[str], None] | None = None
        # Told (actor id, error) when a restart's boot failed with an error of its own (the
        # constructor raised, e.g. its store cannot be written): the cause, typed, at once.
        self.on_boot_failed: Callable[[str, BaseException], None] | None = None
        # Told (actor id) when a restarted child reported ready: it listens again, so what
        # it lost can be sent again now (not at its crash, when it could land in the dead
        # process's connection).
        self.on_ready: Callable[[str], None] | None = None
        self._thread = threading.Thread(target=self._run, name="da-supervisor", daemon=True)
        self._thread.start()

    def add(self, child: Child) -> None:
        with self._lock:
            self.children[child.spec.actor_id] = child
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def close(self) -> None:
        self._closing = True
        self._wake()
        self._thread.join(timeout=5)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def live_children(self) -> list[Child]:
        with self._lock:
            return [c for c in self.children.values() if c.state in _WATCHED]

    def _run(self) -> None:
        while not self._closing:
            with self._lock:
                watched = {c.process.sentinel: c for c in self.children.values()
                           if c.state in _WATCHED}
                due = [c.restart_due for c in self.children.values()
                       if c.state is ChildState.RESTARTING and c.restart_due is not None]
            timeout = max(0.0, min(due) - time.monotonic()) if due else None
            if any(c.given_up for c in self.children.values()):
                timeout = HELD if timeout is None else min(timeout, HELD)
            ready = wait([*watched, self._wake_r], timeout=timeout)
            for sentinel in ready:
                if sentinel == self._wake_r:
                    os.read(self._wake_r, 4096)
                    continue
                self._on_exit(watched[sentinel])
            self._restart_due()
            self._check_recovered()

    def _on_exit(self, child: Child) -> None:
        child.process.join(timeout=1)
        self._hook(self.on_exit, child.spec.actor_id, child.spec.address)
        code = child.process.exitcode
        child.exit_codes.append(code)
        name = child.spec.name
        how = describe_exit(code, child.ready)
        boot_error = boot_error_of(child.ready)
        if boot_error is not None and child.state is ChildState.RUNNING and not self._closing:
            child.given_up = True  # counts as a fault until a restart holds
            self._hook(self.on_boot_failed, child.spec.actor_id, boot_error)
        stopping = child.state is ChildState.STOPPING
        if stopping or (code == EXIT_STOPPED and child.state is ChildState.RUNNING):
            child.state = ChildState.STOPPED
            log.debug("actor.exited", name=name, code=code)
            return
        if self._closing:
            child.state = ChildState.STOPPED
            return
        self._hook(self.on_crash, child.spec.actor_id)
        now = time.monotonic()
        policy = child.policy
        verdict = judge_crash(policy, child.restarts, now, name, how)
        if verdict.restart:
            assert policy is not None
            child.restarts = verdict.recent
            child.state = ChildState.RESTARTING
            child.restart_due = now + verdict.delay
            log.warning("actor.crashed", name=name, exitcode=code, how=how, action="restart",
                        restart=len(verdict.recent) + 1, of=policy.max_restarts)
            return
        why = verdict.why
        if verdict.then_every is not None:
            child.restarts = verdict.recent
            child.state = ChildState.RESTARTING
            child.restart_due = now + verdict.then_every
            log.error("actor.crashed", name=name, exitcode=code, how=how,
                      action=f"restart every {verdict.then_every:g} s", reason=why)
        else:
            child.state = ChildState.DEAD
            log.warning("actor.crashed", name=name, exitcode=code, how=how, action="none",
                        reason="no restart policy" if policy is None else "restart limit reached")
        if not child.given_up:
            child.given_up = True
            self._hook(self.on_give_up, child.spec.actor_id, why)

    def _hook(self, hook: Callable[..., None] | None, *args: Any) -> None:
        if hook is None:
            return
        try:
            hook(*args)
        except Exception as exc:  # a hook must not stop the supervisor
            log.error("supervisor.hook_failed", error=repr(exc))

    def _check_recovered(self) -> None:
        """A child past its budget that has now run for a while is told as recovered."""
        now = time.monotonic()
        with self._lock:
            back = [c for c in self.children.values()
                    if held_again(c.given_up, c.state, c.started_at, now)]
        for child in back:
            child.given_up = False
            log.info("actor.recovered", name=child.spec.name)
            self._hook(self.on_recovered, child.spec.actor_id)

    def _restart_due(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [c for c in self.children.values() if c.state is ChildState.RESTARTING
                   and c.restart_due is not None and c.restart_due <= now]
        for child in due:
            if self._closing:
                return
            spec = child.spec
            ready_id, child.ready = self._new_ready()
            child.spec = BootSpec(**{**spec.__dict__, "ready_reply_id": ready_id})
            try:
                child.process = self._start_process(child.spec)
            except Exception as exc:  # e.g. the forkserver could not be started: try later
                child.restart_due = now + (child.policy.max_backoff if child.policy else 1.0)
                log.error("actor.restart_failed", name=spec.name, error=repr(exc))
                continue
            child.restarts.append(now)
            child.restart_due = None
            child.started_at = now
            child.state = ChildState.RUNNING
            log.info("actor.restarted", name=spec.name, pid=child.process.pid)
            child.ready._when_done(partial(self._ready, spec.actor_id))

    def _ready(self, actor_id: str, ready: Any) -> None:
        if boot_error_of(ready) is None and not self._closing:
            self._hook(self.on_ready, actor_id)
