"""Watching each child's process sentinel, and restarting crashed actors.

One thread in the service process waits on every child's sentinel at once, so
a crash (``kill -9`` included) is seen the moment the kernel reaps the process.
A child that exits while nobody asked it to stop has crashed; with a
``RestartPolicy`` it is started again, after a backoff, at the same address.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from multiprocess.connection import wait

from runtime.config import RestartPolicy
from runtime.process import EXIT_STOPPED, BootSpec

log = structlog.get_logger("runtime.supervisor")


@dataclass(eq=False)
class Child:
    spec: BootSpec
    policy: RestartPolicy | None
    process: Any
    state: str = "running"  # running | stopping | stopped | restarting | dead
    restarts: list[float] = field(default_factory=list)
    restart_due: float | None = None
    exit_codes: list[int] = field(default_factory=list)


class Supervisor:
    """Owns the children of one system: their processes, exits and restarts."""

    def __init__(self, start_process: Callable[[BootSpec], Any],
                 new_ready_id: Callable[[], int]) -> None:
        self._start_process = start_process
        self._new_ready_id = new_ready_id
        self.children: dict[str, Child] = {}
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        self._closing = False
        self.on_crash: Callable[[str], None] | None = None  # told the actor id of a crash
        # Told (actor id, address) of every exit, crash or not (the registry's withdrawal).
        self.on_exit: Callable[[str, str], None] | None = None
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
            return [c for c in self.children.values() if c.state in ("running", "stopping")]

    def _run(self) -> None:
        while not self._closing:
            with self._lock:
                watched = {c.process.sentinel: c for c in self.children.values()
                           if c.state in ("running", "stopping")}
                due = [c.restart_due for c in self.children.values()
                       if c.state == "restarting" and c.restart_due is not None]
            timeout = max(0.0, min(due) - time.monotonic()) if due else None
            ready = wait([*watched, self._wake_r], timeout=timeout)
            for sentinel in ready:
                if sentinel == self._wake_r:
                    os.read(self._wake_r, 4096)
                    continue
                self._on_exit(watched[sentinel])
            self._restart_due()

    def _on_exit(self, child: Child) -> None:
        child.process.join(timeout=1)
        code = child.process.exitcode
        child.exit_codes.append(code)
        name = child.spec.name
        if self.on_exit is not None:
            try:
                self.on_exit(child.spec.actor_id, child.spec.address)
            except Exception as exc:  # a hook must not stop the supervisor
                log.error("supervisor.on_exit_failed", error=repr(exc))
        if child.state == "stopping" or (code == EXIT_STOPPED and child.state == "running"):
            child.state = "stopped"
            log.debug("actor.exited", name=name, code=code)
            return
        if self._closing:
            child.state = "stopped"
            return
        if self.on_crash is not None:
            try:
                self.on_crash(child.spec.actor_id)
            except Exception as exc:  # a hook must not stop the supervisor
                log.error("supervisor.on_crash_failed", error=repr(exc))
        now = time.monotonic()
        policy = child.policy
        recent = [t for t in child.restarts if policy is not None and now - t < policy.within]
        if policy is not None and len(recent) < policy.max_restarts:
            child.restarts = recent
            child.state = "restarting"
            child.restart_due = now + policy.delay(len(recent) + 1)
            log.warning("actor.crashed", name=name, exitcode=code, action="restart",
                        restart=len(recent) + 1, of=policy.max_restarts)
        else:
            child.state = "dead"
            log.warning("actor.crashed", name=name, exitcode=code, action="none",
                        reason="no restart policy" if policy is None else "restart limit reached")

    def _restart_due(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [c for c in self.children.values() if c.state == "restarting"
                   and c.restart_due is not None and c.restart_due <= now]
        for child in due:
            if self._closing:
                return
            spec = child.spec
            child.spec = BootSpec(**{**spec.__dict__, "ready_reply_id": self._new_ready_id()})
            try:
                child.process = self._start_process(child.spec)
            except Exception as exc:
                child.state = "dead"
                log.error("actor.restart_failed", name=spec.name, error=repr(exc))
                continue
            child.restarts.append(now)
            child.restart_due = None
            child.state = "running"
            log.info("actor.restarted", name=spec.name, pid=child.process.pid)
