"""The service process of a chaos run, and finding each of its processes by kind.

A service runs in a process group of its own (``start_new_session``); every
process of its system, and multiprocess's helpers, inherit that group, even
when a killed forkserver leaves its children to ``init``. So a process belongs
to the run when it is alive and in the group, and the whole run is ended with
one ``killpg``.

Processes are found by name, as an operator would: the framework's by their
title (``durable-actors: checkpoint``) when they carry one, else by the names
the service reports (``system.processes()``, in ``processes.json``); the
helpers by their command line among the service's own children.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from runtime.tools.chaos.workload import Workload

TITLE_PREFIX = "durable-actors: "
_HELPER_MODULES = {"forkserver": "multiprocess.forkserver",
                   "resource_tracker": "multiprocess.resource_tracker"}


class Kind(enum.Enum):
    """A kind of process the campaign kills."""

    CHECKPOINT = "checkpoint"
    SCHEDULER = "scheduler"
    DIGEST = "digest"
    WORKER = "worker"  # any worker-N
    COORDINATOR = "coordinator"  # the service process itself: a fresh one resumes
    FORKSERVER = "forkserver"  # multiprocess's helpers
    RESOURCE_TRACKER = "resource_tracker"

    @property
    def is_helper(self) -> bool:
        return self.value in _HELPER_MODULES


def alive_in_group(pid: int, group: int) -> bool:
    """Whether ``pid`` runs (a zombie does not) in process group ``group``."""
    try:
        if os.getpgid(pid) != group:
            return False
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (ProcessLookupError, psutil.NoSuchProcess):
        return False


class ServiceProcess:
    """One service process of a run (``runtime.tools.chaos.service``), in a group of its own."""

    def __init__(self, run_dir: Path, workload: Workload, number: int) -> None:
        self.run_dir = run_dir
        self.number = number
        self.log_path = run_dir / f"service-{number}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "runtime.tools.chaos.service", str(run_dir),
                 workload.to_json()],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid = self.proc.pid
        self.started_at = time.monotonic()
        self.seen: set[int] = set()  # every pid found in the group: ended with it

    def alive(self) -> bool:
        return self.proc.poll() is None

    def reported(self) -> dict[str, int] | None:
        """This service's processes by name, once its system runs (None before)."""
        try:
            found = json.loads((self.run_dir / "processes.json").read_text())
        except (OSError, ValueError):
            return None
        if found.get("service") != self.pid:
            return None  # an earlier service's
        names: dict[str, int] = found["processes"]
        return names

    def titled(self) -> dict[str, int]:
        """The processes under this service that carry a ``durable-actors: <name>`` title."""
        found = {}
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(self.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    cmdline = child.cmdline()
                    if cmdline and cmdline[0].startswith(TITLE_PREFIX):
                        found[cmdline[0][len(TITLE_PREFIX):].strip()] = child.pid
        return found

    def helper(self, kind: Kind) -> int | None:
        """The pid of a multiprocess helper of this service (its direct child), or None."""
        module = _HELPER_MODULES[kind.value]
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(self.pid).children():
                with contextlib.suppress(psutil.Error):
                    if (child.status() != psutil.STATUS_ZOMBIE
                            and module in " ".join(child.cmdline())):
                        return child.pid
        return None

    def named(self) -> dict[str, int]:
        """Every live process of this service's system by name (titles first, then reports)."""
        names = {**(self.reported() or {}), **self.titled()}
        live = {name: pid for name, pid in names.items() if alive_in_group(pid, self.pid)}
        self.seen.update(live.values())
        return live

    def find(self, kind: Kind) -> list[tuple[str, int]]:
        """The live processes of ``kind`` as (name, pid), sorted; empty while there is none."""
        if kind is Kind.COORDINATOR:
            return [("service", self.pid)] if self.alive() else []
        if kind.is_helper:
            pid = self.helper(kind)
            if pid is None:
                return []
            self.seen.add(pid)
            return [(kind.value, pid)]
        names = self.named()
        if kind is Kind.WORKER:
            return sorted((name, pid) for name, pid in names.items()
                          if name.startswith("worker-"))
        pid = names.get(kind.value)
        return [] if pid is None else [(kind.value, pid)]

    def kill(self, pid: int) -> None:
        """``kill -9`` one process of this service (the service itself included)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if pid == self.pid:
            self.proc.wait()  # reaped: nothing mistakes it for alive

    def end(self, timeout: float = 30.0) -> list[int]:
        """Kill the whole group, wait until it is gone; the pids that outlived ``timeout``."""
        members = {self.pid, *self.seen}
        with contextlib.suppress(psutil.Error):
            members.update(p.pid for p in psutil.Process(self.pid).children(recursive=True))
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self.proc.wait()
        deadline = time.monotonic() + timeout
        while True:
            left = [pid for pid in members if alive_in_group(pid, self.pid)]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.02)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""
