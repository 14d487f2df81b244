"""Every test here runs once per runtime, as pykka's suite runs once per actor kind.

``processes`` is the local backend (OS processes over Unix sockets), ``ray`` the
Ray backend on the suite's local Ray (``ActorSystem(backend="ray")``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runtime import ActorSystem, SystemConfig
from runtime.testing import TraceEvents

RUNTIMES = ["processes", "ray"]


@pytest.fixture(params=RUNTIMES)
def system(request: pytest.FixtureRequest) -> Iterator[ActorSystem]:
    """A started system of the runtime under test."""
    if request.param == "processes":
        yield request.getfixturevalue("actor_system")
        return
    request.getfixturevalue("ray_local")
    config: SystemConfig = request.getfixturevalue("actor_system_config")
    store: str = request.getfixturevalue("actor_system_store")
    with ActorSystem(store=store, config=config, backend="ray") as on_ray:
        yield on_ray


@pytest.fixture
def trace_events(system: ActorSystem) -> TraceEvents:
    """The trace of the system under test (every process)."""
    path = system.config.trace_path
    assert path is not None
    return TraceEvents(path)
