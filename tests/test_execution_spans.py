"""The coordinator's part in tracing: plain pykka, one process, no OpenTelemetry.

A traced execution's context goes with each dispatch to the run it starts; its
own span is recorded once, when the execution ends, with the ids and start it
was given at the caller.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from actors import spans
from actors.branch import BranchActor, BranchSpec
from actors.context import BranchContext
from actors.control import Answered, AnswerTo, CancelExecution, RetryExecution
from actors.execution import ExecutionActor
from actors.messages import (
    BranchRan,
    BranchStatus,
    Checkpoint,
    Checkpoints,
    DescribeExecution,
    ExecutionStatus,
    ExecutionUpdate,
    LogDelivery,
    StartExecution,
    Wire,
)
from actors.policies import Completion
from actors.spans import ExecutionTrace, SpanRecord, SpanStatus, TraceContext
from actors.store import MemoryStore

from actors_for_tests import LeasingRecorder, Recorder

TRACE = ExecutionTrace(TraceContext(0xABC, 0x111), parent_id=0x999, start_ns=1_000,
                       name="map Noop", attributes={"durable.execution.id": "e"})


class Noop(BranchActor):
    def run(self, ctx: BranchContext, item: Any) -> Any:
        return item


@pytest.fixture
def recorded() -> Iterator[list[SpanRecord]]:
    records: list[SpanRecord] = []
    previous = spans.install(records.append)
    try:
        yield records
    finally:
        spans.install(previous)


def start(trace: ExecutionTrace | None) -> tuple[Any, Any]:
    store = MemoryStore()
    checkpoint = LeasingRecorder.start(store)
    worker, scheduler = Recorder.start(), Recorder.start()
    coordinator = ExecutionActor.start(checkpoint=checkpoint, reader=store)
    coordinator.tell(Wire(coordinator, (worker,), scheduler))
    reply = pykka.ThreadingFuture()
    spec = BranchSpec("e", "e/0", Noop, 1, 0)
    coordinator.tell(StartExecution("e", "map", (spec,), None, Completion.all_successful(),
                                    reply, trace=trace))
    assert reply.get(timeout=10) == "created"
    coordinator.ask(DescribeExecution("e"))  # its dispatch wave has left
    return coordinator, checkpoint


@pytest.fixture
def stopping() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all()


def sent(checkpoint: Any) -> list[Checkpoint]:
    found = []
    for message in checkpoint.ask("seen", timeout=10):
        found += message.items if isinstance(message, Checkpoints) else [message]
    return [m for m in found if isinstance(m, Checkpoint)]


def acknowledge_result(coordinator: Any, checkpoint: Any) -> None:
    """Answer the coordinator's last write of the execution's result as a store would."""
    coordinator.ask(DescribeExecution("e"))  # the write has left
    (*_, write) = [m for m in sent(checkpoint) if isinstance(m.update, ExecutionUpdate)]
    write.reply_to.set(None)  # the result is durable
    coordinator.ask(DescribeExecution("e"))


def succeed(coordinator: Any, checkpoint: Any) -> None:
    coordinator.tell(BranchRan("e/0", 1, BranchStatus.SUCCEEDED, result=1))
    acknowledge_result(coordinator, checkpoint)


def test_a_dispatch_carries_the_execution_span_to_its_run(
        recorded: list[SpanRecord], stopping: None) -> None:
    _, checkpoint = start(TRACE)
    (dispatch,) = [m for m in sent(checkpoint) if isinstance(m.reply_to, LogDelivery)]
    assert dispatch.trace == TRACE.context  # its batch span hangs off the execution
    assert dispatch.reply_to.trace == TRACE.context  # ... and the run it starts


def test_the_execution_span_is_recorded_once_when_it_ends(
        recorded: list[SpanRecord], stopping: None) -> None:
    coordinator, checkpoint = start(TRACE)
    assert recorded == []
    succeed(coordinator, checkpoint)
    (execution,) = recorded
    assert (execution.context, execution.parent_id, execution.start_ns) == (
        TRACE.context, 0x999, 1_000)
    assert execution.status is SpanStatus.UNSET
    assert execution.attributes == {"durable.execution.id": "e",
                                    "durable.execution.status": "SUCCEEDED",
                                    "durable.execution.succeeded": 1,
                                    "durable.execution.failed": 0}


def test_an_untraced_execution_sends_no_context_and_records_nothing(
        recorded: list[SpanRecord], stopping: None) -> None:
    coordinator, checkpoint = start(None)
    succeed(coordinator, checkpoint)
    assert all(m.trace is None for m in sent(checkpoint))
    assert recorded == []


def test_a_cancelled_execution_span_says_so(recorded: list[SpanRecord], stopping: None) -> None:
    coordinator, checkpoint = start(TRACE)
    coordinator.tell(CancelExecution("e", pykka.ThreadingFuture()))
    coordinator.ask(DescribeExecution("e"))
    (cancel,) = [m for m in sent(checkpoint) if isinstance(m.update, ExecutionUpdate)]
    assert isinstance(cancel.reply_to, AnswerTo)
    coordinator.tell(Answered(cancel.reply_to.what, None))  # the cancel is durable
    coordinator.ask(DescribeExecution("e"))
    (execution,) = recorded
    assert execution.attributes["durable.execution.status"] == "CANCELLED"
    assert execution.status is SpanStatus.UNSET


def test_a_retried_execution_runs_under_a_new_span_linked_to_the_first(
        recorded: list[SpanRecord], stopping: None) -> None:
    store = MemoryStore()
    checkpoint = LeasingRecorder.start(store)
    worker, scheduler = Recorder.start(), Recorder.start()
    coordinator = ExecutionActor.start(checkpoint=checkpoint, reader=store)
    coordinator.tell(Wire(coordinator, (worker,), scheduler))
    started = pykka.ThreadingFuture()
    coordinator.tell(StartExecution("e", "map", (BranchSpec("e", "e/0", Noop, 1, 0),), None,
                                    Completion.all_successful(), started, trace=TRACE))
    assert started.get(timeout=10) == "created"
    coordinator.tell(BranchRan("e/0", 1, BranchStatus.FAILED, error=KeyError("x")))
    acknowledge_result(coordinator, checkpoint)
    store.commit([ExecutionUpdate("e", ExecutionStatus.FAILED)], (), 0.0)  # as written
    (first,) = recorded
    assert first.status is SpanStatus.ERROR and first.error is not None
    retried = pykka.ThreadingFuture()
    coordinator.tell(RetryExecution("e", retried))
    assert retried.get(timeout=10) == "resumed"
    coordinator.ask(DescribeExecution("e"))
    dispatch = [m for m in sent(checkpoint) if isinstance(m.reply_to, LogDelivery)][-1]
    assert dispatch.trace is not None and dispatch.trace.trace_id == TRACE.context.trace_id
    assert dispatch.trace != TRACE.context  # the retry's own span
    epoch = dispatch.reply_to.epoch
    coordinator.tell(BranchRan("e/0", epoch, BranchStatus.SUCCEEDED, result=1))
    acknowledge_result(coordinator, checkpoint)
    _, second = recorded
    assert second.context == dispatch.trace and second.parent_id == TRACE.parent_id
    assert second.links == (TRACE.context,)
    assert second.attributes["durable.execution.retry"] is True
