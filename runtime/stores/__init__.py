"""Store implementations, chosen by URL.

    store = open_store("sqlite:///state.db")      # ./state.db
    store = open_store("sqlite:////var/lib/app/state.db")
    store = open_store("sqlite:///state.db?mode=ro")  # a reader that never writes
    store = open_store("memory://")                # in memory, for tests
    store = open_store(None)                       # ./.durable/durable.db
    store = open_store("postgresql://app:secret@db.internal:5432/app")  # needs [postgres]
    store = open_store(read_only_url(url))         # any of them, only to read
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

from actors.errors import StoreUnavailableError
from actors.store._contract import Store
from actors.store._memory import MemoryStore
from runtime.stores.postgres import (  # imports psycopg only when one is opened
    LeaseClock,
    PostgresStore,
)
from runtime.stores.postgres_changes import ChangeListener
from runtime.stores.sqlite import SqliteStore

DEFAULT_PATH = Path(".durable") / "durable.db"

_ACCEPTED = (
    "sqlite:///relative/path.db, sqlite:////absolute/path.db (add ?mode=ro to only read), "
    "memory://, postgresql://user:password@host:5432/database (add ?mode=ro to only read), "
    "or no URL for ./.durable/durable.db"
)
_POSTGRES_SCHEMES = ("postgresql", "postgres")


def open_store(
    url: str | None = None, *, synchronous: str = "FULL", lock_timeout: float = 5.0
) -> Store:
    """Open the store a URL names; see ``SqliteStore`` and ``PostgresStore`` for the options.

    ``synchronous`` applies to SQLite only (PostgreSQL follows the server's
    ``synchronous_commit``); ``lock_timeout`` to both.

        store = open_store("sqlite:///state.db", synchronous="NORMAL")
        try:
            ...
        finally:
            store.close()

    Raises ``StoreUnavailableError`` for a URL it does not accept (saying which it
    does) and the typed errors of ``SqliteStore`` or ``PostgresStore`` when the store
    cannot be used.
    """
    if url is None:
        DEFAULT_PATH.parent.mkdir(parents=True, exist_ok=True)
        return SqliteStore(DEFAULT_PATH, synchronous=synchronous, lock_timeout=lock_timeout)
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()
    if not separator:
        raise StoreUnavailableError(f"store URL {url!r} has no scheme; use {_ACCEPTED}")
    if scheme == "memory" and rest in ("", "/"):
        return MemoryStore()
    if scheme in _POSTGRES_SCHEMES:
        return PostgresStore(url, lock_timeout=lock_timeout)
    if scheme != "sqlite":
        raise StoreUnavailableError(
            f"store URLs with scheme {scheme!r} are not supported; use {_ACCEPTED}"
        )
    path, _, query = rest.partition("?")
    if not path.startswith("/") or path in ("/", "//"):
        raise StoreUnavailableError(f"store URL {url!r} names no file; use {_ACCEPTED}")
    options = parse_qs(query, keep_blank_values=True)
    mode = options.pop("mode", ["rwc"])
    if options or mode not in (["ro"], ["rwc"]):
        raise StoreUnavailableError(
            f"store URL {url!r} has options this store does not know; the only one is mode=ro"
        )
    return SqliteStore(
        path[1:], synchronous=synchronous, lock_timeout=lock_timeout, read_only=mode == ["ro"]
    )


def listen_for_changes(url: str, on_change: Callable[[tuple[str, ...]], None],
                       ) -> ChangeListener | None:
    """Hear of changes to the store's executions as they commit, where the store can say
    (PostgreSQL's LISTEN/NOTIFY); None for a store that cannot (SQLite, memory).

        listener = listen_for_changes(url, lambda ids: print("changed:", ids))
        if listener is not None:
            listener.close()
    """
    if url.partition("://")[0].lower() not in _POSTGRES_SCHEMES:
        return None
    return ChangeListener(url, on_change)


def redacted_url(url: str) -> str:
    """``url`` as it may be shown or logged: any password replaced by ``***``.

        redacted_url("postgresql://app:secret@db/app")   # "postgresql://app:***@db/app"
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{name}:***@{host}"))


def read_only_url(url: str) -> str:
    """``url`` opened only to read: ``mode=ro`` for SQLite and PostgreSQL, as is for memory.

        read_only_url("sqlite:///state.db")            # "sqlite:///state.db?mode=ro"
        read_only_url("postgresql://u@h/app?sslmode=require")  # "...&mode=ro"
    """
    scheme = url.partition("://")[0].lower()
    if scheme != "sqlite" and scheme not in _POSTGRES_SCHEMES:
        return url
    base, _, query = url.partition("?")
    kept = [part for part in query.split("&") if part and not part.startswith("mode=")]
    return f"{base}?{'&'.join([*kept, 'mode=ro'])}"


__all__ = ["DEFAULT_PATH", "ChangeListener", "LeaseClock", "PostgresStore", "SqliteStore",
           "listen_for_changes", "open_store", "read_only_url", "redacted_url"]
