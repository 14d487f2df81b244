"""``durable-actors chaos``: the campaign at a size the user chooses, a table or JSON."""

from __future__ import annotations

import json
import sys

from runtime.tools.chaos.campaign import Campaign
from runtime.tools.chaos.processes import Kind
from runtime.tools.chaos.workload import Workload

DEFAULT_KINDS = ("checkpoint", "scheduler", "digest", "worker", "coordinator")


def parse_kinds(text: str) -> list[Kind]:
    """``"checkpoint,worker"`` as kinds; ``"all"`` for every kind, the helpers included."""
    if text.strip() == "all":
        return list(Kind)
    kinds = []
    for name in (part.strip() for part in text.split(",") if part.strip()):
        try:
            kinds.append(Kind(name))
        except ValueError:
            raise ValueError(f"no process kind {name!r}; the kinds are "
                             f"{', '.join(k.value for k in Kind)} (or 'all')") from None
    if not kinds:
        raise ValueError("--kinds names no kind; give e.g. checkpoint,worker or all")
    return kinds


def main(*, branches: int, kills: int, kinds: str, seed: int, workers: int, as_json: bool,
         keep: bool, trace: bool = False) -> int:
    """Run the campaign; 0 when every check held, 1 when one failed, 2 for bad arguments."""
    try:
        chosen = parse_kinds(kinds)
        if branches < 1 or kills < 0 or workers < 1:
            raise ValueError("--branches and --workers must be >= 1, --kills >= 0")
    except ValueError as exc:
        print(f"durable-actors chaos: {exc}", file=sys.stderr)
        return 2
    workload = Workload(branches=branches, workers=workers, trace=trace)
    campaign = Campaign(workload, kills=kills, kinds=chosen, seed=seed,
                        say=lambda line: print(line, file=sys.stderr, flush=True))
    report = campaign.run(keep=True if keep else None)
    if as_json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(f"\n== chaos: {branches} branches x {workload.steps} steps (waits, retries, "
              f"saves), {kills} kills of {', '.join(k.value for k in chosen)}, seed {seed} ==")
        print(report.table())
    return 0 if report.ok else 1
