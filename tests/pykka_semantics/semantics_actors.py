"""Actors for the pykka-semantics suite; importable by every actor process."""

from __future__ import annotations

import logging
import os
import queue
import time
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import pykka

from actors import BranchActor
from runtime import ActorRef, Future


def wait_for_file(path: str, timeout: float = 30.0) -> None:
    """Block until ``path`` exists (the test's go-ahead), with a deadline."""
    deadline = time.monotonic() + timeout
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.005)


class Counter(pykka.ThreadingActor):
    def __init__(self, start: int = 0) -> None:
        super().__init__()
        self.count = start
        self.urn_seen_in_init = self.actor_urn

    def add(self, amount: int) -> int:
        self.count += amount
        return self.count

    def pid(self) -> int:
        return os.getpid()

    def on_receive(self, message: Any) -> Any:
        if message == "count":
            return self.count
        self.count += message
        return self.count


class OtherCounter(Counter):
    """A subclass: found by ``get_by_class(Counter)`` too."""


class Peer(pykka.ThreadingActor):
    """Looks at refs, futures and the registry from an actor process of its own."""

    def urn_of(self, ref: ActorRef[Any]) -> str:
        return ref.actor_urn

    def is_pykka_ref(self, ref: Any) -> bool:
        return isinstance(ref, pykka.ActorRef)

    def add_through(self, target: ActorRef[Any], amount: int) -> Any:
        return target.proxy().add(amount)  # the future itself, not its value

    def stop_without_blocking(self, target: ActorRef[Any]) -> Any:
        return target.stop(block=False).get(timeout=10)

    def class_names_registered(self) -> list[str]:
        return sorted(ref.actor_class.__name__ for ref in pykka.ActorRegistry.get_all())

    def urns_registered(self) -> list[str]:
        return sorted(ref.actor_urn for ref in pykka.ActorRegistry.get_all())

    def ask_by_class_name(self, class_name: str, message: Any) -> list[Any]:
        return [ref.ask(message, timeout=10)
                for ref in pykka.ActorRegistry.get_by_class_name(class_name)]

    def count_of_class(self, cls: type[Any]) -> int:
        return len(pykka.ActorRegistry.get_by_class(cls))

    def find_by_urn(self, urn: str) -> Any:
        return pykka.ActorRegistry.get_by_urn(urn)

    def broadcast(self, message: Any, target_class: Any = None) -> None:
        pykka.ActorRegistry.broadcast(message, target_class=target_class)

    def answered_future(self, value: Any) -> Any:
        future: Future[Any] = Future()
        future.set(value)
        return future  # already answered when the reply is pickled

    def answer_twice(self, reply: Any) -> str:
        reply.set(1)
        try:
            reply.set(2)
        except queue.Full:
            return "second refused"
        return "second accepted"

    def pid(self) -> int:
        return os.getpid()


class SeesRegistryAtStart(pykka.ThreadingActor):
    """Records the class names in its process's registry as it starts."""

    def __init__(self) -> None:
        super().__init__()
        self.seen_in_init = sorted(r.actor_class.__name__ for r in pykka.ActorRegistry.get_all())
        self.seen_in_on_start: list[str] = []

    def on_start(self) -> None:
        self.seen_in_on_start = sorted(
            r.actor_class.__name__ for r in pykka.ActorRegistry.get_all())


class SelfScheduling(pykka.ThreadingActor):
    """Defers work to itself through a proxy to itself, as pykka's docs show."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0
        self._in_future = self.actor_ref.proxy()

    def start_adding(self, amount: int) -> Any:
        return self._in_future.add(amount)  # a future of the work, handed to the caller

    def start_failing(self) -> Any:
        return self._in_future.fail()

    def start_waiting(self, path: str) -> Any:
        return self._in_future.wait_for(path)

    def add(self, amount: int) -> int:
        self.total += amount
        return self.total

    def fail(self) -> None:
        raise ValueError("the deferred work failed")

    def wait_for(self, path: str) -> str:
        wait_for_file(path)
        return "done"

    def mapped(self, amount: int) -> Any:
        return self._in_future.add(amount).map(lambda total: total * 10)

    def own_ref(self) -> Any:
        return self.actor_ref

    def pid(self) -> int:
        return os.getpid()


class ExposesItsOwnProxy(pykka.ThreadingActor):
    """Keeps a proxy to itself under a public name, which pykka does not expose."""

    def __init__(self) -> None:
        super().__init__()
        self.myself = self.actor_ref.proxy()
        self.value = 7


@pykka.traversable
class Gauge:
    def __init__(self) -> None:
        self.level = 3

    def read(self) -> int:
        return self.level


class Plain:
    """Picklable, traversable-marked: what a property returns below."""

    pykka_traversable = True

    def __init__(self, label: str) -> None:
        self.label = label


class Introspected(pykka.ThreadingActor):
    """Attributes of every kind pykka's proxies tell apart."""

    gauge = Gauge()

    def __init__(self) -> None:
        super().__init__()
        self.getter_calls = 0
        self.mock = MagicMock()

    @property
    def expensive(self) -> int:
        self.getter_calls += 1  # a side effect that building a proxy must not cause
        return 42

    @property
    def wrapped(self) -> Plain:
        return Plain("from a property")

    def grow(self) -> None:
        self.added_later = "new"

    def on_receive(self, message: Any) -> Any:
        if message == "getter calls":
            return self.getter_calls
        return None


class StopsSlowly(pykka.ThreadingActor):
    """Its on_stop waits for a go-ahead file: it is stopped, but its process still runs."""

    def __init__(self, release: str) -> None:
        super().__init__()
        self.release = release

    def on_stop(self) -> None:
        wait_for_file(self.release)

    def ping(self) -> str:
        return "pong"


class Exits(pykka.ThreadingActor):
    """Raises a BaseException in a handler: pykka stops every actor."""

    def __init__(self, marker_dir: str) -> None:
        super().__init__()
        self.marker_dir = marker_dir

    def exit(self) -> None:
        raise SystemExit("leaving")

    def on_stop(self) -> None:
        Path(self.marker_dir, "exits-on_stop").write_text("stopped")

    def ping(self) -> str:
        return "pong"


class FailsWhenTold(pykka.ThreadingActor):
    def on_receive(self, message: Any) -> Any:
        if message == "fail":
            self.explode()
        return None

    def explode(self) -> None:
        raise RuntimeError("told to fail")


class LogsItsOwnWay(pykka.ThreadingActor):
    """An application that configures logging in the actor's process itself."""

    def __init__(self, log_path: str) -> None:
        super().__init__()
        handler = logging.FileHandler(log_path)
        handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        logging.getLogger().addHandler(handler)
        self.handler = handler

    def logging_setup(self) -> dict[str, Any]:
        pykka_logger = logging.getLogger("pykka")
        return {
            "pykka_level": pykka_logger.level,
            "root_level": logging.getLogger().level,
            "root_handlers": [type(h).__name__ for h in logging.getLogger().handlers],
        }

    def on_receive(self, message: Any) -> Any:
        if message == "fail":
            raise RuntimeError("failed under the application's logging")
        self.handler.flush()
        return None


class Double(BranchActor):
    def run(self, ctx: Any, item: int) -> int:
        return item * 2
