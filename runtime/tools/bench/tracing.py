"""What tracing costs a step: traced executions beside untraced ones, in the same system.

Needs the ``[otel]`` extra. The suite sets an OpenTelemetry provider for the
bench process (a batch processor and an exporter that drops what it gets: the
cost of a production pipeline up to the network), so it runs last. Executions
started inside an unsampled span are not traced (the application's sampler
said no: nothing is recorded in any process, as without a provider), the others
are; rounds alternate between the two, so both sides see the same machine.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

from runtime.config import SystemConfig
from runtime.system import ActorSystem
from runtime.tools.bench.report import Figure
from runtime.tools.bench.workloads import SequentialSteps


def _say(text: str) -> None:
    print(f"  tracing: {text}", file=sys.stderr, flush=True)


def _install_provider() -> Any:
    from opentelemetry import trace  # noqa: PLC0415 - opentelemetry: the optional [otel] extra
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415 - opentelemetry: the optional [otel] extra
    from opentelemetry.sdk.trace.export import (  # noqa: PLC0415 - the [otel] extra
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Dropping(SpanExporter):
        def __init__(self) -> None:
            self.spans = 0

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            self.spans += len(spans)
            return SpanExportResult.SUCCESS

    exporter = Dropping()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider, exporter


def _steps(system: ActorSystem, steps: int, sampled: bool) -> list[float]:
    """One branch's per-step seconds, its execution started in a sampled span or not."""
    from opentelemetry import context, trace  # noqa: PLC0415 - opentelemetry: the optional [otel] extra

    parent = trace.NonRecordingSpan(trace.SpanContext(
        0x5EED << 64 | os.getpid(), 0xC0FFEE, is_remote=True,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED if sampled else 0)))
    token = context.attach(trace.set_span_in_context(parent))
    try:
        run = system.map(SequentialSteps, [steps])
    finally:
        context.detach(token)
    found: list[float] = run.result(timeout=600).values()[0]
    return found


def run(quick: bool) -> list[Figure]:
    try:
        provider, exporter = _install_provider()
    except ImportError:
        _say("skipped: OpenTelemetry is not installed (pip install 'durable-actors[otel]')")
        return []
    steps, rounds = (200, 4) if quick else (500, 8)
    traced: list[float] = []
    untraced: list[float] = []
    directory = tempfile.mkdtemp(prefix="durable-actors-bench-")
    try:
        with ActorSystem(store=f"sqlite:///{os.path.join(directory, 'state.db')}",
                         config=SystemConfig(workers=2)) as system:
            _steps(system, 50, sampled=True)  # warm-up: processes, connections, the tracer
            for i in range(rounds):
                sampled = i % 2 == 1
                (traced if sampled else untraced).extend(_steps(system, steps, sampled))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    provider.force_flush()
    _say(f"{rounds} rounds of {steps} sequential steps, traced and not in turns; "
         f"{exporter.spans} spans exported")
    extra = {"steps_each": len(traced), "spans_exported": exporter.spans,
             "traced_p99_us": _p(traced, 0.99) * 1e6, "untraced_p99_us": _p(untraced, 0.99) * 1e6}
    return [Figure("step latency p50, traced execution", "µs", statistics.median(traced) * 1e6,
                   statistics.median(untraced) * 1e6, "the same steps, execution not sampled",
                   higher_is_better=False, target="≤ 1.25× untraced", extra=extra)]


def _p(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(pct * len(ordered)))]
