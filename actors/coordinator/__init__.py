"""The coordinator: the actor that runs the executions its system owns.

It dispatches branches (as empty checkpoints whose answer is the run), tracks
their reports, decides batches with their completion policy, and writes their
results through the checkpoint actor; it creates, claims, observes, cancels,
retries and deletes executions and keeps their leases (``LeaseKeeper``). Each
of these is a part of ``CoordinatorActor`` in a module of its own (see
``CoordinatorActor``'s module for the list).
"""

from actors.coordinator._actor import CoordinatorActor
from actors.coordinator._faults import describe_fault
from actors.coordinator._lease_keeper import MARGIN, LeaseKeeper

__all__ = [
    "MARGIN",
    "CoordinatorActor",
    "LeaseKeeper",
    "describe_fault",
]
