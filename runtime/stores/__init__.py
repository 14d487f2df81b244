"""Store implementations, chosen by URL.

    store = open_store("sqlite:///state.db")      # ./state.db
    store = open_store("sqlite:////var/lib/app/state.db")
    store = open_store("sqlite:///state.db?mode=ro")  # a reader that never writes
    store = open_store("memory://")                # in memory, for tests
    store = open_store(None)                       # ./.durable/durable.db
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs

from actors.errors import StoreUnavailableError
from actors.store._contract import Store
from actors.store._memory import MemoryStore
from runtime.stores.sqlite import SqliteStore

DEFAULT_PATH = Path(".durable") / "durable.db"

_ACCEPTED = (
    "sqlite:///relative/path.db, sqlite:////absolute/path.db (add ?mode=ro to only read), "
    "memory://, or no URL for ./.durable/durable.db"
)


def open_store(
    url: str | None = None, *, synchronous: str = "FULL", lock_timeout: float = 5.0
) -> Store:
    """Open the store a URL names; see ``SqliteStore`` for ``synchronous`` and ``lock_timeout``.

        store = open_store("sqlite:///state.db", synchronous="NORMAL")
        try:
            ...
        finally:
            store.close()

    Raises ``StoreUnavailableError`` for a URL it does not accept (saying which it
    does) and the typed errors of ``SqliteStore`` when the file cannot be used.
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
    if scheme in ("postgresql", "postgres"):
        # The URL is not echoed: it may hold a password.
        raise StoreUnavailableError(f"PostgreSQL stores are not supported yet; use {_ACCEPTED}")
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


__all__ = ["DEFAULT_PATH", "SqliteStore", "open_store"]
