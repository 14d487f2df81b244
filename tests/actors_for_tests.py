"""Small pykka actors the runtime tests spawn (importable by every child process)."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pykka
import structlog

from actors import tracelog
from actors.checkpointing import LeaseDesk
from actors.clock import FakeClock
from actors.protocol import DESK_MESSAGES
from runtime import ActorRef
from runtime.wire import current_node


class Counter(pykka.ThreadingActor):
    def __init__(self, start: int = 0) -> None:
        super().__init__()
        self.count = start

    def on_receive(self, message: Any) -> Any:
        if message == "count":
            return self.count
        if message == "pid":
            return os.getpid()
        if isinstance(message, int):
            self.count += message
            return self.count
        raise ValueError(f"unexpected message {message!r}")

    def add(self, amount: int) -> int:
        self.count += amount
        return self.count

    def pid(self) -> int:
        return os.getpid()

    def peers(self) -> list[str]:
        node = current_node()
        assert node is not None
        return [p.address for p in node.connections.peers.values() if p.conn is not None]


class Failing(pykka.ThreadingActor):
    def raise_value_error(self) -> None:
        raise ValueError("bad value from the actor")

    def raise_unpicklable(self) -> None:
        raise UnpicklableError(threading.Lock())

    def unpicklable_reply(self) -> Any:
        return threading.Lock()

    def ping(self) -> str:
        return "pong"

    def crash(self) -> None:
        os._exit(1)


class UnpicklableError(Exception):
    def __init__(self, lock: Any) -> None:
        super().__init__("holds a lock")
        self.lock = lock


class BrokenConstructor(pykka.ThreadingActor):
    def __init__(self) -> None:
        super().__init__()
        raise RuntimeError("cannot build this actor")


class Relay(pykka.ThreadingActor):
    """Talks to another actor through a ref it was given in a message."""

    def call(self, target: ActorRef[Any], amount: int) -> int:
        result: int = target.proxy().add(amount).get(timeout=10)
        return result

    def pid(self) -> int:
        return os.getpid()

    def hand_back(self, ref: ActorRef[Any]) -> ActorRef[Any]:
        return ref


class FailOnTell(pykka.ThreadingActor):
    """Fails on a told message; its on_failure leaves a mark for the test to see."""

    def __init__(self, marker_dir: str) -> None:
        super().__init__()
        self.marker_dir = marker_dir
        self.generation = time.monotonic_ns()

    def on_receive(self, message: Any) -> Any:
        if message == "fail":
            raise RuntimeError("told to fail")
        if message == "generation":
            return self.generation
        return None

    def on_failure(self, exc_type: Any, exc_value: Any, tb: Any) -> None:
        Path(self.marker_dir, f"on_failure-{os.getpid()}").write_text(repr(exc_value))


class Slow(pykka.ThreadingActor):
    """Takes ``delay`` seconds per message: a receiver that cannot keep up."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.seen = 0

    def on_receive(self, message: Any) -> Any:
        if message == "rss":
            import psutil

            return psutil.Process().memory_info().rss
        if message == "seen":
            return self.seen
        self.seen += 1
        time.sleep(self.delay)
        return None


class Logger(pykka.ThreadingActor):
    """Logs through the framework's own chain: its events go to the trace file only."""

    def log(self, what: str) -> None:
        tracelog.get_logger("test").info("test.logged", what=what)

    def log_many(self, count: int, width: int) -> None:
        logger = tracelog.get_logger("test")
        for i in range(count):
            logger.info("test.line", i=i, filler="x" * width)

    def forward(self, target: ActorRef[Any], what: str) -> None:
        target.proxy().log(what).get(timeout=10)

    def bind_and_log(self, what: str, **context: Any) -> None:
        """Binds ``context`` itself, as a handler may, then logs."""
        structlog.contextvars.bind_contextvars(**context)
        tracelog.get_logger("test").info("test.logged", what=what)


class SocketHolder(pykka.ThreadingActor):
    def make_socket(self) -> socket.socket:
        return socket.socket()


class SlowStart(pykka.ThreadingActor):
    """Takes ``delay`` seconds to build: a restart leaves a window before it is hosted."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        time.sleep(delay)  # an expensive constructor (loading a model, say)
        self.total = 0

    def on_receive(self, message: Any) -> Any:
        if message == "total":
            return self.total
        if message == "pid":
            return os.getpid()
        self.total += message
        return None


class Recorder(pykka.ThreadingActor):
    """Stands in for a peer actor: keeps every message it is told; ``ask("seen")`` lists them."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []

    def on_receive(self, message: Any) -> Any:
        if message == "seen":
            return list(self.seen)
        self.seen.append(message)
        return None


class LeasingRecorder(Recorder):
    """A ``Recorder`` that answers lease requests as the checkpoint actor's desk does.

    Its desk works on ``store`` (shared with the coordinator's reader in tests), so
    a coordinator started against it creates and claims executions for real.
    """

    def __init__(self, store: Any, executor: str = "local") -> None:
        super().__init__()
        self.desk = LeaseDesk(store, FakeClock(), executor=executor, lease_seconds=10.0)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, DESK_MESSAGES):
            self.desk.handle(message)
            return None
        return super().on_receive(message)


class GroupAnswerer(pykka.ThreadingActor):
    """Told ``(reply_handles, values)``: answers the handles at once, as a checkpoint batch does.

    A value ``"a lock"`` is answered with a ``threading.Lock`` (which cannot be pickled).
    """

    def on_receive(self, message: Any) -> Any:
        import threading

        handles, values = message
        values = [threading.Lock() if v == "a lock" else v for v in values]
        type(handles[0]).set_group(list(zip(handles, values, strict=True)))
        return None


class Watcher(pykka.ThreadingActor):
    """Answers whether a file appeared within a deadline: something only another party makes."""

    def wait_for(self, path: str, timeout: float) -> str:
        return wait_for_file(path, timeout)

    def on_receive(self, message: Any) -> Any:
        path, timeout = message
        return wait_for_file(path, timeout)


def wait_for_file(path: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return "seen"
        time.sleep(0.005)
    return "not seen"


class BootsWhenTold(pykka.ThreadingActor):
    """Writes its pid to ``<path>.<pid>`` as it builds, then waits for ``<path>.go``."""

    def __init__(self, path: str) -> None:
        super().__init__()
        Path(f"{path}.{os.getpid()}").touch()
        while not os.path.exists(f"{path}.go"):
            time.sleep(0.01)  # a constructor that takes a while (loading a model, say)

    def on_receive(self, message: Any) -> Any:
        return os.getpid() if message == "pid" else None
