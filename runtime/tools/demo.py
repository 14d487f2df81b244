"""``durable-actors demo``: the main job, a durable fan-out you can interrupt and resume.

Every item becomes a ``Fingerprint`` branch: it hashes its item (real CPU
work, in a worker process), cools down with ``ctx.wait`` (a suspension that
holds no thread), publishes the digest to a pretend service, and confirms it
with ``retry``. The pretend service is eventually consistent: every seventh
item becomes visible only ``VISIBILITY_DELAY`` after it was published, so its
first confirmation fails and the retry's backoff waits it out.

The execution id is stable (``demo-<items>``). Interrupt the demo with Ctrl-C,
run the same command again, and it resumes where it stopped; run it once more
and it reports the stored result. ``--fresh`` starts a new execution
(``demo-<items>-2``, ``-3``, ...), which the plain command then resumes.

    durable-actors demo                                   # 300 items on ./.durable/
    durable-actors demo --store sqlite:////tmp/demo.db --items 1000
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from actors import BatchResult, BranchActor, BranchContext, Retry
from actors.errors import StoreError
from actors.records._rows import ExecutionRecord
from actors.records._status import OpKind
from runtime.config import SystemConfig
from runtime.durable._executions import Execution
from runtime.durable._store_url import absolute_store_url
from runtime.progress import track
from runtime.stores import DEFAULT_PATH
from runtime.system import ActorSystem
from runtime.tools.inspect_cmd import ago, duration, open_reader, sqlite_path

DEFAULT_ITEMS = 300
MAX_CONCURRENCY = 100  # branches in flight at once, as a real job would spare its downstream
HASH_ROUNDS = 5_000  # a few milliseconds of sha256 per item
COOLDOWN_SECONDS = 0.2
VISIBILITY_DELAY = 0.5  # seconds the pretend service takes to show every seventh item
# The first backoff is the visibility delay, so the second attempt always finds the item.
CONFIRM_RETRY = Retry(attempts=4, backoff=2.0, initial=VISIBILITY_DELAY)
POLL_SECONDS = 0.1
RESUME_HINT = "interrupted; run the same command again to resume"


class NotVisibleYet(Exception):
    """The pretend service has not made a published digest visible yet; try again later."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """What publishing a digest returns: when the service will show it."""

    item: int
    digest: str
    visible_at: float


def fingerprint(item: int, rounds: int = HASH_ROUNDS) -> str:
    """The item's sha256 iterated ``rounds`` times, in hex: real CPU work for a worker."""
    value = item.to_bytes(8, "big")
    for _ in range(rounds):
        value = hashlib.sha256(value).digest()
    return value.hex()


def publish(item: int, digest: str) -> Receipt:
    """Publish ``digest``; every seventh item becomes visible ``VISIBILITY_DELAY`` later.

    The delay is decided here and kept in the step's durable result, so a
    replay sees the same ``visible_at``, and the failure of ``confirm`` depends
    on the time of the attempt, not on which worker process runs it.
    """
    lag = VISIBILITY_DELAY if item % 7 == 0 else 0.0
    return Receipt(item, digest, time.time() + lag)


def confirm(receipt: Receipt) -> str:
    """Read a published digest back; raises ``NotVisibleYet`` until the service shows it."""
    wait = receipt.visible_at - time.time()
    if wait > 0:
        raise NotVisibleYet(f"item {receipt.item} is not visible for another {wait:.2f} s")
    return receipt.digest[:16]


class Fingerprint(BranchActor):
    """One item of the demo: hash, cool down, publish, confirm (with retry)."""

    def run(self, ctx: BranchContext, item: int) -> dict[str, Any]:
        digest = ctx.step("fingerprint", fingerprint, item)
        ctx.wait("cooldown", seconds=COOLDOWN_SECONDS)
        receipt = ctx.step("publish", publish, item, digest)
        confirmed = ctx.step("confirm", confirm, receipt, retry=CONFIRM_RETRY)
        return {"item": item, "digest": confirmed}


# -- execution ids ------------------------------------------------------------------


def demo_executions(url: str, items: int) -> dict[int, ExecutionRecord]:
    """The demo executions of ``items`` items in the store, by run number (1 = ``demo-<items>``)."""
    path = sqlite_path(url)
    if path is None or not path.exists():
        return {}
    pattern = re.compile(rf"demo-{items}(?:-(\d+))?")
    reader = open_reader(url)
    try:
        found = {}
        for record in reader.read_executions():
            match = pattern.fullmatch(record.execution_id)
            if match:
                found[int(match.group(1) or 1)] = record
        return found
    finally:
        reader.close()


def execution_id(items: int, number: int) -> str:
    return f"demo-{items}" if number == 1 else f"demo-{items}-{number}"


def choose_execution(url: str, items: int, fresh: bool) -> tuple[str, ExecutionRecord | None]:
    """The latest demo execution of ``items`` (to resume), or a new id if ``fresh`` or none."""
    stored = demo_executions(url, items)
    latest = max(stored, default=0)
    if fresh or not latest:
        return execution_id(items, latest + 1), None
    return execution_id(items, latest), stored[latest]


# -- the command --------------------------------------------------------------------


def main(store: str | None = None, items: int | None = None, fresh: bool = False,
         console: Console | None = None, trace: str | None = None) -> int:
    """Run (or resume, or report) the demo execution; 0 if every branch succeeded.

    Returns 130 after Ctrl-C, having shut the system down cleanly. ``trace``
    writes every process's events to that JSON-lines file (see ``durable-actors trace``).
    """
    out = console or Console()
    count = DEFAULT_ITEMS if items is None else items
    if count < 1:
        out.print(f"--items must be at least 1, got {count}", markup=False)
        return 2
    if store is None:
        DEFAULT_PATH.parent.mkdir(parents=True, exist_ok=True)
    url = absolute_store_url(store)
    try:
        eid, previous = choose_execution(url, count, fresh)
    except StoreError as exc:
        out.print(f"cannot read the store: {exc}", soft_wrap=True, markup=False)
        return 1
    config = SystemConfig(trace_path=trace)
    out.print(f"[bold]durable-actors demo[/]: {count} items, {config.workers} worker processes, "
              f"store {url}", soft_wrap=True, highlight=False)
    started = time.perf_counter()
    try:
        with ActorSystem(store=url, config=config) as system:
            run = system.map(Fingerprint, range(count), max_concurrency=MAX_CONCURRENCY,
                             execution_id=eid)
            if run.started == "finished":
                _report_finished(out, run, previous)
                return 0
            _announce(out, run)
            running_since = time.perf_counter()
            result = track(run, interval=POLL_SECONDS, console=out)
            running = time.perf_counter() - running_since
            status = run.status()
            metrics = system.metrics()
    except KeyboardInterrupt:
        hint = RESUME_HINT if not fresh else (
            f"interrupted; run it again without --fresh to resume execution {eid}"
        )
        out.print(hint, soft_wrap=True, highlight=False)
        return 130
    wall = time.perf_counter() - started
    retried = _retried_steps(url, run.id)
    out.print(_summary(run.id, status, result, metrics, retried, wall, running))
    return 0 if result.failed == 0 else 1


def _announce(out: Console, run: Execution) -> None:
    counts = run.progress()
    if run.started == "resumed":
        finished = counts["done"] + counts["failed"]
        out.print(f"resuming execution {run.id}: {finished} of {counts['total']} branches "
                  "already done", soft_wrap=True, highlight=False)
    else:
        out.print(f"started execution {run.id} with {counts['total']} branches; "
                  "Ctrl-C stops it, the same command resumes it", soft_wrap=True, highlight=False)


def _retried_steps(url: str, eid: str) -> int:
    """Steps of the execution that needed more than one attempt, as the store logged them."""
    reader = open_reader(url)
    try:
        return sum(
            1
            for branch in reader.read_branches(eid)
            for op in reader.read_log(branch.branch_id).operations
            if op.kind is OpKind.STEP and op.attempt > 1
        )
    finally:
        reader.close()


def _summary(eid: str, status: str, result: BatchResult, metrics: dict[str, int],
             retried: int, wall: float, running: float) -> Table:
    """What the run did, in the words of someone who runs the demo, not of its internals."""
    table = Table(title=f"execution {eid}: {status} ({result.status})", title_justify="left",
                  show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    table.add_column("meaning", style="dim")
    total = len(result.statuses)
    waits = metrics.get("scheduler.deferred", 0)
    rows = [
        ("items", f"{total}", f"{result.succeeded} succeeded, {result.failed} failed"),
        ("steps run", f"{metrics.get('step.executions', 0)}",
         "by this command; steps done before an interruption are not run again"),
        ("steps retried", f"{retried}",
         "needed another attempt: the pretend service shows every seventh item late"),
        ("waits", f"{waits}",
         f"cool-downs and retry back-offs: {metrics.get('scheduler.applied', 0)} saved to the "
         "database, the item holding no thread meanwhile; "
         f"{metrics.get('scheduler.cancelled', 0)} over before anything had to be saved"),
        ("resumes", f"{metrics.get('branch.replays', 0)}",
         "runs that went on from an item's saved progress, after a wait"),
        ("database", f"{metrics.get('checkpoint.store_calls', 0)}",
         f"round trips: {metrics.get('checkpoint.batches', 0)} transactions saving "
         f"{metrics.get('checkpoint.updates', 0)} changes, and "
         f"{metrics.get('checkpoint.empty_batches', 0)} reads that fetched the saved progress "
         f"for {metrics.get('checkpoint.empty_requests', 0)} runs of items"),
        ("wall time", f"{wall:.2f} s",
         f"{running:.2f} s running the execution"
         + (f": {total / running:.0f} items/s" if running > 0 else "")),
    ]
    for row in rows:
        table.add_row(*row)
    return table


def _report_finished(out: Console, run: Execution, record: ExecutionRecord | None) -> None:
    """What a finished execution left in the store: its status, counts and times."""
    result = run.result(timeout=30)
    when = ""
    if record is not None:
        when = (f" {ago(record.updated_at, time.time())}, after "
                f"{duration(record.updated_at - record.created_at)}")
    out.print(f"execution {run.id} already finished{when}; its stored result:",
              soft_wrap=True, highlight=False)
    table = Table(show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    status = record.status.value if record is not None else run.status()
    table.add_row("status", f"{status} ({result.status})")
    table.add_row("branches", str(len(result.statuses)))
    table.add_row("succeeded", str(result.succeeded))
    table.add_row("failed", str(result.failed))
    first = next((r for r in result.results if r is not None), None)
    if first is not None:
        table.add_row("first result", repr(first))
    out.print(table)
    out.print("run with --fresh to start a new execution", highlight=False)


__all__ = ["Fingerprint", "NotVisibleYet", "Receipt", "confirm", "fingerprint", "main",
           "publish"]
