"""Messages and records of the durable-execution domain, as frozen dataclasses.

Updates are what branches ask the checkpoint actor to make durable; records are
what the store gives back. Payloads are opaque bytes here: serialization is the
caller's business, so the checkpoint actor and the store never unpickle user data.
"""

from __future__ import annotations

import dataclasses
import operator
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

if TYPE_CHECKING:
    from actors.branch import BranchSpec
    from actors.ownership import NewExecution
    from actors.policies import Completion
    from actors.spans import ExecutionTrace, TraceContext

ExcInfo: TypeAlias = tuple[type[BaseException], BaseException, TracebackType | None]

# Fixed cost charged per update on top of its payload bytes, so that a batch of
# tiny updates still respects ``checkpoint_max_bytes`` roughly like its SQL does.
UPDATE_OVERHEAD_BYTES = 64


class ExecutionStatus(StrEnum):
    RUNNING = "RUNNING"
    SUSPENDED = "SUSPENDED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"  # by system.cancel or its deadline; system.retry runs it again

    @property
    def finished(self) -> bool:
        """Whether the execution ended (only ``system.retry`` starts it again)."""
        return self in _FINISHED_EXECUTIONS


class BranchStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUSPENDED = "SUSPENDED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class OpKind(StrEnum):
    STEP = "STEP"
    WAIT = "WAIT"
    CONDITION = "CONDITION"
    CHILDREN = "CHILDREN"
    CALLBACK = "CALLBACK"


class OpStatus(StrEnum):
    STARTED = "STARTED"
    SUSPENDED = "SUSPENDED"  # waiting on a timer, a callback or children
    RETRYING = "RETRYING"  # an attempt failed; the next one is due at ``due_at``
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


_FINISHED_EXECUTIONS = frozenset(
    {ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED}
)
TERMINAL_OP_STATUSES = frozenset({OpStatus.SUCCEEDED, OpStatus.FAILED})
TERMINAL_BRANCH_STATUSES = frozenset({BranchStatus.SUCCEEDED, BranchStatus.FAILED})


def _size(*blobs: bytes | None) -> int:
    return UPDATE_OVERHEAD_BYTES + sum(len(b) for b in blobs if b is not None)


@dataclass(frozen=True, slots=True)
class ExecutionUpdate:
    """Create an execution or change its status/result. ``None`` fields are left as stored."""

    execution_id: str
    status: ExecutionStatus
    kind: str | None = None  # "map" | "parallel"
    spec: bytes | None = None  # serialized branch classes, inputs, completion policy
    branch_count: int | None = None
    result: bytes | None = None
    error: bytes | None = None

    @property
    def nbytes(self) -> int:
        return _size(self.spec, self.result, self.error)


@dataclass(frozen=True, slots=True)
class BranchUpdate:
    """Create a branch or change its status/result. ``None`` fields are left as stored."""

    execution_id: str
    branch_id: str
    status: BranchStatus
    parent_branch_id: str | None = None
    parent_op_id: str | None = None
    index: int | None = None
    input: bytes | None = None
    result: bytes | None = None
    error: bytes | None = None
    epoch: int | None = None
    create_only: bool = False  # insert if absent; never touch a branch that exists

    @property
    def nbytes(self) -> int:
        return _size(self.input, self.result, self.error)


@dataclass(frozen=True, slots=True)
class OperationUpdate:
    """Create an operation or change its status. ``None`` fields are left as stored."""

    execution_id: str
    branch_id: str
    op_id: str
    kind: OpKind
    name: str
    status: OpStatus
    attempt: int = 0
    payload: bytes | None = None  # serialized result (or condition state)
    error: bytes | None = None  # serialized exception
    due_at: float | None = None  # wall-clock seconds when a timer fires
    epoch: int | None = None  # the run that wrote it: older runs are fenced off

    @property
    def nbytes(self) -> int:
        return _size(self.payload, self.error)


Update: TypeAlias = ExecutionUpdate | BranchUpdate | OperationUpdate


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    execution_id: str
    kind: str
    status: ExecutionStatus
    spec: bytes | None
    branch_count: int
    result: bytes | None
    error: bytes | None
    created_at: float
    updated_at: float
    fingerprint: str | None = None  # what it was created from (see ``actors.ownership``)
    owner: str | None = None  # the executor holding its lease
    lease_epoch: int = 0  # bumped by every claim: writes under an older epoch are refused
    lease_expires_at: float | None = None
    deadline_at: float | None = None  # past it, the owner cancels the execution


@dataclass(frozen=True, slots=True)
class BranchRecord:
    execution_id: str
    branch_id: str
    parent_branch_id: str | None
    parent_op_id: str | None
    index: int
    status: BranchStatus
    input: bytes | None
    result: bytes | None
    error: bytes | None
    epoch: int
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class OperationRecord:
    execution_id: str
    branch_id: str
    op_id: str
    seq: int  # order of first write within the branch
    kind: OpKind
    name: str
    status: OpStatus
    attempt: int
    payload: bytes | None
    error: bytes | None
    due_at: float | None
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class BranchLog:
    """What an empty checkpoint answers: the branch as stored and its operations in order."""

    branch_id: str
    branch: BranchRecord | None
    operations: tuple[OperationRecord, ...]

    def by_op_id(self) -> dict[str, OperationRecord]:
        return {op.op_id: op for op in self.operations}


def exception_of(exc_info: Any = None) -> BaseException:
    """The exception a ``set_exception(exc_info)`` call means (None: the one being handled).

    ``exc_info`` is an ``exc_info`` triple, an exception, or None, as pykka's futures take it.
    """
    if exc_info is None:
        exc_info = sys.exc_info()
    exc: BaseException = exc_info[1] if isinstance(exc_info, tuple) else exc_info
    return exc


class ReplyTo(Protocol):
    """Where an actor sends a deferred answer.

    ``pykka.ThreadingFuture`` satisfies it inside one process; the runtime hands in
    a picklable handle (an id and an address) whose ``set`` travels back across
    processes.
    """

    def set(self, value: Any = None) -> None: ...

    def set_exception(self, exc_info: Any = None) -> None: ...


def reply_group(reply_to: Any) -> tuple[type, Any] | None:
    """The group a reply handle's answers can travel in, or None to answer it alone.

    A handle class that has ``reply_group`` (a hashable naming its recipient) and
    ``set_group(answers)`` lets whoever answers many handles at once (the
    checkpoint actor after a commit) send one message per recipient instead of
    one per handle: a resume wave of 1,000 branches on two workers is 16
    ``Bundle``s of up to ``BUNDLE_LIMIT``, not 1,000 ``RunBranch`` messages.
    """
    group = getattr(reply_to, "reply_group", None)
    return None if group is None else (type(reply_to), group)


@dataclass(frozen=True, slots=True)
class Bundle:
    """Several messages for one actor, handled in order as if each had been told alone."""

    items: tuple[Any, ...]


def bundle(items: Sequence[Any]) -> Any:
    """One message carrying ``items``: the item itself when there is only one."""
    return items[0] if len(items) == 1 else Bundle(tuple(items))


BUNDLE_LIMIT = 64  # items per Bundle: the receiver starts on the first while more are pickled


def tell_bundled(target: ActorLike, items: Sequence[Any]) -> None:
    """Tell ``target`` every item, ``BUNDLE_LIMIT`` per message.

    Bundles bound how long the receiver waits for its first item: it starts on the
    first bundle while the sender is still pickling the next ones.
    """
    for start in range(0, len(items), BUNDLE_LIMIT):
        target.tell(bundle(items[start:start + BUNDLE_LIMIT]))


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Ask the checkpoint actor to make ``update`` durable.

    ``update=None`` is an *empty checkpoint*: "make everything before me durable
    and give me my current operation log" — answered with the ``BranchLog`` of
    ``branch_id``. A sync update is answered with ``None`` once durable; a failed
    store call answers ``CheckpointError``. ``reply_to=None`` means nobody waits.
    """

    branch_id: str
    update: Update | None
    sync: bool = True
    reply_to: ReplyTo | None = None
    epoch: int | None = None  # on a dispatch's empty checkpoint: the run now current
    trace: TraceContext | None = None  # the span it is written for (its batch's parent)

    @property
    def is_empty(self) -> bool:
        return self.update is None


# -- executions: coordinator <-> workers ---------------------------------------------


@dataclass(frozen=True, slots=True)
class RunBranch:
    """Run (or replay) a branch from ``log``; ``epoch`` fences stale reports of older runs."""

    spec: BranchSpec
    epoch: int
    log: BranchLog
    trace: TraceContext | None = None  # the parent of this run's span (None: not traced)


@dataclass(frozen=True, slots=True)
class BranchRan:
    """A worker's report: one run of a branch ended ``SUCCEEDED``, ``FAILED`` or ``SUSPENDED``."""

    branch_id: str
    epoch: int
    status: BranchStatus
    result: Any = None
    error: BaseException | None = None
    suspended_on: OperationUpdate | None = None


@dataclass(frozen=True, slots=True)
class BranchAborted:
    """A run could not go on because a checkpoint failed; nothing after it is durable."""

    branch_id: str
    epoch: int
    error: BaseException


@dataclass(frozen=True, slots=True)
class StartChildren:
    """A branch's ``ctx.map``/``ctx.parallel``: its children exist durably; schedule them."""

    parent: OperationUpdate
    specs: tuple[BranchSpec, ...]
    max_concurrency: int | None
    completion: Completion
    trace: TraceContext | None = None  # the parent of the children's run spans


@dataclass(frozen=True, slots=True)
class StartExecution:
    """Create an execution (or resume the one stored under ``execution_id``).

    Answered on ``reply_to`` with "created", "resumed", "finished" or "observing"
    (another system runs it) once the execution and its branches are durable, or
    with ``ExecutionMismatchError`` when the id names an execution made of other
    classes or items.
    """

    execution_id: str
    kind: str
    specs: tuple[BranchSpec, ...]
    max_concurrency: int | None
    completion: Completion
    reply_to: ReplyTo
    new: NewExecution | None = None  # the rows to create, with its spec and fingerprint
    trace: ExecutionTrace | None = None  # the execution's span, when the caller traces it


@dataclass(frozen=True, slots=True)
class AwaitResult:
    """Answer ``reply_to`` with the execution's ``BatchResult`` once it has finished."""

    execution_id: str
    reply_to: ReplyTo


@dataclass(frozen=True, slots=True)
class DescribeExecution:
    """Ask for an execution's status and progress counts."""

    execution_id: str


@dataclass(frozen=True, slots=True)
class WorkerLost:
    """The runtime saw a worker's process die; its branches must run elsewhere."""

    worker_id: str


@dataclass(frozen=True, slots=True)
class Durable:
    """A checkpoint the coordinator sent was acknowledged (``error`` None) or failed."""

    what: tuple[Any, ...]
    error: BaseException | None = None


class ActorLike(Protocol):
    """What a reply handle needs of a ref: pykka's ``ActorRef`` and the runtime's both fit."""

    def tell(self, message: Any) -> None: ...


class LogDelivery:
    """A reply handle that hands a fetched log straight to a worker as ``RunBranch``.

    The coordinator resumes a branch by sending its empty checkpoint with this as
    ``reply_to``: no thread waits for the log, so a whole wave of resumes is in
    flight at once and the checkpoint actor answers it with one store call.
    """

    __slots__ = ("coordinator", "epoch", "spec", "trace", "worker")

    def __init__(self, worker: ActorLike, coordinator: ActorLike, spec: BranchSpec,
                 epoch: int, trace: TraceContext | None = None) -> None:
        self.worker = worker
        self.coordinator = coordinator
        self.spec = spec
        self.epoch = epoch
        self.trace = trace  # the parent of the run's span

    def __reduce__(self) -> tuple[Any, ...]:
        return (LogDelivery, (self.worker, self.coordinator, self.spec, self.epoch, self.trace))

    @property
    def reply_group(self) -> Any:
        return self.worker

    def set(self, value: Any = None) -> None:
        self.set_group([(self, value)])

    @staticmethod
    def set_group(answers: Sequence[tuple[LogDelivery, Any]]) -> None:
        """Hand every log of ``answers`` (one worker's) to the worker in one message."""
        tell_bundled(answers[0][0].worker,
                     [RunBranch(d.spec, d.epoch, log, d.trace) for d, log in answers])

    def set_exception(self, exc_info: Any = None) -> None:
        error = exception_of(exc_info)
        self.coordinator.tell(BranchAborted(self.spec.branch_id, self.epoch, error))


class Forward:
    """A reply handle: tells ``target`` ``Durable(what)`` once the checkpoint is acknowledged."""

    __slots__ = ("target", "what")

    def __init__(self, target: ActorLike, *what: Any) -> None:
        self.target = target
        self.what = what

    def __reduce__(self) -> tuple[Any, ...]:
        return (Forward, (self.target, *self.what))

    def set(self, value: Any = None) -> None:
        self.target.tell(Durable(self.what))

    def set_exception(self, exc_info: Any = None) -> None:
        self.target.tell(Durable(self.what, exception_of(exc_info)))


@dataclass(frozen=True, slots=True)
class CheckpointLost:
    """The checkpoint actor's process died: acknowledgements it held will never come."""


@dataclass(frozen=True, slots=True)
class Wire:
    """Tell the coordinator its own ref (as others reach it) and its workers' refs."""

    self_ref: ActorLike
    workers: tuple[ActorLike, ...]
    scheduler: ActorLike  # resumes suspended branches; children's results go to it


@dataclass(frozen=True, slots=True)
class RetryFinish:
    """The coordinator's reminder to write a batch result again after a store failure."""

    batch_key: str


# -- the scheduler: deferred suspension checkpoints and resumes ------------------------


@dataclass(frozen=True, slots=True, order=True)
class SuspensionKey:
    """One suspension of one run of a branch: ``seq`` counts suspensions within the run."""

    branch_id: str
    epoch: int
    seq: int


@dataclass(frozen=True, slots=True)
class Suspend:
    """A branch parks on ``op``; its suspension checkpoint is deferred by ``delay`` seconds.

    The scheduler answers ``reply_to`` with ``("resume", payload)`` — go on in place,
    nothing was written, or it was and it does not matter — or ``("evict", None)``
    once the suspension is durable: unwind and free the thread; a replay follows.
    ``coroutine`` says the branch parks as a suspended coroutine (an async branch),
    which costs memory, not a thread: it counts against another bound.
    """

    key: SuspensionKey
    op: OperationUpdate
    delay: float
    worker_id: str
    reply_to: ReplyTo
    coroutine: bool = False
    trace: TraceContext | None = None  # the span of the run that suspends


@dataclass(frozen=True, slots=True)
class DependencyDone:
    """What ``op_id`` of ``branch_id`` waited on is done (children's result, a callback).

    ``durable=False`` is said before its result is durable: it may resume a branch
    still parked in place (its children's own results are durable, so a replay
    could rebuild it), never an evicted one, whose replay reads the log; the
    durable word follows.
    """

    branch_id: str
    op_id: str
    payload: bytes | None
    durable: bool = True


@dataclass(frozen=True, slots=True)
class ScheduleResume:
    """An evicted branch waits on ``op_id``: resume it at ``due_at``, or (None) when its
    dependency is done (found suspended at start, or given again to a restarted scheduler)."""

    branch_id: str
    epoch: int
    op_id: str
    due_at: float | None


@dataclass(frozen=True, slots=True)
class ResumeBranches:
    """The scheduler to the coordinator: replay these evicted branches (one wave, one message)."""

    branches: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Tick:
    """Look at the clock: apply deferred checkpoints and fire timers that are due."""


@dataclass(frozen=True, slots=True)
class Checkpoints:
    """Several checkpoints sent as one message (a dispatch wave): taken as one burst."""

    items: tuple[Checkpoint, ...]


def checkpoints(items: Sequence[Checkpoint]) -> Checkpoint | Checkpoints:
    """One message carrying ``items``: the checkpoint itself when there is only one."""
    return items[0] if len(items) == 1 else Checkpoints(tuple(items))


# -- the digest actor -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreBlob:
    """Hash ``data`` and store it once; answer ``reply_to`` with its hex digest once durable.

    A store failure answers ``BlobStoreError``. ``data`` holds its children's
    digests already (a parent is sent only after them).
    """

    data: bytes
    reply_to: ReplyTo


@dataclass(frozen=True, slots=True)
class LoadBlob:
    """Ask for a blob's bytes, verified against ``digest`` (``BlobCorruptedError`` if not)."""

    digest: str


# -- cheap pickling ----------------------------------------------------------------------
# Every message crosses a process boundary, most of them on hot paths. A frozen, slotted
# dataclass and an enum member pickle through Python-level reduce code by default; these
# reduce to (class, field values) and getattr(enum class, member name), which the C pickler
# and unpickler handle without running Python code of ours on load.
#
# Updates mostly travel one per message (a step's checkpoint), where each enum member is
# the first of its class in the pickle: saving and loading it by name costs ~4 µs a field
# on each side. Their enum fields travel as plain strings instead, which ``_rebuild`` maps
# back in one call (a checkpoint message: 18 → 11 µs to pickle, 13.5 → 10 µs to unpickle).
# Records travel by the dozen in logs, where the pickle memo makes repeated members free
# and a Python call per object would cost more: they keep (class, field values).
_ENUMS_AS_VALUES = frozenset({"ExecutionUpdate", "BranchUpdate", "OperationUpdate"})


def _reduce_enum(member: Enum) -> tuple[Any, ...]:
    return (getattr, (type(member), member.name))


# For each dataclass with enum fields: (field position, {value: member}) per such field.
_EnumFields: TypeAlias = tuple[tuple[int, dict[Any, Enum]], ...]
_ENUM_FIELDS: dict[type, _EnumFields] = {}


def _rebuild(cls: type, *fields: Any) -> Any:
    """The ``cls`` whose enum fields travelled as their values (see ``_install_cheap_pickling``)."""
    values = list(fields)
    for position, members in _ENUM_FIELDS[cls]:
        value = values[position]
        if value is not None:
            values[position] = members[value]
    return cls(*values)


def _enum_positions(cls: type, namespace: dict[str, Any]) -> _EnumFields:
    """The fields of ``cls`` annotated with an enum of this module (optionally ``| None``)."""
    found = []
    for position, field in enumerate(dataclasses.fields(cls)):
        annotation = str(field.type).removesuffix(" | None")
        enum = namespace.get(annotation)
        if isinstance(enum, type) and issubclass(enum, Enum):
            found.append((position, {member.value: member for member in enum}))
    return tuple(found)


def _install_cheap_pickling(namespace: dict[str, Any]) -> None:
    for value in list(namespace.values()):
        if not isinstance(value, type) or value.__module__ != __name__:
            continue
        if issubclass(value, Enum):
            value.__reduce_ex__ = lambda self, _: _reduce_enum(self)  # type: ignore[method-assign,assignment]
        elif dataclasses.is_dataclass(value) and "__reduce__" not in value.__dict__:
            names = tuple(f.name for f in dataclasses.fields(value))
            if not names:
                value.__reduce__ = lambda self, cls=value: (cls, ())  # type: ignore[method-assign,misc]
                continue
            values = operator.attrgetter(*names)
            single = len(names) == 1
            enums = _enum_positions(value, namespace) if value.__name__ in _ENUMS_AS_VALUES else ()
            if enums:
                _ENUM_FIELDS[value] = enums
                positions = tuple(position for position, _ in enums)

                def reduce_enums(self: Any, cls: type = value, values: Any = values,
                                 positions: tuple[int, ...] = positions) -> tuple[Any, ...]:
                    fields = list(values(self))
                    for position in positions:
                        member = fields[position]
                        if member is not None:
                            fields[position] = member._value_
                    return (_rebuild, (cls, *fields))

                value.__reduce__ = reduce_enums  # type: ignore[method-assign]
                continue

            def reduce(self: Any, cls: type = value, values: Any = values,
                       single: bool = single) -> tuple[Any, ...]:
                return (cls, (values(self),) if single else values(self))

            value.__reduce__ = reduce  # type: ignore[method-assign]


_install_cheap_pickling(globals())


class ReportWhenDurable:
    """A reply handle: once a branch's final status is durable, tell the coordinator how it ran.

    The worker's thread does not wait for that acknowledgement: it goes back to
    the pool, and the report follows as a continuation (or ``BranchAborted``).
    """

    __slots__ = ("coordinator", "report")

    def __init__(self, coordinator: ActorLike, report: BranchRan) -> None:
        self.coordinator = coordinator
        self.report = report

    def __reduce__(self) -> tuple[Any, ...]:
        return (ReportWhenDurable, (self.coordinator, self.report))

    @property
    def reply_group(self) -> Any:
        return self.coordinator

    def set(self, value: Any = None) -> None:
        self.set_group([(self, value)])

    @staticmethod
    def set_group(answers: Sequence[tuple[ReportWhenDurable, Any]]) -> None:
        """Tell the coordinator of ``answers`` every report in one message."""
        tell_bundled(answers[0][0].coordinator, [handle.report for handle, _ in answers])

    def set_exception(self, exc_info: Any = None) -> None:
        self.coordinator.tell(BranchAborted(self.report.branch_id, self.report.epoch,
                                            exception_of(exc_info)))
