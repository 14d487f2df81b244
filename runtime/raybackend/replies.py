"""Reply handles on Ray: a ``Future`` sent inside a message, answered from any node.

The durable layer sends futures inside messages (``Checkpoint(reply_to=...)``) and
the receiver answers them later, maybe after passing them on. On Ray a
process's *endpoint* receives those answers: a host's own Ray actor (its
``resolve`` method), or, for the service process, which Ray cannot call, a small
``DriverInbox`` actor beside it, which the service waits on.

    reply_id = BOOK.register(future)           # at send time, by the pickler
    RayReply(endpoint(), reply_id).set(42)     # anywhere: resolves ``future``
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import queue
import threading
from typing import Any

import ray

from actors.replies import exception_of
from runtime.errors import ActorDeadError
from runtime.raybackend.outcomes import in_actor, outcome, settle
from runtime.transport._future import Future


class ReplyBook:
    """This process's futures that wait for an answer through a reply handle, by id."""

    def __init__(self) -> None:
        self._pending: dict[int, Future[Any]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def register(self, future: Future[Any]) -> int:
        with self._lock:
            reply_id = next(self._ids)
            self._pending[reply_id] = future
        return reply_id

    def forget(self, reply_ids: list[int]) -> None:
        """The message that held those handles was never sent: nobody will answer them."""
        with self._lock:
            for reply_id in reply_ids:
                self._pending.pop(reply_id, None)

    def resolve(self, reply_id: int, data: bytes) -> None:
        """Answer the future registered as ``reply_id`` (an unknown id was answered already)."""
        with self._lock:
            future = self._pending.pop(reply_id, None)
        if future is not None:
            settle(future, data)

    def __len__(self) -> int:
        return len(self._pending)


BOOK = ReplyBook()  # one per process: every reply handle this process sent out
_inboxes: dict[str, Any] = {}  # Ray job (id@node) -> this driver's inbox in that job
_inbox_lock = threading.Lock()
_stale: list[Any] = []  # inboxes of jobs this process left without releasing them


class DriverInbox:
    """The service process's endpoint: holds answers until the service's ``wait`` takes them.

    An async Ray actor, owned by the service process (it ends with it).
    """

    def __init__(self) -> None:
        self._slots: dict[int, asyncio.Future[bytes]] = {}

    def _slot(self, reply_id: int) -> asyncio.Future[bytes]:
        slot = self._slots.get(reply_id)
        if slot is None:
            slot = self._slots[reply_id] = asyncio.get_running_loop().create_future()
        return slot

    async def wait(self, reply_id: int) -> bytes:
        try:
            return await self._slot(reply_id)
        finally:
            self._slots.pop(reply_id, None)

    async def resolve(self, reply_id: int, data: bytes) -> None:
        slot = self._slot(reply_id)
        if not slot.done():  # a second answer to one handle is dropped, as pykka's futures do
            slot.set_result(data)


def endpoint() -> Any:
    """The Ray actor that receives this process's answers (its host, or its driver inbox).

    The driver's inbox is made once per Ray job: a driver that disconnected and
    connected again (another Ray) gets a new one, never the old job's handle.
    """
    context = ray.get_runtime_context()
    if context.get_actor_id() is not None:
        return context.current_actor
    job = f"{context.get_job_id()}@{context.get_node_id()}"  # a new Ray restarts job ids
    with _inbox_lock:
        inbox = _inboxes.get(job)
        if inbox is None:
            # An earlier job's inbox ended with its job. Its handle is kept, never dropped:
            # a Ray handle deleted after its job ended calls into the new job's worker.
            _stale.extend(_inboxes.values())
            _inboxes.clear()
            here = context.get_node_id()
            # On the service's own node, never elsewhere: one hop, not two, across the
            # network, and it is lost only with the service itself (a lost node of a
            # soft-placed inbox lost every answer the service waited for).
            strategy = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(
                here, soft=False)
            inbox = _inboxes[job] = ray.remote(DriverInbox).options(
                num_cpus=0, max_concurrency=10_000, scheduling_strategy=strategy).remote()
        return inbox


def release_inbox() -> None:
    """End this driver's inbox while still connected (the last system on Ray closes):
    pending waits fail, and no handle outlives the job."""
    with _inbox_lock:
        inboxes = list(_inboxes.values())
        _inboxes.clear()
    for inbox in inboxes:
        with contextlib.suppress(Exception):  # gone already: nothing to end
            ray.kill(inbox)


def handle_for(future: Future[Any], registered: list[int]) -> tuple[Any, ...]:
    """How ``future`` pickles: a ``RayReply`` to this process's endpoint, registered now
    (its id appended to ``registered``; ``sent`` or ``BOOK.forget`` it next)."""
    reply_id = BOOK.register(future)
    registered.append(reply_id)
    return (RayReply, (endpoint(), reply_id))


def sent(reply_ids: list[int]) -> None:
    """The message holding those handles is on its way: the service starts waiting for them."""
    if reply_ids and not in_actor():  # a host's answers come to its own ``resolve``
        inbox = endpoint()
        for reply_id in reply_ids:
            answer = inbox.wait.remote(reply_id)
            answer.future().add_done_callback(
                lambda done, reply_id=reply_id: _from_inbox(reply_id, done))


def _from_inbox(reply_id: int, done: Any) -> None:
    error = done.exception()
    if error is None:
        BOOK.resolve(reply_id, done.result())
    else:  # the inbox died: so did this process's Ray connection
        BOOK.resolve(reply_id, outcome(False, ActorDeadError(f"reply lost: {error}")))


class RayReply:
    """A reply handle whose future waits in another process; quacks like a pykka ``Future``.

        reply.set(value)            # the sender's future gets ``value``
        reply.set_exception(exc)    # ... or raises ``exc``
    """

    __slots__ = ("endpoint", "reply_id", "settled")

    def __init__(self, endpoint: Any, reply_id: int) -> None:
        self.endpoint = endpoint
        self.reply_id = reply_id
        self.settled = False

    def __reduce__(self) -> tuple[Any, ...]:
        return (RayReply, (self.endpoint, self.reply_id))

    def __repr__(self) -> str:
        return f"<RayReply {self.reply_id}>"

    def _send(self, ok: bool, value: Any) -> None:
        if self.settled:
            raise queue.Full(f"{self!r} was answered already; a reply is set only once")
        self.settled = True
        self.endpoint.resolve.remote(self.reply_id, outcome(ok, value))

    def set(self, value: Any = None) -> None:
        self._send(True, value)

    def set_exception(self, exc_info: Any = None) -> None:
        self._send(False, exception_of(exc_info))
