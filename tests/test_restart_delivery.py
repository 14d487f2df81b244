"""Crash handling that sends to actors which are themselves down or coming back.

A message told to a crashed actor as soon as its crash is known reaches its
restarted process.

The system's own crash handling works that way: told that the checkpoint
process crashed, the coordinator at once sends it the leases it holds and the
requests it must answer again. The supervisor learns of an exit from the
process's sentinel, often before this process's reader of that connection has
seen it end; a message sent then went into the dead connection and was dropped
when its end was noticed (37 of 40 in a loop; found by the chaos campaign).
And the supervisor's crash hooks never wait for an actor that is itself being
restarted by that same supervisor.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import pytest

from runtime import ActorSystem, RestartPolicy
from runtime.durable import _services as durable
from runtime.processes import ProcessHooks

from actors_for_tests import Counter
from conftest import pid_gone, wait_until

pytestmark = pytest.mark.timeout(120)

KILLS = 5


def test_a_message_told_on_the_crash_of_an_actor_reaches_its_restarted_process(
        system: ActorSystem) -> None:
    ref = system.spawn(Counter, name="counter",
                       restart=RestartPolicy(max_restarts=KILLS, backoff=0.02, within=60.0))
    sent: list[int] = []
    errors: list[BaseException] = []

    class TellAtOnce(ProcessHooks):
        def on_crash(self, actor_id: str) -> None:
            tell_at_once(actor_id)

    def tell_at_once(_: str) -> None:
        # As the coordinator does: another thread sends, the supervisor goes on restarting.
        def send() -> None:
            try:
                ref.tell(1)
                sent.append(1)
            except BaseException as exc:
                errors.append(exc)

        threading.Thread(target=send, name="tell-on-crash").start()

    system.host.add_hooks(TellAtOnce())
    for n in range(1, KILLS + 1):
        pid = ref.ask("pid", timeout=10)
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda p=pid: pid_gone(p), timeout=10)  # type: ignore[misc]
        wait_until(lambda k=n: len(sent) + len(errors) >= k, timeout=30)  # type: ignore[misc]
        assert errors == []
        # The restarted actor starts from 0: the message sent on its crash makes it 1.
        assert wait_until(lambda: _count(ref) == 1, timeout=10), f"kill {n}: the message was lost"


def _count(ref: Any) -> int:
    count: int = ref.ask("count", timeout=10)
    return count


def test_a_checkpoint_process_killed_while_the_scheduler_restarts_is_restarted_at_once(
        system: ActorSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    # A restart backoff long enough to kill the checkpoint process while the scheduler waits
    # for its own restart (the policy is read when the durable services start).
    monkeypatch.setattr(durable, "SERVICE_RESTART", RestartPolicy(
        max_restarts=10, backoff=1.0, max_backoff=1.0, within=60.0, then_every=10.0))
    system.start_durable()
    before = system.processes()
    os.kill(before["scheduler"], signal.SIGKILL)
    wait_until(lambda: "scheduler" not in system.processes(), timeout=10)
    os.kill(before["checkpoint"], signal.SIGKILL)  # the crash hook tells the scheduler...
    # ...which is down: that must not hold up the supervisor for the scheduler's whole
    # grace (spawn_timeout + backoff, 31 s here), with every restart behind it.
    after = wait_until(lambda: _restarted(system, before, ("scheduler", "checkpoint")),
                       timeout=15)
    assert set(after) >= {"scheduler", "checkpoint"}


def _restarted(system: ActorSystem, before: dict[str, int],
               names: tuple[str, ...]) -> dict[str, int] | None:
    now = system.processes()
    if all(now.get(name) not in (None, before[name]) for name in names):
        return now
    return None
