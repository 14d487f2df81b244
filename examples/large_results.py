"""Large results as ``Ref``s, nested ones included: stored once, by content, loaded anywhere.

    python examples/large_results.py

A step result bigger than ``SystemConfig.ref_threshold_bytes`` is stored as a
blob by the digest actor, and the branch's log keeps a small ``Ref`` to it;
``ctx.save(obj)`` does the same for anything you choose. A ``Ref`` may sit
inside another saved value: the children are stored first, so no blob ever
names one that is not durable. Equal bytes are stored once (a *dedup hit*).
``ref.get()`` loads an equal value in any process of the system.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from actors import BranchActor, BranchContext, Ref
from runtime import ActorSystem, SystemConfig
from runtime.progress import track

ROWS = 20_000
CHUNK = 5_000


def make_rows(region: str) -> list[tuple[str, int, float]]:
    """Stands for a query that returns a large table (~1 MB pickled)."""
    return [(region, i, i * 0.5) for i in range(ROWS)]


def legal_text() -> bytes:
    """The same 200 kB attachment in every report: stored once."""
    return b"terms and conditions " * 10_000


class Report(BranchActor):
    """Builds one region's report: a large step result, chunks saved as Refs, one parent Ref."""

    def run(self, ctx: BranchContext, region: str) -> Ref:
        rows = ctx.step("load", make_rows, region)   # over the threshold: logged as a Ref
        chunks = [ctx.save(rows[i:i + CHUNK]) for i in range(0, len(rows), CHUNK)]
        attachment = ctx.save(legal_text())
        return ctx.save({"region": region, "chunks": chunks, "attachment": attachment})


def main() -> int:
    regions = ["north", "south", "east"]
    with tempfile.TemporaryDirectory() as tmp:
        config = SystemConfig(workers=2, ref_threshold_bytes=64 * 1024)
        with ActorSystem(store=f"sqlite:///{Path(tmp) / 'reports.db'}", config=config) as system:
            run = system.map(Report, regions, execution_id="reports")
            reports = track(run, description="reports", timeout=120).values()
            attachments = set()
            for region, ref in zip(regions, reports, strict=True):
                report: dict[str, Any] = ref.get()
                rows = [row for chunk in report["chunks"] for row in chunk.get()]
                print(f"{region}: report {ref.digest[:12]} ({ref.size} bytes) -> "
                      f"{len(report['chunks'])} chunk refs, {len(rows)} rows, "
                      f"attachment {report['attachment'].digest[:12]} "
                      f"({report['attachment'].size} bytes)")
                assert rows == make_rows(region)
                attachments.add(report["attachment"].digest)
            metrics = system.metrics()
        print(f"one blob for the attachment of all {len(regions)} reports: "
              f"{len(attachments) == 1}")
        print(f"blobs written: {metrics['digest.blobs_written']}, "
              f"dedup hits: {metrics['digest.dedup_hits']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
