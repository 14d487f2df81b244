"""What the checkpoint actor needs from a store, and an in-memory one for tests.

The checkpoint actor is the only writer. ``commit`` is one transaction: it
applies the updates in order and reads the logs of the branches whose empty
checkpoints it answers, so that one store round trip serves a whole batch.
Readers in other processes (``inspect``, ``run.status()``) use the ``read_*``
methods, which never write.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Protocol

from actors.messages import (
    BranchLog,
    BranchRecord,
    BranchStatus,
    BranchUpdate,
    ExecutionRecord,
    ExecutionUpdate,
    OperationRecord,
    OpStatus,
    Update,
)


class Store(Protocol):
    """One small interface; SQLite (``runtime.stores.sqlite``) and memory implement it."""

    def commit(
        self, updates: Sequence[Update], read_logs: Sequence[str], now: float
    ) -> dict[str, BranchLog]:
        """Apply ``updates`` in order, then read the logs of ``read_logs``; one transaction.

        Raises a ``StoreError`` (or the driver's own error) and writes nothing on failure.
        """
        ...

    def read_execution(self, execution_id: str) -> ExecutionRecord | None: ...

    def read_executions(self) -> list[ExecutionRecord]: ...

    def read_branches(self, execution_id: str) -> list[BranchRecord]: ...

    def read_log(self, branch_id: str) -> BranchLog: ...

    def read_logs(self, branch_ids: Sequence[str], chunk: int) -> Iterator[dict[str, BranchLog]]:
        """The logs of ``branch_ids`` from one snapshot, handed out ``chunk`` branches at a time.

        One store call: the checkpoint actor answers a wave's first empty
        checkpoints while the later logs are still being read. Raises like
        ``commit`` (possibly after some chunks were handed out).
        """
        ...

    def read_due_timers(self) -> list[OperationRecord]:
        """Operations suspended or retrying with a ``due_at`` (timers to reload at start)."""
        ...

    def close(self) -> None: ...


def log_chunks(branch_ids: Sequence[str], chunk: int) -> list[list[str]]:
    """``branch_ids`` without repeats, ``chunk`` at a time: how ``read_logs`` hands them out."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    wanted = list(dict.fromkeys(branch_ids))
    return [wanted[start:start + chunk] for start in range(0, len(wanted), chunk)]


def _merge(old: object, new: object, fields: Sequence[str]) -> dict[str, object]:
    """Fields of ``new`` that are not None, to overwrite on ``old``."""
    return {f: getattr(new, f) for f in fields if getattr(new, f) is not None}


class MemoryStore:
    """An in-memory ``Store`` for unit tests of pure logic; same semantics as SQLite.

    ``fail_next(exc)`` makes the next ``commit`` (or ``read_logs``) raise ``exc`` and
    write nothing; ``calls`` counts both, ``commits`` keeps each one's
    ``(updates, read_logs)``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.executions: dict[str, ExecutionRecord] = {}
        self.branches: dict[str, BranchRecord] = {}
        self.operations: dict[str, dict[str, OperationRecord]] = {}
        self.calls = 0
        self.commits: list[tuple[tuple[Update, ...], tuple[str, ...]]] = []
        self._fail_next: BaseException | None = None

    def fail_next(self, exc: BaseException) -> None:
        self._fail_next = exc

    def commit(
        self, updates: Sequence[Update], read_logs: Sequence[str], now: float
    ) -> dict[str, BranchLog]:
        with self._lock:
            self.calls += 1
            if self._fail_next is not None:
                exc, self._fail_next = self._fail_next, None
                raise exc
            # Apply to copies so that a failure part-way writes nothing.
            executions = dict(self.executions)
            branches = dict(self.branches)
            operations = {k: dict(v) for k, v in self.operations.items()}
            for update in updates:
                self._apply(update, now, executions, branches, operations)
            self.executions, self.branches, self.operations = executions, branches, operations
            self.commits.append((tuple(updates), tuple(read_logs)))
            return {b: self._log(b) for b in read_logs}

    def _apply(
        self,
        update: Update,
        now: float,
        executions: dict[str, ExecutionRecord],
        branches: dict[str, BranchRecord],
        operations: dict[str, dict[str, OperationRecord]],
    ) -> None:
        if isinstance(update, ExecutionUpdate):
            old_e = executions.get(update.execution_id)
            if old_e is None:
                executions[update.execution_id] = ExecutionRecord(
                    update.execution_id, update.kind or "", update.status, update.spec,
                    update.branch_count or 0, update.result, update.error, now, now,
                )
            else:
                fields: tuple[str, ...] = (
                    "kind", "status", "spec", "branch_count", "result", "error"
                )
                executions[update.execution_id] = replace(
                    old_e, **_merge(old_e, update, fields), updated_at=now  # type: ignore[arg-type]
                )
        elif isinstance(update, BranchUpdate):
            old_b = branches.get(update.branch_id)
            if old_b is not None and update.create_only:
                return  # it exists: a create-only update leaves it as it is
            if old_b is not None and _regresses(old_b.status, update.status):
                return  # terminal stays terminal (updates race across processes)
            if old_b is None:
                branches[update.branch_id] = BranchRecord(
                    update.execution_id, update.branch_id, update.parent_branch_id,
                    update.parent_op_id, update.index or 0, update.status, update.input,
                    update.result, update.error, update.epoch or 0, now, now,
                )
            else:
                fields = ("status", "parent_branch_id", "parent_op_id", "index", "input",
                          "result", "error", "epoch")
                branches[update.branch_id] = replace(
                    old_b, **_merge(old_b, update, fields), updated_at=now  # type: ignore[arg-type]
                )
        else:
            ops = operations.setdefault(update.branch_id, {})
            old_o = ops.get(update.op_id)
            if old_o is not None and _regresses(old_o.status, update.status):
                return
            if old_o is None:
                ops[update.op_id] = OperationRecord(
                    update.execution_id, update.branch_id, update.op_id, len(ops), update.kind,
                    update.name, update.status, update.attempt, update.payload, update.error,
                    update.due_at, now, now,
                )
            else:
                fields = ("kind", "name", "status", "attempt", "payload", "error", "due_at")
                merged = _merge(old_o, update, fields)
                if update.status is OpStatus.SUCCEEDED:
                    merged["error"] = update.error  # a failed attempt's error is not the outcome
                ops[update.op_id] = replace(
                    old_o, **merged, updated_at=now  # type: ignore[arg-type]
                )

    def read_logs(self, branch_ids: Sequence[str], chunk: int) -> Iterator[dict[str, BranchLog]]:
        """One call in ``calls`` and ``commits``; ``fail_next`` raises before the first chunk."""
        chunks = log_chunks(branch_ids, chunk)
        with self._lock:
            self.calls += 1
            if self._fail_next is not None:
                exc, self._fail_next = self._fail_next, None
                raise exc
            # One snapshot, as SQLite's read transaction.
            logs = [{b: self._log(b) for b in branch_chunk} for branch_chunk in chunks]
            self.commits.append(((), tuple(b for branch_chunk in chunks for b in branch_chunk)))
        yield from logs

    def _log(self, branch_id: str) -> BranchLog:
        ops = sorted(self.operations.get(branch_id, {}).values(), key=lambda o: o.seq)
        return BranchLog(branch_id, self.branches.get(branch_id), tuple(ops))

    def read_execution(self, execution_id: str) -> ExecutionRecord | None:
        with self._lock:
            return self.executions.get(execution_id)

    def read_executions(self) -> list[ExecutionRecord]:
        with self._lock:
            return sorted(self.executions.values(), key=lambda e: e.created_at)

    def read_branches(self, execution_id: str) -> list[BranchRecord]:
        with self._lock:
            found = [b for b in self.branches.values() if b.execution_id == execution_id]
            return sorted(found, key=lambda b: (b.parent_branch_id or "", b.index))

    def read_log(self, branch_id: str) -> BranchLog:
        with self._lock:
            return self._log(branch_id)

    def read_due_timers(self) -> list[OperationRecord]:
        with self._lock:
            return [
                op
                for ops in self.operations.values()
                for op in ops.values()
                if op.due_at is not None and op.status.value in ("SUSPENDED", "RETRYING")
            ]

    def close(self) -> None:
        pass


_TERMINAL = frozenset({"SUCCEEDED", "FAILED"})


def _regresses(stored: str, new: str) -> bool:
    """A terminal status would be replaced by another one (the first outcome stands)."""
    return stored in _TERMINAL and new != stored


def is_finished(branch: BranchRecord | None) -> bool:
    return branch is not None and branch.status in (BranchStatus.SUCCEEDED, BranchStatus.FAILED)


__all__ = ["MemoryStore", "Store", "is_finished", "log_chunks"]
