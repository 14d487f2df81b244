"""Private socket directories: a killed service's is removed at the next start, no other."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime import ActorSystem, SystemConfig
from runtime.processes import OWNER_FILE, PREFIX, owner_of, remove_stale_socket_dirs

from actors_for_tests import Counter
from conftest import pid_gone, wait_until

pytestmark = pytest.mark.timeout(120)

TESTS = Path(__file__).parent


def dirs_owned_by(pid: int) -> list[str]:
    parent = tempfile.gettempdir()
    return [os.path.join(parent, name) for name in os.listdir(parent)
            if name.startswith(PREFIX) and owner_of(os.path.join(parent, name)) == pid]


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    done = subprocess.Popen(["true"])
    done.wait(timeout=10)
    return done.pid


def make_dir(parent: Path, name: str, owner: int | None) -> Path:
    path = parent / name
    path.mkdir(mode=0o700)
    (path / "service.sock").touch()
    if owner is not None:
        (path / OWNER_FILE).write_text(f"{owner}\n")
    return path


def test_a_system_writes_its_pid_into_its_socket_dir(tmp_path: Path) -> None:
    with ActorSystem(store=f"sqlite:///{tmp_path / 's.db'}") as system:
        assert owner_of(system.host.scratch_dir) == os.getpid()
        assert oct(os.stat(system.host.scratch_dir).st_mode & 0o777) == "0o700"
    assert not os.path.exists(system.host.scratch_dir)


def test_a_dir_whose_owner_is_gone_is_removed(tmp_path: Path, dead_pid: int) -> None:
    stale = make_dir(tmp_path, PREFIX + "stale", dead_pid)
    assert remove_stale_socket_dirs(str(tmp_path)) == [str(stale)]
    assert not stale.exists()


def test_a_dir_whose_owner_runs_is_kept(tmp_path: Path) -> None:
    live = make_dir(tmp_path, PREFIX + "live", os.getpid())
    assert remove_stale_socket_dirs(str(tmp_path)) == []
    assert live.exists()


def test_a_dir_without_an_owner_or_of_another_name_is_kept(tmp_path: Path,
                                                          dead_pid: int) -> None:
    unowned = make_dir(tmp_path, PREFIX + "unowned", None)
    other = make_dir(tmp_path, "someone-else-", dead_pid)
    assert remove_stale_socket_dirs(str(tmp_path)) == []
    assert unowned.exists() and other.exists()


@pytest.fixture
def killed_service(tmp_path: Path) -> Iterator[int]:
    """A service process that started a system and an actor, then was killed with SIGKILL."""
    script = tmp_path / "service.py"
    script.write_text(
        "from runtime import ActorSystem, SystemConfig\n"
        "from actors_for_tests import Counter\n"
        "system = ActorSystem(config=SystemConfig(workers=1))\n"
        "system.spawn(Counter, name='counter')\n"
        "print(system.processes()['counter'], flush=True)\n"
        "import time; time.sleep(600)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    service = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    assert service.stdout is not None
    try:
        actor = int(service.stdout.readline())
        service.kill()
        service.wait(timeout=10)
        wait_until(lambda: pid_gone(actor), timeout=15)  # its orphan watch ended it
        yield service.pid
    finally:
        if service.poll() is None:
            service.kill()
            service.wait(timeout=10)
        service.stdout.close()


def test_the_socket_dir_of_a_killed_service_is_removed_at_the_next_start(
        tmp_path: Path, killed_service: int) -> None:
    left = dirs_owned_by(killed_service)
    assert len(left) == 1, "the killed service left its socket directory behind"
    with ActorSystem(store=f"sqlite:///{tmp_path / 's.db'}", config=SystemConfig(workers=1)):
        assert not os.path.exists(left[0])


def test_the_socket_dir_of_a_running_system_survives_another_start(tmp_path: Path) -> None:
    with ActorSystem(store=f"sqlite:///{tmp_path / 'a.db'}") as first:
        with ActorSystem(store=f"sqlite:///{tmp_path / 'b.db'}"):
            assert os.path.isdir(first.host.scratch_dir)
        counter = first.spawn(Counter, name="counter")  # its sockets still work
        assert counter.ask(2, timeout=10) == 2
