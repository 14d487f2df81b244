"""What a chaos run executes: one map of ledger branches with waits, retries and saves."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from runtime.tools.ledger import LedgerItem, expected_total


@dataclass(frozen=True)
class Workload:
    """The map a chaos run executes, and the system that runs it.

    Every branch runs ``steps`` steps with a ``wait`` after each (a durable timer:
    the branch is evicted and its timer lives in the scheduler and the store);
    every ``flaky_every``-th step fails once and is retried after a backoff; every
    ``save_every``-th branch saves ``save_bytes`` bytes as a Ref (the digest
    process) before it returns.

        workload = Workload(branches=200)
        items = workload.items(Path("/tmp/run-1"))
    """

    branches: int = 200
    steps: int = 3
    wait: float = 0.2
    pause: float = 0.01  # seconds inside each step body: a kill may land in the middle
    flaky_every: int = 7
    save_every: int = 4
    save_bytes: int = 512
    workers: int = 2
    max_concurrency: int | None = 200
    lease_seconds: float = 2.0
    execution_id: str = "chaos-1"
    result_timeout: float = 3600.0
    trace: bool = False  # every process's events to trace.jsonl in the round's directory

    @staticmethod
    def ledger_path(run_dir: Path) -> Path:
        return run_dir / "ledger"

    @staticmethod
    def store_path(run_dir: Path) -> Path:
        return run_dir / "state.db"

    def store_url(self, run_dir: Path) -> str:
        return f"sqlite:///{self.store_path(run_dir).resolve()}"

    def items(self, run_dir: Path) -> list[LedgerItem]:
        ledger = str(self.ledger_path(run_dir).resolve())
        return [LedgerItem(i, ledger, self.steps, self.pause, self.wait,
                           self.save_bytes if self.save_every and i % self.save_every == 0
                           else 0, self.flaky_every)
                for i in range(self.branches)]

    def expected(self) -> list[int]:
        """What the result must be: each branch's total (a check of the clean run)."""
        return [expected_total(item) for item in self.items(Path("."))]

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Workload:
        return cls(**json.loads(text))
