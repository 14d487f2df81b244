"""The store contract the checkpoint actor writes through, and an in-memory store for tests.

``Store`` is the one interface every store implements (SQLite and PostgreSQL in
``runtime.stores``, ``MemoryStore`` here): commits of batches with lease fences,
log reads, and the lease rules of ``actors.records``.
"""

from actors.store._contract import (
    Store,
    check_executor_free,
    claimable,
    is_finished,
    lease_lost,
    log_chunks,
    reruns,
)
from actors.store._memory import MemoryStore

__all__ = [
    "MemoryStore",
    "Store",
    "check_executor_free",
    "claimable",
    "is_finished",
    "lease_lost",
    "log_chunks",
    "reruns",
]
