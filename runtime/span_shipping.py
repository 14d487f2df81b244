"""Finished spans of a system's other processes, shipped to the service process.

Spans of a worker, the checkpoint process or the scheduler are recorded there
(``actors.spans``) but emitted by the service process, the only one with the
application's tracer provider (``runtime.otel``). Each child buffers its
finished spans and tells them, at most every ``FLUSH_INTERVAL`` seconds or
``MAX_BUFFERED`` at a time, to the service's span sink (``SpanSinkActor``),
one message per flush. When the process stops, what is buffered is sent and
acknowledged before it exits (the service stops its sink once every other
process has exited, so nothing is left in flight). A process records spans only
for traced executions, so an untraced system never starts the flushing thread
nor sends anything.

    install_in_child(spec.system_id, spec.parent_address, spec.role)   # in child_main
    ...
    flush(wait=True)                                                      # before exiting
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka

from actors import spans, tracelog
from actors.spans import SpanRecord
from runtime.remote._actor_ref import ActorRef

SINK_ID = "spans"  # the span sink's actor id in the service process
FLUSH_INTERVAL = 0.1  # seconds a finished span may wait for others to travel with
MAX_BUFFERED = 512  # spans that make a flush at once

log = tracelog.get_logger("runtime.span_shipping")


@dataclass(frozen=True, slots=True)
class SpanBatch:
    """Finished spans of one process, for the service to emit."""

    records: tuple[SpanRecord, ...]


def with_process(record: SpanRecord, role: str, pid: int) -> SpanRecord:
    """``record`` with the process that recorded it among its attributes."""
    return dataclasses.replace(record, attributes={
        **record.attributes, "durable.process.role": role, "durable.process.pid": pid})


class SpanShipper:
    """This process's span sink: buffers finished spans; a thread sends them in batches.

        shipper = SpanShipper(sink_ref.tell, role="actor:worker-0",
                              send_and_wait=lambda batch: sink_ref.ask(batch, timeout=2.0))
        spans.install(shipper)
    """

    def __init__(self, send: Callable[[SpanBatch], None], role: str,
                 send_and_wait: Callable[[SpanBatch], Any] | None = None,
                 interval: float = FLUSH_INTERVAL, limit: int = MAX_BUFFERED) -> None:
        self._send = send
        self._send_and_wait = send_and_wait or send
        self._sending = threading.Lock()  # sends leave in the order their spans were taken
        self._role = role
        self._interval = interval
        self._limit = limit
        self._lock = threading.Lock()
        self._buffer: list[SpanRecord] = []
        self._pending = threading.Event()  # the buffer holds spans
        self._full = threading.Event()  # ... enough to send now
        self._thread: threading.Thread | None = None
        self._warned = False
        self.sent = 0

    def __call__(self, record: SpanRecord) -> None:
        record = with_process(record, self._role, os.getpid())
        with self._lock:
            self._buffer.append(record)
            if len(self._buffer) == 1:
                self._pending.set()
            if len(self._buffer) >= self._limit:
                self._full.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="da-spans", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            self._pending.wait()
            self._full.wait(self._interval)  # let the spans of the same moment travel together
            self.flush()

    def flush(self, wait: bool = False) -> None:
        """Send every buffered span now (one message); with ``wait``, until the service has
        emitted them and every batch sent before (a process about to exit)."""
        with self._sending:
            with self._lock:
                batch, self._buffer = self._buffer, []
                self._pending.clear()
                self._full.clear()
            if not batch and not (wait and self.sent):
                return
            try:
                (self._send_and_wait if wait else self._send)(SpanBatch(tuple(batch)))
                self.sent += len(batch)
            except Exception as exc:  # the service is gone or stopping: its spans go with it
                if not self._warned:
                    self._warned = True
                    log.info("spans.unsent", spans=len(batch), error=repr(exc))


_shipper: SpanShipper | None = None


def install_in_child(system_id: str, service_address: str, role: str) -> None:
    """In a child process: ship this process's finished spans to its system's service."""
    global _shipper
    sink: ActorRef[Any] = ActorRef(system_id=system_id, address=service_address,
                                   actor_id=SINK_ID, name=SINK_ID, class_name="SpanSinkActor")
    _shipper = SpanShipper(sink.tell, role,
                           send_and_wait=lambda batch: sink.ask(batch, timeout=2.0))
    spans.install(_shipper)


def flush(wait: bool = False) -> None:
    """Send what this process buffered; ``wait``: until the service has it (before exiting)."""
    if _shipper is not None:
        _shipper.flush(wait)


class SpanSinkActor(pykka.ThreadingActor):
    """In the service process: emits the spans the other processes ship (``spans.emit``).

    Emitting goes through the application's tracer provider (``runtime.otel``) on
    this actor's thread, not on the transport's. An ask is answered once its
    spans (and those told before) are emitted.
    """

    use_daemon_thread = True  # never what keeps a service process from exiting

    def __init__(self) -> None:
        super().__init__()
        self.received = 0

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, SpanBatch):
            self.received += len(message.records)
            for record in message.records:
                spans.emit(record)
            return None
        return super().on_receive(message)


__all__ = ["FLUSH_INTERVAL", "MAX_BUFFERED", "SINK_ID", "SpanBatch", "SpanShipper",
           "SpanSinkActor", "flush", "install_in_child", "with_process"]
