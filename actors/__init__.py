"""The durable-execution domain as plain pykka actors; never imports ``runtime``."""

from actors.async_context import AsyncBranchContext
from actors.branch import BranchActor
from actors.context import BranchContext, ConditionResult
from actors.policies import BatchResult, Completion, Retry
from actors.ref import Ref

__all__ = ["AsyncBranchContext", "BatchResult", "BranchActor", "BranchContext", "Completion",
           "ConditionResult", "Ref", "Retry"]
