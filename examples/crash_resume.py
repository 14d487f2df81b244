"""Crash and resume: start an execution, ``kill -9`` every process of it, start again, finish.

    python examples/crash_resume.py

The script plays two roles. As the *driver* (no arguments) it starts itself as
a *service* in a new process group, waits until a few steps are done, kills
the whole group with SIGKILL (the service, the checkpoint process, the
workers: nothing gets to clean up), then starts the service again with the same
``execution_id``. The second run resumes from the store: steps whose success
was acknowledged before the kill are not run again; only steps that were in
flight at the kill (started, not yet acknowledged) can run twice, which is the
at-least-once promise of a step.

Every step appends one line to an effects file, so the driver counts exactly
which steps ran, and in which run.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from actors import BranchActor, BranchContext
from actors.records import OpStatus
from runtime import ActorSystem, SystemConfig
from runtime.stores import open_store

ITEMS = 12
EXECUTION_ID = "crash-resume"
RUN_VARIABLE = "CRASH_RESUME_RUN"  # set by the driver; inherited by every process of the service


def effect(path: str, item: int, step: str, seconds: float) -> int:
    """A step with a side effect: one line in the effects file, then some slow work."""
    run = os.environ.get(RUN_VARIABLE, "?")  # which run of the service executes this step
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{run} {item} {step}\n".encode())
    finally:
        os.close(fd)
    time.sleep(seconds)
    return item


class Process(BranchActor):
    """Two slow steps per item: ``fetch`` then ``store``."""

    def run(self, ctx: BranchContext, item: tuple[int, str]) -> int:
        number, effects = item
        ctx.step("fetch", effect, effects, number, "fetch", 0.1)
        return ctx.step("store", effect, effects, number, "store", 0.1) * 10


def service(store: str, effects: str, run: str) -> int:
    """One run of the service: start (or resume) the execution and wait for its result."""
    config = SystemConfig(workers=2, worker_threads=2)
    with ActorSystem(store=store, config=config) as system:
        handle = system.map(Process, [(i, effects) for i in range(ITEMS)],
                            max_concurrency=2, execution_id=EXECUTION_ID)
        print(f"[{run}] execution {handle.id}: {handle.started}", flush=True)
        result = handle.result(timeout=120)
        print(f"[{run}] finished: {result.values()}", flush=True)
    return 0


def start_service(store: str, effects: str, run: str) -> subprocess.Popen[bytes]:
    # A new session makes the service the leader of its own process group, and
    # every process of its system a member: one killpg reaches all of them.
    command = [sys.executable, __file__, "--service", "--store", store, "--effects", effects,
               "--run", run]
    return subprocess.Popen(command, start_new_session=True, stdin=subprocess.DEVNULL,
                            env={**os.environ, RUN_VARIABLE: run})


def ran(effects: Path) -> list[tuple[str, str, str]]:
    if not effects.exists():
        return []
    return [tuple(line.split()) for line in effects.read_text().splitlines()]  # type: ignore[misc]


def acknowledged_steps(store: str) -> set[tuple[str, str]]:
    """(item, step) of every step whose success the store holds, read without the write lock."""
    reader = open_store(store + "?mode=ro")
    try:
        return {(branch.branch_id.rsplit("/", 1)[1], op.name)
                for branch in reader.read_branches(EXECUTION_ID)
                for op in reader.read_log(branch.branch_id).operations
                if op.status is OpStatus.SUCCEEDED}
    finally:
        reader.close()


def group_members(pgid: int) -> list[int]:
    """Pids still in process group ``pgid`` (Linux: read from /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


def driver() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite:///{Path(tmp) / 'state.db'}"
        effects = Path(tmp) / "effects.txt"

        first = start_service(store, str(effects), "first")
        deadline = time.monotonic() + 60
        while len(ran(effects)) < 8:  # a few items done, others in flight
            if first.poll() is not None or time.monotonic() > deadline:
                print("the first run ended before it could be killed")
                return 1
            time.sleep(0.02)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        deadline = time.monotonic() + 10
        while group_members(first.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        before = len(ran(effects))
        print(f"kill -9 of the whole process group after {before} step executions; "
              f"processes left: {len(group_members(first.pid))}", flush=True)
        durable = acknowledged_steps(store)
        print(f"steps acknowledged durable before the kill: {len(durable)}", flush=True)

        second = start_service(store, str(effects), "second")
        if second.wait(timeout=120) != 0:
            print("the second run failed")
            return 1

        executions = Counter((item, step) for _, item, step in ran(effects))
        by_run = Counter(run for run, _, _ in ran(effects))
        again = sorted(k for k, n in executions.items() if n > 1)
        rerun_durable = sorted(set(again) & durable)
        print(f"step executions: {by_run['first']} before the kill, {by_run['second']} after")
        print(f"every one of the {2 * ITEMS} steps ran: {len(executions) == 2 * ITEMS}")
        print(f"steps that ran twice (in flight at the kill, never acknowledged): {again}")
        print(f"acknowledged steps that ran again: {rerun_durable}")
        return 0 if len(executions) == 2 * ITEMS and not rerun_durable else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--effects", help=argparse.SUPPRESS)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.service:
        return service(args.store, args.effects, args.run)
    return driver()


if __name__ == "__main__":
    raise SystemExit(main())
