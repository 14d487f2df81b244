"""A ledger of side effects, to check the durable promises on real processes.

``LedgerBranch`` runs steps whose bodies append ``start`` when they begin and
``body`` just before they return; ``run()`` appends ``ack`` once ``ctx.step``
returned (the step's success is durable then). Every line is one ``write`` to
one file opened with ``O_APPEND``, so the file's order is the order in which
the kernel saw them, across every process of every system.

``read_ledger`` checks what must hold whatever was killed, paused or restarted:

* **no step starts after its acknowledgement** (``started_after_ack``): a step
  whose success was checkpointed never runs again;
* **no body completes after its acknowledgement** (``completed_after_ack``):
  under ``kill -9`` nothing of a killed process completes; a process that was
  *paused* while a body ran finishes that body when it resumes (no lease
  system can preempt it), so pause tests check starts only;
* re-runs of unacknowledged steps (``reruns``) are allowed: a crash before the
  acknowledgement runs the step again (at least once).

    report = read_ledger("ledger.log")
    assert report.started_after_ack == [] and report.completed_after_ack == []

The chaos campaign (``durable-actors chaos``) and the test suite share it.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actors import BranchActor, BranchContext, Retry


def record(path: str, *fields: object) -> None:
    """Append one line with one ``write`` (lines of many processes never interleave)."""
    line = " ".join(str(f) for f in fields) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


class FlakyOnce(Exception):
    """Raised by the first attempt of a step that is meant to be retried."""


def ledger_step(path: str, branch: str, step: str, value: int, pause: float,
                flaky: bool) -> int:
    record(path, "start", branch, step, os.getpid())
    if flaky and not Path(f"{path}.{branch.replace('/', '_')}.{step}.tried").exists():
        Path(f"{path}.{branch.replace('/', '_')}.{step}.tried").touch()
        raise FlakyOnce(f"{branch} {step}: first attempt fails")
    if pause:
        time.sleep(pause)  # a slow side effect: a kill may land in the middle of it
    record(path, "body", branch, step, os.getpid())
    return value * value


@dataclass(frozen=True)
class LedgerItem:
    """One branch of a ledger run: ``steps`` steps, ``wait`` seconds between them,
    ``save`` a value of that many bytes as a Ref, every ``flaky_every``-th step retried."""

    index: int
    path: str
    steps: int = 3
    pause: float = 0.0
    wait: float = 0.0
    save: int = 0
    flaky_every: int = 0


class LedgerBranch(BranchActor):
    """Steps with waits, retries and saves between them; every effect in the ledger."""

    def run(self, ctx: BranchContext, item: LedgerItem) -> int:
        total = 0
        for s in range(item.steps):
            flaky = bool(item.flaky_every) and (item.index + s) % item.flaky_every == 0
            total += ctx.step(f"s{s}", ledger_step, item.path, ctx.branch_id, f"s{s}",
                              item.index + s, item.pause, flaky,
                              retry=Retry(attempts=3, initial=0.05) if flaky else None)
            record(item.path, "ack", ctx.branch_id, f"s{s}", os.getpid())
            if item.wait:
                ctx.wait(f"w{s}", seconds=item.wait)
        if item.save:
            ref = ctx.save(bytes([item.index % 256]) * item.save)
            total += len(ref.get())
        return total


def expected_total(item: LedgerItem) -> int:
    return sum((item.index + s) ** 2 for s in range(item.steps)) + item.save


@dataclass
class LedgerReport:
    """What a ledger says (see the module docstring)."""

    acknowledged: set[tuple[str, str]] = field(default_factory=set)
    bodies: Counter[tuple[str, str]] = field(default_factory=Counter)
    started_after_ack: list[tuple[str, str]] = field(default_factory=list)
    completed_after_ack: list[tuple[str, str]] = field(default_factory=list)

    @property
    def reruns(self) -> int:
        """Bodies that completed more than once (each was unacknowledged when it re-ran)."""
        return sum(n - 1 for n in self.bodies.values() if n > 1)

    def as_dict(self) -> dict[str, Any]:
        return {"acknowledged": len(self.acknowledged), "reruns": self.reruns,
                "started_after_ack": len(self.started_after_ack),
                "completed_after_ack": len(self.completed_after_ack)}


def read_ledger(path: str | os.PathLike[str]) -> LedgerReport:
    report = LedgerReport()
    target = Path(path)
    if not target.exists():
        return report
    for line in target.read_text(errors="replace").splitlines():  # a torn line is skipped
        fields = line.split()
        if len(fields) < 3:
            continue
        kind, key = fields[0], (fields[1], fields[2])
        if kind == "ack":
            report.acknowledged.add(key)
        elif kind == "start" and key in report.acknowledged:
            report.started_after_ack.append(key)
        elif kind == "body":
            report.bodies[key] += 1
            if key in report.acknowledged:
                report.completed_after_ack.append(key)
    return report


__all__ = ["FlakyOnce", "LedgerBranch", "LedgerItem", "LedgerReport", "expected_total",
           "ledger_step", "read_ledger", "record"]
