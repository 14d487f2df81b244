"""The suite's own local Ray (``runtime.raybackend.local``): loopback only, gone when stopped."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import ray

from ray_for_tests import RunningRay, ray_processes


@ray.remote
class WhereAmI:
    """A Ray actor that says which node and process it runs in."""

    def where(self) -> tuple[str, int]:
        return ray.get_runtime_context().get_node_id(), os.getpid()


def _is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)  # "::ffff:127.0.0.1"
    return (mapped or ip).is_loopback


def test_a_local_ray_listens_on_the_loopback_interface_only(ray_local: RunningRay) -> None:
    actor = WhereAmI.remote()  # type: ignore[attr-defined]
    _, worker_pid = ray.get(actor.where.remote(), timeout=60)

    listening = []
    for pid in {*ray_processes(), worker_pid}:
        try:
            connections = psutil.Process(pid).net_connections(kind="inet")
        except psutil.NoSuchProcess:
            continue  # an idle worker Ray ended meanwhile
        listening += [(pid, c.laddr.ip) for c in connections if c.status == psutil.CONN_LISTEN]
    assert listening, "no Ray process listens at all: the check would be empty"
    assert [(pid, ip) for pid, ip in listening if not _is_loopback(ip)] == []
    assert ray_local.address.startswith("127.0.0.1:")
    assert {node["NodeManagerAddress"] for node in ray.nodes()} == {"127.0.0.1"}


def test_a_local_ray_leaves_no_token_file_in_the_home_directory(ray_local: RunningRay) -> None:
    assert os.environ["RAY_AUTH_MODE"] == "token"  # authenticated, by a token from the env
    token_file = Path.home() / ".ray" / "auth_token"
    assert not token_file.exists() or token_file.stat().st_mtime < ray_local.started_at


def test_a_two_node_cluster_places_two_one_cpu_actors_on_both_nodes(
        ray_cluster: RunningRay) -> None:
    # One CPU per node: the second actor that holds a CPU can only go to the other node.
    actors = [WhereAmI.options(num_cpus=1).remote()  # type: ignore[attr-defined]
              for _ in range(2)]

    nodes = {node for node, _ in ray.get([a.where.remote() for a in actors], timeout=60)}

    assert len(ray_cluster.node_ids) == 2
    assert nodes == set(ray_cluster.node_ids)


_STOP_SCRIPT = textwrap.dedent("""
    import json, os, sys
    sys.path.insert(0, sys.argv[1])
    import ray_for_tests
    ray_for_tests.prepare_process()
    import ray

    local = ray_for_tests.TrackedRay()
    local.one_node()

    @ray.remote
    class Pid:
        def pid(self):
            return os.getpid()

    worker = ray.get(Pid.remote().pid.remote(), timeout=60)
    print(json.dumps(sorted(ray_for_tests.ray_processes() | {worker})), flush=True)
    local.stop()  # raises if one of them still runs
    print("stopped", flush=True)
""")


def test_stopping_a_local_ray_leaves_none_of_its_processes_running(tmp_path: Path) -> None:
    # In a process of its own: this one may be connected to the session's Ray already.
    done = subprocess.run(
        [sys.executable, "-c", _STOP_SCRIPT, str(Path(__file__).parent)],
        capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL, check=False,
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    first, last = done.stdout.strip().splitlines()[-2:]
    pids = json.loads(first)
    assert len(pids) >= 3  # GCS, raylet, a worker at least: the check is not empty
    assert last == "stopped"
    assert [pid for pid in pids if psutil.pid_exists(pid)
            and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE] == []
