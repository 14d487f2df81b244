"""What a layer built on the process host is told about its processes, by actor id."""

from __future__ import annotations

from typing import Any

from actors import tracelog

log = tracelog.get_logger("runtime.processes")


class ProcessHooks:
    """Override what you need; every hook gets the actor id of the process concerned.

    Hooks run on the supervisor's thread (or, ``before_stop_rank``, the shutting-down
    one): they must not wait for a process that is down. An exception in one is logged
    and the host goes on.

        class Told(ProcessHooks):
            def on_crash(self, actor_id: str) -> None:
                print(actor_id, "crashed; a restart follows if its policy allows")

        host.add_hooks(Told())
    """

    def on_crash(self, actor_id: str) -> None:
        """The process exited without being asked to (any restart comes after this)."""

    def on_give_up(self, actor_id: str, why: str) -> None:
        """Its restart budget ran out: ``why`` says so, for people."""

    def on_recovered(self, actor_id: str) -> None:
        """A restart after a give-up has held for a while."""

    def on_boot_failed(self, actor_id: str, error: BaseException) -> None:
        """A restart's boot failed with an error of its own (its constructor raised)."""

    def on_ready(self, actor_id: str) -> None:
        """A restarted process reported ready: it listens again."""

    def before_stop_rank(self, rank: int, deadline: float) -> None:
        """At shutdown, the processes of ``rank`` are about to be stopped (lower ranks are).

        ``deadline`` is the ``time.monotonic()`` by which the whole stop must end.
        """


class HookList:
    """The hooks added to one process host, told in the order they were added.

        hooks = HookList(); hooks.add(Told()); hooks.tell("on_crash", "a3")
    """

    def __init__(self) -> None:
        self._hooks: list[ProcessHooks] = []

    def add(self, hooks: ProcessHooks) -> None:
        self._hooks.append(hooks)

    def tell(self, hook: str, *args: Any) -> None:
        """Call ``hook`` on every layer; one that raises is logged, and the rest are told."""
        for hooks in list(self._hooks):
            try:
                getattr(hooks, hook)(*args)
            except Exception as exc:  # a layer's hook must not stop the host
                log.error("process.hook_failed", hook=hook, error=repr(exc))


__all__ = ["HookList", "ProcessHooks"]
