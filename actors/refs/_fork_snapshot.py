"""Copy-on-write snapshots of large values: ``ctx.save`` forks, and the child serializes.

Serializing a 1 MB nested value takes 10-20 ms and holds the GIL, so no thread of
the saving process can do it without stalling the branch (docs/refs.md). ``fork()``
takes ~2 ms in a worker and freezes the whole address space as it was (the
kernel's copy-on-write, Redis's BGSAVE): the child pickles the value *as of the
fork*, whatever the branch does to it afterwards, and hands the bytes back
through a pipe. One reader thread in the parent receives them and gives them to
the digest client, which stores them like any other snapshot.

The child runs only the pickler and ``os._exit``: it never logs, sends or touches
a lock of its own. Other threads' locks are frozen in it as they were at the
fork; cloudpickle's (the one pickling can need) is held across the fork so the
child gets it free. Anything else that could block it (a user ``__reduce__``
taking a lock) meets a deadline: the child is killed, reaped, and its Ref fails
with ``SnapshotError``. One fork is in flight per process: a child never meets a
Ref whose own snapshot is still being taken.

    snapshots = ForkSnapshots(min_bytes=256 * 1024)
    cell = snapshots.take(rows, pickle.dumps, deliver)  # None: small, snapshot it inline
"""


from __future__ import annotations

import contextlib
import gc
import itertools
import math
import os
import queue
import select
import signal
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

from actors import tracelog
from actors._compat.cloudpickle import dynamic_class_tracker_lock
from actors._compat.linux import fork_threaded, widen_pipe
from actors.errors import DigestError, SnapshotError, UnserializableValueError
from actors.refs._pending import (
    DIGEST_BYTES,
    PendingDigest,
    new_token,
    producing_digests,
    unresolved_digests,
)
from actors.refs._ref import collecting

log = tracelog.get_logger("actors.fork_snapshot")


Deliver = Callable[[PendingDigest, bytes, list[PendingDigest]], None]


PAYOFF = 2.0  # a fork is taken when pickling inline is expected to cost at least this many forks


_RATE_SAMPLE_BYTES = 64 * 1024  # inline snapshots smaller than this are too noisy to learn from


_HEAD = struct.Struct("<cQI")  # b"K" (bytes follow) or b"E" (an error), length, tokens


_SAMPLE = 3  # items looked at per container by the size estimate


_DEPTH = 5


_LEAVES = {int: 3, float: 9, bool: 1, type(None): 1, complex: 17}


def unserializable_cause(error: BaseException | None) -> UnserializableValueError | None:
    """The ``UnserializableValueError`` behind ``error`` (a refused checkpoint), if any."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, UnserializableValueError):
            return current
        seen.add(id(current))
        current = current.__cause__ or getattr(current, "original", None)
    return None


def estimated_bytes(obj: Any, depth: int = 0) -> int:
    """Roughly how many bytes ``obj`` pickles to, from a few items per container.

    Bounded work (at most ``_SAMPLE ** _DEPTH`` objects looked at); it only decides
    where the snapshot is taken, never what is stored.

        estimated_bytes({"rows": [{"id": i} for i in range(10_000)]})   # ~80_000
    """
    kind = type(obj)
    if kind is str or kind is bytes or kind is bytearray:
        return len(obj) + 5
    leaf = _LEAVES.get(kind)
    if leaf is not None:
        return leaf
    if kind is dict or kind is list or kind is tuple or kind is set or kind is frozenset:
        count = len(obj)
        if count == 0 or depth >= _DEPTH:
            return 2 + 16 * count
        items = obj.items() if kind is dict else obj
        sample = list(itertools.islice(items, _SAMPLE))
        per_item = sum(_pair_or_item(item, depth + 1) for item in sample) / len(sample)
        return 2 + int(per_item * count)
    state = getattr(obj, "__dict__", None)
    if type(state) is dict and depth < _DEPTH:
        return 32 + estimated_bytes(state, depth + 1)
    return 16


def _pair_or_item(item: Any, depth: int) -> int:
    if type(item) is tuple and len(item) == 2 and depth > 0:
        return estimated_bytes(item[0], depth) + estimated_bytes(item[1], depth)
    return estimated_bytes(item, depth)


@dataclass(eq=False)
class _Child:
    pid: int
    fd: int
    cell: PendingDigest
    known: dict[bytes, PendingDigest]  # the pending digests at the fork, by token
    deliver: Deliver
    deadline: float  # time.monotonic()
    reaped: bool = False


class ForkSnapshots:
    """Takes snapshots of values over ``min_bytes`` (estimated) in forked children.

    ``take`` forks and returns a pending digest whose size is not known yet; the
    reader thread collects the child's bytes and calls ``deliver(cell, data,
    children)``, or fails the cell with ``SnapshotError``. ``forks``,
    ``failures``, ``fork_seconds`` and ``last_pid`` describe what it did.
    """

    def __init__(self, *, min_bytes: int = 256 * 1024, deadline: float = 30.0,
                 name: str = "fork-snapshots", pickle_rate: float = 60e6) -> None:
        self.min_bytes = min_bytes
        self.deadline = deadline
        # What a snapshot costs each way here, learned as the process goes: a fork copies
        # the page tables, so its cost grows with the process; pickling grows with the value.
        self.pickle_rate = pickle_rate  # bytes/s of an inline snapshot (a guess until measured)
        self.fork_cost: float | None = None  # seconds per fork (None until the first)
        self.forks = 0
        self.failures = 0
        self.fork_seconds = 0.0
        self.last_pid = 0
        self._slot = threading.Lock()  # held from a fork until its child's bytes are in
        self._lock = threading.Lock()  # guards _current and kills against reaping
        self._current: _Child | None = None
        self._closed = False
        self._children: queue.SimpleQueue[_Child | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def take(self, obj: Any, serialize: Callable[[Any], bytes],
             deliver: Deliver) -> PendingDigest | None:
        """A pending digest for ``obj`` as it is now, or None: snapshot it inline instead."""
        if self._closed or not self.worth_forking(estimated_bytes(obj)):
            return None
        if not self._slot.acquire(timeout=self.deadline):  # the previous child is stuck
            return None
        try:
            read_fd, write_fd = os.pipe()
        except OSError:
            self._slot.release()
            return None
        widen_pipe(write_fd)  # fewer wake-ups for the reader
        known = unresolved_digests()
        cell = PendingDigest(new_token(), size_pending=True)
        started = time.perf_counter()
        try:
            with _pickling_locks_free():
                pid = fork_threaded()
        except OSError as exc:  # out of memory or processes: the inline snapshot still works
            os.close(read_fd)
            os.close(write_fd)
            self._slot.release()
            cell.fail(SnapshotError(f"fork failed: {exc!r}"))
            log.warning("snapshot.fork_failed", error=repr(exc))
            return None
        if pid == 0:
            _serialize_in_child(obj, serialize, read_fd, write_fd, self.deadline)
        self.fork_seconds = time.perf_counter() - started
        self.fork_cost = _moving(self.fork_cost, self.fork_seconds)
        self.forks += 1
        self.last_pid = pid
        os.close(write_fd)
        child = _Child(pid, read_fd, cell, known, deliver, time.monotonic() + self.deadline)
        with self._lock:
            self._current = child  # from now on ``close`` can kill it
        self._children.put(child)
        return cell

    def worth_forking(self, estimate: int) -> bool:
        """Whether a value of ``estimate`` pickled bytes is snapshotted faster by a fork.

        Past ``min_bytes``, a fork is taken when it is expected to cost at most
        ``1 / PAYOFF`` of pickling the value on the caller's thread. The first large
        value forks (to learn what a fork costs in this process); in a process so
        big that forking costs more than pickling, values are snapshotted inline.
        """
        if estimate < self.min_bytes:
            return False
        if self.fork_cost is None:
            return True
        return estimate / self.pickle_rate >= PAYOFF * self.fork_cost

    def observe_inline(self, nbytes: int, seconds: float) -> None:
        """An inline snapshot of ``nbytes`` took ``seconds``: learn the pickling rate."""
        if nbytes >= _RATE_SAMPLE_BYTES and seconds > 0:
            self.pickle_rate = _moving(self.pickle_rate, nbytes / seconds)

    def close(self, timeout: float = 5.0) -> None:
        """Kill a child still serializing (its Ref fails) and stop the reader thread."""
        self._closed = True
        with self._lock:
            child = self._current
            if child is not None and not child.reaped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)
        self._children.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # -- the reader thread ------------------------------------------------------------------

    def _loop(self) -> None:
        with producing_digests():
            while True:
                child = self._children.get()
                if child is None:
                    return
                try:
                    self._collect(child)
                except Exception as exc:  # a bug must fail this Ref, not every later one
                    log.exception("snapshot.collect_failed")
                    self._fail(child, SnapshotError(f"the snapshot was lost: {exc!r}"))
                finally:
                    self._reap(child)
                    with self._lock:
                        self._current = None
                    self._slot.release()

    def _collect(self, child: _Child) -> None:
        chunks: list[bytes] = []
        while True:
            left = child.deadline - time.monotonic()
            if left <= 0 or not select.select([child.fd], [], [], left)[0]:
                self._kill(child)
                self._reap(child)  # gone before anyone hears of it
                self._fail(child, SnapshotError(
                    f"the snapshot's child (pid {child.pid}) did not finish within "
                    f"{self.deadline} s and was killed; a __reduce__ of the saved value may "
                    "block (a lock held by another thread at the fork)"))
                return
            chunk = os.read(child.fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        status = self._reap(child)
        data = b"".join(chunks)
        if status != 0 or len(data) < _HEAD.size:
            self._fail(child, SnapshotError(
                f"the snapshot's child (pid {child.pid}) died ({_described(status)}) before "
                "it had serialized the value"))
            return
        kind, size, count = _HEAD.unpack_from(data)
        start = _HEAD.size + count * DIGEST_BYTES
        body = data[start:]
        if len(body) != size:
            self._fail(child, SnapshotError(
                f"the snapshot's child sent {len(body)} of {size} bytes"))
            return
        if kind == b"E":
            self._fail(child, UnserializableValueError(
                f"the saved value could not be serialized: {body.decode('utf-8', 'replace')}; "
                "save plain data, or give the object a __reduce__"))
            return
        tokens = [data[i:i + DIGEST_BYTES] for i in range(_HEAD.size, start, DIGEST_BYTES)]
        missing = [t for t in tokens if t not in child.known]
        if missing:
            self._fail(child, SnapshotError(
                f"the snapshot names {len(missing)} pending Ref(s) this process does not "
                "know; this is a bug"))
            return
        child.cell.set_size(len(body))
        try:
            child.deliver(child.cell, body, [child.known[t] for t in dict.fromkeys(tokens)])
        except Exception as exc:  # the digest client is closed: this worker is stopping
            self._fail(child, exc if isinstance(exc, DigestError) else SnapshotError(repr(exc)))

    def _fail(self, child: _Child, error: DigestError) -> None:
        self.failures += 1
        log.error("snapshot.failed", pid=child.pid, error=str(error))
        child.cell.fail(error)

    def _kill(self, child: _Child) -> None:
        with self._lock:
            if not child.reaped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)

    def _reap(self, child: _Child) -> int:
        """The child's exit status (0: success); closes its pipe. Every child is reaped once."""
        with self._lock:
            if child.reaped:
                return -1
            child.reaped = True
            with contextlib.suppress(OSError):
                os.close(child.fd)
            _, status = os.waitpid(child.pid, 0)
        return os.waitstatus_to_exitcode(status)


def _moving(average: float | None, sample: float, weight: float = 0.25) -> float:
    """An exponential moving average: the latest process size and machine load count most."""
    return sample if average is None else average + weight * (sample - average)


def _described(status: int) -> str:
    if status < 0:
        return f"killed by {signal.Signals(-status).name}"
    return f"exit status {status}"


@contextlib.contextmanager
def _pickling_locks_free() -> Iterator[None]:
    """Hold, across the fork, the locks pickling can take, so the child gets them free."""
    with dynamic_class_tracker_lock:
        yield


def _serialize_in_child(obj: Any, serialize: Callable[[Any], bytes], read_fd: int,
                        write_fd: int, deadline: float) -> NoReturn:
    """The child: serialize, write header + tokens + bytes, exit. Never returns, never logs."""
    status = 70
    try:
        gc.disable()  # a collection would touch (and copy) every page of the parent's heap
        os.close(read_fd)
        with contextlib.suppress(ValueError):  # dies by itself if the parent is gone or stuck
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.alarm(max(1, math.ceil(deadline)))
        try:
            with collecting() as found:
                data = serialize(obj)
            head = _HEAD.pack(b"K", len(data), len(found)) + b"".join(found)
        except Exception as exc:
            data = f"{type(exc).__name__}: {exc}".encode("utf-8", "replace")
            head = _HEAD.pack(b"E", len(data), 0)
        _write_all(write_fd, head)
        _write_all(write_fd, data)
        status = 0
    finally:
        os._exit(status)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
