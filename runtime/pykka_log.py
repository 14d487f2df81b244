"""pykka's log records in an actor process, into the system's trace and stderr.

pykka logs through the standard library (logger ``"pykka"``, with a
``NullHandler``), so in an actor process, where nobody configured logging, its
records were dropped: the traceback of an actor's unhandled exception among
them. Each actor process adds one handler to the ``"pykka"`` logger that turns
every record reaching it into a structlog event ``pykka.log`` (its level, its
message, the traceback as ``exception``), which goes where the process's other
events go: the trace file, and stderr for warnings and errors.

Nothing else changes: no level is set and no other handler is touched, so which
records reach the handler is the application's logging configuration (by
default, warnings and errors; pykka logs an exception returned to an asker at
INFO level, an unhandled one at ERROR).
"""

from __future__ import annotations

import logging
from typing import Any

from actors import tracelog

_METHODS = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning",
            logging.ERROR: "error", logging.CRITICAL: "critical"}


class PykkaToTrace(logging.Handler):
    """A logging handler that re-emits each record as a structlog ``pykka.log`` event."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            method = _METHODS.get(record.levelno) or (
                "error" if record.levelno > logging.ERROR else "debug")
            fields: dict[str, Any] = {"message": record.getMessage(), "logger": record.name}
            if record.exc_info and record.exc_info[0] is not None:
                fields["exc_info"] = record.exc_info
            getattr(tracelog.get_logger(record.name), method)("pykka.log", **fields)
        except Exception:
            self.handleError(record)


def bridge_pykka_logs() -> None:
    """Send pykka's records in this process to the trace (once per process)."""
    logger = logging.getLogger("pykka")
    if not any(isinstance(h, PykkaToTrace) for h in logger.handlers):
        logger.addHandler(PykkaToTrace())
