"""One connection to a PostgreSQL store: transactions in one round trip, faults survived.

``PostgresSession`` is the machinery under ``PostgresStore``: it connects (and
reconnects with back-off), runs each transaction as one pipeline (``BEGIN``,
the statements, ``COMMIT``), runs a transaction again after a lost connection
or a serialization failure, and turns every psycopg error into the typed
``StoreError`` a user reads (``postgres_faults``). A batch the lease fence
refuses (``durable_actors_fence``) raises ``LeaseLostError``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from actors import tracelog
from actors.errors import LeaseLostError, StoreError, StoreUnavailableError
from actors.store import lease_lost
from runtime.stores.postgres_faults import ConnectionTarget, Fault, classify, import_psycopg
from runtime.stores.postgres_schema import FENCE_SQLSTATE

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")
log = tracelog.get_logger("runtime.stores.postgres")

_CONFLICT_RETRIES = 8  # serialization failures and deadlocks retried this many times
READ_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"  # one snapshot for all reads


class PostgresSession:
    """A connection to the store at ``url`` and the transactions run on it; see the module.

    One instance may be shared by threads (a lock serializes them).
    """

    def __init__(self, url: str, *, lock_timeout: float, read_only: bool,
                 reconnect_timeout: float) -> None:
        self._psycopg = import_psycopg()
        self.target = ConnectionTarget.parse(url, self._psycopg)
        self.read_only = read_only or self.target.read_only
        self.lock_timeout = lock_timeout
        self.reconnect_timeout = reconnect_timeout
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._closed = False
        self._conn = self._connect()

    @property
    def where(self) -> str:
        """The store as people read it: its URL without the password."""
        return f"the PostgreSQL store at {self.target.safe_url}"

    # -- connections ------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        """One connection attempt; raises the typed error of a failed one."""
        try:
            return self._connect_once()
        except self._psycopg.Error as err:
            raise self._typed(err, connecting=True) from None

    def _connect_once(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] = self._psycopg.connect(self.target.conninfo,
                                                             autocommit=True)
        try:
            # Session settings, again on every reconnect: the store's rules, not the server's.
            conn.execute(f"SET lock_timeout = {max(1, round(self.lock_timeout * 1000))}")
            if self.read_only:
                conn.execute("SET default_transaction_read_only = on")
        except BaseException:
            conn.close()
            raise
        return conn

    def _reconnect(self, cause: str) -> psycopg.Connection[Any]:
        """A new connection, retried with back-off for ``reconnect_timeout`` seconds."""
        deadline = time.monotonic() + self.reconnect_timeout
        delay = 0.05
        attempts = 0
        while True:
            attempts += 1
            try:
                self._conn = self._connect_once()
            except self._psycopg.Error as failed:
                fault, err = self._classify(failed, connecting=True)
                if fault is Fault.REFUSED:
                    raise err from None  # credentials or a dropped database: waiting won't help
                if time.monotonic() + delay > deadline:
                    raise StoreUnavailableError(
                        f"{self.where} went away ({cause}) and did not come back within "
                        f"{self.reconnect_timeout}s ({attempts} attempts; last: {err}); nothing "
                        "was acknowledged that was not committed; retry once the server is back"
                    ) from None
                log.warning("store.reconnecting", store=self.target.safe_url, attempt=attempts,
                            error=str(err), retry_in=delay)
                time.sleep(delay)  # back-off between attempts against a server that is down
                delay = min(delay * 2, 1.0)
                continue
            log.info("store.reconnected", store=self.target.safe_url, attempts=attempts)
            return self._conn

    def _live(self) -> psycopg.Connection[Any]:
        if self._closed:
            raise StoreUnavailableError(f"{self.where} is closed; open a new one")
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            conn = self._reconnect("its connection was closed")
        return conn

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a broken connection may fail to close
                conn.close()

    # -- transactions and errors ------------------------------------------------------------

    def _classify(self, err: Exception, connecting: bool = False) -> tuple[Fault, StoreError]:
        return classify(err, self.target, self.where, self.lock_timeout, self.read_only,
                        connecting)

    def _typed(self, err: Exception, connecting: bool = False) -> StoreError:
        return self._classify(err, connecting)[1]

    def _run(self, work: Callable[[psycopg.Connection[Any]], T], *, begin: str | None) -> T:
        """``work`` in one transaction, sent as one pipeline; run again where that is safe.

        A lost connection runs the whole transaction again on a new one, whether or not
        its COMMIT had reached the server: a batch's upserts are idempotent (a batch
        applied twice leaves the rows it leaves once), and the caller is answered only
        after a COMMIT returned. Serialization failures and deadlocks run it again too.
        """
        def issue(conn: psycopg.Connection[Any]) -> Callable[[], T]:
            result = work(conn)
            return lambda: result

        return self._run_fetching(issue, begin=begin)

    def _run_fetching(self, issue: Callable[[psycopg.Connection[Any]], Callable[[], T]], *,
                      begin: str | None) -> T:
        """As ``_run``, where ``issue`` queues statements and returns what fetches their
        answer: it is called once the COMMIT is queued, so that statements whose
        results nothing in the transaction needs cost no round trip of their own."""
        psycopg = self._psycopg
        conflicts = 0
        lost_since: float | None = None
        with self._lock:
            while True:
                conn = self._live()
                try:
                    return self._attempt(conn, issue, begin)
                except psycopg.Error as err:
                    if getattr(err, "sqlstate", None) == FENCE_SQLSTATE:
                        raise fence_refused(err) from None
                    fault, typed = self._classify(err)
                    if fault is Fault.CONNECTION_LOST:
                        self._discard()
                        lost_since = lost_since or time.monotonic()
                        if time.monotonic() - lost_since > self.reconnect_timeout:
                            raise typed from None  # connections keep dying: stop trying
                        log.warning("store.connection_lost", store=self.target.safe_url,
                                    error=str(typed), retrying=True)
                        continue
                    if fault is Fault.CONFLICT and conflicts < _CONFLICT_RETRIES:
                        conflicts += 1
                        log.info("store.conflict_retried", store=self.target.safe_url,
                                 attempt=conflicts, error=str(typed))
                        time.sleep(0.001 * 2 ** conflicts)  # let the other transaction finish
                        continue
                    if fault is Fault.OTHER:
                        raise  # the caller's own data error (a NOT NULL, a type): as is
                    raise typed from None

    def _attempt(self, conn: psycopg.Connection[Any],
                 issue: Callable[[psycopg.Connection[Any]], Callable[[], T]],
                 begin: str | None) -> T:
        """BEGIN, ``issue``, COMMIT in one pipeline, then the fetch: one round trip unless
        ``issue`` reads.

        ``begin=None``: ``issue`` is one statement, its own transaction (autocommit).
        """
        if begin is None:
            return issue(conn)()
        try:
            with conn.pipeline():
                conn.execute(begin)
                fetch = issue(conn)
                conn.execute("COMMIT")
                result = fetch()
            return result
        except BaseException:
            idle = self._psycopg.pq.TransactionStatus.IDLE
            if not conn.closed and not conn.broken and conn.info.transaction_status != idle:
                conn.execute("ROLLBACK")  # a failed statement left the transaction open
            raise

    @contextmanager
    def _snapshot(self) -> Iterator[psycopg.Connection[Any]]:
        """One read-only snapshot (for streaming reads that cannot be run again)."""
        psycopg = self._psycopg
        with self._lock:
            conn = self._live()
            try:
                conn.execute(READ_SNAPSHOT)
            except psycopg.Error as err:
                fault, typed = self._classify(err)
                self._discard()
                if fault is not Fault.CONNECTION_LOST:
                    raise typed from None
                conn = self._live()  # nothing was read yet: reconnect, with back-off, and begin
                try:
                    conn.execute(READ_SNAPSHOT)
                except psycopg.Error as again:
                    self._discard()
                    raise self._typed(again) from None
            try:
                yield conn
                conn.execute("COMMIT")
            except psycopg.Error as err:
                self._discard()
                raise self._typed(err) from None
            except BaseException:
                if not conn.broken and not conn.closed:
                    conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        """Close the connection; safe to call twice."""
        with self._lock:
            self._closed = True
            self._discard()




def fence_refused(err: Exception) -> LeaseLostError:
    """The ``LeaseLostError`` of a batch ``durable_actors_fence`` refused."""
    diag = getattr(err, "diag", None)
    executor = getattr(diag, "message_primary", None) or "?"
    refused = json.loads(getattr(diag, "message_detail", None) or "[]")
    return lease_lost(executor, [str(eid) for eid in refused])


__all__ = ["READ_SNAPSHOT", "PostgresSession", "fence_refused"]
