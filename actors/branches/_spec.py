"""``BranchSpec``: what a host needs to run (or replay) one branch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actors.branches._actor import BranchActor


@dataclass(frozen=True, slots=True)
class BranchSpec:
    """What a host needs to run (or replay) a branch.

    Child branches of the operation ``parent_op_id`` of ``parent_branch_id`` get
    the id ``f"{parent_branch_id}/{parent_op_id}/{index}"``.

        BranchSpec("nightly-1", "0", Resize, input="a.png")
    """

    execution_id: str
    branch_id: str
    branch_cls: type[BranchActor]
    input: Any = None
    index: int = 0
    parent_branch_id: str | None = None
    parent_op_id: str | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # A spec crosses two processes per dispatch; the dataclass default (__getstate__
        # over fields()) costs about as much as the rest of a RunBranch.
        return (BranchSpec, (self.execution_id, self.branch_id, self.branch_cls, self.input,
                             self.index, self.parent_branch_id, self.parent_op_id))
