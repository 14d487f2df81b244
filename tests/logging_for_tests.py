"""An application's structlog configuration, as the logging tests give it (importable by
every child process, so the configuration pickles by reference)."""

from __future__ import annotations

import json
from typing import Any

import structlog
from structlog.typing import EventDict

from actors import BranchActor, BranchContext


class AppendJsonLines:
    """A processor that ends the chain: each event as one JSON line appended to ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, _: Any, method: str, event: EventDict) -> EventDict:
        with open(self.path, "a", encoding="utf-8") as sink:
            sink.write(json.dumps({**event, "method": method}, default=repr) + "\n")
        raise structlog.DropEvent


def configure_app_logging(path: str) -> None:
    """The application's own configuration: its events, and only its events, into ``path``."""
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, AppendJsonLines(path)],
        wrapper_class=structlog.make_filtering_bound_logger(20),
        logger_factory=structlog.ReturnLoggerFactory(),
        cache_logger_on_first_use=False,
    )


def read_lines(path: str) -> list[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as sink:
            return [json.loads(line) for line in sink if line.strip()]
    except FileNotFoundError:
        return []


class Says(BranchActor):
    """Logs one line through ``ctx.logger`` and returns its item."""

    def run(self, ctx: BranchContext, item: Any) -> Any:
        ctx.logger.bind(phase="only").info("branch.says", item=item)
        return item


class SaysAroundAWait(BranchActor):
    """Logs before and after a wait that evicts it, so the first line is replayed past."""

    def run(self, ctx: BranchContext, item: Any) -> Any:
        ctx.logger.info("before.wait", item=item)
        ctx.wait("pause", seconds=0.2)
        ctx.logger.info("after.wait", item=item)
        return item
