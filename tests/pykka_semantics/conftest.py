"""Every test here runs once per runtime, as pykka's suite runs once per actor kind.

Only local processes exist today; a Ray backend joins ``RUNTIMES`` when it lands.
"""

from __future__ import annotations

import pytest

from runtime import ActorSystem

RUNTIMES = ["processes"]


@pytest.fixture(params=RUNTIMES)
def system(request: pytest.FixtureRequest, actor_system: ActorSystem) -> ActorSystem:
    """A started system of the runtime under test (tracing to ``tmp_path``)."""
    return actor_system
