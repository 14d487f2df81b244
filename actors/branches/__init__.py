"""Branches: the user's unit of durable work, its contexts, and the replay engine.

``BranchActor`` is what users subclass; ``BranchContext`` and
``AsyncBranchContext`` give ``run`` its durable operations, whose decisions are
written once for both (``OperationCore``); ``run_branch`` drives one run of a
branch over its log. They reach the outside world only through a
``BranchHost`` (the host contract): a worker in production, ``InlineHost`` in
tests.
"""

from actors.branches._actor import BranchActor, check_branch_class, is_async_branch
from actors.branches._async_context import AsyncBranchContext, wait_in_thread
from actors.branches._callbacks import parse_callback_id
from actors.branches._context import BranchContext
from actors.branches._effects import ConditionResult
from actors.branches._host import BranchSuspended
from actors.branches._inline_host import InlineHost
from actors.branches._replay import BranchOutcome, run_branch, run_branch_async
from actors.branches._spec import BranchSpec
from actors.branches._stored_errors import (
    MAX_MESSAGE_CHARS,
    StoredError,
    decode_error,
    encode_error,
)

__all__ = [
    "MAX_MESSAGE_CHARS",
    "AsyncBranchContext",
    "BranchActor",
    "BranchContext",
    "BranchOutcome",
    "BranchSpec",
    "BranchSuspended",
    "ConditionResult",
    "InlineHost",
    "StoredError",
    "check_branch_class",
    "decode_error",
    "encode_error",
    "is_async_branch",
    "parse_callback_id",
    "run_branch",
    "run_branch_async",
    "wait_in_thread",
]
