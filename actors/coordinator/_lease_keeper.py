"""``LeaseKeeper``: when the coordinator renews its leases and looks for orphans.

Pure bookkeeping over a clock, so that every rule is tested with a fake one:

* a renewal round every ``lease_seconds / 3``: a lease survives two failed
  rounds in a row before it can expire;
* with ``recover``, a look for orphans also right after the soonest lease held
  by another executor expires (``LeaseRound.next_expiry``), so that a dead
  owner's work is taken over within a moment of its expiry, not a round later;
* one round in flight at a time; a failed round is tried again after a
  ``retry`` delay (the store may be locked or down);
* ``valid_until``: the monotonic time until which every lease of this system
  is confirmed: for each lease, the start of the store call that last took or
  renewed it, plus ``lease_seconds`` less a margin; the soonest of them. No
  other system can have taken a lease before then, whatever happened to this
  process meanwhile (a paused process still sees the monotonic clock move).

    keeper = LeaseKeeper(clock, lease_seconds=10.0, recover=True)
    if keeper.due():
        keeper.sent()
        checkpoint.tell(RenewLeases(keeper.claim_batch, reply))
"""

from __future__ import annotations

from actors.clock import Clock
from actors.records._leases import Lease, LeaseRound

MARGIN = 0.1  # of lease_seconds: confirmed leases end this much before they could expire


class LeaseKeeper:
    """See the module docstring."""

    def __init__(self, clock: Clock, *, lease_seconds: float, recover: bool,
                 claim_batch: int = 64, retry: float = 0.5) -> None:
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be > 0, got {lease_seconds}")
        self._clock = clock
        self.lease_seconds = lease_seconds
        self.recover = recover
        self.claim_batch = claim_batch if recover else 0
        self._retry = min(retry, lease_seconds / 3)
        self.held: dict[str, Lease] = {}
        self._confirmed: dict[str, float] = {}  # execution id -> monotonic deadline
        self.in_flight = False
        self._sent_at_monotonic = 0.0
        self._next_round = clock.time()  # the first round goes at once
        self._next_orphan_look: float | None = None
        self.valid_until: float | None = None
        self._again = False  # a change was heard while a round was in flight

    @property
    def interval(self) -> float:
        return self.lease_seconds / 3

    def due(self) -> bool:
        """Whether a round should be sent now."""
        if self.in_flight:
            return False
        return self._clock.time() >= min(self._next_round, self._next_orphan_look or float("inf"))

    def sent(self) -> None:
        self.in_flight = True
        self._sent_at_monotonic = self._clock.monotonic()

    def hold(self, lease: Lease, asked_at: float) -> float | None:
        """A lease taken outside a round (created, claimed, reopened) by a store call
        sent at ``asked_at`` (``clock.monotonic()``); the new ``valid_until`` if it moved."""
        self.held[lease.execution_id] = lease
        self._confirmed[lease.execution_id] = asked_at + self.lease_seconds * (1 - MARGIN)
        return self._revalidate()

    def drop(self, execution_id: str) -> None:
        self.held.pop(execution_id, None)
        self._confirmed.pop(execution_id, None)

    def _revalidate(self) -> float | None:
        before = self.valid_until
        if self._confirmed:
            self.valid_until = min(self._confirmed.values())
        return self.valid_until if self.valid_until != before else None

    def done(self, found: LeaseRound) -> float | None:
        """Take a round's outcome; the new ``valid_until`` if it moved, else None."""
        self.in_flight = False
        now = self._clock.time()
        deadline = self._sent_at_monotonic + self.lease_seconds * (1 - MARGIN)
        for eid, _ in found.lost:
            self.drop(eid)
        for lease in found.renewed:
            if lease.execution_id in self.held:
                self.held[lease.execution_id] = lease
                self._confirmed[lease.execution_id] = deadline
        for claim in found.claimed:
            if claim.lease is not None:
                self.held[claim.lease.execution_id] = claim.lease
                self._confirmed[claim.lease.execution_id] = deadline
        self._next_round = now if self._again else now + self.interval
        self._again = False
        self._next_orphan_look = None
        if self.recover and found.next_expiry is not None:
            # Just past the expiry, by the store's clock: a claim before it is refused.
            self._next_orphan_look = max(found.next_expiry + 0.01, now)
        return self._revalidate()

    def soon(self) -> None:
        """Something changed in the store for us (signals): the next round goes now, or, if
        one is in flight (it may have read the store before the change), once it returns."""
        self._again = self.in_flight
        self._next_round = min(self._next_round, self._clock.time())

    def failed(self) -> None:
        """The round's store call failed: try again soon."""
        self.in_flight = False
        self._next_round = self._clock.time() + self._retry

    def unanswered(self) -> None:
        """The round in flight will never be answered (the checkpoint process died with it):
        the next round goes now instead of never."""
        if self.in_flight:
            self.in_flight = False
            self._next_round = self._clock.time()

    def wake_time(self) -> float | None:
        """When the coordinator should look at the keeper next (``clock.time()`` seconds)."""
        if self.in_flight:
            return None
        return min(self._next_round, self._next_orphan_look or float("inf"))
