"""The application's logger, in whichever process of a system its code runs.

Code the application hands to a system (a branch's ``run``, an actor spawned in
a process of its own) logs through ``get_logger(name)``; a branch gets one as
``ctx.logger``. Each event goes two ways:

* through **the application's structlog configuration**: in the service process
  the one in force (``structlog.get_logger``); in the system's other processes
  the one the service had when it started them (``use_app_config``), since no
  application code configures those processes. The framework never calls
  ``structlog.configure``;
* into **the system's trace**, through the framework's own chain
  (``actors.tracelog``), with the process's fields, so a trace file holds the
  application's events beside the framework's.

``ctx.logger`` is quiet while its branch replays: a line logged before a
suspension is not logged again when the branch is replayed from its log.

    log = get_logger("shop.billing")
    log.info("invoice.sent", invoice=42)   # the app's sinks, and the trace
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import structlog

from actors.tracelog import TraceLogger

# The application's configuration where this process is not the one it configured.
_shipped: dict[str, Any] | None = None
_bases: dict[str, Any] = {}

_TRACE_METHOD = {"debug": "debug", "info": "info", "msg": "info", "warning": "warning",
                 "warn": "warning", "error": "error", "err": "error", "critical": "critical",
                 "fatal": "critical", "exception": "exception"}
_LEVEL_METHOD = {10: "debug", 20: "info", 30: "warning", 40: "error", 50: "critical"}


def use_app_config(config: Mapping[str, Any] | None) -> None:
    """Log the application's events in this process with ``config`` (``structlog.get_config()``
    of the service process); ``None``: with this process's own structlog configuration."""
    global _shipped
    _shipped = None if config is None else dict(config)
    _bases.clear()


def app_logger(name: str) -> Any:
    """A structlog logger of the application's configuration (see the module docstring)."""
    if _shipped is None:
        return structlog.get_logger(name)
    base = _bases.get(name)
    if base is None:
        base = _bases[name] = structlog.wrap_logger(
            _shipped["logger_factory"](name), processors=_shipped["processors"],
            wrapper_class=_shipped["wrapper_class"], context_class=_shipped["context_class"],
            cache_logger_on_first_use=_shipped["cache_logger_on_first_use"],
        )
    return base


class AppLogger:
    """structlog's logger interface over the application's configuration and the system's trace.

    ``quiet`` (a branch's "am I replaying?") silences both while it returns True.

        log = AppLogger("shop").bind(order=7)
        log.warning("payment.declined", card="...1234")
    """

    __slots__ = ("_app", "_context", "_name", "_quiet", "_trace")

    def __init__(self, name: str, context: Mapping[str, Any] | None = None,
                 quiet: Callable[[], bool] | None = None) -> None:
        self._name = name
        self._context = dict(context or {})
        self._quiet = quiet
        self._app: Any = None  # built on first use: most branches log nothing
        self._trace: TraceLogger | None = None

    def __repr__(self) -> str:
        return f"<AppLogger {self._name!r} context={self._context!r}>"

    # -- context, as structlog's bound loggers have it ----------------------------------

    def bind(self, **values: Any) -> AppLogger:
        return AppLogger(self._name, {**self._context, **values}, self._quiet)

    def new(self, **values: Any) -> AppLogger:
        return AppLogger(self._name, values, self._quiet)

    def unbind(self, *keys: str) -> AppLogger:
        context = dict(self._context)
        for key in keys:
            del context[key]  # a KeyError for a key never bound, as structlog raises
        return AppLogger(self._name, context, self._quiet)

    def try_unbind(self, *keys: str) -> AppLogger:
        return AppLogger(self._name, {k: v for k, v in self._context.items() if k not in keys},
                         self._quiet)

    # -- events ----------------------------------------------------------------------------

    def debug(self, event: str | None = None, *args: Any, **fields: Any) -> Any:
        return self._log("debug", event, args, fields)

    def info(self, event: str | None = None, *args: Any, **fields: Any) -> Any:
        return self._log("info", event, args, fields)

    def msg(self, event: str | None = None, *args: Any, **fields: Any) -> Any:
        return self._log("msg", event, args, fields)

    def warning(self, event: str | None = None, *args: Any, **fields: Any) -> Any:
        return self._log("warning", event, args, fields)

    warn = warning

    def error(self, event: str | None = None, *args: Any, **fields: Any) -> Any:
        return self._log("error", event, args, fields)

    def critical(self, event: str | None = None, *args: Any, **fields: Any) -> Any:
        return self._log("critical", event, args, fields)

    def fatal(self, event: str | None = None, *args: Any, **fields: Any) -> Any:
        return self._log("fatal", event, args, fields)

    def exception(self, event: str | None = None, *args: Any, **fields: Any) -> Any:
        return self._log("exception", event, args, fields)

    def log(self, level: int, event: str | None = None, *args: Any, **fields: Any) -> Any:
        return self._log(_LEVEL_METHOD.get(level, "info"), event, args, fields)

    def _log(self, method: str, event: str | None, args: tuple[Any, ...],
             fields: dict[str, Any]) -> Any:
        if self._quiet is not None and self._quiet():
            return None
        if self._trace is None:
            self._trace = TraceLogger(self._name, self._context)
        text = event % args if args and isinstance(event, str) else event
        getattr(self._trace, _TRACE_METHOD[method])(str(text), **fields)
        if self._app is None:
            self._app = app_logger(self._name).bind(**self._context)
        emit = getattr(self._app, method, None) or self._app.info  # e.g. no msg() there
        return emit(event, *args, **fields)


def get_logger(name: str = "app") -> AppLogger:
    """A logger for application code that runs in a system's processes; see the module.

        log = get_logger(__name__)
        log.info("resized", width=640)
    """
    return AppLogger(name)


__all__ = ["AppLogger", "app_logger", "get_logger", "use_app_config"]
