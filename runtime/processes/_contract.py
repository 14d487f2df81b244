"""``Host``: what an ``ActorSystem`` and its durable layer need of a process host.

Two backends implement it: ``ProcessHost`` (OS processes of this machine, over
Unix sockets) and ``runtime.raybackend.RayProcessHost`` (Ray actors on a
cluster). Nothing above it knows which one it runs on, except where a process
is placed (``Placement``) and whether the service process itself can host an
actor (only the local one can: on Ray nobody can call the driver).
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

import pykka

from runtime.config import RestartPolicy, SystemConfig
from runtime.processes._exits import ProcessExit
from runtime.processes._hooks import ProcessHooks
from runtime.processes._placement import Placement
from runtime.processes._supervisor import ChildState
from runtime.remote._actor_ref import ActorRef

A = TypeVar("A", bound=pykka.Actor)


class Host(Protocol):
    """Spawns, supervises and stops the processes of one actor system."""

    system_id: str
    config: SystemConfig
    closed: bool

    @property
    def scratch_dir(self) -> str:
        """A private directory of this host on the service's machine, removed when it closes."""
        ...

    def add_hooks(self, hooks: ProcessHooks) -> None: ...

    def spawn(self, actor_class: type[A], args: tuple[Any, ...] = (),
              kwargs: dict[str, Any] | None = None, *, name: str | None = None,
              restart: RestartPolicy | None = None, registered: bool = True,
              stop_rank: int = 0, placement: Placement = Placement.ANY) -> ActorRef[A]: ...

    def processes(self) -> dict[str, int]: ...

    def pid_of(self, actor_id: str) -> int | None: ...

    def exit_of(self, actor_id: str) -> ProcessExit | None: ...

    def state_of(self, actor_id: str) -> ChildState | None: ...

    def pids(self, running_only: bool = False) -> set[int]: ...

    def mark_down(self, actor_id: str, why: str) -> None: ...

    def mark_up(self, actor_id: str) -> None: ...

    def stop_children(self, deadline: float, budget: float) -> None: ...

    def kill_remaining(self) -> None: ...

    def close(self) -> None: ...


__all__ = ["Host"]
