"""A local Ray on loopback, for tests and benchmarks: one node, or a simulated two-node cluster.

The test suite and ``durable-actors bench --only ray`` run on a Ray they start
themselves (nothing to install or start beside ``pip install 'durable-actors[ray]'``),
as root, with no stdin, on two cores, and with no traffic beyond the loopback
interface. Ray needs these settings for that, passed through the environment.

Read by Ray when it is imported, so ``prepare_process()`` sets them before
anything imports ray (the suite's ``pytest_configure``; the bench first thing),
for the rest of the process's life:

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
* ``PYTHONPATH`` with the suite's directory: Ray's workers import the test
  modules' actor classes by name;
* ``RAY_TMPDIR``: everything Ray writes (sessions, logs, sockets, the "current
  cluster" file that a plain ``ray.init()`` would join) goes to a private
  temporary directory, removed at stop.

The dashboard is off; Ray's minimal head process still runs.

    prepare_process()                  # before ``import ray``
    local = LocalRay()
    running = local.one_node()         # ray.init'ed in this process
    ...
    local.stop()
"""

from __future__ import annotations

import enum
import gc
import os
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

OBJECT_STORE_BYTES = 128 * 1024 * 1024  # per node; Ray's default is 30% of the memory
_CLOSED_PORT = "http://127.0.0.1:9"  # the discard port: nothing listens, a connect fails at once
_LOOPBACK_NAMES = "127.0.0.1,localhost,::1"


class RayShape(enum.Enum):
    ONE_NODE = "one node"
    TWO_NODES = "two nodes"


@dataclass
class RunningRay:
    """A Ray this process is connected to (``ray.is_initialized()``), and how it started."""

    shape: RayShape
    address: str  # the GCS address, host:port on loopback
    start_seconds: float  # from the first call until the driver was connected
    started_at: float  # time.time() as it started
    node_ids: list[str]


def process_environment() -> dict[str, str]:
    """What Ray reads as it is imported: loopback node address, authentication, no usage stats."""
    return {
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": os.environ.get("RAY_AUTH_TOKEN") or secrets.token_hex(32),
        "RAY_USAGE_STATS_ENABLED": "0",
    }


def run_environment(temp_root: str, code_paths: list[str]) -> dict[str, str]:
    """What the processes of one running Ray inherit: no HTTP off loopback, a private
    directory, and ``code_paths`` to import from (Ray's workers import pickled classes'
    modules by name; Ray's own ``code_search_path`` would import even ``__main__``'s)."""
    python_path = [*code_paths, *filter(None, [os.environ.get("PYTHONPATH")])]
    return {
        "PYTHONPATH": os.pathsep.join(python_path),
        "http_proxy": _CLOSED_PORT, "https_proxy": _CLOSED_PORT,
        "HTTP_PROXY": _CLOSED_PORT, "HTTPS_PROXY": _CLOSED_PORT,
        "no_proxy": _LOOPBACK_NAMES, "NO_PROXY": _LOOPBACK_NAMES,
        "RAY_TMPDIR": temp_root,
    }


def prepare_process() -> None:
    """Set ``process_environment()`` in this process; before ``ray`` is imported, or it raises.

    It sets variables of this process's environment: for tests and benchmarks, which
    own their process, not for a service that configures its own.
    """
    wanted = process_environment()
    if "ray" in sys.modules and any(os.environ.get(k) != v for k, v in wanted.items()):
        raise RuntimeError("ray was imported before runtime.raybackend.local.prepare_process(): "
                           "Ray reads its node address and authentication mode as it is imported")
    os.environ.update(wanted)


class LocalRay:
    """The one Ray this process may be connected to: started on demand, stopped on request.

    ``one_node()`` and ``two_nodes()`` return the running Ray if it has that shape,
    else stop whatever runs and start one that has (a driver talks to one Ray at a
    time).
    """

    def __init__(self, code_paths: list[str] | None = None) -> None:
        # Directories Ray's workers import user code from (the suite's test modules).
        self.code_paths = list(code_paths or ())
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

    def lose_node(self) -> str:
        """Kill every process of the simulated cluster's second node (not the head, where
        the driver is), as a lost machine; the id of the node lost. ``two_nodes()``
        adds a node back."""
        if self._cluster is None or not self._cluster.worker_nodes:
            raise RuntimeError("lose_node() needs a two-node cluster (two_nodes())")
        node = next(iter(self._cluster.worker_nodes))
        self._cluster.remove_node(node, allow_graceful=False)
        return str(node.node_id)

    def _ensure(self, shape: RayShape) -> RunningRay:
        if self.running is not None and self.running.shape is shape:
            if shape is RayShape.TWO_NODES and self._cluster is not None and (
                    not self._cluster.worker_nodes):
                self._cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE_BYTES)
                self._cluster.wait_for_nodes()
                self.running.node_ids = [n["NodeID"] for n in _nodes() if n["Alive"]]
            return self.running
        self.stop()
        started, started_at = time.perf_counter(), time.time()
        self._enter_environment()
        try:
            address = self._start(shape)
        except BaseException:
            self.stop()
            raise

        self.running = RunningRay(
            shape=shape, address=address, start_seconds=time.perf_counter() - started,
            started_at=started_at,
            node_ids=[node["NodeID"] for node in _nodes() if node["Alive"]],
        )
        return self.running

    def _enter_environment(self) -> None:
        self._root = tempfile.mkdtemp(prefix="da-ray-")  # short: Ray's socket paths live here
        temp = os.path.join(self._root, "ray")
        os.mkdir(temp)
        prepare_process()
        wanted = run_environment(self._root, self.code_paths)
        self._saved_env = {name: os.environ.get(name) for name in wanted}
        os.environ.update(wanted)

    def _start(self, shape: RayShape) -> str:
        import ray  # noqa: PLC0415 - optional extra [ray]

        assert self._root is not None
        temp = os.path.join(self._root, "ray")
        quiet: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
        if shape is RayShape.ONE_NODE:
            # address="local": never join a Ray that something else on the machine started.
            context: Any = ray.init(address="local", num_cpus=2, include_dashboard=False,
                               object_store_memory=OBJECT_STORE_BYTES, _temp_dir=temp, **quiet)
            return str(context.address_info["gcs_address"])
        from ray.cluster_utils import Cluster  # noqa: PLC0415 - optional extra [ray]

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
        """Disconnect and stop every Ray process this process started; seconds it took."""
        if self.running is None and self._cluster is None and self._root is None:
            return None  # nothing started: nothing to stop (and no need to import ray)
        self.running = None
        started = time.perf_counter()
        try:
            import ray  # noqa: PLC0415 - optional extra [ray]

            if ray.is_initialized():
                # Ray handles and object refs that died with their tests are freed while
                # still connected: one freed after the next ray.init would call into
                # that Ray's worker with ids of this one (seen to end the driver).
                gc.collect()
                ray.shutdown()
            if self._cluster is not None:
                cluster, self._cluster = self._cluster, None
                cluster.shutdown()
        finally:
            self._leave_environment()
        self.stop_seconds = time.perf_counter() - started
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


def _nodes() -> list[dict[str, Any]]:
    import ray  # noqa: PLC0415 - optional extra [ray]

    nodes: Any = ray.nodes  # untyped in Ray
    found: list[dict[str, Any]] = nodes()
    return found
