"""Workers: the actor that hosts branches on a bounded thread pool and an event loop.

``WorkerActor`` runs sync branches on its ``ThreadPool`` and async ones on its
``BranchLoop``, is the ``BranchHost`` of each run, and knows which of its runs
are stale (``RunFences``).
"""

from actors.workers._actor import WorkerActor
from actors.workers._fences import RunFences
from actors.workers._pool import ThreadPool

__all__ = [
    "RunFences",
    "ThreadPool",
    "WorkerActor",
]
