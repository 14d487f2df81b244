"""Checkpointing: the checkpoint actor and what feeds it.

The checkpoint actor is the store's only writer: it feeds the ``Checkpoint``
messages it is told to a ``CheckpointBatcher``, commits each batch the batcher
forms as one store transaction, answers each waiter once its batch is durable,
and keeps the system's leases (``LeaseDesk``). The whole batching policy (ops,
bytes, window, quiet gap, streaming chunk, answer grouping, bundle and outbox
limits) is one ``BatchingPolicy``. On the branches' side, a worker's
``CheckpointOutbox`` and ``LoopOutbox`` combine the checkpoints that queue up,
and ``CheckpointGate`` holds a checkpoint until the blobs it names are durable.
``PeekableInbox`` lets a batching actor look into its inbox; ``RunFences``
refuses the updates of a branch's superseded runs.
"""

from actors.checkpointing._actor import CheckpointActor
from actors.checkpointing._batcher import CheckpointBatch, CheckpointBatcher
from actors.checkpointing._fences import RunFences
from actors.checkpointing._gate import CheckpointGate
from actors.checkpointing._inbox import PeekableInbox
from actors.checkpointing._lease_desk import LeaseDesk
from actors.checkpointing._loop_outbox import LoopOutbox
from actors.checkpointing._outbox import CheckpointOutbox
from actors.checkpointing._policy import BatchingPolicy

__all__ = [
    "BatchingPolicy",
    "CheckpointActor",
    "CheckpointBatch",
    "CheckpointBatcher",
    "CheckpointGate",
    "CheckpointOutbox",
    "LeaseDesk",
    "LoopOutbox",
    "PeekableInbox",
    "RunFences",
]
