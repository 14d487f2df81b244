"""``durable-actors bench``: every figure beside its baseline, measured in one run."""

from __future__ import annotations

import contextlib
import json
import platform
import sys
import time
from collections.abc import Callable

from runtime.tools.bench.report import Figure, table

Suite = Callable[[bool], list[Figure]]

__all__: list[str] = []  # the CLI runs ``main``; nothing here is imported by name


def suites() -> dict[str, Suite]:
    # A CLI subcommand: the suites (and what they import) load only when the bench runs.
    from runtime.tools.bench import (  # noqa: PLC0415 - the bench subcommand
        async_branches,
        digest,
        durable,
        messaging,
        postgres,
        ray_baselines,
        scheduler,
        tracing,
    )

    # tracing sets an OpenTelemetry provider for the process: it runs last.
    return {"messaging": messaging.run, "durable": durable.run, "digest": digest.run,
            "scheduler": scheduler.run, "async": async_branches.run, "postgres": postgres.run,
            "tracing": tracing.run, "ray": ray_baselines.run}


def main(*, quick: bool, as_json: bool, only: list[str] | None = None) -> int:
    from runtime import tracing  # noqa: PLC0415 - a CLI subcommand, loaded when it runs

    available = suites()
    unknown = sorted(set(only or ()) - set(available))
    if unknown:
        print(f"durable-actors bench: no suite named {', '.join(unknown)}; "
              f"the suites are {', '.join(available)}", file=sys.stderr)
        return 2
    # Actors the suites start in this process (the in-process checkpoint figure) log
    # like any service's: warnings to stderr, nothing else. Left unconfigured, structlog
    # prints every event to stdout, which costs time in the measured loop and corrupts
    # the --json output.
    tracing.configure(system_id="bench", role="bench", trace_path=None)
    started = time.perf_counter()
    results: dict[str, list[Figure]] = {}
    for name, suite in available.items():
        if only and name not in only:
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        # What a suite's libraries print (Ray's warnings, say) goes to stderr: stdout
        # holds the table, or the one JSON document scripts parse.
        with contextlib.redirect_stdout(sys.stderr):
            results[name] = suite(quick)
    elapsed = time.perf_counter() - started
    if as_json:
        payload = {
            "quick": quick,
            "seconds": elapsed,
            "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
            "suites": {k: [f.as_dict() for f in v] for k, v in results.items()},
        }
        print(json.dumps(payload, indent=2))
    else:
        for name, figures in results.items():
            print(f"\n== {name} ==")
            print(table(figures))
        print(f"\n({elapsed:.1f} s, {'quick' if quick else 'full'} run)")
    return 0
