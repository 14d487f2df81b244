"""System configuration and restart policies, validated when built."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from actors.checkpointing import BatchingPolicy
from runtime.errors import ConfigurationError

StartMethod = Literal["spawn", "forkserver", "fork"]
_BATCHING = BatchingPolicy()  # the checkpoint fields' defaults are the policy's


@dataclass(frozen=True)
class RestartPolicy:
    """How the system restarts an actor whose process crashed or whose actor failed.

    A crash is a process that exits without being asked (``kill -9``, a segfault) or
    an actor stopped by an unhandled exception (pykka calls ``on_failure`` first).
    The restarted actor is built again from the same class and arguments (fresh
    state) at the same address, so existing refs keep working. After
    ``max_restarts`` restarts within ``within`` seconds the actor stays dead.

        ref = system.spawn(Counter, restart=RestartPolicy(max_restarts=3, backoff=0.1))
    """

    max_restarts: int = 3
    backoff: float = 0.1  # seconds before the first restart; doubles each time
    max_backoff: float = 5.0
    within: float = 60.0
    # Past max_restarts within ``within``: None leaves the actor dead; a number keeps
    # restarting it every that many seconds (the framework's own processes do so).
    then_every: float | None = None

    def __post_init__(self) -> None:
        if not _is_int(self.max_restarts) or self.max_restarts < 0:
            raise ConfigurationError(
                f"RestartPolicy.max_restarts must be an int >= 0, got {self.max_restarts!r}")
        for name in ("backoff", "max_backoff"):
            _require_seconds(f"RestartPolicy.{name}", getattr(self, name))
        # within=inf counts every restart ever: a budget for the actor's whole life.
        if not _is_number(self.within) or not self.within > 0:
            raise ConfigurationError(
                f"RestartPolicy.within must be seconds > 0 (inf: ever), got {self.within!r}")
        if self.then_every is not None and (not _is_number(self.then_every)
                                            or not 0 < self.then_every < float("inf")):
            raise ConfigurationError(
                f"RestartPolicy.then_every must be None or seconds > 0, got {self.then_every!r}")

    def delay(self, restart_number: int) -> float:
        """Seconds to wait before the ``restart_number``-th restart (1-based)."""
        return float(min(self.max_backoff, self.backoff * 2 ** max(0, restart_number - 1)))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and not (
        isinstance(value, float) and math.isnan(value))


def _require_seconds(name: str, value: object) -> None:
    """A duration in seconds: a finite number >= 0 (NaN and inf say nothing a timer can use)."""
    if not _is_number(value) or not 0 <= value < math.inf:  # type: ignore[operator]
        raise ConfigurationError(f"{name} must be a finite number of seconds >= 0, got {value!r}")


def _default_workers() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True)
class SystemConfig:
    """Everything an ``ActorSystem`` can be tuned with.

    The first eight are the main ones: ``workers`` (branch worker processes,
    default: the CPU count), ``start_method`` (``"spawn"``, ``"forkserver"`` or
    ``"fork"``), ``checkpoint_max_ops`` and ``checkpoint_max_bytes`` (the most
    updates, and bytes, in one store transaction), ``checkpoint_window`` (seconds
    a batch may wait for more under load; an idle checkpoint actor writes at
    once; the three make ``checkpoint_batching``), ``suspend_checkpoint_delay``
    (seconds a suspension stays parked before it is written; 0 writes at once),
    ``ref_threshold_bytes`` (step results larger than this are stored as ``Ref``s)
    and ``trace_path`` (a JSON-lines trace of every process, or ``None``). The
    others are described where they are declared.

        config = SystemConfig(workers=2, trace_path="trace.jsonl")
    """

    workers: int = field(default_factory=_default_workers)
    start_method: StartMethod = "forkserver"
    checkpoint_max_ops: int = _BATCHING.max_ops
    checkpoint_max_bytes: int = _BATCHING.max_bytes
    checkpoint_window: float = _BATCHING.window
    suspend_checkpoint_delay: float = 0.1
    ref_threshold_bytes: int = 64 * 1024
    trace_path: str | None = None
    # Runtime knobs beyond the main ones.
    worker_threads: int = 16  # branch threads per worker process
    mailbox_window: int = 1024  # messages one process may have in flight to one actor
    send_timeout: float = 30.0  # seconds a sender waits for mailbox room before MailboxFullError
    # Seconds a thread that expects a message soon (an asker, an idle actor) polls before
    # it sleeps, while such polls keep paying off; 0 never polls (runtime/wire/_channel.py).
    spin_wait: float = 50e-6
    spawn_timeout: float = 30.0  # seconds to wait for a new actor process to report ready
    stop_timeout: float = 5.0  # seconds an actor gets to stop before its process is killed
    # Deferral delay per kind of suspension, overriding suspend_checkpoint_delay:
    # keys "wait", "retry", "condition", "children", "callback"; 0 applies at once.
    suspend_delays: Mapping[str, float] | None = None
    max_parked: int | None = None  # parked branches per worker (default: worker_threads // 2)
    sqlite_synchronous: Literal["FULL", "NORMAL", "OFF"] = "FULL"
    store_lock_timeout: float = 5.0
    # ctx.save of a value estimated over this many pickled bytes forks a child that
    # serializes it copy-on-write, where the worker measured a fork to cost at most half
    # of pickling it inline (docs/refs.md); None: always serialize on the branch thread.
    fork_snapshot_bytes: int | None = 256 * 1024
    # Executions that outlive their caller (several systems may share one store).
    executor_id: str | None = None  # stable name of this service instance (None: random)
    lease_seconds: float = 10.0  # an owner that stops renewing this long loses its executions
    recover: bool = True  # at start and when a lease expires, take over orphaned executions
    poll_interval: float = 0.25  # seconds between store reads for executions run elsewhere
    # How the framework's own processes (checkpoint, scheduler, digest, workers) restart;
    # None: 10 restarts within 60 s, then one every 10 s while callers are told why.
    service_restart: RestartPolicy | None = None
    # Async branches parked per worker as suspended coroutines during their deferral
    # delay: each costs memory (docs/concepts.md, "Async branches"), not a thread.
    max_parked_coroutines: int = 4096
    # Where Refs' blobs live: a directory every system sharing the store can reach (a shared
    # mount when they run on several hosts). None: beside a SQLite file, ./.durable/blobs else.
    blob_dir: str | os.PathLike[str] | None = None
    # The Ray backend (ActorSystem(backend="ray"); docs/ray.md). ray_address: the cluster to
    # join ("host:port", "auto"); None: the Ray this process is connected to, else Ray's own
    # choice (RAY_ADDRESS, a cluster started on this machine, or a new local one).
    ray_address: str | None = None
    ray_namespace: str | None = None  # the Ray namespace to connect in (None: Ray's default)
    # Ray resources each branch worker reserves, so that workers spread over the nodes;
    # None: {"num_cpus": 1}. E.g. {"num_cpus": 2} or {"resources": {"gpu-box": 1}}.
    ray_worker_options: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.start_method not in ("spawn", "forkserver", "fork"):
            raise ConfigurationError(
                f"start_method={self.start_method!r} is not one of 'spawn', 'forkserver', 'fork'"
            )
        positive_ints = ("workers", "checkpoint_max_ops", "checkpoint_max_bytes",
                         "worker_threads", "mailbox_window")
        for name in positive_ints:
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ConfigurationError(f"SystemConfig.{name} must be an int >= 1, got {value!r}")
        non_negative = ("checkpoint_window", "suspend_checkpoint_delay", "spin_wait",
                        "stop_timeout", "store_lock_timeout")
        for name in non_negative:
            _require_seconds(f"SystemConfig.{name}", getattr(self, name))
        # Waited on before anything can happen: 0 would fail every spawn and every send.
        for name in ("spawn_timeout", "send_timeout"):
            value = getattr(self, name)
            _require_seconds(f"SystemConfig.{name}", value)
            if value == 0:
                raise ConfigurationError(
                    f"SystemConfig.{name} must be > 0 seconds, got 0: nothing could start in 0 s")
        for name in ("ref_threshold_bytes", "fork_snapshot_bytes", "max_parked"):
            value = getattr(self, name)
            if (value is not None or name == "ref_threshold_bytes") and (
                    not _is_int(value) or value < 0):
                raise ConfigurationError(f"SystemConfig.{name} must be an int >= 0, got {value!r}")
        kinds = {"wait", "retry", "condition", "children", "callback"}
        for kind, delay in (self.suspend_delays or {}).items():
            if kind not in kinds:
                raise ConfigurationError(
                    f"SystemConfig.suspend_delays has {kind!r}; the kinds are {sorted(kinds)}"
                )
            _require_seconds(f"SystemConfig.suspend_delays[{kind!r}]", delay)
        trace = self.trace_path
        if trace is not None and (not isinstance(trace, str | os.PathLike) or "\x00" in str(trace)):
            raise ConfigurationError(
                f"SystemConfig.trace_path must be a file path or None, got {self.trace_path!r}")
        if self.executor_id is not None and (
                not isinstance(self.executor_id, str) or not self.executor_id.strip()):
            raise ConfigurationError(
                f"SystemConfig.executor_id must be None or a non-blank str, got "
                f"{self.executor_id!r}")
        for name in ("lease_seconds", "poll_interval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not (
                    0 < value < float("inf")):
                raise ConfigurationError(
                    f"SystemConfig.{name} must be a number of seconds > 0, got {value!r}")
        if (not isinstance(self.max_parked_coroutines, int)
                or isinstance(self.max_parked_coroutines, bool) or self.max_parked_coroutines < 0):
            raise ConfigurationError(
                f"SystemConfig.max_parked_coroutines must be an int >= 0, got "
                f"{self.max_parked_coroutines!r}")
        if self.blob_dir is not None and (
                not isinstance(self.blob_dir, str | os.PathLike) or not os.fspath(self.blob_dir)
                or not str(os.fspath(self.blob_dir)).strip()):
            raise ConfigurationError(
                f"SystemConfig.blob_dir must be None or a directory path, got {self.blob_dir!r}")
        if self.sqlite_synchronous not in ("FULL", "NORMAL", "OFF"):
            raise ConfigurationError("SystemConfig.sqlite_synchronous must be FULL, NORMAL or OFF")
        for name in ("ray_address", "ray_namespace"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigurationError(
                    f"SystemConfig.{name} must be None or a non-blank str, got {value!r}")
        options = self.ray_worker_options
        if options is not None and (not isinstance(options, Mapping) or not all(
                isinstance(key, str) for key in options)):
            raise ConfigurationError(
                "SystemConfig.ray_worker_options must be None or a mapping of Ray's actor "
                f"options, e.g. {{'num_cpus': 1}}, got {options!r}")

    @property
    def checkpoint_batching(self) -> BatchingPolicy:
        """The checkpoint actor's batching policy: these limits, the policy's defaults else.

            SystemConfig(checkpoint_max_ops=100).checkpoint_batching.max_ops   # 100
        """
        return BatchingPolicy(max_ops=self.checkpoint_max_ops,
                              max_bytes=self.checkpoint_max_bytes,
                              window=self.checkpoint_window)

    @property
    def parked_per_worker(self) -> int:
        return self.worker_threads // 2 if self.max_parked is None else self.max_parked
