"""The chaos campaign: a clean run, then rounds of the same workload under seeded ``kill -9``.

Each round starts a service process (``runtime.tools.chaos.service``) on a fresh
SQLite file and ledger, lets the map progress, then kills processes of the
chosen kinds one after another: half of the time once the previous kill was got
over (a step started after it was acknowledged), half of the time 50-400 ms
after it, while the system is still getting over it. A killed service process
(``coordinator``) is replaced at once by a fresh one, which resumes the
execution from the store. A round ends when the execution finished, or, past a
deadline, as a hang; kills left over go to the next round.

    campaign = Campaign(Workload(branches=200), kills=10, kinds=list(Kind), seed=1)
    report = campaign.run()
    assert report.ok, report.table()
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from runtime.tools.chaos.processes import Kind, ServiceProcess
from runtime.tools.chaos.report import CampaignReport, CleanRun
from runtime.tools.chaos.rounds import (
    RoundReport,
    ServiceError,
    describe_store,
    judge_ledger,
    judge_store,
)
from runtime.tools.chaos.watch import Kill, LedgerWatch
from runtime.tools.chaos.workload import Workload
from runtime.tools.ledger import read_ledger

_TICK = 0.01  # seconds between looks while waiting
_FIND_TIMEOUT = 30.0  # seconds to wait for a process of a kind to exist (it may be restarting)
_STOP_KILLING_AT = 0.9  # no kill once this share of the steps was acknowledged
_MAX_SERVICES = 50  # service processes a round may start before it gives up


def _say_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Campaign:
    """A clean run and rounds under ``kills`` seeded kills of ``kinds`` (see the module doc)."""

    def __init__(self, workload: Workload, *, kills: int, kinds: Sequence[Kind], seed: int = 0,
                 work_dir: Path | None = None, hang_after: float | None = None,
                 say: Callable[[str], None] | None = None) -> None:
        if kills > 0 and not kinds:
            raise ValueError("a campaign with kills needs at least one kind to kill")
        self.workload = workload
        self.kills = kills
        self.kinds = list(kinds)
        self.seed = seed
        self.rng = random.Random(seed)
        self._own_dir = work_dir is None
        self.dir = Path(tempfile.mkdtemp(prefix="durable-actors-chaos-")) if work_dir is None \
            else work_dir
        self.hang_after = hang_after
        self.say = say or (lambda _: None)

    # -- the campaign ----------------------------------------------------------------------

    def run(self, clean: CleanRun | None = None, keep: bool | None = None) -> CampaignReport:
        """The clean run (unless given), then rounds until every kill was made.

        The work directory is removed at the end unless ``keep`` (None: kept when a
        check failed, so the ledgers, stores and service logs can be read).
        """
        report = CampaignReport(self.workload, self.kinds, self.kills, self.seed, str(self.dir))
        completed = False
        try:
            report.clean = clean or self.clean()
            deadline = self._hang_after(report.clean)
            made = 0
            while made < self.kills and len(report.rounds) <= self.kills:
                found = self.round(len(report.rounds) + 1, report.clean.values,
                                   self.kills - made, deadline)
                report.rounds.append(found)
                made += len(found.kills) + len(found.skipped)
                if not found.finished:
                    break  # a hang: the finding; later rounds would hide nothing of it
            if self.kills == 0:
                report.rounds.append(self.round(1, report.clean.values, 0, deadline))
            completed = True
        finally:  # a campaign that broke off keeps its files, whatever ``keep`` says
            if completed and (keep is False or (keep is None and report.ok and self._own_dir)):
                shutil.rmtree(self.dir, ignore_errors=True)
        return report

    def clean(self) -> CleanRun:
        """The workload once without kills: the result every round must give."""
        self.say(f"clean run: {self.workload.branches} branches ...")
        found = self.round(0, None, 0, self.hang_after or 600.0)
        values = found.outcome.get("values")
        return CleanRun(found.seconds, values if isinstance(values, list) else None,
                        values == self.workload.expected(), found)

    def _hang_after(self, clean: CleanRun) -> float:
        if self.hang_after is not None:
            return self.hang_after
        return max(60.0, 10 * clean.seconds)

    # -- one round ------------------------------------------------------------------------

    def round(self, number: int, clean_values: list[Any] | None, kills: int,
              hang_after: float) -> RoundReport:
        """Run the workload once on fresh files, killing ``kills`` processes meanwhile."""
        run_dir = self.dir / f"round-{number}"
        run_dir.mkdir(parents=True)
        report = RoundReport(number)
        watch = LedgerWatch(Workload.ledger_path(run_dir)).start()
        services = [ServiceProcess(run_dir, self.workload, 0)]
        started = time.monotonic()
        try:
            stalled = self._kill_loop(report, run_dir, watch, services, kills, hang_after)
            finished = not stalled and self._wait(lambda: self._finished(run_dir, services),
                                                  hang_after, report, services, watch)
            report.seconds = time.monotonic() - started
            report.finished = finished
            if finished:
                watch.finished(time.monotonic())
                report.outcome = self._outcome(run_dir, services[-1])
            else:
                report.outcome = {"error": "hang", "message": f"not finished {hang_after:.0f} s "
                                  "after the last kill"}
                report.diagnosis = describe_store(Workload.store_path(run_dir),
                                                  self.workload.execution_id)
                report.diagnosis += _service_dump(run_dir, services[-1])
                report.hung_on = next((k for k in report.kills if k.recovered_after is None),
                                      None)
        finally:
            for service in services:
                if service is services[-1] and report.finished:
                    _wait_exit(service, 30.0)  # its with-block shuts the system down
                report.leftovers += service.end()
            watch.stop()
        report.services = len(services)
        report.matches_clean = clean_values is None or report.outcome.get("values") == clean_values
        judge_ledger(report, watch.lines)
        report.torn_lines = list(watch.torn)
        judge_store(report, watch.lines, Workload.store_path(run_dir), self.workload.execution_id)
        totals = read_ledger(Workload.ledger_path(run_dir))  # the shared reading agrees
        if (len(totals.started_after_ack), len(totals.completed_after_ack)) != (
                len(report.started_after_ack), len(report.completed_after_ack)):
            report.diagnosis += f" ledger readings disagree: {totals.as_dict()}"
        report.faults = _faults(run_dir)
        self.say(f"round {number}: {len(report.kills)} kills, "
                 f"{'finished' if report.finished else 'HANG'} in {report.seconds:.1f} s"
                 f"{'' if report.ok else ' -- CHECK FAILED, files in ' + str(run_dir)}")
        return report

    def _kill_loop(self, report: RoundReport, run_dir: Path, watch: LedgerWatch,
                   services: list[ServiceProcess], kills: int, hang_after: float) -> bool:
        """Make up to ``kills`` kills while the execution runs; True if it stalled for good
        (no progress ``hang_after`` seconds after a kill)."""
        total = self.workload.branches * self.workload.steps
        warm = max(1, int(total * self.rng.uniform(0.02, 0.15)))

        def over() -> bool:
            return self._finished(run_dir, services) or watch.acks >= total * _STOP_KILLING_AT

        if not self._wait(lambda: watch.acks >= warm or over(), hang_after, report, services,
                          watch):
            return True
        while len(report.kills) + len(report.skipped) < kills and not over():
            kind = self.rng.choice(self.kinds)
            previous = report.kills[-1] if report.kills else None
            if previous is None or self.rng.random() < 0.5:
                spacing = "after-recovery"
                if previous is not None and not self._wait(
                        lambda p=previous: watch.recovered(p) or over(),  # type: ignore[misc]
                        hang_after, report, services, watch):
                    return True  # never got over it: the round ends as a hang
                pause = self.rng.uniform(0.0, 0.3)
            else:
                spacing = "before-recovery"
                pause = self.rng.uniform(0.05, 0.4)
            self._wait(over, pause, report, services, watch)
            if over():
                return False
            target = self._find(kind, over, report, services, watch)
            if over():
                return False
            if target is None:
                report.skipped.append(kind.value)
                self.say(f"  no {kind.value} process to kill within {_FIND_TIMEOUT:.0f} s")
                continue
            name, pid = target
            kill = Kill(kind, name, pid, report.number, time.monotonic(), watch.size(), spacing)
            services[-1].kill(pid)
            kill.at = time.monotonic()
            watch.expect_progress(kill)
            report.kills.append(kill)
            self.say(f"  kill -9 {name} (pid {pid}), {spacing}, {watch.acks}/{total} acks")
            if kind is Kind.COORDINATOR:  # a fresh service resumes the execution
                services.append(ServiceProcess(run_dir, self.workload, len(services)))
        return False

    def _find(self, kind: Kind, over: Callable[[], bool], report: RoundReport,
              services: list[ServiceProcess], watch: LedgerWatch) -> tuple[str, int] | None:
        """A live process of ``kind`` to kill (waiting while it is being restarted)."""
        found: list[tuple[str, int]] = []

        def look() -> bool:
            found[:] = services[-1].find(kind)
            return bool(found) or over()

        self._wait(look, _FIND_TIMEOUT, report, services, watch)
        return self.rng.choice(found) if found else None

    # -- waiting, and what happens meanwhile --------------------------------------------

    def _wait(self, condition: Callable[[], bool], timeout: float, report: RoundReport,
              services: list[ServiceProcess], watch: LedgerWatch) -> bool:
        """Wait for ``condition``, noting restarts of killed processes meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            self._replace_exited(report, services[-1].run_dir, services)
            self._note_restarts(report, services)
            if condition():
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(_TICK)

    def _note_restarts(self, report: RoundReport, services: list[ServiceProcess]) -> None:
        waiting = [k for k in report.kills if k.restarted_after is None]
        if not waiting:
            return
        service = services[-1]
        names = None
        for kill in waiting:
            if kill.kind is Kind.COORDINATOR:
                back = service.pid != kill.pid and service.reported() is not None
            elif kill.kind.is_helper:
                pid = service.helper(kill.kind)
                back = pid is not None and pid != kill.pid
            else:
                names = service.named() if names is None else names
                pid = names.get(kill.name)
                back = pid is not None and pid != kill.pid
            if back:
                kill.restarted_after = time.monotonic() - kill.at

    def _finished(self, run_dir: Path, services: list[ServiceProcess]) -> bool:
        if (run_dir / "result.json").exists():
            return True
        # A service that keeps ending by itself without a result ends the round too.
        service = services[-1]
        return len(services) > _MAX_SERVICES or (
            not service.alive() and service.proc.returncode not in (None, -9))

    def _replace_exited(self, report: RoundReport, run_dir: Path,
                        services: list[ServiceProcess]) -> None:
        """A service that ended by itself with an error is started again, as a process
        manager would; the error is a finding, pinned on the kill before it."""
        service = services[-1]
        if (service.alive() or service.proc.returncode == -9 or len(services) > _MAX_SERVICES
                or (run_dir / "result.json").exists()):
            return
        last = service.log_tail(4000).strip().splitlines()
        why = f"exit code {service.proc.returncode}: {last[-1] if last else 'no output'}"
        report.service_errors.append(ServiceError(why, report.kills[-1] if report.kills
                                                  else None, service.log_path.name))
        self.say(f"  service {service.pid} ended by itself ({why}); starting another")
        services.append(ServiceProcess(run_dir, self.workload, len(services)))

    def _outcome(self, run_dir: Path, service: ServiceProcess) -> dict[str, Any]:
        try:
            found: dict[str, Any] = json.loads((run_dir / "result.json").read_text())
            return found
        except (OSError, ValueError):
            return {"error": "ServiceExited", "message": f"service exited with code "
                    f"{service.proc.returncode} and no result: {service.log_tail()}"}

    def close(self) -> None:
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def _wait_exit(service: ServiceProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while service.alive() and time.monotonic() < deadline:
        time.sleep(_TICK)


def _service_dump(run_dir: Path, service: ServiceProcess, timeout: float = 15.0) -> str:
    """Ask the service what it sees of its hung run (``runtime.tools.chaos.service``)."""
    if not service.alive():
        return "; the service process is gone"
    (run_dir / "dump-request").touch()
    dump = run_dir / f"dump-{service.pid}.json"
    deadline = time.monotonic() + timeout
    while not dump.exists() and time.monotonic() < deadline:
        time.sleep(_TICK)
    if not dump.exists():
        return f"; the service did not answer a dump request within {timeout:.0f} s"
    return f"; the service sees: {dump.read_text()}"


def _faults(run_dir: Path) -> list[str]:
    try:
        lines = (run_dir / "faults.jsonl").read_text().splitlines()
    except OSError:
        return []
    return [json.loads(line)["message"] for line in lines if line.strip()]
