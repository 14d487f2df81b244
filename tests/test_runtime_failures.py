"""What callers learn when things go wrong, on real processes."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from runtime import (
    ActorDeadError,
    ActorSystem,
    RemoteError,
    RestartPolicy,
    SerializationError,
    SpawnError,
)
from runtime.processes import ChildState

from actors_for_tests import (
    BootsWhenTold,
    BrokenConstructor,
    Counter,
    Failing,
    FailOnTell,
    SlowStart,
)
from conftest import wait_until


def test_exception_in_ask_is_reraised_with_its_type_and_remote_traceback(
    system: ActorSystem,
) -> None:
    proxy = system.spawn(Failing, name="failing").proxy()
    with pytest.raises(ValueError, match="bad value from the actor") as caught:
        proxy.raise_value_error().get(timeout=10)
    remote = caught.value.remote_traceback  # type: ignore[attr-defined]
    assert "raise_value_error" in remote and "Traceback" in remote


def test_unpicklable_exception_arrives_as_remote_error_naming_its_type(
    system: ActorSystem,
) -> None:
    proxy = system.spawn(Failing, name="failing").proxy()
    with pytest.raises(RemoteError) as caught:
        proxy.raise_unpicklable().get(timeout=10)
    assert caught.value.type_name.endswith("UnpicklableError")
    assert "raise_unpicklable" in caught.value.remote_traceback


def test_unpicklable_message_raises_at_the_sender_naming_target_and_object(
    system: ActorSystem,
) -> None:
    ref = system.spawn(Counter, name="counter")
    with pytest.raises(SerializationError) as caught:
        ref.tell({"payload": threading.Lock()})
    text = str(caught.value)
    assert "'counter'" in text and "['payload']" in text and "lock" in text.lower()
    assert ref.ask(1, timeout=10) == 1  # nothing was sent, and the actor keeps serving


def test_closure_capturing_a_socket_names_the_captured_variable(system: ActorSystem) -> None:
    import socket

    ref = system.spawn(Counter, name="counter")
    sock = socket.socket()
    try:
        with pytest.raises(SerializationError, match="captures sock"):
            ref.tell(lambda: sock.fileno())  # noqa: PLW0108 - the closure is the point
    finally:
        sock.close()


def test_unpicklable_reply_raises_serialization_error_at_the_asker(system: ActorSystem) -> None:
    proxy = system.spawn(Failing, name="failing").proxy()
    with pytest.raises(SerializationError, match="reply"):
        proxy.unpicklable_reply().get(timeout=10)
    assert proxy.ping().get(timeout=10) == "pong"


def test_kill_9_turns_is_alive_false_within_one_second(system: ActorSystem) -> None:
    ref = system.spawn(Counter, name="counter")
    pid = ref.ask("pid", timeout=10)
    assert ref.is_alive()
    os.kill(pid, signal.SIGKILL)
    started = time.monotonic()
    wait_until(lambda: not ref.is_alive(), timeout=5)
    assert time.monotonic() - started < 1.0


def test_kill_9_fails_a_pending_ask_with_actor_dead_error(system: ActorSystem) -> None:
    proxy = system.spawn(Failing, name="failing").proxy()
    pending = proxy.crash()  # the actor's process exits while handling it
    with pytest.raises(ActorDeadError):
        pending.get(timeout=10)


def test_ask_after_kill_9_raises_actor_dead_error(system: ActorSystem) -> None:
    ref = system.spawn(Counter, name="counter")
    os.kill(ref.ask("pid", timeout=10), signal.SIGKILL)
    wait_until(lambda: not ref.is_alive())
    with pytest.raises(ActorDeadError):
        ref.ask("count", timeout=10)


def test_tell_and_ask_to_a_stopped_actor_raise_actor_dead_error(system: ActorSystem) -> None:
    ref = system.spawn(Counter, name="counter")
    assert ref.stop() is True
    with pytest.raises(ActorDeadError):
        ref.tell(1)
    with pytest.raises(ActorDeadError):
        ref.ask("count", timeout=10)
    assert ref.stop() is False


def test_stop_is_answered_before_the_actor_process_exits(system: ActorSystem) -> None:
    # pykka answers a stop after on_stop, on the actor's thread; a process that exited as
    # soon as on_stop ran sometimes closed its connection first (stop() said False).
    refs = [system.spawn(Counter, name=f"counter-{i}") for i in range(20)]
    assert [ref.stop() for ref in refs] == [True] * 20


def test_constructor_exception_is_raised_at_spawn(system: ActorSystem) -> None:
    with pytest.raises(RuntimeError, match="cannot build this actor"):
        system.spawn(BrokenConstructor)


def test_restart_policy_restarts_a_killed_actor_with_fresh_state(system: ActorSystem) -> None:
    ref = system.spawn(Counter, 100, name="counter",
                       restart=RestartPolicy(max_restarts=3, backoff=0.01))
    ref.tell(5)
    old_pid = ref.ask("pid", timeout=10)
    os.kill(old_pid, signal.SIGKILL)
    wait_until(lambda: ref.is_alive() and ref.ask("pid", timeout=5) != old_pid, timeout=15)
    assert ref.ask("count", timeout=10) == 100  # built again from its arguments
    assert ref.proxy().add(1).get(timeout=10) == 101  # the same ref keeps working


def test_unhandled_failure_calls_on_failure_then_restarts(
    system: ActorSystem, tmp_path: Path
) -> None:
    ref = system.spawn(FailOnTell, str(tmp_path), name="fails",
                       restart=RestartPolicy(max_restarts=2, backoff=0.01))
    first = ref.ask("generation", timeout=10)
    ref.tell("fail")
    # The mark is written, not just created (a read between the two finds it empty).
    wait_until(lambda: any("told to fail" in p.read_text() for p in tmp_path.glob("on_failure-*")))
    wait_until(lambda: ref.is_alive() and ref.ask("generation", timeout=5) != first, timeout=15)


def test_restarts_stop_at_the_policy_limit(system: ActorSystem) -> None:
    ref = system.spawn(Counter, name="counter", restart=RestartPolicy(max_restarts=1, backoff=0.01))
    os.kill(ref.ask("pid", timeout=10), signal.SIGKILL)
    wait_until(ref.is_alive, timeout=15)
    os.kill(ref.ask("pid", timeout=10), signal.SIGKILL)
    wait_until(lambda: system.host.state_of(ref.actor_id) is ChildState.DEAD, timeout=15)
    assert not ref.is_alive()


def test_spawn_reports_a_process_that_dies_while_booting(system: ActorSystem) -> None:
    import pykka

    class ExitsAtOnce(pykka.ThreadingActor):
        def __init__(self) -> None:
            super().__init__()
            os._exit(9)

    with pytest.raises(SpawnError, match="code 9"):
        system.spawn(ExitsAtOnce)


def booting_pids(path: Path) -> list[int]:
    return [int(p.suffix[1:]) for p in path.parent.glob(f"{path.name}.*") if p.suffix[1:].isdigit()]


def spawn_killed_while_booting(system: ActorSystem, path: Path,
                               restart: RestartPolicy | None) -> tuple[dict[str, Any], int]:
    """Spawn ``BootsWhenTold``, ``kill -9`` its first process while it builds, let it go on."""
    spawned: dict[str, Any] = {}

    def spawn() -> None:
        try:
            spawned["ref"] = system.spawn(BootsWhenTold, str(path), name="booting",
                                          restart=restart)
        except Exception as exc:
            spawned["error"] = exc

    thread = threading.Thread(target=spawn)
    thread.start()
    wait_until(lambda: booting_pids(path) != [], timeout=20)
    (first,) = booting_pids(path)
    os.kill(first, signal.SIGKILL)
    Path(f"{path}.go").touch()
    thread.join(timeout=60)
    return spawned, first


def test_a_restartable_actor_killed_while_it_boots_is_started_again_by_spawn(
        system: ActorSystem, tmp_path: Path) -> None:
    spawned, first = spawn_killed_while_booting(system, tmp_path / "boot", RestartPolicy())
    assert "error" not in spawned, repr(spawned.get("error"))
    pid = spawned["ref"].ask("pid", timeout=10)
    assert pid != first and system.processes()["booting"] == pid


def test_an_actor_without_restarts_killed_while_it_boots_fails_spawn_and_frees_its_name(
        system: ActorSystem, tmp_path: Path) -> None:
    spawned, _ = spawn_killed_while_booting(system, tmp_path / "boot", None)
    assert isinstance(spawned.get("error"), SpawnError)
    assert "code -9" in str(spawned["error"])
    again = system.spawn(Counter, 2, name="booting")  # the failed spawn left no name behind
    assert again.ask("count", timeout=10) == 2


def test_bad_config_raises_a_typed_error() -> None:
    from runtime import ConfigurationError, SystemConfig

    with pytest.raises(ConfigurationError, match="start_method"):
        SystemConfig(start_method="thread")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="workers"):
        SystemConfig(workers=0)


def test_a_tell_sent_while_a_restarted_actor_is_being_built_is_delivered(
    system: ActorSystem,
) -> None:
    ref = system.spawn(SlowStart, 0.5, name="slow", restart=RestartPolicy(backoff=0.01))
    old = ref.ask("pid", timeout=10)
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: system.host.pid_of(ref.actor_id) != old)
    ref.tell(5)  # the new process listens, but its actor is still in its constructor
    assert ref.ask("total", timeout=10) == 5
