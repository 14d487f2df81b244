"""An application that traces with OpenTelemetry, run by tests/test_otel.py in a process of its own.

It configures OpenTelemetry as an application does (its own provider, an
in-memory exporter), runs one scenario on a real system, and prints one JSON
object: the spans its provider exported, and what the scenario observed.
The tracer provider is a process-wide setting that can be set once, hence a
process per scenario. Branch classes are defined here, in ``__main__``: they
travel to the workers by value.

    python tests/otel_app.py orders /tmp/dir        # a traced map, one failing step
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from actors import AsyncBranchContext, BranchActor, BranchContext, Completion
from runtime import ActorSystem, SystemConfig, read_trace
from runtime.testing import wait_until


def price(item: int) -> int:
    return item * 10


def charge(item: int) -> int:
    if item == 2:
        raise KeyError(f"card declined for order {item}")
    return 1


class Order(BranchActor):
    """A step, a wait that is written and evicts the branch, a step that fails for item 2."""

    def run(self, ctx: BranchContext, item: int) -> int:
        amount = ctx.step("price", price, item)
        ctx.wait("settle", seconds=0.2)
        return amount + ctx.step("charge", charge, item)


class Refund(BranchActor):
    async def run(self, ctx: AsyncBranchContext, item: int) -> int:
        return await ctx.step("refund", price, item)


class Line(BranchActor):
    def run(self, ctx: BranchContext, item: int) -> int:
        return ctx.step("price", price, item)


class Invoice(BranchActor):
    """Child branches (``ctx.map``): their runs hang off the run that started them."""

    def run(self, ctx: BranchContext, item: int) -> int:
        return sum(ctx.map("lines", Line, [item, item + 1]).values())


class SlowOrder(BranchActor):
    """A step, then a wait long enough for the service to stop meanwhile, then a step."""

    def run(self, ctx: BranchContext, item: int) -> int:
        amount = ctx.step("price", price, item)
        ctx.wait("settle", seconds=1.5)
        return amount + ctx.step("confirm", price, 1)


def install_provider() -> Any:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider, exporter


def as_dict(span: Any) -> dict[str, Any]:
    return {
        "name": span.name,
        "trace_id": f"{span.context.trace_id:032x}",
        "span_id": f"{span.context.span_id:016x}",
        "parent_id": f"{span.parent.span_id:016x}" if span.parent is not None else None,
        "start": span.start_time,
        "end": span.end_time,
        "status": span.status.status_code.name,
        "description": span.status.description,
        "attributes": dict(span.attributes),
        "events": [{"name": e.name, "attributes": dict(e.attributes)} for e in span.events],
        "links": [f"{link.context.span_id:016x}" for link in span.links],
        "scope": span.instrumentation_scope.name,
    }


def config(tmp: Path, **overrides: Any) -> SystemConfig:
    options: dict[str, Any] = {"workers": 1, "suspend_checkpoint_delay": 0.0,
                               "trace_path": str(tmp / "trace.jsonl"), "lease_seconds": 2.0}
    options.update(overrides)
    return SystemConfig(**options)


def orders(tmp: Path) -> dict[str, Any]:
    from opentelemetry import trace

    provider, exporter = install_provider()
    tracer = trace.get_tracer("shop")
    with ActorSystem(store=f"sqlite:///{tmp / 'state.db'}", config=config(tmp)) as system:
        with tracer.start_as_current_span("checkout") as request:
            run = system.map(Order, [1, 2], execution_id="orders-1",
                             completion=Completion.all_completed())
            refunds = system.map(Refund, [3], execution_id="refunds-1")
            invoices = system.map(Invoice, [1], execution_id="invoices-1")
        run.result(timeout=60)
        refunds.result(timeout=60)
        invoices.result(timeout=60)
    # Shut down: every process has sent its last spans, and the service emitted them.
    return {"spans": [as_dict(s) for s in exporter.get_finished_spans()],
            "request_span_id": f"{request.get_span_context().span_id:016x}",
            "provider_kept": trace.get_tracer_provider() is provider}


def unconfigured(tmp: Path) -> dict[str, Any]:
    """No provider first: nothing is recorded. Then the application sets one: spans flow."""
    from opentelemetry import trace

    found: dict[str, Any] = {}
    with ActorSystem(store=f"sqlite:///{tmp / 'state.db'}", config=config(tmp)) as system:
        system.map(Order, [1], execution_id="before").result(timeout=60)
        found["provider_before"] = type(trace.get_tracer_provider()).__name__
        _, exporter = install_provider()
        system.map(Order, [1], execution_id="after").result(timeout=60)
        wait_until(lambda: any(s.name == "step charge" for s in exporter.get_finished_spans()),
                   timeout=30)
    events = read_trace(tmp / "trace.jsonl")
    for eid in ("before", "after"):
        mine = [e for e in events if e.get("execution_id") == eid
                and str(e.get("branch_id", "")).startswith(eid)]
        found[eid] = {"events": len(mine), "with_trace_id": sum("trace_id" in e for e in mine)}
    found["spans"] = [as_dict(s) for s in exporter.get_finished_spans()]
    return found


def interrupted(tmp: Path) -> dict[str, Any]:
    """Start an execution, then stop the service while its branch waits."""
    from opentelemetry import trace

    _, exporter = install_provider()
    with ActorSystem(store=f"sqlite:///{tmp / 'state.db'}", config=config(tmp)) as system:
        with trace.get_tracer("shop").start_as_current_span("nightly"):
            run = system.map(SlowOrder, [1], execution_id="slow-1")
        wait_until(lambda: run.progress()["suspended"] == 1, timeout=30)
    return {"spans": [as_dict(s) for s in exporter.get_finished_spans()]}


def recovered(tmp: Path) -> dict[str, Any]:
    """A new service on the same store takes the execution over and finishes it."""
    _, exporter = install_provider()
    with ActorSystem(store=f"sqlite:///{tmp / 'state.db'}", config=config(tmp)) as system:
        # Taken over at start (recover=True), without anyone calling map() again.
        result = system.execution("slow-1").result(timeout=60)
        assert result.values() == [20]
    return {"spans": [as_dict(s) for s in exporter.get_finished_spans()]}


SCENARIOS = {"orders": orders, "unconfigured": unconfigured, "interrupted": interrupted,
             "recovered": recovered}

if __name__ == "__main__":
    outcome = SCENARIOS[sys.argv[1]](Path(sys.argv[2]))
    print(json.dumps(outcome))
