"""The durable-execution domain as plain pykka actors; never imports ``runtime``."""

from actors.branch import BranchActor
from actors.context import BranchContext, ConditionResult
from actors.policies import BatchResult, Completion, Retry

__all__ = ["BatchResult", "BranchActor", "BranchContext", "Completion", "ConditionResult", "Retry"]
