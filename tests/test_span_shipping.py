"""Finished spans of a child process travel to the service in batches."""

from __future__ import annotations

import threading

from actors.spans import SpanRecord, TraceContext
from runtime.span_shipping import SpanBatch, SpanShipper
from runtime.testing import wait_until


def record(n: int) -> SpanRecord:
    return SpanRecord(f"step s{n}", TraceContext(1, n + 1), 1, n, n + 1, {})


class Sent:
    def __init__(self) -> None:
        self.told: list[SpanBatch] = []
        self.asked: list[SpanBatch] = []

    def tell(self, batch: SpanBatch) -> None:
        self.told.append(batch)

    def ask(self, batch: SpanBatch) -> None:
        self.asked.append(batch)


def test_spans_finished_together_travel_in_one_message_with_their_process() -> None:
    sent = Sent()
    shipper = SpanShipper(sent.tell, "actor:worker-0", send_and_wait=sent.ask, interval=0.05)
    for n in range(3):
        shipper(record(n))
    wait_until(lambda: sent.told, timeout=10)
    (batch,) = sent.told
    assert [r.name for r in batch.records] == ["step s0", "step s1", "step s2"]
    assert batch.records[0].attributes["durable.process.role"] == "actor:worker-0"
    assert isinstance(batch.records[0].attributes["durable.process.pid"], int)


def test_a_full_buffer_is_sent_without_waiting_out_the_interval() -> None:
    sent = Sent()
    shipper = SpanShipper(sent.tell, "actor:worker-0", interval=60.0, limit=2)
    shipper(record(0))
    shipper(record(1))
    wait_until(lambda: sent.told, timeout=10)
    assert len(sent.told[0].records) == 2


def test_the_flush_before_exit_waits_for_the_service_even_with_nothing_left() -> None:
    sent = Sent()
    shipper = SpanShipper(sent.tell, "actor:checkpoint", send_and_wait=sent.ask, interval=60.0)
    shipper(record(0))
    shipper.flush()  # told: the service may not have emitted it yet
    shipper.flush(wait=True)  # an empty batch asked: answered once everything before is
    assert [len(b.records) for b in sent.told] == [1]
    assert [len(b.records) for b in sent.asked] == [0]


def test_a_process_that_traced_nothing_sends_nothing_and_starts_no_thread() -> None:
    sent = Sent()
    threads = threading.active_count()
    shipper = SpanShipper(sent.tell, "actor:scheduler", send_and_wait=sent.ask)
    shipper.flush(wait=True)
    assert (sent.told, sent.asked) == ([], [])
    assert threading.active_count() == threads
