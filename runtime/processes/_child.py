"""The life of one actor process: boot, host the actor, report, exit.

A child process hosts exactly one top-level pykka actor. It reports ready (or
the constructor's exception) to the service process, serves until the actor
stops, and exits with ``EXIT_STOPPED`` or, when the actor failed,
``EXIT_FAILED`` (which the supervisor treats as a crash). A watcher thread
exits the process as soon as the service process dies, however it died, so no
child outlives its system; it watches the service's pid, so the loss of a
multiprocess helper (the forkserver) is not taken for the service's death.
"""

from __future__ import annotations

import gc
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

import multiprocess

from actors import tracelog
from runtime import serialization, span_shipping, tracing
from runtime.errors import ActorDeadError
from runtime.processes import _lifeline as lifeline
from runtime.processes import _proctitle as proctitle
from runtime.processes import _registry as registry
from runtime.processes._host import HostedActor
from runtime.processes._pykka_log import bridge_pykka_logs
from runtime.remote._actor_ref import SELF, ActorRef
from runtime.wire._node import Node

EXIT_STOPPED = 0
EXIT_FAILED = 3
EXIT_BOOT_FAILED = 4
EXIT_ORPHANED = 5

log = tracelog.get_logger("runtime.process")


@dataclass(frozen=True)
class BootSpec:
    """Everything a new actor process needs; the actor itself travels as cloudpickle bytes."""

    system_id: str
    secret: bytes
    address: str
    actor_id: str
    name: str
    role: str
    payload: bytes  # cloudpickle of (cls, args, kwargs): classes from __main__ travel by value
    parent_address: str
    ready_reply_id: int
    trace_path: str | None
    mailbox_window: int
    send_timeout: float
    spin_wait: float = 0.0
    class_name: str = ""
    restart_grace: float = 0.0
    app_logging: bytes | None = None  # the service's structlog configuration, for ctx.logger
    registered: bool = True  # listed in the system's registry (the system's own actors are not)
    registry_snapshot: registry.Snapshot = registry.EMPTY  # the registry as the process starts
    service_pid: int = 0  # the process whose exit ends this one (0: the multiprocess parent)


def _exit_when_orphaned(node: Node, service_pid: int) -> None:
    """Exit once the service process is gone (not its forkserver helper: see runtime.processes)."""
    if not service_pid:
        parent = multiprocess.parent_process()
        if parent is None:
            return
        service_pid = parent.pid

    def orphaned() -> None:
        try:  # stderr may be a pipe nobody reads any more: logging raises, and we must exit
            log.warning("process.orphaned", reason="the service process died; exiting")
            _flush(node, timeout=0.5)
        finally:
            os._exit(EXIT_ORPHANED)

    lifeline.watch_service(service_pid, orphaned)


def _flush(node: Node, timeout: float) -> None:
    """Give the writer thread a moment to send what is queued (replies, credits)."""
    deadline = time.monotonic() + timeout
    while not node.flushed() and time.monotonic() < deadline:
        time.sleep(0.001)


def child_main(spec: BootSpec) -> None:
    """Entry point of an actor process (runs under any start method)."""
    # Ctrl-C in a terminal signals the whole process group: the service decides
    # how its actors stop, so children ignore SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    proctitle.set_title(spec.name)
    tracing.configure(system_id=spec.system_id, role=spec.role, trace_path=spec.trace_path,
                      actor=spec.name)
    tracing.use_app_config(spec.app_logging)
    bridge_pykka_logs()
    span_shipping.install_in_child(spec.system_id, spec.parent_address, spec.role)
    node = Node(system_id=spec.system_id, address=spec.address, secret=spec.secret,
                role=spec.role, mailbox_window=spec.mailbox_window,
                send_timeout=spec.send_timeout, spin_wait=spec.spin_wait)
    # Handlers before start(): a ping may arrive the moment the address is bound.
    node.ctrl_handlers["ping"] = _ping(node)
    node.ctrl_handlers["introspect"] = _introspect(node)
    node.ctrl_handlers["stopped"] = _stopped(node)
    node.ctrl_handlers["shutdown"] = _shutting_down(node)
    node.hold_until_hosted()
    node.start()
    _exit_when_orphaned(node, spec.service_pid)
    hosted = HostedActor(node, spec.actor_id, spec.name)
    try:
        # The registry before the actor: its __init__ and on_start may look others up.
        mirror = registry.mirror(node, spec.registry_snapshot)
        cls, args, kwargs = serialization.loads(spec.payload)
        own: ActorRef[Any] = ActorRef(
            system_id=spec.system_id, address=spec.address, actor_id=spec.actor_id,
            name=spec.name, class_name=spec.class_name, restart_grace=spec.restart_grace,
        )
        args = tuple(own if a is SELF else a for a in args)
        kwargs = {k: own if v is SELF else v for k, v in kwargs.items()}
        hosted.ref = own
        if spec.registered:  # listed here before it starts, as pykka's Actor.start does
            entry = registry.Entry(own, serialization.dumps(cls))
            mirror.add(entry)
        hosted.start(cls, args, kwargs)
        if spec.registered:
            _register(node, spec, hosted, mirror, entry)
        # With the ready reply, on the same connection: the changes since the snapshot
        # (our own registration among them) come before anything sent after spawn() returns.
        registry.subscribe(node, spec.parent_address, mirror)
    except BaseException as exc:
        node.send_reply(spec.parent_address, spec.ready_reply_id, False, exc)
        _flush(node, timeout=2.0)
        os._exit(EXIT_BOOT_FAILED)
    # What exists now (modules, the actor and its state) lives as long as the process.
    # Frozen, the collector's full passes skip it: in the checkpoint process a pass
    # that re-scanned it all cost ~20 ms in the middle of a 1,000-branch resume wave.
    gc.freeze()
    node.hosted()  # messages that arrived while the actor was being built
    log.debug("process.ready", address=os.path.basename(spec.address))
    node.send_reply(spec.parent_address, spec.ready_reply_id, True, os.getpid())
    hosted.wait_stopped()
    code = EXIT_FAILED if hosted.failed else EXIT_STOPPED
    log.debug("process.exit", code=code)
    span_shipping.flush(wait=True)  # this process's last spans, emitted before it goes
    _flush(node, timeout=1.0)
    node.close()
    os._exit(code)


def _register(node: Node, spec: BootSpec, hosted: HostedActor, mirror: registry.Mirror,
              entry: registry.Entry) -> None:
    """List the actor in the system's registry now (before the ready reply) until it stops."""

    def withdraw(_: Any) -> None:
        mirror.remove(spec.actor_id)  # at once here, as pykka unregisters in its _stop
        registry.withdraw(node, spec.parent_address, spec.actor_id)

    registry.announce(node, spec.parent_address, entry)
    hosted.stopped._when_done(withdraw)


def _ping(node: Node) -> Any:
    def ping(actor_id: str, _: Any) -> bool:
        hosted = node.actors.get(actor_id)
        return hosted is not None and hosted.accepting

    return ping


def _introspect(node: Node) -> Any:
    def introspect(actor_id: str, _: Any) -> Any:
        hosted = node.actors.get(actor_id)
        if hosted is None:
            raise ActorDeadError(f"actor {actor_id} is not hosted here")
        return hosted.introspect()

    return introspect


def _stopped(node: Node) -> Any:
    def stopped(actor_id: str, _: Any) -> Any:
        hosted = node.actors.get(actor_id)
        if hosted is None:
            return True  # not hosted (any more): stopped
        return hosted.stopped  # answered when the actor stops

    return stopped


def _shutting_down(node: Node) -> Any:
    def shutting_down(_: str, __: Any) -> bool:
        node.shutting_down = True  # peers that go away now are stopping, not restarting
        tracing.stopping()  # so what this process says about them is not a warning
        return True

    return shutting_down
