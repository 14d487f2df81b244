"""A local Ray for the test suite: one node, or a simulated two-node cluster, on loopback.

The suite's tests of the Ray backend run on a Ray that the suite starts itself
(nothing to install or start beside ``pip install -e '.[test]'``), as root, with
no stdin, within CI's two cores, and with no traffic beyond the loopback
interface. Ray needs these settings for that, passed through the environment.

Read by Ray when it is imported, so ``prepare_process()`` sets them before any
test module imports ray (the suite's ``pytest_configure``), for the whole session:

* ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``: Ray's node address is then the
  loopback address, as on a laptop, instead of the address of the machine's
  first network interface (``_node_ip_address="127.0.0.1"`` alone is mapped
  back to that interface address by Ray);
* ``RAY_AUTH_MODE=token`` with a fresh ``RAY_AUTH_TOKEN``: Ray's channels stay
  authenticated (a simulated cluster's too), and Ray writes no
  ``~/.ray/auth_token`` of its own;
* ``RAY_USAGE_STATS_ENABLED=0``: no usage report.

Set while a Ray runs, for the processes it starts, and restored at its stop:

* ``http_proxy``/``https_proxy`` to a closed loopback port, with ``no_proxy`` for
  the loopback names: Ray's head process probes cloud metadata addresses at
  start (169.254.169.254, ``metadata.google.internal``) whether usage stats are
  on or not, and a simulated cluster's head posts a "disabled" notice to Ray's
  usage server; through the proxy those fail at once, on loopback;
* ``RAY_TMPDIR``: everything Ray writes (sessions, logs, sockets, the "current
  cluster" file that a plain ``ray.init()`` would join) goes to a private
  temporary directory, removed at stop.

The dashboard is off; Ray's minimal head process still runs.

    ray_env = LocalRay()
    running = ray_env.one_node()      # ray.init'ed in this process
    ...
    ray_env.stop()                    # every process it started has exited
"""

from __future__ import annotations

import contextlib
import enum
import os
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

OBJECT_STORE_BYTES = 128 * 1024 * 1024  # per node; Ray's default is 30% of the memory
_CLOSED_PORT = "http://127.0.0.1:9"  # the discard port: nothing listens, a connect fails at once
_LOOPBACK_NAMES = "127.0.0.1,localhost,::1"
_EXIT_WAIT = 15.0  # seconds Ray's processes get to exit after ray.shutdown()


class RayShape(enum.Enum):
    ONE_NODE = "one node"
    TWO_NODES = "two nodes"


@dataclass
class RunningRay:
    """A Ray this process is connected to (``ray.is_initialized()``), and how it started."""

    shape: RayShape
    address: str  # the GCS address, host:port on loopback
    start_seconds: float  # from the first call until the driver was connected
    node_ids: list[str]
    pids: set[int] = field(default_factory=set)  # processes of Ray's, started by this process


def process_environment() -> dict[str, str]:
    """What Ray reads as it is imported: loopback node address, authentication, no usage stats."""
    return {
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": os.environ.get("RAY_AUTH_TOKEN") or secrets.token_hex(32),
        "RAY_USAGE_STATS_ENABLED": "0",
    }


def run_environment(temp_root: str) -> dict[str, str]:
    """What the processes of one running Ray inherit: no HTTP off loopback, a private directory."""
    return {
        "http_proxy": _CLOSED_PORT, "https_proxy": _CLOSED_PORT,
        "HTTP_PROXY": _CLOSED_PORT, "HTTPS_PROXY": _CLOSED_PORT,
        "no_proxy": _LOOPBACK_NAMES, "NO_PROXY": _LOOPBACK_NAMES,
        "RAY_TMPDIR": temp_root,
    }


def prepare_process() -> None:
    """Set ``process_environment()`` in this process; before ``ray`` is imported, or it raises.

    The test suite calls it from ``pytest_configure``; a script that starts a
    ``LocalRay`` calls it first thing.
    """
    wanted = process_environment()
    if "ray" in sys.modules and any(os.environ.get(k) != v for k, v in wanted.items()):
        raise RuntimeError("ray was imported before tests.ray_for_tests.prepare_process(): Ray "
                           "reads its node address and authentication mode as it is imported")
    os.environ.update(wanted)


class LocalRay:
    """The one Ray this process may be connected to: started on demand, stopped on request.

    ``one_node()`` and ``two_nodes()`` return the running Ray if it has that shape,
    else stop whatever runs and start one that has (a driver talks to one Ray at a
    time).
    """

    def __init__(self) -> None:
        self.running: RunningRay | None = None
        self.stop_seconds: float | None = None  # how long the last stop took
        self._cluster: Any = None  # ray.cluster_utils.Cluster, for TWO_NODES
        self._root: str | None = None
        self._saved_env: dict[str, str | None] = {}

    def one_node(self) -> RunningRay:
        """A single local node with 2 CPUs, ``ray.init``'ed in this process."""
        return self._ensure(RayShape.ONE_NODE)

    def two_nodes(self) -> RunningRay:
        """A simulated cluster of two nodes with 1 CPU each, this process its driver."""
        return self._ensure(RayShape.TWO_NODES)

    def _ensure(self, shape: RayShape) -> RunningRay:
        if self.running is not None and self.running.shape is shape:
            return self.running
        self.stop()
        started = time.perf_counter()
        self._enter_environment()
        try:
            address = self._start(shape)
        except BaseException:
            self.stop()
            raise
        import ray

        self.running = RunningRay(
            shape=shape, address=address, start_seconds=time.perf_counter() - started,
            node_ids=[node["NodeID"] for node in ray.nodes() if node["Alive"]],
            pids=_ray_children(),
        )
        return self.running

    def _enter_environment(self) -> None:
        self._root = tempfile.mkdtemp(prefix="da-ray-")  # short: Ray's socket paths live here
        temp = os.path.join(self._root, "ray")
        os.mkdir(temp)
        prepare_process()
        wanted = run_environment(self._root)
        self._saved_env = {name: os.environ.get(name) for name in wanted}
        os.environ.update(wanted)

    def _start(self, shape: RayShape) -> str:
        import ray

        assert self._root is not None
        temp = os.path.join(self._root, "ray")
        quiet: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
        if shape is RayShape.ONE_NODE:
            # address="local": never join a Ray that something else on the machine started.
            context = ray.init(address="local", num_cpus=2, include_dashboard=False,
                               object_store_memory=OBJECT_STORE_BYTES, _temp_dir=temp, **quiet)
            return str(context.address_info["gcs_address"])
        from ray.cluster_utils import Cluster

        node = {"num_cpus": 1, "object_store_memory": OBJECT_STORE_BYTES}
        self._cluster = Cluster(
            initialize_head=True, shutdown_at_exit=True,
            head_node_args={**node, "include_dashboard": False, "temp_dir": temp},
        )
        self._cluster.add_node(**node)
        self._cluster.wait_for_nodes()
        ray.init(address=self._cluster.address, **quiet)
        return str(self._cluster.address)

    def stop(self) -> float | None:
        """Disconnect and stop every Ray process this process started; seconds it took.

        Raises ``RuntimeError`` if one of them is still running after ``_EXIT_WAIT``.
        """
        if self.running is None and self._cluster is None and self._root is None:
            return None  # nothing started: nothing to stop (and no need to import ray)
        running, self.running = self.running, None
        started = time.perf_counter()
        # Before the shutdown: a worker whose raylet exits first is reparented out of our tree.
        pids = (running.pids if running is not None else set()) | _ray_children()
        try:
            import ray

            if ray.is_initialized():
                ray.shutdown()
            if self._cluster is not None:
                cluster, self._cluster = self._cluster, None
                cluster.shutdown()
        finally:
            self._leave_environment()
        leftover = _wait_gone(pids, _EXIT_WAIT)
        self.stop_seconds = time.perf_counter() - started
        if leftover:
            raise RuntimeError(f"Ray processes still running after stop: {leftover}")
        return self.stop_seconds

    def _leave_environment(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None


def _ray_children() -> set[int]:
    """Ray's processes among this process's descendants (workers, raylet, GCS, agents)."""
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
