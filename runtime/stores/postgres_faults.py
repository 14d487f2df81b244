"""What went wrong with a PostgreSQL store, typed, said without the password.

``classify`` turns a psycopg error into the ``StoreError`` a user reads (what
happened, what to do) and the ``Fault`` the store acts on (reconnect, retry,
give up). Messages name the store by its URL without the password, and any
text from the server or the driver is scrubbed of it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from types import ModuleType
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from actors.errors import (
    StoreError,
    StoreLockedError,
    StoreReadOnlyError,
    StoreUnavailableError,
)

REDACTED = "***"
APPLICATION_NAME = "durable-actors"


class Fault(Enum):
    """What the store does about an error."""

    UNREACHABLE = "unreachable"  # no server answered: reconnecting may help
    REFUSED = "refused"  # credentials, database, permissions: reconnecting will not help
    CONNECTION_LOST = "connection_lost"  # the session died: the transaction did not commit
    CONFLICT = "conflict"  # serialization failure or deadlock: run the transaction again
    LOCKED = "locked"
    READ_ONLY = "read_only"
    SERVER = "server"  # the server could not do it (disk full, out of memory): say so
    OTHER = "other"  # the caller's own data error: raised as the driver raised it


def import_psycopg() -> ModuleType:
    """psycopg, or a ``StoreUnavailableError`` saying which extra to install."""
    try:
        import psycopg  # noqa: PLC0415 - psycopg: the optional [postgres] extra
    except ImportError:
        raise StoreUnavailableError(
            "PostgreSQL stores need psycopg 3, which is not installed; "
            "pip install 'durable-actors[postgres]'"
        ) from None
    return psycopg


@dataclass(frozen=True)
class ConnectionTarget:
    """A store URL taken apart: what to connect with, and what to show people."""

    conninfo: str  # the URL as libpq takes it (our own ``mode`` option removed)
    safe_url: str  # the URL without its password, for messages and logs
    password: str | None
    read_only: bool

    @classmethod
    def parse(cls, url: str, psycopg: ModuleType) -> ConnectionTarget:
        parts = urlsplit(url)
        options = parse_qsl(parts.query, keep_blank_values=True)
        modes = [v for k, v in options if k == "mode"]
        if any(m not in ("ro", "rw") for m in modes):
            raise StoreUnavailableError(
                "the PostgreSQL store URL's mode must be mode=ro (only read) or mode=rw"
            )
        kept = [(k, v) for k, v in options if k != "mode"]
        if not any(k == "application_name" for k, _ in kept):
            kept.append(("application_name", APPLICATION_NAME))  # how pg_stat_activity names us
        # quote, not quote_plus: libpq decodes %20 in a URI but takes "+" literally.
        conninfo = urlunsplit((parts.scheme, parts.netloc, parts.path,
                               urlencode(kept, quote_via=quote), ""))
        try:
            fields = psycopg.conninfo.conninfo_to_dict(conninfo)
        except psycopg.Error as err:
            password = parts.password
            reason = str(err) if not password else str(err).replace(password, REDACTED)
            raise StoreUnavailableError(
                f"the PostgreSQL store URL cannot be used ({reason}); write it as "
                "postgresql://user:password@host:5432/database"
            ) from None
        password = fields.get("password") or None
        user = fields.get("user", "")
        host = fields.get("host", "")
        port = fields.get("port", "")
        netloc = (f"{quote(user, safe='')}@" if user else "") + (
            f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
        safe_query = urlencode([(k, v) for k, v in kept
                                if k not in ("password", "application_name")], quote_via=quote)
        safe = urlunsplit((parts.scheme, netloc, f"/{fields.get('dbname', '')}", safe_query, ""))
        return cls(conninfo, safe, password, "ro" in modes)

    def scrub(self, text: str) -> str:
        """``text`` without the password, however it got there."""
        if not self.password:
            return text
        return text.replace(self.password, REDACTED).replace(quote(self.password, safe=""),
                                                             REDACTED)


_LOGIN_REFUSED = ("password authentication failed", "no pg_hba.conf entry", "role \"",
                  "authentication failed", "no password supplied")


def classify(err: Exception, target: ConnectionTarget, where: str, lock_timeout: float,
             read_only: bool, connecting: bool) -> tuple[Fault, StoreError]:
    """The ``Fault`` of ``err`` and the typed error a user reads; see the module docstring."""
    import psycopg  # noqa: PLC0415 - psycopg: the optional [postgres] extra
    from psycopg import errors  # noqa: PLC0415 - psycopg: the optional [postgres] extra

    reason = target.scrub(str(err).strip())
    sqlstate: str | None = getattr(err, "sqlstate", None)
    if connecting and sqlstate is None and isinstance(err, psycopg.OperationalError):
        return _connect_fault(reason, target, where)
    if isinstance(err, errors.SerializationFailure | errors.DeadlockDetected):
        return Fault.CONFLICT, StoreError(f"{where}: a concurrent transaction conflicted "
                                          f"({reason}); retry")
    if isinstance(err, errors.LockNotAvailable):
        return Fault.LOCKED, StoreLockedError(
            f"{where}: a row stayed locked by another transaction for more than "
            f"{lock_timeout}s; stop the other writer of this store (one system per store) or "
            "raise lock_timeout"
        )
    if isinstance(err, errors.ReadOnlySqlTransaction):
        hint = ("it was opened read-only (mode=ro); open it read-write to write" if read_only
                else "the server or the role only allows reading (a hot standby, or "
                     "default_transaction_read_only); point the URL at the primary")
        return Fault.READ_ONLY, StoreReadOnlyError(f"{where} is read-only ({reason}); {hint}")
    if isinstance(err, errors.InsufficientPrivilege):
        return Fault.REFUSED, StoreUnavailableError(
            f"{where}: the role may not do this ({reason}); grant it the privileges on the "
            "store's schema and tables, or run the first open (which creates the tables) as "
            "their owner"
        )
    if isinstance(err, errors.AdminShutdown | errors.CrashShutdown | errors.CannotConnectNow) or (
        isinstance(err, psycopg.OperationalError | psycopg.InterfaceError)
        and (sqlstate is None or sqlstate.startswith("08"))
    ):
        return Fault.CONNECTION_LOST, StoreUnavailableError(
            f"the connection to {where} was lost ({reason})"
        )
    if isinstance(err, errors.DiskFull | errors.OutOfMemory | errors.InsufficientResources):
        return Fault.SERVER, StoreError(f"{where} could not write ({reason}); free space on "
                                        "the server and retry")
    if isinstance(err, psycopg.DataError | psycopg.IntegrityError | psycopg.ProgrammingError):
        return Fault.OTHER, StoreError(f"{where}: {reason}")
    return Fault.SERVER, StoreError(f"{where} failed ({reason}); check the server, then retry")


def _connect_fault(reason: str, target: ConnectionTarget,
                   where: str) -> tuple[Fault, StoreError]:
    detail = reason.rpartition("failed:")[2].strip() or reason
    if any(marker in reason for marker in _LOGIN_REFUSED):
        return Fault.REFUSED, StoreUnavailableError(
            f"cannot log in to {where}: the server refused the user or its password "
            f"({detail}); check the user and password in the store URL (or PGPASSWORD, "
            "~/.pgpass)"
        )
    if "does not exist" in reason and "database" in reason:
        database = target.safe_url.rpartition("/")[2].partition("?")[0]
        return Fault.REFUSED, StoreUnavailableError(
            f"cannot open {where}: {detail}; create it first (createdb {database}, or "
            f"CREATE DATABASE {database}) or fix the database name in the URL"
        )
    return Fault.UNREACHABLE, StoreUnavailableError(
        f"cannot reach {where} ({detail}); check that the server runs and that the host and "
        "port in the URL are right, then retry"
    )


__all__ = ["APPLICATION_NAME", "REDACTED", "ConnectionTarget", "Fault", "classify",
           "import_psycopg"]
