"""Another process of the system as this node sees it, and the credit that paces sends to it.

Flow control is credit based: a node may have at most ``window`` messages in
flight to one actor; the receiving actor returns credit (``CREDIT`` records) as
it takes messages from its inbox, so a slow actor slows its senders (and, past
``send_timeout``, makes them raise ``MailboxFullError``) instead of growing
memory without bound. Replies and control records are never held back, so a
full mailbox cannot block the reply an actor is waiting for.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from multiprocess.connection import Connection

from runtime.errors import ActorDeadError, MailboxFullError
from runtime.wire._channel import Channel


@dataclass(eq=False)
class Peer:
    """Another process of the system, as seen from this node."""

    node: Any  # the Node this peer belongs to (``runtime.wire.Node``)
    address: str
    conn: Connection | None = None
    channel: Channel | None = None  # the reading of ``conn``
    connect_lock: threading.Lock = field(default_factory=threading.Lock)
    flow_lock: threading.Lock = field(default_factory=threading.Lock)
    flow_cond: threading.Condition = field(init=False)
    inflight: dict[str, int] = field(default_factory=dict)  # actor id -> unacknowledged msgs
    consumed: dict[str, int] = field(default_factory=dict)  # actor id -> msgs to credit back
    pending: set[int] = field(default_factory=set)  # reply ids that wait on this peer
    out: deque[bytes] = field(default_factory=deque)  # frames waiting for the writer thread
    # Held while a frame is written, and while the connection is closed (re-entered when a
    # failed write breaks it): a descriptor number is never closed under a write.
    write_lock: threading.RLock = field(default_factory=threading.RLock)
    last_send: float = 0.0  # perf_counter of the last frame handed to this peer
    dead_actors: set[str] = field(default_factory=set)
    generation: int = 0  # bumped on every broken connection; wakes blocked senders

    def __post_init__(self) -> None:
        self.flow_cond = threading.Condition(self.flow_lock)

    def acquire_credit(self, actor_id: str, actor_name: str, window: int,
                       send_timeout: float) -> None:
        """Count one more message in flight to ``actor_id``; block while ``window`` are."""
        with self.flow_lock:
            inflight = self.inflight.get(actor_id, 0)
            if inflight >= window:
                generation = self.generation
                deadline = time.monotonic() + send_timeout
                channel = self.channel
                # Counted as waiting on the connection: somebody reads the credit we need.
                with channel.waiting() if channel is not None else contextlib.nullcontext():
                    self._wait_for_credit(actor_id, actor_name, window, send_timeout,
                                          generation, deadline)
                inflight = self.inflight.get(actor_id, 0)
            self.inflight[actor_id] = inflight + 1

    def _wait_for_credit(self, actor_id: str, actor_name: str, window: int,
                         send_timeout: float, generation: int, deadline: float) -> None:
        """Under ``flow_lock``: block until the actor's window has room."""
        while self.inflight.get(actor_id, 0) >= window:
            if self.generation != generation:
                raise ActorDeadError(f"actor {actor_name!r} went away while sending")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise MailboxFullError(
                    f"actor {actor_name!r} has not taken {window} messages "
                    f"from this process within {send_timeout}s; slow the sender, "
                    "speed up the actor, or raise SystemConfig.mailbox_window"
                )
            self.flow_cond.wait(remaining)

    def credited(self, actor_id: str, count: int) -> None:
        """The actor took ``count`` of our messages: room for as many more."""
        with self.flow_lock:
            self.inflight[actor_id] = max(0, self.inflight.get(actor_id, 0) - count)
            self.flow_cond.notify_all()

    def took(self, actor_id: str, credit_batch: int) -> int:
        """An actor here took a message this peer sent: the credit to return now (0: later)."""
        count = self.consumed.get(actor_id, 0) + 1
        if count >= credit_batch:
            self.consumed[actor_id] = 0
            return count
        self.consumed[actor_id] = count
        return 0

    def broken(self) -> None:
        """The connection ended: forget what it carried, wake blocked senders."""
        with self.flow_lock:
            self.conn = None
            self.channel = None
            self.out.clear()  # frames for a dead incarnation must not reach a restarted one
            self.inflight.clear()
            self.generation += 1
            self.flow_cond.notify_all()


def awaits_reply(channel: Channel) -> bool:
    """A thread of this process waits for a reply from that peer: it reads it itself."""
    peer = channel.owner
    return peer is not None and bool(peer.pending)
