"""A service process for the multi-instance tests: ``python ledger_service.py STORE LEDGER ...``.

``--mode map`` starts (or joins) the execution with ``system.map`` and prints its
result as one JSON line (``{"values": [...]}``), or the error that ``result()``
raised (``{"error": "LeaseLostError", ...}``). ``--mode idle`` starts a system and
calls nothing: it runs until it is killed (recovery without a caller). ``--kind``
says which ledger branch runs: the sync one or its async twin. The process writes
``READY <pid>`` once its system started.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from runtime import ActorSystem, SystemConfig
from runtime.tools.ledger import LedgerItem

from branch_kinds import Kind
from ledger_branches import ledger_branch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("ledger")
    parser.add_argument("--mode", choices=["map", "idle"], default="map")
    parser.add_argument("--execution", default="shared-1")
    parser.add_argument("--branches", type=int, default=6)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--pause", type=float, default=0.0)
    parser.add_argument("--wait", type=float, default=0.0)
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--executor", default=None)
    parser.add_argument("--kind", choices=[k.value for k in Kind], default=Kind.SYNC.value)
    args = parser.parse_args()
    config = SystemConfig(workers=args.workers, lease_seconds=args.lease,
                          executor_id=args.executor, poll_interval=0.05)
    with ActorSystem(store=args.store, config=config) as system:
        print(f"READY {system.id}", flush=True)
        if args.mode == "idle":
            while True:
                time.sleep(3600)
        items = [LedgerItem(i, args.ledger, args.steps, args.pause, args.wait)
                 for i in range(args.branches)]
        run = system.map(ledger_branch(Kind(args.kind)), items, execution_id=args.execution,
                         max_concurrency=4)
        print(json.dumps({"started": run.started}), flush=True)
        try:
            values = run.result(timeout=300).values()
        except Exception as exc:
            print(json.dumps({"error": type(exc).__name__, "message": str(exc)}), flush=True)
            sys.exit(3)
        print(json.dumps({"values": values}), flush=True)


if __name__ == "__main__":
    main()
