"""A campaign's findings per kind of process killed: a table for people, a document for tools."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from runtime.tools.chaos.processes import Kind
from runtime.tools.chaos.rounds import Finding, RoundReport
from runtime.tools.chaos.watch import Kill
from runtime.tools.chaos.workload import Workload

_NONE = "none"  # findings after no kill at all


@dataclass
class CleanRun:
    """The workload run once without kills: the result every round must give."""

    seconds: float
    values: list[Any] | None
    matches_expected: bool  # each branch's total is what its steps compute
    round: RoundReport

    def as_dict(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 3), "values": None if self.values is None
                else len(self.values), "matches_expected": self.matches_expected,
                "ok": self.round.ok and self.matches_expected}


@dataclass
class KindFigures:
    """What the kills of one kind cost, and what went wrong after them."""

    kind: str
    kills: int = 0
    recoveries: list[float] = field(default_factory=list)
    restarts: list[float] = field(default_factory=list)
    reruns: int = 0
    started_after_ack: int = 0
    completed_after_ack: int = 0
    lost_acks: int = 0
    hangs: int = 0
    service_errors: int = 0  # service processes that ended with an error, not a result
    skipped: int = 0

    @property
    def recovery_median(self) -> float | None:
        return statistics.median(self.recoveries) if self.recoveries else None

    @property
    def recovery_max(self) -> float | None:
        return max(self.recoveries) if self.recoveries else None

    @property
    def restart_median(self) -> float | None:
        return statistics.median(self.restarts) if self.restarts else None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(recovery_median=self.recovery_median, recovery_max=self.recovery_max,
                    restart_median=self.restart_median)
        return data


@dataclass
class CampaignReport:
    """Everything a campaign measured; ``ok`` when every promise held."""

    workload: Workload
    kinds: list[Kind]
    kills_planned: int
    seed: int
    work_dir: str
    clean: CleanRun | None = None
    rounds: list[RoundReport] = field(default_factory=list)

    @property
    def kills(self) -> list[Kill]:
        return [kill for r in self.rounds for kill in r.kills]

    @property
    def hangs(self) -> int:
        return sum(1 for r in self.rounds if not r.finished)

    @property
    def ok(self) -> bool:
        return (self.clean is not None and self.clean.round.ok and self.clean.matches_expected
                and all(r.ok for r in self.rounds))

    def per_kind(self) -> dict[str, KindFigures]:
        """Figures for each kind killed, ``none`` for findings after no kill, ``all``."""
        rows = {kind.value: KindFigures(kind.value) for kind in self.kinds}
        rows[_NONE] = KindFigures(_NONE)
        total = KindFigures("all")
        for found in self.rounds:
            for kill in found.kills:
                for row in (rows[kill.kind.value], total):
                    row.kills += 1
                    if kill.recovered_after is not None:
                        row.recoveries.append(kill.recovered_after)
                    if kill.restarted_after is not None:
                        row.restarts.append(kill.restarted_after)
            for kind in found.skipped:
                rows[kind].skipped += 1
                total.skipped += 1
            for attr in ("reruns", "started_after_ack", "completed_after_ack", "lost_acks"):
                findings: list[Finding] = getattr(found, attr)
                for finding in findings:
                    row = rows[_NONE if finding.kill is None else finding.kill.kind.value]
                    for target in (row, total):
                        setattr(target, attr, getattr(target, attr) + 1)
            for error in found.service_errors:
                row = rows[_NONE if error.kill is None else error.kill.kind.value]
                row.service_errors += 1
                total.service_errors += 1
            if not found.finished:
                hung = rows[_NONE if found.hung_on is None else found.hung_on.kind.value]
                hung.hangs += 1
                total.hangs += 1
        if not any(asdict(rows[_NONE])[k] for k in ("reruns", "started_after_ack",
                                                    "completed_after_ack", "lost_acks", "hangs",
                                                    "service_errors")):
            del rows[_NONE]
        rows["all"] = total
        return rows

    def result_line(self) -> str:
        if self.clean is None or self.clean.values is None:
            outcome = "" if self.clean is None else self.clean.round.outcome
            return f"result: the clean run gave no result ({outcome})"
        equal = sum(1 for r in self.rounds if r.finished and r.matches_clean)
        sane = "" if self.clean.matches_expected else " -- BUT IT IS NOT WHAT THE STEPS COMPUTE"
        return (f"result: {equal} of {len(self.rounds)} rounds gave the clean run's result "
                f"({len(self.clean.values)} values, clean run {self.clean.seconds:.1f} s){sane}")

    def table(self) -> str:
        header = ("kind", "kills", "recovery median", "recovery max", "restart median",
                  "re-runs", "started after ack", "completed after ack", "lost acks", "hangs",
                  "service errors")
        rows: list[tuple[str, ...]] = [header]
        for fig in self.per_kind().values():
            rows.append((fig.kind, f"{fig.kills}" + (f" (+{fig.skipped} skipped)"
                                                     if fig.skipped else ""),
                         _seconds(fig.recovery_median), _seconds(fig.recovery_max),
                         _seconds(fig.restart_median), str(fig.reruns),
                         str(fig.started_after_ack), str(fig.completed_after_ack),
                         str(fig.lost_acks), str(fig.hangs), str(fig.service_errors)))
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = []
        for n, row in enumerate(rows):
            lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        lines += ["", self.result_line(), self._rounds_line()]
        lines += [f"  {problem}" for problem in self.problems()]
        return "\n".join(lines)

    def _rounds_line(self) -> str:
        services = sum(r.services for r in self.rounds)
        faults = sum(len(r.faults) for r in self.rounds)
        return (f"{len(self.rounds)} round(s), {len(self.kills)} kills, {services} service "
                f"processes, {faults} typed fault(s) reported to the caller meanwhile; "
                f"{'every check held' if self.ok else 'CHECKS FAILED (below)'}")

    def problems(self) -> list[str]:
        """One line per failed check, with what to look at."""
        found = []
        for r in ([self.clean.round] if self.clean else []) + self.rounds:
            where = f"round {r.number}" if r.number else "clean run"
            if not r.finished:
                found.append(f"{where}: HANG ({r.outcome.get('message')}); {r.diagnosis}")
            elif not r.matches_clean:
                found.append(f"{where}: result differs from the clean run's: "
                             f"{ {k: v for k, v in r.outcome.items() if k != 'values'} }")
            for attr in ("started_after_ack", "completed_after_ack", "lost_acks"):
                items: list[Finding] = getattr(r, attr)
                if items:
                    found.append(f"{where}: {len(items)} {attr.replace('_', ' ')}, e.g. "
                                 f"{items[0].as_dict()}")
            for error in r.service_errors:
                found.append(f"{where}: a service ended with an error after "
                             f"{error.kill.name if error.kill else 'no kill'}: {error.message} "
                             f"({error.log})")
            if r.torn_lines:
                found.append(f"{where}: {len(r.torn_lines)} ledger line(s) that are not one "
                             f"whole write, at offsets {r.torn_lines[:5]}")
            if r.leftovers:
                found.append(f"{where}: processes outlived the round: {r.leftovers}")
        if found:
            found.append(f"files: {self.work_dir}")
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            "workload": asdict(self.workload), "kinds": [k.value for k in self.kinds],
            "kills_planned": self.kills_planned, "seed": self.seed, "ok": self.ok,
            "clean": None if self.clean is None else self.clean.as_dict(),
            "per_kind": {k: v.as_dict() for k, v in self.per_kind().items()},
            "rounds": [r.as_dict() for r in self.rounds], "problems": self.problems(),
        }


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"
