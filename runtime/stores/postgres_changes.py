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
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runtime.stores.postgres_faults import ConnectionTarget, classify, import_psycopg

if TYPE_CHECKING:
    import psycopg

CHANNEL = "durable_actors_executions"
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


__all__ = ["CHANNEL", "NOTIFY_SQL", "ExecutionChanges"]
