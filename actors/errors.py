"""Typed errors of the durable-execution domain.

Every error says what happened and what to do about it. The runtime re-exports
the ones users catch (``CheckpointError`` among them) from ``runtime``.
"""

from __future__ import annotations


class DurableActorsError(Exception):
    """Base class of every error raised by durable-actors."""


class CheckpointError(DurableActorsError):
    """A checkpoint could not be made durable; nothing of its batch was written.

    ``original`` is the error the store raised (also chained as ``__cause__``).

        try:
            ctx.step("charge", charge, card)
        except CheckpointError as err:
            log.error("store failed", cause=repr(err.original))
    """

    def __init__(self, message: str, original: BaseException | None = None) -> None:
        super().__init__(message)
        self.original = original
        if original is not None:
            self.__cause__ = original

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.original))


class LeaseLostError(CheckpointError):
    """Another executor holds the execution now; this system's writes for it are refused.

    Raised to callers of a system that lost an execution's lease (it was paused or
    cut off past ``SystemConfig.lease_seconds`` and another system took over).
    ``execution_ids`` names them; observe one with ``system.execution(id)``.
    """

    def __init__(self, message: str, execution_ids: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.execution_ids = execution_ids

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.execution_ids))


class ExecutionMismatchError(DurableActorsError):
    """An execution id already names an execution made of another class or other items.

    Use another id for the new work, or call with the class and items it was created with.
    """


class ExecutionCancelledError(DurableActorsError):
    """The execution was cancelled (``system.cancel`` or its deadline).

    ``system.retry(id)`` runs it again from its log.
    """


class ExecutionStateError(DurableActorsError):
    """The execution is not in a state where this applies (retry a running one, delete an
    active one); the message says what state it is in and what to do."""


class UnknownExecutionError(DurableActorsError, KeyError):
    """No execution with this id is known to the system or its store."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ExecutorConflictError(DurableActorsError):
    """Another live system uses this ``SystemConfig.executor_id`` on the same store.

    Give every service instance its own executor id (or leave it unset for a random one).
    """


class SerializationError(DurableActorsError, TypeError):
    """A value could not be pickled; nothing was sent or stored.

    The message names what was being pickled (a message, an item of ``map``, a
    step's result) and the path to the object that could not be, e.g.
    ``item['conn'] is a socket.socket``. Also a ``TypeError``, as pickle's own.

        try:
            system.map(Resize, items)
        except SerializationError as err:
            print(err)   # item 3 of map(Resize) could not be pickled: item.lock is ...
    """


class StoreError(DurableActorsError):
    """The store could not be used; the message says why and what to do."""


class StoreUnavailableError(StoreError):
    """The store could not be opened (missing directory, bad URL, not a database)."""


class StoreLockedError(StoreError):
    """The store stayed locked by another writer past the deadline."""


class StoreFullError(StoreError):
    """The store's disk is full; writes are retried until space is freed."""


class StoreReadOnlyError(StoreError):
    """The store is read-only (file permissions or a read-only filesystem)."""


class SchemaTooNewError(StoreError):
    """The store was written by a newer durable-actors; upgrade this one to open it."""


class NonDeterminismError(DurableActorsError):
    """A replay met a different operation than the log recorded at that position.

    The branch's ``run`` must call the same operations in the same order on
    every replay; move anything random or time-dependent into a ``ctx.step``.
    """

    def __init__(self, branch_id: str, op_id: str, expected: str, found: str) -> None:
        super().__init__(
            f"branch {branch_id!r} is not deterministic: at operation {op_id} the log "
            f"holds {expected} but the code now calls {found}; keep run() deterministic "
            "and put anything random or time-dependent inside ctx.step(...)"
        )
        self.branch_id = branch_id
        self.op_id = op_id
        self.expected = expected
        self.found = found

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.branch_id, self.op_id, self.expected, self.found))


class StepFailedError(DurableActorsError):
    """A step's logged failure, re-raised on replay when the original could not be kept.

    ``type_name`` names the original exception type; ``remote_traceback`` is its text.
    """

    def __init__(self, message: str, type_name: str, remote_traceback: str = "") -> None:
        super().__init__(message)
        self.type_name = type_name
        self.remote_traceback = remote_traceback

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.type_name, self.remote_traceback))


class BatchFailedError(DurableActorsError):
    """``BatchResult.values()`` was asked for while some branches of the batch failed.

    The first failure (in input order) is chained as ``__cause__`` and kept as
    ``first_error``; look at ``BatchResult.errors`` for all of them.

        try:
            sizes = ctx.map("thumbs", Thumb, items).values()
        except BatchFailedError as err:
            log.error("thumbs failed", failed=err.failed, first=repr(err.first_error))
    """

    def __init__(
        self,
        failed: int,
        total: int,
        first_index: int | None = None,
        first_error: BaseException | None = None,
    ) -> None:
        first = "" if first_error is None else f"; first, at index {first_index}: {first_error!r}"
        super().__init__(
            f"{failed} of {total} branches failed{first}; read BatchResult.errors for every "
            "failure, or use BatchResult.results to take the values that succeeded"
        )
        self.failed = failed
        self.total = total
        self.first_index = first_index
        self.first_error = first_error
        if first_error is not None:
            self.__cause__ = first_error

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.failed, self.total, self.first_index, self.first_error))


class ConditionTimeoutError(DurableActorsError):
    """``ctx.wait_for_condition`` polled ``max_attempts`` times and the condition never held.

    ``state`` is the last state the check returned.
    """

    def __init__(self, name: str, attempts: int, state: object = None) -> None:
        super().__init__(
            f"condition {name!r} did not hold after {attempts} polls; raise max_attempts or "
            "interval, or handle ConditionTimeoutError in run()"
        )
        self.name = name
        self.attempts = attempts
        self.state = state

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.name, self.attempts, self.state))


class CallbackError(DurableActorsError):
    """A callback could not be completed; the message says why and what to do."""


class UnknownCallbackError(CallbackError, KeyError):
    """No callback with this id exists (yet): check the id, or wait until it is created."""


class CallbackTimeoutError(CallbackError, TimeoutError):
    """The callback timed out before it was completed: its branch went on without it."""


class CallbackFailedError(CallbackError):
    """Outside code failed the callback with ``system.fail_callback(id, error)``."""


class StepTimeoutError(DurableActorsError, TimeoutError):
    """A step's attempt ran past the ``timeout`` given to ``ctx.step``; it counts as failed.

    An async step function is cancelled; a sync one is abandoned (it runs on to its
    end in the background and its result is dropped), so a step with a timeout must
    be safe to run again. A ``Retry`` of the step applies to it like to any failure.

        try:
            page = await ctx.step("get", fetch, url, timeout=10)
        except StepTimeoutError as err:
            ctx.logger.warning("slow", step=err.step, seconds=err.timeout)
    """

    def __init__(self, step: str, timeout: float, attempt: int = 1) -> None:
        super().__init__(
            f"step {step!r} did not finish within its timeout of {timeout} s (attempt "
            f"{attempt}); the attempt counts as failed: raise timeout=, or give the step a "
            "Retry(...) to try again"
        )
        self.step = step
        self.timeout = timeout
        self.attempt = attempt

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.step, self.timeout, self.attempt))
