"""Starting a hosted actor on Ray: ``start_host`` (one pykka actor in one new Ray actor).

    ref = start_host(Counter, name="counter")   # a RayActorRef, once the actor runs
    ref.tell(1)
    assert ref.ask("total", timeout=5) == 1
"""

from __future__ import annotations

import itertools
from typing import Any

import pykka
import ray

from runtime.errors import SpawnError
from runtime.raybackend import wire
from runtime.raybackend.host import GROUPS, ActorHost, HostSpec
from runtime.raybackend.outcomes import dead_error, settle
from runtime.raybackend.ref import RayActorRef
from runtime.raybackend.transport import RayTransport
from runtime.transport import ActorAddress
from runtime.transport._future import Future

_ids = itertools.count(1)
_remote: list[Any] = []  # ActorHost as a Ray actor class, made once per process


def _remote_host() -> Any:
    if not _remote:
        make_remote: Any = ray.remote  # its overloads do not list concurrency_groups
        _remote.append(make_remote(concurrency_groups=GROUPS)(ActorHost))
    return _remote[0]


def start_host(actor_class: type[pykka.ThreadingActor], *args: Any, name: str | None = None,
               options: dict[str, Any] | None = None, spawn_timeout: float = 60.0,
               **kwargs: Any) -> RayActorRef:
    """Start ``actor_class(*args, **kwargs)`` alone in a new Ray actor (no system); its ref.

    ``start_hosted`` says what ``options`` are and what is raised.
    """
    return start_hosted(actor_class, args, kwargs, name=name, options=options,
                        spawn_timeout=spawn_timeout)[0]


def start_hosted(actor_class: type[pykka.ThreadingActor], args: tuple[Any, ...],
                 kwargs: dict[str, Any], *, name: str | None = None,
                 options: dict[str, Any] | None = None, spawn_timeout: float = 60.0,
                 actor_id: str | None = None, spec: HostSpec | None = None,
                 ) -> tuple[RayActorRef, tuple[int, str]]:
    """Start ``actor_class(*args, **kwargs)`` in a new Ray actor; its ref once it runs.

    ``options`` go to Ray's ``.options()`` (placement: ``num_cpus``, ``resources``,
    ``scheduling_strategy``, ...). The constructor's exception is re-raised here, as
    by ``ActorSystem.spawn``; a host that cannot start raises ``SpawnError``.
    """
    number = next(_ids)
    name = name or f"{actor_class.__name__}-{number}"
    if actor_id is None:
        actor_id = f"r{number}-{id(start_host):x}"  # unique per service process
    payload = wire.dumps((actor_class, args, kwargs), f"actor {name!r} (its class or arguments)")
    chosen = {"num_cpus": 0, "max_restarts": 0, **(options or {})}
    handle = _remote_host().options(**chosen).remote(actor_id, name, payload, spec)
    ref = RayActorRef(handle, actor_id, name, stream=chosen.get("name"))
    try:
        booted = ray.get(handle.booted.remote(), timeout=spawn_timeout)
    except ray.exceptions.GetTimeoutError:
        ray.kill(handle, no_restart=True)
        raise SpawnError(f"actor {name!r} was not ready within {spawn_timeout}s") from None
    except ray.exceptions.RayActorError as exc:
        raise SpawnError(f"actor {name!r} could not start: {dead_error(name, exc)}") from None
    started: Future[tuple[int, str]] = Future()
    settle(started, booted)
    try:
        where = started.get(timeout=0)
    except BaseException:
        ray.kill(handle, no_restart=True)
        raise
    return ref, where


def spawn_on(transport: RayTransport, actor_class: type[pykka.ThreadingActor], *args: Any,
             name: str | None = None, options: dict[str, Any] | None = None,
             **kwargs: Any) -> ActorAddress:
    """Host ``actor_class(*args, **kwargs)`` in a new Ray actor named for ``transport``'s
    system; its address once it runs (for the system's ``ActorRef``).

        to = spawn_on(transport, Counter, name="counter")
    """
    process = transport.new_process_name()
    ref = start_host(actor_class, *args, name=name,
                     options={**(options or {}), "name": process}, **kwargs)
    transport.adopt(process, ref)
    return ActorAddress(transport.system_id, process, ref.actor_id, ref.name)
