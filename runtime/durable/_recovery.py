"""Taking over unfinished executions when a system starts, without anyone calling ``map``."""

from __future__ import annotations

from typing import Protocol

from actors import tracelog
from actors.records._status import ExecutionStatus
from runtime.config import SystemConfig
from runtime.durable._store_url import absolute_store_url
from runtime.stores import DEFAULT_PATH, open_store, read_only_url

log = tracelog.get_logger("runtime.durable")


class Recoverable(Protocol):
    """What recovery needs of a system (``ActorSystem`` is one)."""

    @property
    def store_url(self) -> str | None: ...

    @property
    def closed(self) -> bool: ...

    @property
    def durable_started(self) -> bool: ...

    def start_durable(self) -> None: ...

    def wait_closed(self, timeout: float) -> bool: ...


def has_work_to_recover(store_url: str, lock_timeout: float) -> bool:
    """Whether a store (that exists) holds unfinished executions: a system starts its
    durable services at once for them, without waiting for a ``map``."""
    try:
        reader = open_store(read_only_url(store_url), lock_timeout=lock_timeout)
    except Exception:
        return False
    try:
        return any(reader.read_executions(status) for status in
                   (ExecutionStatus.RUNNING, ExecutionStatus.SUSPENDED))
    finally:
        reader.close()


def recover_at_start(system: Recoverable, config: SystemConfig) -> None:
    """Start the durable services of ``system`` if its store has work to recover; look again
    every lease while nothing started them (another system on the store may die later).

        threading.Thread(target=recover_at_start, args=(system, config), daemon=True).start()
    """
    url = absolute_store_url(system.store_url)
    if system.store_url is None and not DEFAULT_PATH.exists():
        return
    while not system.closed and not system.durable_started:
        if has_work_to_recover(url, config.store_lock_timeout):
            try:
                system.start_durable()
            except Exception as exc:
                log.error("recovery.start_failed", error=repr(exc))
            return
        if system.wait_closed(config.lease_seconds):
            return


__all__ = ["Recoverable", "has_work_to_recover", "recover_at_start"]
