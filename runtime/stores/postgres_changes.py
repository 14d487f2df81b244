"""Waking observers of a PostgreSQL store with LISTEN/NOTIFY instead of polling it.

A ``PostgresStore`` batch that writes an ``ExecutionUpdate`` (an execution
created, suspended, finished) also sends ``pg_notify(CHANNEL, execution_id)``
in the same transaction: PostgreSQL delivers it only if, and once, the batch
commits. ``ExecutionChanges`` listens on its own connection and hands out the
ids of executions that changed, so a process that observes executions owned by
another system can wait for a change instead of reading the store in a loop.
Step checkpoints send nothing: the notification costs nothing on the step path.

    changes = ExecutionChanges("postgresql://app:secret@db.internal/app")
    try:
        changed = changes.wait(timeout=5.0)     # {"nightly-1"} or set() after 5 s
    finally:
        changes.close()

A notification is a hint to read the store, not a record: one sent while no
listener was connected is gone, so a listener reads the store once after
connecting, and again after any reconnect.

Besides those batches, a claim, a cancel, a callback settled by another
system, a reopening and a deletion notify the execution's id; released leases
(a system that stops) notify ``RELEASED`` (an empty payload), which a listener
hands on as "anything may have changed", so that other systems take the
executions over at once.
``ChangeListener`` is what a service runs: a thread that hands every batch of
changed ids to a callback (the runtime tells its coordinator ``StoreChanged``),
reconnecting with back-off, and that hands ``()`` ("anything may have changed")
each time it is connected.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from actors import tracelog
from runtime.stores.postgres_faults import ConnectionTarget, classify, import_psycopg

if TYPE_CHECKING:
    import psycopg

log = tracelog.get_logger("runtime.stores.postgres")

CHANNEL = "durable_actors_executions"
RELEASED = ""  # the payload of released leases: not one execution's change, a hint to all
NOTIFY_SQL = "SELECT pg_notify('durable_actors_executions', %s)"


class ExecutionChanges:
    """The ids of executions whose stored status changed; see the module docstring."""

    def __init__(self, url: str) -> None:
        self._psycopg = import_psycopg()
        self.target = ConnectionTarget.parse(url, self._psycopg)
        where = f"the PostgreSQL store at {self.target.safe_url}"
        try:
            self._conn: psycopg.Connection[Any] = self._psycopg.connect(
                self.target.conninfo, autocommit=True)
            self._conn.execute(f"LISTEN {CHANNEL}")
        except self._psycopg.Error as err:
            raise classify(err, self.target, where, 0.0, True, connecting=True)[1] from None

    def wait(self, timeout: float) -> set[str]:
        """Execution ids notified within ``timeout`` seconds (all that are waiting, at once).

        Returns as soon as one arrives, with every other one already delivered;
        an empty set when none came in time.
        """
        found: set[str] = set()
        for notify in self._conn.notifies(timeout=timeout, stop_after=1):
            found.add(notify.payload)
        for notify in self._conn.notifies(timeout=0):  # those that came with it
            found.add(notify.payload)
        return found

    def close(self) -> None:
        """Stop listening; safe to call twice."""
        self._conn.close()


class ChangeListener:
    """Calls ``on_change(execution_ids)`` from a thread of its own as changes are notified.

        listener = ChangeListener(url, lambda ids: coordinator.tell(StoreChanged(ids)))
        ...
        listener.close()

    ``()`` means anything may have changed: it is told once each time the listener
    is connected (whatever changed before was not heard), and for released leases. A
    failing ``on_change`` is logged and the listener goes on.
    """

    def __init__(self, url: str, on_change: Callable[[tuple[str, ...]], None], *,
                 poll: float = 0.25, max_backoff: float = 5.0) -> None:
        self._url = url
        self._on_change = on_change
        self._poll = poll  # how soon close() is noticed
        self._max_backoff = max_backoff
        self._stop = threading.Event()
        self.listening = threading.Event()  # set while connected and listening
        self._thread = threading.Thread(target=self._listen, name="da-store-changes",
                                        daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        delay = 0.05
        while not self._stop.is_set():
            try:
                changes = ExecutionChanges(self._url)
            except Exception as exc:  # the server is away: try again, slower each time
                log.warning("store.changes_unavailable", error=str(exc), retry_in=delay)
                self._stop.wait(delay)
                delay = min(delay * 2, self._max_backoff)
                continue
            delay = 0.05
            self.listening.set()
            try:
                # Whatever changed before LISTEN took effect was not notified: read it now.
                self._tell(())
                while not self._stop.is_set():
                    changed = changes.wait(self._poll)
                    if RELEASED in changed:
                        self._tell(())  # orphans to take: every system may look now
                    elif changed:
                        self._tell(tuple(sorted(changed)))
            except Exception as exc:
                log.warning("store.changes_lost", error=changes.target.scrub(str(exc)))
            finally:
                self.listening.clear()
                changes.close()

    def _tell(self, execution_ids: tuple[str, ...]) -> None:
        try:
            self._on_change(execution_ids)
        except Exception as exc:  # the receiver is restarting or gone: it reads the store anyway
            log.info("store.change_not_told", error=repr(exc))

    def close(self) -> None:
        """Stop listening; returns once the thread ended (within ``poll`` seconds)."""
        self._stop.set()
        self._thread.join(timeout=self._poll + 5.0)


__all__ = ["CHANNEL", "NOTIFY_SQL", "RELEASED", "ChangeListener", "ExecutionChanges"]
