"""The chaos campaign: ``kill -9`` of every kind of process while an execution runs.

A campaign runs a map of ledger branches (``runtime.tools.ledger``: steps with
waits, retries and saves, whose bodies and acknowledgements are written to a
ledger) once without kills, then again in rounds while it kills processes of
the chosen kinds (``Kind``), seeded. For every kill it measures how long the
execution took to progress again; for every round it checks the promises:

* the execution finishes (no hang), with the clean run's result;
* no acknowledged step is lost (each is SUCCEEDED in the store at the end);
* no step starts, and no step body completes, after its acknowledgement;

and counts the re-runs of unacknowledged steps (allowed: at least once).

    report = Campaign(Workload(branches=200), kills=10, kinds=list(Kind), seed=1).run()
    print(report.table())

``durable-actors chaos`` runs it from the command line (``runtime.tools.chaos.command``).
"""

from runtime.tools.chaos.campaign import Campaign
from runtime.tools.chaos.processes import Kind
from runtime.tools.chaos.report import CampaignReport, CleanRun, KindFigures
from runtime.tools.chaos.rounds import RoundReport
from runtime.tools.chaos.watch import Kill
from runtime.tools.chaos.workload import Workload

__all__ = ["Campaign", "CampaignReport", "CleanRun", "Kill", "Kind", "KindFigures",
           "RoundReport", "Workload"]
