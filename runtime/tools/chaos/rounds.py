"""What one round of a campaign found: its outcome, and each fault pinned on the kill before it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actors.errors import StoreError
from actors.records import OpStatus
from runtime.stores import open_store
from runtime.tools.chaos.watch import Kill, LedgerLine

Key = tuple[str, str]


@dataclass
class Finding:
    """A step the ledger or the store flags, and the kill it is pinned on (None: no kill)."""

    key: Key
    kill: Kill | None

    def as_dict(self) -> dict[str, Any]:
        return {"branch": self.key[0], "step": self.key[1],
                "after_kill": None if self.kill is None else self.kill.name}


@dataclass
class ServiceError:
    """A service process that ended by itself: its caller saw an error, not a result."""

    message: str
    kill: Kill | None
    log: str  # its log file in the round's directory

    def as_dict(self) -> dict[str, Any]:
        return {"message": self.message, "log": self.log,
                "after_kill": None if self.kill is None else self.kill.name}


@dataclass
class RoundReport:
    """One execution of the workload, from its first service process to its result."""

    number: int
    seconds: float = 0.0
    finished: bool = False  # it finished within the deadline (False: a hang)
    outcome: dict[str, Any] = field(default_factory=dict)  # what the service's result() gave
    matches_clean: bool = False
    kills: list[Kill] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # kinds with no live process to kill
    services: int = 1  # service processes started (a coordinator kill starts another)
    acknowledged: int = 0
    reruns: list[Finding] = field(default_factory=list)  # bodies of unacknowledged steps again
    started_after_ack: list[Finding] = field(default_factory=list)
    completed_after_ack: list[Finding] = field(default_factory=list)
    lost_acks: list[Finding] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)  # typed faults result() raised meanwhile
    service_errors: list[ServiceError] = field(default_factory=list)
    leftovers: list[int] = field(default_factory=list)  # pids that outlived the round's end
    torn_lines: list[int] = field(default_factory=list)  # ledger offsets of malformed lines
    diagnosis: str = ""  # for a hang: what the store said
    hung_on: Kill | None = None  # the first kill never got over, in a hang

    @property
    def ok(self) -> bool:
        return (self.finished and self.matches_clean and not self.started_after_ack
                and not self.completed_after_ack and not self.lost_acks and not self.leftovers
                and not self.service_errors and not self.torn_lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "round": self.number, "seconds": round(self.seconds, 3), "finished": self.finished,
            "matches_clean": self.matches_clean, "ok": self.ok,
            "outcome": {k: v for k, v in self.outcome.items() if k != "values"},
            "kills": [k.as_dict() for k in self.kills], "skipped": self.skipped,
            "services": self.services, "acknowledged": self.acknowledged,
            "reruns": len(self.reruns),
            "started_after_ack": [f.as_dict() for f in self.started_after_ack],
            "completed_after_ack": [f.as_dict() for f in self.completed_after_ack],
            "lost_acks": [f.as_dict() for f in self.lost_acks],
            "faults": self.faults, "torn_lines": self.torn_lines,
            "service_errors": [e.as_dict() for e in self.service_errors],
            "leftovers": self.leftovers, "diagnosis": self.diagnosis,
        }


def judge_ledger(report: RoundReport, lines: list[LedgerLine]) -> None:
    """Re-runs, and starts or bodies after an acknowledgement, each pinned on a kill."""
    kills = sorted(report.kills, key=lambda k: k.offset)

    def before(offset: int) -> Kill | None:
        found = None
        for kill in kills:
            if kill.offset <= offset:
                found = kill
        return found

    acked: set[Key] = set()
    bodies: Counter[Key] = Counter()
    for line in lines:
        if line.kind == "ack":
            acked.add(line.key)
        elif line.kind == "start" and line.key in acked:
            report.started_after_ack.append(Finding(line.key, before(line.offset)))
        elif line.kind == "body":
            bodies[line.key] += 1
            if line.key in acked:
                report.completed_after_ack.append(Finding(line.key, before(line.offset)))
            elif bodies[line.key] > 1:
                report.reruns.append(Finding(line.key, before(line.offset)))
    report.acknowledged = len(acked)


def succeeded_steps(store_path: Path, execution_id: str) -> set[Key] | None:
    """(branch, step) pairs the store holds as SUCCEEDED; None if it cannot be read."""
    try:
        store = open_store(f"sqlite:///{store_path.resolve()}?mode=ro")
    except StoreError:
        return None
    try:
        ids = [b.branch_id for b in store.read_branches(execution_id)]
        found: set[Key] = set()
        for logs in store.read_logs(ids, 500):
            for branch_id, log in logs.items():
                found.update((branch_id, op.name) for op in log.operations
                             if op.status is OpStatus.SUCCEEDED)
        return found
    finally:
        store.close()


def judge_store(report: RoundReport, lines: list[LedgerLine], store_path: Path,
                execution_id: str) -> None:
    """Acknowledged steps the store does not hold as SUCCEEDED, each pinned on the next kill."""
    held = succeeded_steps(store_path, execution_id)
    kills = sorted(report.kills, key=lambda k: k.offset)
    seen: set[Key] = set()
    for line in lines:
        if line.kind != "ack" or line.key in seen:
            continue
        seen.add(line.key)
        if held is None or line.key not in held:
            after = next((k for k in kills if k.offset > line.offset), None)
            report.lost_acks.append(Finding(line.key, after))


def describe_store(store_path: Path, execution_id: str) -> str:
    """The execution's status and its branches' statuses, for a hang's report."""
    try:
        store = open_store(f"sqlite:///{store_path.resolve()}?mode=ro")
    except StoreError as exc:
        return f"the store cannot be read: {exc}"
    try:
        record = store.read_execution(execution_id)
        if record is None:
            return "the store holds no execution"
        branches = Counter(b.status.value for b in store.read_branches(execution_id))
        return (f"execution {record.status.value}, owner {record.owner} epoch "
                f"{record.lease_epoch}; branches {dict(branches)}")
    finally:
        store.close()
