"""``BatchingPolicy``: every knob of checkpoint batching, in one frozen dataclass.

What a batch may hold (``max_ops``, ``max_bytes``), how long a loaded checkpoint
actor waits to fill one (``window``, ``quiet_gap``), how a wave of empties is
read and answered (``stream_chunk``), how answers travel (``group_answers``,
``bundle_limit``) and how a worker combines the checkpoints its threads send
(``outbox_limit``). ``CheckpointBatcher`` applies it; ``SystemConfig`` sets the
first three (``checkpoint_max_ops``, ``checkpoint_max_bytes``,
``checkpoint_window``) through ``SystemConfig.checkpoint_batching``.

    policy = BatchingPolicy(max_ops=100, window=0.005)
    CheckpointActor.start(store=store, clock=clock, batching=policy)
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BatchingPolicy:
    """How checkpoints are grouped into store transactions, and their answers into messages.

    * ``max_ops``: the most ops in one store transaction (all the empties of a
      batch together count as one).
    * ``max_bytes``: the most update bytes (``update.nbytes``) in one; an update
      bigger than this goes alone.
    * ``window``: seconds (of the actor's clock) a loaded actor keeps a batch open
      for more; an idle actor writes at once.
    * ``quiet_gap``: real seconds without a new message that close the window early.
    * ``stream_chunk``: a batch of only empties for more branches than this is read
      and answered this many branches at a time.
    * ``group_answers``: answer the handles that name one recipient together.
    * ``bundle_limit``: the most answers in one message to one recipient; several
      recipients take turns, a bundle each.
    * ``outbox_limit``: the most checkpoints a worker combines into one message.

        BatchingPolicy().max_ops          # 250, as the AWS durable SDK's batches
    """

    max_ops: int = 250
    max_bytes: int = 750 * 1024
    window: float = 0.01
    quiet_gap: float = 0.001
    stream_chunk: int = 128  # two bundles: one for each of two workers
    group_answers: bool = True
    bundle_limit: int = 64  # the receiver starts on the first bundle while more are pickled
    outbox_limit: int = 256

    def __post_init__(self) -> None:
        for name in ("max_ops", "max_bytes", "stream_chunk", "bundle_limit", "outbox_limit"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"BatchingPolicy.{name} must be an int >= 1, got {value!r}")
        for name in ("window", "quiet_gap"):
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, int | float)
                    or not 0 <= value < math.inf):
                raise ValueError(
                    f"BatchingPolicy.{name} must be a finite number of seconds >= 0, "
                    f"got {value!r}")
        if not isinstance(self.group_answers, bool):
            raise ValueError(
                f"BatchingPolicy.group_answers must be True or False, got {self.group_answers!r}")
