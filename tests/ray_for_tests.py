"""The suite's local Ray: ``runtime.raybackend.local.LocalRay``, checked to leave nothing behind.

    local = TrackedRay(code_paths=[tests_dir])
    local.one_node().pids     # Ray's processes under this one
    local.stop()              # RuntimeError if one of them still runs after _EXIT_WAIT
"""

from __future__ import annotations

import contextlib
import os
import time

import psutil

from runtime.raybackend.local import LocalRay, RunningRay, prepare_process

__all__ = ["RunningRay", "TrackedRay", "prepare_process", "ray_processes"]

_EXIT_WAIT = 15.0  # seconds Ray's processes get to exit after its stop


class TrackedRay(LocalRay):
    """A ``LocalRay`` that knows Ray's processes under this one and waits for them at stop."""

    def __init__(self, code_paths: list[str] | None = None) -> None:
        super().__init__(code_paths)
        self.pids: set[int] = set()

    def one_node(self) -> RunningRay:
        running = super().one_node()
        self.pids |= ray_processes()
        return running

    def two_nodes(self) -> RunningRay:
        running = super().two_nodes()
        self.pids |= ray_processes()
        return running

    def stop(self) -> float | None:
        # Before the stop: a worker whose raylet exits first is reparented out of our tree.
        pids = self.pids | (ray_processes() if self.running is not None else set())
        self.pids = set()
        seconds = super().stop()
        leftover = _wait_gone(pids, _EXIT_WAIT)
        if leftover:
            raise RuntimeError(f"Ray processes still running after its stop: {leftover}")
        return seconds


def ray_processes() -> set[int]:
    """Ray's processes among this process's descendants (GCS, raylet, agents, workers)."""
    import ray

    package = os.path.dirname(ray.__file__)
    found = set()
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            command = child.cmdline()
            if (command and command[0].startswith("ray::")) or package in " ".join(command[:2]):
                found.add(child.pid)
    return found


def _wait_gone(pids: set[int], timeout: float) -> list[str]:
    """Wait until none of ``pids`` runs (zombies count as gone); those left at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for pid in pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                process = psutil.Process(pid)
                if process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{pid} {process.name()}")
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)
