"""Fixtures shared by the suite: a started system, and process-level helpers.

The durable-actors pytest plugin (``runtime/pytest_plugin.py``) provides
``actor_system``, ``trace_events``, ``fake_clock`` and ``inline_host``; ``system``
is ``actor_system`` under the name the older tests use.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psutil
import pytest

from actors.refs import DigestActor, DigestClient, MemoryBlobStore, using_backend
from actors.store import MemoryStore, Store
from runtime import ActorSystem, SystemConfig
from runtime.stores.postgres import LeaseClock, PostgresStore
from runtime.stores.postgres_server import EmbeddedPostgres, ExternalPostgres, server_for_tests
from runtime.stores.sqlite import SqliteStore
from runtime.testing import wait_until

import ray_for_tests
from branch_kinds import Kind

__all__ = ["STORE_KINDS", "DigestRig", "children_of", "contract_store", "digest_rig", "pid_gone",
           "wait_until", "wait_until_quiet"]

# Stores the durable end-to-end tests run on (``store_url``): the embedded one and the server.
STORE_KINDS = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    """Let the services the suite starts take Ctrl-C, however the suite was started.

    A shell starts a background job with SIGINT ignored, an ignored signal stays
    ignored across ``exec``, and Python then raises no ``KeyboardInterrupt``: the
    tests that send SIGINT to a service would fail for the harness's sake. A
    handled SIGINT is reset to the default at ``exec``, so children get Python's own.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    ray_for_tests.prepare_process()  # Ray reads it as it is imported: before any test module does


# -- a local Ray, for the tests of the Ray backend ---------------------------------------

_RAY = ray_for_tests.TrackedRay(code_paths=[os.path.dirname(__file__)])
_RAY_SHAPES = {"ray_local": 1, "ray_module": 1, "ray_cluster": 2}  # the order their tests run in


def _ray_shape(item: pytest.Item) -> int:
    """1 for a test on the one-node Ray, 2 on the two-node one, 0 for one without Ray.

    A test asks for Ray by a fixture (``ray_local``, ``ray_cluster``) or by a
    parameter ``ray`` of a fixture that runs it once per backend.
    """
    names = getattr(item, "fixturenames", ())
    params = getattr(getattr(item, "callspec", None), "params", {})
    on_ray = 1 if "ray" in params.values() else 0
    return max((rank for name, rank in _RAY_SHAPES.items() if name in names), default=on_ray)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on a local Ray run last (one-node ones, then two-node ones), before the orphan check.

    So Ray starts at most once per shape, and its processes (which Ray starts and
    ends on its own schedule) never run beside a test that counts the processes it
    started.
    """
    def rank(item: pytest.Item) -> int:
        return 3 if item.path.name == "test_zz_no_orphans.py" else _ray_shape(item)

    items.sort(key=rank)  # stable: file order within each rank


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Stop the local Ray after the last test that needs it (``RuntimeError`` if it lingers)."""
    outcome = yield
    if _ray_shape(item) and (nextitem is None or not _ray_shape(nextitem)):
        seconds = _RAY.stop()
        if seconds is not None:
            print(f"\nlocal Ray stopped in {seconds:.1f} s")
    return outcome


@pytest.fixture(scope="session")
def ray_session() -> Iterator[ray_for_tests.TrackedRay]:
    """The session's local Ray: started by ``ray_local``/``ray_cluster``, stopped after their
    last test (and at the session's end, whatever happened)."""
    yield _RAY
    _RAY.stop()


@pytest.fixture
def ray_local(ray_session: ray_for_tests.TrackedRay) -> ray_for_tests.RunningRay:
    """A one-node local Ray (2 CPUs) this process is connected to; started once per session."""
    return ray_session.one_node()


@pytest.fixture(scope="module")
def ray_module(ray_session: ray_for_tests.TrackedRay) -> ray_for_tests.RunningRay:
    """``ray_local`` for a module-scoped fixture (a system shared by a module's tests)."""
    return ray_session.one_node()


@pytest.fixture
def ray_cluster(ray_session: ray_for_tests.TrackedRay) -> ray_for_tests.RunningRay:
    """A simulated two-node Ray cluster (1 CPU each) this process drives; started on demand."""
    return ray_session.two_nodes()


class DigestRig:
    """A digest actor over a memory blob store, and a client for this process."""

    def __init__(self, **client_options: Any) -> None:
        self.blobs = MemoryBlobStore()
        self.actor = DigestActor.start(self.blobs)
        self.client = DigestClient(self.actor, **client_options)

    def metrics(self) -> dict[str, int]:
        found: dict[str, int] = self.actor.proxy().metrics().get(timeout=5)
        return found


Rig = TypeVar("Rig", bound=DigestRig)


@contextmanager
def digest_rig(rig: Rig) -> Iterator[Rig]:
    """``rig``'s client is this process's Ref backend inside the block; then it is stopped."""
    try:
        with using_backend(rig.client):
            yield rig
    finally:
        rig.blobs.release()
        rig.client.close()
        rig.actor.stop()


def children_of(pid: int) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(pid).children(recursive=True) if p.is_running()
                and p.status() != psutil.STATUS_ZOMBIE]
    except psutil.NoSuchProcess:
        return []


def pid_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def actor_system_config(tmp_path: Any) -> SystemConfig:
    return SystemConfig(workers=1, trace_path=str(tmp_path / "trace.jsonl"), send_timeout=5.0,
                        blob_dir=str(tmp_path / "blobs"))


@pytest.fixture(params=list(Kind), ids=[k.value for k in Kind])
def kind(request: pytest.FixtureRequest) -> Kind:
    """Each test that asks for it runs twice: its branches as sync, then as async branches."""
    kind: Kind = request.param
    return kind


@pytest.fixture
def system(actor_system: ActorSystem) -> ActorSystem:
    """A started system on ``tmp_path/state.db``, tracing to ``tmp_path/trace.jsonl``."""
    return actor_system


@pytest.fixture(scope="session", autouse=True)
def no_orphans_at_the_end() -> Iterator[None]:
    """After the whole suite, no process started by it may still run."""
    yield
    leftover = wait_until_quiet(os.getpid())
    assert not leftover, f"orphan processes after the suite: {leftover}"


def wait_until_quiet(pid: int, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        alive = [f"{p.pid} {' '.join(p.cmdline()[:3])}" for p in children_of(pid)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[EmbeddedPostgres | ExternalPostgres]:
    """One PostgreSQL server for the session: ``DURABLE_ACTORS_TEST_POSTGRES``'s, or started here.

    The embedded one is stopped at the end of the session, and the test run fails
    if its postmaster is still running then.
    """
    server = server_for_tests()
    try:
        yield server
    finally:
        pid = server.pid if isinstance(server, EmbeddedPostgres) else None
        server.stop()
        if pid is not None:
            wait_until(lambda: pid_gone(pid), timeout=15)


@pytest.fixture
def embedded_postgres(postgres_server: EmbeddedPostgres | ExternalPostgres,
                      ) -> Iterator[EmbeddedPostgres]:
    """A server started here, which checks passwords: the session's, else one of the test's."""
    if isinstance(postgres_server, EmbeddedPostgres):
        yield postgres_server
        return
    with EmbeddedPostgres(durable=False) as server:
        yield server


def database_name(nodeid: str) -> str:
    """A database name of the test ``nodeid``: readable, unique, under PostgreSQL's 63 bytes."""
    digest = hashlib.sha256(nodeid.encode()).hexdigest()[:10]
    readable = re.sub(r"[^a-z0-9]+", "_", nodeid.rpartition("::")[2].lower())[:40]
    return f"t_{readable}_{digest}"


@pytest.fixture
def postgres_url(postgres_server: EmbeddedPostgres | ExternalPostgres,
                 request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database of the session's server, dropped after the test."""
    name = database_name(request.node.nodeid)
    url = postgres_server.create_database(name)
    yield url
    postgres_server.drop_database(name)


def contract_store(kind: str, request: pytest.FixtureRequest, tmp_path: Any) -> Store:
    """A fresh store of ``kind`` ("memory" or one of ``STORE_KINDS``) for the contract suites.

    PostgreSQL keeps lease times on the callers' clock here (``LeaseClock.CALLER``): the
    contract is stated in the ``now`` each call passes, and the tests pass a fake one.
    """
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        return SqliteStore(tmp_path / "state.db")
    return PostgresStore(request.getfixturevalue("postgres_url"), lease_clock=LeaseClock.CALLER)


@pytest.fixture(params=STORE_KINDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A store URL of each kind in turn: a SQLite file in ``tmp_path``, a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
