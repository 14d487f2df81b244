"""The ``durable-actors`` command line."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="durable-actors", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    bench = sub.add_parser("bench", help="benchmark suite with its baselines, one run")
    bench.add_argument("--quick", action="store_true", help="smaller counts, under a minute")
    bench.add_argument("--json", action="store_true", help="print JSON instead of a table")
    bench.add_argument("--only", action="append", help="run only this suite (repeatable)")

    chaos = sub.add_parser(
        "chaos", help="kill -9 processes of every kind while a map runs; check nothing is lost",
        description="Run a map of branches with waits, retries and saves once cleanly, then "
        "again while killing processes of the chosen kinds at random (seeded). Prints, per "
        "kind, the kills, the recovery times, re-runs, re-runs after acknowledgement, lost "
        "acknowledgements and hangs, and whether the result equals the clean run's. "
        "Exit status 0 when every check held.")
    chaos.add_argument("--branches", type=int, default=200, help="branches in the map (200)")
    chaos.add_argument("--kills", type=int, default=10, help="processes to kill (10)")
    chaos.add_argument("--kinds", default="checkpoint,scheduler,digest,worker,coordinator",
                       help="comma-separated kinds to kill: checkpoint, scheduler, digest, "
                       "worker, coordinator (the service process), forkserver, "
                       "resource_tracker; or 'all' (default: all but the helpers)")
    chaos.add_argument("--seed", type=int, default=0, help="seed of the kill sequence (0)")
    chaos.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    chaos.add_argument("--json", action="store_true", help="print one JSON document")
    chaos.add_argument("--keep", action="store_true",
                       help="keep the ledgers, stores and logs (kept anyway when a check fails)")
    chaos.add_argument("--trace", action="store_true",
                       help="write every process's events to trace.jsonl in each round's "
                       "directory (read it with `trace`); slows the runs down")

    demo = sub.add_parser("demo", help="the main job on the embedded default")
    demo.add_argument("--store", default=None, help="store URL (default: ./.durable/)")
    demo.add_argument("--items", type=int, default=None, help="how many items to fan out (300)")
    demo.add_argument("--fresh", action="store_true",
                      help="start a new execution instead of resuming the last one")
    demo.add_argument("--trace", default=None, metavar="TRACE.jsonl",
                      help="write every process's events here (read it with `trace`)")

    inspect = sub.add_parser("inspect", help="executions, branches, operations, statuses")
    inspect.add_argument("--store", default=None, help="store URL (default: ./.durable/)")
    inspect.add_argument("execution", nargs="?", default=None,
                         help="show this execution as a tree (default: list executions)")
    inspect.add_argument("--json", action="store_true",
                         help="print one JSON document: results, errors and tracebacks included")
    inspect.add_argument("--status", metavar="STATUS",
                         help="only executions (or top-level branches) of this status, "
                              "e.g. FAILED, SUSPENDED")
    inspect.add_argument("--failed", action="store_true",
                         help="only failed ones; the tree shows each failure's traceback")
    inspect.add_argument("--offset", type=int, default=0, metavar="N",
                         help="skip the first N top-level branches")
    inspect.add_argument("--limit", type=int, default=None, metavar="N",
                         help="show N top-level branches (the tree's default: 20; 0: all)")

    executions = sub.add_parser(
        "executions", help="list, show, cancel, retry or delete stored executions",
        description="Manage a store's executions from any machine that can open it; "
                    "no service needs to run here.")
    executions.add_argument("verb", choices=("list", "show", "cancel", "retry", "delete"))
    executions.add_argument("execution", nargs="?", default=None, help="the execution's id")
    executions.add_argument("--store", default=None, help="store URL (default: ./.durable/)")
    executions.add_argument("--status", default=None, help="list: only executions of this status")
    executions.add_argument("--json", action="store_true", help="print one JSON document")
    executions.add_argument("--here", action="store_true",
                            help="retry: run it to its end in this process (by default a "
                                 "running service with recover=True takes it over)")
    executions.add_argument("--timeout", type=float, default=None,
                            help="retry --here: seconds to wait for its end")
    executions.add_argument("--blob-dir", default=None,
                            help="the services' SystemConfig.blob_dir, if they set one: "
                                 "delete collects the execution's blobs there")

    trace = sub.add_parser("trace", help="timeline of a trace file, or Perfetto JSON",
                           description="Read the JSON-lines trace of every process "
                           "(SystemConfig(trace_path=...)); print a timeline or export it.")
    trace.add_argument("trace_file", metavar="TRACE.jsonl", help="the trace file to read")
    trace.add_argument("--execution", metavar="ID", help="only this execution's events")
    trace.add_argument("--branch", metavar="ID", help="only this branch's (and its children's)")
    trace.add_argument("--actor", metavar="NAME", help="only this actor's or role's events")
    trace.add_argument("--since", metavar="SECONDS|ISO",
                       help="from this many seconds after the trace's start, or this date-time")
    trace.add_argument("--perfetto", metavar="OUT.json",
                       help="write Chrome trace-event JSON (Perfetto, chrome://tracing)")
    trace.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                       help="colour the timeline (default: when printing to a terminal)")

    args = parser.parse_args(argv)
    if args.command == "bench":
        from runtime.tools.bench import main as bench_main  # noqa: PLC0415 - a subcommand

        return bench_main(quick=args.quick, as_json=args.json, only=args.only)
    if args.command == "chaos":
        from runtime.tools.chaos.command import main as chaos_main  # noqa: PLC0415 - a subcommand

        return chaos_main(branches=args.branches, kills=args.kills, kinds=args.kinds,
                          seed=args.seed, workers=args.workers, as_json=args.json,
                          keep=args.keep, trace=args.trace)
    if args.command == "demo":
        from runtime.tools.demo import main as demo_main  # noqa: PLC0415 - a subcommand

        code: int = demo_main(store=args.store, items=args.items, fresh=args.fresh,
                              trace=args.trace)
        return code
    if args.command == "inspect":
        from runtime.tools.inspect_cmd import main as inspect_main  # noqa: PLC0415 - a subcommand

        return inspect_main(store=args.store, execution=args.execution, as_json=args.json,
                            status=args.status, failed=args.failed, offset=args.offset,
                            limit=args.limit)
    if args.command == "executions":
        from runtime.tools.executions_cmd import main as executions_main  # noqa: PLC0415 - a subcommand

        return executions_main(args.verb, store=args.store, execution=args.execution,
                               status=args.status, as_json=args.json, here=args.here,
                               timeout=args.timeout, blob_dir=args.blob_dir)
    if args.command == "trace":
        from runtime.tools.trace_cmd import main as trace_main  # noqa: PLC0415 - a subcommand

        return trace_main(args.trace_file, execution=args.execution, branch=args.branch,
                          actor=args.actor, since=args.since, perfetto=args.perfetto,
                          colour=args.color)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
