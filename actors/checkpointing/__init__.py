"""Checkpointing: the checkpoint actor and what feeds it.

The checkpoint actor is the store's only writer: it batches ``Checkpoint``
messages into store transactions (its batching policy is
``CheckpointBatch`` and the actor's window), answers each waiter once its batch
is durable, and keeps the system's leases (``LeaseDesk``). On the branches'
side, a worker's ``CheckpointOutbox`` and ``LoopOutbox`` combine the checkpoints
that queue up, and ``CheckpointGate`` holds a checkpoint until the blobs it
names are durable. ``PeekableInbox`` lets a batching actor look into its inbox.
"""

from actors.checkpointing._actor import STREAM_CHUNK, CheckpointActor
from actors.checkpointing._gate import CheckpointGate
from actors.checkpointing._inbox import PeekableInbox
from actors.checkpointing._lease_desk import LeaseDesk
from actors.checkpointing._loop_outbox import LoopOutbox
from actors.checkpointing._outbox import CheckpointOutbox

__all__ = [
    "STREAM_CHUNK",
    "CheckpointActor",
    "CheckpointGate",
    "CheckpointOutbox",
    "LeaseDesk",
    "LoopOutbox",
    "PeekableInbox",
]
