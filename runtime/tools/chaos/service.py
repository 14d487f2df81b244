"""The service process of a chaos run: ``python -m runtime.tools.chaos.service RUN_DIR WORKLOAD``.

It is what a user's service is: a system on a store, one ``system.map`` of
ledger branches (``runtime.tools.ledger``), waiting for its result. The campaign
kills it (the ``coordinator`` kind) and starts another one, which calls ``map``
with the same id and items and so resumes the execution from the store.

It talks to the campaign through files in ``RUN_DIR`` (nothing it writes is
lost to a full pipe while the campaign is busy killing):

* ``processes.json``: this process's pid and each process of its system by
  name, rewritten (atomically) whenever it changes;
* ``result.json``: ``{"values": [...]}``, or ``{"error": ...}`` for an outcome
  that is not a result;
* ``faults.jsonl``: the typed faults ``result()`` raised meanwhile (a framework
  process past its restart budget): the service waits on, as a user would.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from actors._compat.pykka import actor_of
from runtime import ActorSystem, SystemConfig
from runtime.errors import ProcessFaultError, Timeout
from runtime.tools.chaos.workload import Workload
from runtime.tools.ledger import LedgerBranch

_REPORT_EVERY = 0.02  # seconds between looks at the system's processes


def write_atomically(path: Path, document: Any) -> None:
    part = path.with_name(f".{path.name}.{os.getpid()}")
    part.write_text(json.dumps(document))
    os.replace(part, path)


def report_processes(system: ActorSystem, run_dir: Path) -> None:
    """Keep ``processes.json`` current until the system is shut down."""
    last: dict[str, int] | None = None
    while not system.wait_closed(_REPORT_EVERY):
        try:
            now = system.processes()
        except Exception:  # the supervisor changing under us: look again
            continue
        if now != last:
            write_atomically(run_dir / "processes.json", {"service": os.getpid(),
                                                          "processes": now})
            last = now


def coordinator_view(system: ActorSystem) -> dict[str, Any]:
    """What this system's coordinator holds, for a hang's report (read from outside it)."""
    durable = system._durable
    found = None if durable is None else durable._hosted  # None on Ray: its own process
    hosted = None if found is None else found.pykka_ref
    actor: Any = None if hosted is None else actor_of(hosted)
    if actor is None:
        return {"coordinator": "not running"}
    states: dict[str, int] = {}
    for branch in list(actor._branches.values()):
        states[branch.state.value] = states.get(branch.state.value, 0) + 1
    keeper = actor._keeper
    return {"branches": states, "retries": len(actor._retries),
            "lease_round_in_flight": keeper.in_flight, "valid_until": keeper.valid_until,
            "now": actor._clock.monotonic(), "pending_starts": list(actor._pending_starts),
            "claiming": list(actor._claiming), "faults": [repr(f) for f in actor._faults.values()],
            "worker_load": list(actor._load)}


def answer_dumps(system: ActorSystem, run: Any, run_dir: Path) -> None:
    """On ``dump-request`` in the run's directory, write what this service sees of its run."""
    request = run_dir / "dump-request"
    while not system.wait_closed(0.2):
        if not request.exists():
            continue
        document: dict[str, Any] = {"service": os.getpid()}
        for name, look in (("progress", run.progress),
                           ("coordinator", lambda: coordinator_view(system)),
                           ("metrics", system.metrics)):
            try:
                document[name] = look()
            except Exception as exc:
                document[name] = repr(exc)
        write_atomically(run_dir / f"dump-{os.getpid()}.json", document)
        request.unlink(missing_ok=True)


def serve(run_dir: Path, workload: Workload) -> int:
    config = SystemConfig(workers=workload.workers, lease_seconds=workload.lease_seconds,
                          poll_interval=0.05,
                          trace_path=str(run_dir / "trace.jsonl") if workload.trace else None)
    with ActorSystem(store=workload.store_url(run_dir), config=config) as system:
        system.start_durable()
        threading.Thread(target=report_processes, args=(system, run_dir),
                         name="chaos-processes", daemon=True).start()
        run = system.map(LedgerBranch, workload.items(run_dir),
                         execution_id=workload.execution_id,
                         max_concurrency=workload.max_concurrency)
        threading.Thread(target=answer_dumps, args=(system, run, run_dir),
                         name="chaos-dumps", daemon=True).start()
        while True:
            try:
                values = run.result(timeout=workload.result_timeout).values()
            except ProcessFaultError as fault:  # the system keeps trying; so does its user
                with (run_dir / "faults.jsonl").open("a") as out:
                    out.write(json.dumps({"at": time.time(), "process": fault.process,
                                          "message": str(fault)}) + "\n")
                system.wait_closed(0.5)
                continue
            except Timeout as exc:
                write_atomically(run_dir / "result.json",
                                 {"error": "Timeout", "message": str(exc)})
                return 3
            except Exception as exc:
                write_atomically(run_dir / "result.json",
                                 {"error": type(exc).__name__, "message": str(exc)})
                return 3
            write_atomically(run_dir / "result.json", {"values": values,
                                                       "started": run.started})
            return 0


def main(argv: list[str]) -> int:
    run_dir = Path(argv[0])
    workload = Workload.from_json(argv[1])
    return serve(run_dir, workload)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
