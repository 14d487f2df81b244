"""Durable executions on top of the process host: where the actors of ``actors`` are placed.

``DurableServices`` starts the checkpoint actor, the scheduler, the digest actor
and the workers in processes of their own and the coordinator in the service
process, and recovers from their crashes; ``Execution`` is the handle a caller
gets for an execution.
"""

from runtime.durable._blob_gc import collect_blobs, digests_in
from runtime.durable._checkpoint_process import StoreCheckpointActor
from runtime.durable._executions import (
    Execution,
    check_timeout,
    map_specs,
    new_execution_id,
    parallel_specs,
    validate_execution_id,
)
from runtime.durable._liveness import HOST, this_executor
from runtime.durable._recovery import recover_at_start
from runtime.durable._refs import BlobReader, FileBlobStore, blob_dir_for
from runtime.durable._services import DurableServices
from runtime.durable._store_url import absolute_store_url

__all__ = [
    "HOST",
    "BlobReader",
    "DurableServices",
    "Execution",
    "FileBlobStore",
    "StoreCheckpointActor",
    "absolute_store_url",
    "blob_dir_for",
    "check_timeout",
    "collect_blobs",
    "digests_in",
    "map_specs",
    "new_execution_id",
    "parallel_specs",
    "recover_at_start",
    "this_executor",
    "validate_execution_id",
]
