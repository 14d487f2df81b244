"""No process outlives its system, however the service ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runtime import ActorSystem, SystemConfig

from actors_for_tests import Counter
from conftest import children_of, pid_gone, wait_until

SERVICE = textwrap.dedent(
    """
    import os, sys, time
    import pykka
    from runtime import ActorSystem, SystemConfig

    class Echo(pykka.ThreadingActor):   # defined in __main__: travels by value
        def on_receive(self, message):
            return os.getpid()

    with ActorSystem(config=SystemConfig(workers=1)) as system:
        pids = [system.spawn(Echo).ask("pid", timeout=30) for _ in range(2)]
        print(" ".join(map(str, pids)), flush=True)
        while True:
            time.sleep(0.05)   # the service's own work; signals end it
    """
)


def start_service(tmp_path: Path) -> tuple[subprocess.Popen[str], list[int]]:
    script = tmp_path / "service.py"
    script.write_text(SERVICE)
    service = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True, start_new_session=True,
    )
    assert service.stdout is not None
    line = service.stdout.readline()
    assert line, f"service did not start: {service.stderr.read() if service.stderr else ''}"
    actor_pids = [int(p) for p in line.split()]
    return service, actor_pids


def all_descendants_gone(service: subprocess.Popen[str], pids: list[int]) -> bool:
    return service.poll() is not None and all(pid_gone(p) for p in pids)


def test_leaving_the_with_block_leaves_no_child_process() -> None:
    with ActorSystem(config=SystemConfig(workers=1)) as system:
        system.spawn(Counter).ask("count", timeout=10)
        assert children_of(os.getpid())
    wait_until(lambda: not children_of(os.getpid()))


def test_an_exception_in_the_service_leaves_no_child_process() -> None:
    with pytest.raises(KeyError), ActorSystem(config=SystemConfig(workers=1)) as system:
        system.spawn(Counter).ask("count", timeout=10)
        raise KeyError("the service failed")
    wait_until(lambda: not children_of(os.getpid()))


def test_shutdown_is_idempotent() -> None:
    system = ActorSystem(config=SystemConfig(workers=1))
    system.spawn(Counter)
    system.shutdown()
    system.shutdown()
    assert system.closed


def test_sigterm_of_the_service_leaves_no_child_process(tmp_path: Path) -> None:
    service, pids = start_service(tmp_path)
    descendants = [p.pid for p in children_of(service.pid)]
    service.send_signal(signal.SIGTERM)
    wait_until(lambda: all_descendants_gone(service, pids + descendants), timeout=15)


def test_ctrl_c_of_the_service_group_leaves_no_child_process(tmp_path: Path) -> None:
    service, pids = start_service(tmp_path)
    descendants = [p.pid for p in children_of(service.pid)]
    os.killpg(service.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    wait_until(lambda: all_descendants_gone(service, pids + descendants), timeout=15)
    assert service.returncode != 0  # KeyboardInterrupt ended it, after an orderly shutdown


def test_children_exit_by_themselves_when_the_service_is_killed(tmp_path: Path) -> None:
    service, pids = start_service(tmp_path)
    descendants = [p.pid for p in children_of(service.pid)]
    service.kill()  # kill -9: no cleanup code of the service runs
    wait_until(lambda: all_descendants_gone(service, pids + descendants), timeout=15)


def test_an_actor_process_keeps_what_it_booted_with_out_of_full_collections(
        system: ActorSystem) -> None:
    import pykka

    class FrozenCount(pykka.ThreadingActor):
        def on_receive(self, message: object) -> int:
            import gc

            return gc.get_freeze_count()

    ref = system.spawn(FrozenCount)
    assert ref.ask("frozen?", timeout=10) > 10_000  # modules, classes, the actor: all frozen


def _run_service(script: Path, source: str, hung: str = "") -> tuple[str, str]:
    """Run ``source`` as a service script; its stdout and stderr once it exited with 0."""
    script.write_text(source)
    service = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True, start_new_session=True,
    )
    try:
        out, err = service.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(service.pid, signal.SIGKILL)
        service.communicate()
        pytest.fail(hung or f"{script.name} did not finish within 60 s")
    assert service.returncode == 0, err[-3000:]
    return out, err


POOL_BESIDE_SYSTEM = textwrap.dedent(
    """
    import multiprocess
    import pykka
    from runtime import ActorSystem, SystemConfig

    class Echo(pykka.ThreadingActor):
        def on_receive(self, message):
            return message

    if __name__ == "__main__":
        # The service's own pool forks from multiprocess's one forkserver, as our actors do.
        with multiprocess.get_context("forkserver").Pool(1) as pool:
            assert pool.apply(abs, (-1,)) == 1
            with ActorSystem(config=SystemConfig(workers=1)) as system:
                assert system.spawn(Echo).ask("hi", timeout=30) == "hi"
            assert pool.apply(abs, (-2,)) == 2  # the pool outlives the system and still works
        print("done", flush=True)
    """
)


def test_shutdown_leaves_a_forkserver_the_service_still_uses_running(tmp_path: Path) -> None:
    # Every process forked from the forkserver holds its "alive" pipe, so stopping it
    # and waiting for it to exit waited for the service's own pool: for ever.
    out, _ = _run_service(tmp_path / "pool_service.py", POOL_BESIDE_SYSTEM,
                          hung="the system's shutdown hung on the forkserver the pool still uses")
    assert out.strip() == "done"


LOCK_BEFORE_SYSTEM = textwrap.dedent(
    """
    import multiprocess
    from runtime import ActorSystem, SystemConfig

    def take(lock):
        with lock:
            pass

    if __name__ == "__main__":
        ctx = multiprocess.get_context("spawn")
        lock = ctx.Lock()  # a named semaphore, registered with the resource tracker
        with ActorSystem(config=SystemConfig(workers=1)):
            pass
        child = ctx.Process(target=take, args=(lock,))  # opens the semaphore by its name
        child.start()
        child.join(30)
        print("child", child.exitcode, flush=True)
    """
)


def test_a_lock_the_service_made_before_the_system_still_opens_in_a_later_child(
        tmp_path: Path) -> None:
    # Stopping the resource tracker at shutdown made it unlink the service's semaphore.
    out, err = _run_service(tmp_path / "lock_service.py", LOCK_BEFORE_SYSTEM)
    assert out.strip() == "child 0", err[-3000:]
    assert "leaked semaphore" not in err


POOL_INSIDE_SYSTEM = textwrap.dedent(
    """
    import multiprocess
    from runtime import ActorSystem, SystemConfig

    if __name__ == "__main__":
        ctx = multiprocess.get_context("forkserver")
        with ActorSystem(config=SystemConfig(workers=1)), ctx.Pool(2) as pool:
            assert pool.map(abs, [-1, -2]) == [1, 2]
        print("done", flush=True)
    """
)


def test_a_pool_started_inside_the_system_leaves_no_semaphore_unlinked_under_it(
        tmp_path: Path) -> None:
    # The pool is terminated first; its locks live on until it is collected. Stopping the
    # tracker then unlinked them: a "leaked semaphore" warning and a FileNotFoundError each.
    out, err = _run_service(tmp_path / "pool_inside.py", POOL_INSIDE_SYSTEM)
    assert out.strip() == "done"
    assert "leaked semaphore" not in err
    assert "FileNotFoundError" not in err
