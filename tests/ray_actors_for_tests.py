"""Actors and branches for the Ray backend's tests: plain pykka and plain branches."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pykka

from actors import BranchActor, BranchContext


class Counter(pykka.ThreadingActor):
    """Adds what it is told; answers its total, the order it saw, or its pid."""

    def __init__(self, start: int = 0) -> None:
        super().__init__()
        self.total = start
        self.seen: list[Any] = []

    def on_receive(self, message: Any) -> Any:
        if message == "total":
            return self.total
        if message == "seen":
            return list(self.seen)
        if message == "pid":
            return os.getpid()
        if isinstance(message, dict) and "fail" in message:
            raise ValueError(message["fail"])
        if isinstance(message, tuple) and message[0] == "add-and-answer":
            _, amount, reply = message
            self.total += amount
            reply.set(self.total)  # a reply handle: its future waits in the sender's process
            return None
        self.seen.append(message)
        self.total += message if isinstance(message, int) else 0
        return self.total

    def add(self, amount: int) -> int:
        """For proxies: ``proxy.add(2).get()``."""
        self.total += amount
        return self.total


class Relay(pykka.ThreadingActor):
    """Holds a ref to another actor and talks to it from its own thread."""

    def __init__(self, target: Any) -> None:
        super().__init__()
        self.target = target

    def on_receive(self, message: Any) -> Any:
        kind, value = message
        if kind == "tell":
            self.target.tell(value)
            return None
        if kind == "ask":
            return self.target.ask(value, timeout=30)
        if kind == "ask-future":  # a future of its own inside a message to the target
            from runtime import Future

            reply: Future[Any] = Future()
            self.target.tell(("add-and-answer", value, reply))
            return reply.get(timeout=30)
        raise ValueError(f"unknown {kind!r}")


class Refuses(pykka.ThreadingActor):
    """An actor whose constructor fails."""

    def __init__(self) -> None:
        super().__init__()
        raise RuntimeError("no store here")


class BigResult(BranchActor):
    """Saves ``size`` bytes as a ``Ref`` (through the digest actor) and returns the Ref."""

    def run(self, ctx: BranchContext, size: int) -> Any:
        return ctx.save(b"x" * size)


class WhereItRan(BranchActor):
    """A CPU-bound step that answers the Ray node and the pid it ran on."""

    def run(self, ctx: BranchContext, rounds: int) -> tuple[str, int]:
        def burn() -> tuple[str, int]:
            digest = b"x"
            for _ in range(rounds):
                digest = hashlib.sha256(digest).digest()
            import ray

            return ray.get_runtime_context().get_node_id(), os.getpid()

        found: tuple[str, int] = ctx.step("burn", burn)
        return found
