"""Replies on the socket transport: the futures that wait here, and handles to futures elsewhere.

A future sent inside a message is registered in its process's ``ReplyBook``
(by the transport's pickler, as it meets the future) and travels as an
(address, reply id) pair; on the other side it becomes a ``RemoteReply`` whose
``set`` sends the value back. A reply that comes home to the process waiting on
it unpickles as the waiting future itself.
"""

from __future__ import annotations

import itertools
import os
import queue
from collections.abc import Sequence
from typing import Any, Protocol

from actors.replies import exception_of
from runtime.errors import ActorDeadError
from runtime.transport import registered, settle, transport_for
from runtime.transport._future import Future
from runtime.wire._peer import Peer


class _Answering(Protocol):
    """What a reply handle needs of its process's node."""

    address: str

    def send_reply(self, address: str, reply_id: int, ok: bool, value: Any, *,
                   awaited: bool = True) -> None: ...

    def send_replies(self, address: str, answers: Sequence[tuple[int, Any]], *,
                     awaited: bool = True) -> None: ...

    def pending_future(self, reply_id: int) -> Future[Any] | None: ...


def _node(system_id: str) -> _Answering:
    node: Any = transport_for(system_id)
    answering: _Answering = node
    return answering


class ReplyBook:
    """The futures of this process that wait for a reply, by reply id."""

    def __init__(self) -> None:
        self._pending: dict[int, Future[Any]] = {}
        self._imports: dict[tuple[str, int], int] = {}  # (exporter, export id) -> reply id
        self._ids = itertools.count(1)

    def register(self, future: Future[Any], peer: Peer | None) -> int:
        """``future``'s reply id, new if it has none; it waits on ``peer`` if given."""
        reply_id = future._reply_id
        if reply_id is None:
            reply_id = future._reply_id = next(self._ids)
            self._pending[reply_id] = future
        if peer is not None:
            peer.pending.add(reply_id)
            channel = peer.channel
            if channel is not None:
                future.wait_through(channel)  # a getter reads the reply itself
        return reply_id

    def forget(self, reply_ids: Sequence[int], peer: Peer | None) -> None:
        """The message carrying these ids was never sent: nothing will answer them."""
        for reply_id in reply_ids:
            self._pending.pop(reply_id, None)
            if peer is not None:
                peer.pending.discard(reply_id)

    def pending_future(self, reply_id: int) -> Future[Any] | None:
        return self._pending.get(reply_id)

    def new_id(self) -> int:
        return next(self._ids)

    def import_future(self, peer: Peer, export_id: int, copy: Future[Any]) -> None:
        """``copy`` waits for the value ``peer`` exported as ``export_id``."""
        self._imports[(peer.address, export_id)] = self.register(copy, peer)

    def imported(self, address: str, export_id: int) -> int:
        """The reply id waiting for that export (0: none), forgotten."""
        return self._imports.pop((address, export_id), 0)

    def resolve(self, reply_id: int, ok: bool, value: Any, peer: Peer | None) -> None:
        fut = self._pending.pop(reply_id, None)
        if peer is not None:
            peer.pending.discard(reply_id)
        if fut is not None:  # else: already failed (peer died, system closed) or answered
            settle(fut, ok, value)

    def fail_peer(self, peer: Peer, reason: str) -> None:
        """``peer``'s connection ended: what waits on it fails with ``ActorDeadError``."""
        for key in [k for k in self._imports if k[0] == peer.address]:
            del self._imports[key]  # their futures are among the waiting, failed below
        waiting = list(peer.pending)
        peer.pending.clear()
        for reply_id in waiting:
            fut = self._pending.pop(reply_id, None)
            if fut is not None:
                settle(fut, False, ActorDeadError(
                    f"the process at {os.path.basename(peer.address)} went away before "
                    f"replying ({reason})"))

    def fail_all(self) -> None:
        for fut in list(self._pending.values()):
            settle(fut, False, ActorDeadError("actor system shut down"))
        self._pending.clear()


def rebuild_reply(system_id: str, address: str, reply_id: int) -> Any:
    """Unpickle a reply handle: the waiting future itself if it came home."""
    node: Any = registered(system_id)
    if node is not None and getattr(node, "address", None) == address:
        home = node.pending_future(reply_id)
        if home is not None:
            return home
    return RemoteReply(system_id, address, reply_id)


class RemoteReply:
    """A reply handle whose future waits in another process; quacks like a pykka Future.

    Answered twice, it raises ``queue.Full`` as a pykka future does (another copy of
    the handle cannot know: the first answer to arrive wins, a later one is dropped).
    """

    __slots__ = ("address", "awaited", "reply_id", "settled", "system_id")

    def __init__(self, system_id: str, address: str, reply_id: int, awaited: bool = False) -> None:
        self.system_id = system_id
        self.address = address
        self.reply_id = reply_id
        # The asker had nothing else outstanding with us: it waits on this reply alone,
        # so the reply skips the writer thread's batching (see ``Writer.enqueue``).
        self.awaited = awaited
        self.settled = False

    def __reduce__(self) -> tuple[Any, ...]:
        return (rebuild_reply, (self.system_id, self.address, self.reply_id))

    def __repr__(self) -> str:
        return f"<RemoteReply {self.reply_id} to {os.path.basename(self.address)}>"

    @property
    def reply_group(self) -> tuple[str, str]:
        """Answers to one process travel together (``actors.records.reply_group``)."""
        return self.system_id, self.address

    def _settle_once(self) -> None:
        if self.settled:
            raise queue.Full(f"{self!r} was answered already; a reply is set only once")
        self.settled = True

    def set(self, value: Any = None) -> None:
        self._settle_once()
        _node(self.system_id).send_reply(self.address, self.reply_id, True, value,
                                         awaited=self.awaited)

    @staticmethod
    def set_group(answers: Sequence[tuple[RemoteReply, Any]]) -> None:
        """Answer every handle of ``answers`` (one process's) with its value, in one frame."""
        for handle, _ in answers:
            handle._settle_once()
        first = answers[0][0]
        _node(first.system_id).send_replies(
            first.address, [(handle.reply_id, value) for handle, value in answers],
            awaited=any(handle.awaited for handle, _ in answers))

    def set_exception(self, exc_info: Any = None) -> None:
        exc = exception_of(exc_info)
        self._settle_once()
        _node(self.system_id).send_reply(self.address, self.reply_id, False, exc,
                                         awaited=self.awaited)
