"""Watching a run's ledger as it grows: when it progresses, and which kill came before what.

The ledger (``runtime.tools.ledger``) is one file appended to with one ``write`` per
line, so a line's byte offset is its place in the order the kernel saw them.
A kill notes the ledger's size just before ``kill -9``: every line at or past
that offset was written after it. The execution *made progress again* after a
kill when a step that **started after the kill** was acknowledged: an
acknowledgement already on its way when the process died proves nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from runtime.tools.chaos.processes import Kind

_POLL = 0.005  # seconds between reads of the ledger
_KINDS = frozenset({"start", "body", "ack"})


@dataclass(frozen=True, slots=True)
class LedgerLine:
    offset: int  # where it starts in the file
    seen: float  # monotonic time the watcher first read it (within _POLL of its write)
    kind: str  # start | body | ack
    key: tuple[str, str]  # (branch id, step name)


@dataclass(eq=False)
class Kill:
    """One ``kill -9`` of a run, and how long the system took to get over it."""

    kind: Kind
    name: str  # the process's name: "checkpoint", "worker-1", "service", ...
    pid: int
    round: int
    at: float  # monotonic time of the kill
    offset: int  # the ledger's size just before it
    spacing: str  # "after-recovery" (the previous kill was got over) or "before-recovery"
    recovered_after: float | None = None  # seconds until a step started after it was acked
    recovered_by: str | None = None  # "ack", or "finish" (nothing left to acknowledge)
    restarted_after: float | None = None  # seconds until a new process of its name ran

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind.value, "name": self.name, "pid": self.pid,
                "round": self.round, "offset": self.offset, "spacing": self.spacing,
                "recovered_after": self.recovered_after, "recovered_by": self.recovered_by,
                "restarted_after": self.restarted_after}


@dataclass
class LedgerWatch:
    """Reads a ledger as it grows; tells each pending kill when the execution progressed."""

    path: Path
    lines: list[LedgerLine] = field(default_factory=list)
    torn: list[int] = field(default_factory=list)  # offsets of lines that do not parse
    acks: int = 0
    _offset: int = 0
    _partial: bytes = b""
    _last_start: dict[tuple[str, str], int] = field(default_factory=dict)
    _pending: list[Kill] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> LedgerWatch:
        self._thread = threading.Thread(target=self._run, name="chaos-ledger", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.poll()

    def size(self) -> int:
        """The ledger's size now: lines at or past it are written after this call."""
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def expect_progress(self, kill: Kill) -> None:
        with self._lock:
            self._pending.append(kill)

    def _run(self) -> None:
        while not self._stop.wait(_POLL):
            self.poll()

    def poll(self) -> None:
        with self._lock:
            try:
                with self.path.open("rb") as f:
                    f.seek(self._offset)
                    data = f.read()
            except FileNotFoundError:
                return
            if not data:
                return
            now = time.monotonic()
            start = self._offset - len(self._partial)
            chunk = self._partial + data
            self._offset += len(data)
            *complete, self._partial = chunk.split(b"\n")
            for raw in complete:
                fields = raw.decode(errors="replace").split()
                at, start = start, start + len(raw) + 1
                if len(fields) == 4 and fields[0] in _KINDS and raw.isascii():
                    self._add(LedgerLine(at, now, fields[0], (fields[1], fields[2])))
                else:  # one write per line: a line that is not one is a finding
                    self.torn.append(at)

    def _add(self, line: LedgerLine) -> None:
        self.lines.append(line)
        if line.kind == "start":
            self._last_start[line.key] = line.offset
        elif line.kind == "ack":
            self.acks += 1
            started = self._last_start.get(line.key, -1)
            for kill in [k for k in self._pending if started >= k.offset]:
                kill.recovered_after = line.seen - kill.at
                kill.recovered_by = "ack"
                self._pending.remove(kill)

    def finished(self, at: float) -> None:
        """The execution finished: kills not got over by an ack were got over by that."""
        with self._lock:
            for kill in self._pending:
                kill.recovered_after = at - kill.at
                kill.recovered_by = "finish"
            self._pending.clear()

    def recovered(self, kill: Kill) -> bool:
        with self._lock:
            return all(k is not kill for k in self._pending)

    def wait_for(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            time.sleep(_POLL)
        return True
