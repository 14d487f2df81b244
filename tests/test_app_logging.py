"""Logging that coexists: the application's structlog configuration is its own, everywhere.

The framework writes its trace through a chain of its own; the application's
configuration is never replaced, keeps receiving its own events (and only
those) in the service process, and reaches ``ctx.logger`` in worker processes,
whose events land in the trace file too. ``ctx.logger`` is quiet on replay.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from actors import BranchActor, BranchContext
from actors.testing import InlineHost
from actors.tracelog import get_logger
from runtime import ActorSystem, SystemConfig
from runtime.testing import TraceEvents

from logging_for_tests import Says, SaysAroundAWait, configure_app_logging, read_lines

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def app_log(tmp_path: Path) -> Iterator[str]:
    """The application configured structlog to write its events to this file."""
    path = str(tmp_path / "app.jsonl")
    configured, saved = structlog.is_configured(), structlog.get_config()
    configure_app_logging(path)
    try:
        yield path
    finally:
        if configured:
            structlog.configure(**saved)
        else:
            structlog.reset_defaults()


def start(tmp_path: Path, trace: bool, **options: object) -> ActorSystem:
    config = SystemConfig(workers=1, trace_path=str(tmp_path / "trace.jsonl") if trace else None,
                          **options)  # type: ignore[arg-type]
    return ActorSystem(store=f"sqlite:///{tmp_path / 'state.db'}", config=config)


@pytest.mark.parametrize("trace", [True, False], ids=["trace-file", "no-trace-file"])
def test_the_apps_configuration_is_kept_and_gets_only_the_apps_events(
    tmp_path: Path, app_log: str, trace: bool
) -> None:
    before = structlog.get_config()
    app = structlog.get_logger("shop")
    with start(tmp_path, trace) as system:
        app.info("app.during")
        assert system.map(Says, [1], execution_id="e").result(timeout=60).values() == [1]
        assert structlog.get_config() == before
    app.info("app.after")
    assert structlog.get_config() == before
    events = [e["event"] for e in read_lines(app_log)]
    assert sorted(events) == ["app.after", "app.during", "branch.says"]  # nothing framework


def test_ctx_logger_in_a_worker_logs_the_apps_way_and_into_the_trace(
    tmp_path: Path, app_log: str
) -> None:
    with start(tmp_path, trace=True) as system:
        system.map(Says, [7], execution_id="e").result(timeout=60)
    (said,) = [e for e in read_lines(app_log) if e["event"] == "branch.says"]
    assert said["method"] == "info" and said["item"] == 7 and said["phase"] == "only"
    assert (said["execution_id"], said["branch_id"]) == ("e", "e/0")
    traced = TraceEvents(tmp_path / "trace.jsonl").wait_for("branch.says", branch_id="e/0")
    assert traced["role"] == "actor:worker-0" and traced["item"] == 7


def test_ctx_logger_does_not_repeat_a_line_while_its_branch_replays(
    tmp_path: Path, app_log: str
) -> None:
    with start(tmp_path, trace=True, suspend_checkpoint_delay=0.0) as system:
        system.map(SaysAroundAWait, [1, 2], execution_id="e").result(timeout=60)
    trace = TraceEvents(tmp_path / "trace.jsonl")
    assert len(trace.named("branch.running", replay=True)) >= 2  # both were replayed
    events = sorted((e["event"], e["item"]) for e in read_lines(app_log))
    assert events == [("after.wait", 1), ("after.wait", 2), ("before.wait", 1),
                      ("before.wait", 2)]
    assert len(trace.named("before.wait")) == 2  # once each in the trace too


def test_is_replaying_holds_until_the_first_operation_not_yet_finished() -> None:
    seen: list[tuple[str, bool]] = []

    class Notes(BranchActor):
        def run(self, ctx: BranchContext, item: object) -> None:
            seen.append(("start", ctx.is_replaying))
            ctx.step("one", lambda: 1)
            seen.append(("after one", ctx.is_replaying))
            ctx.wait("pause", seconds=5)
            seen.append(("after pause", ctx.is_replaying))

    host = InlineHost()
    host.start(Notes, branch_id="b")
    host.run_until_idle()
    host.advance(5)
    assert seen == [("start", False), ("after one", False),  # the first run: all new
                    ("start", True), ("after one", True),  # the replay, up to the wait
                    ("after pause", False)]


def test_without_any_structlog_configuration_ctx_logger_prints_structlogs_default_way(
    tmp_path: Path,
) -> None:
    script = tmp_path / "service.py"
    script.write_text(textwrap.dedent("""
        from actors import BranchActor
        from runtime import ActorSystem, SystemConfig

        class Hello(BranchActor):
            def run(self, ctx, item):
                ctx.logger.info("hello-from-the-branch", item=item)

        with ActorSystem(store="sqlite:///state.db", config=SystemConfig(workers=1)) as system:
            system.map(Hello, [5]).result(timeout=60)
    """))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=100, check=False, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stdout.splitlines() if "hello-from-the-branch" in line]
    assert "item=5" in line and "branch_id=" in line
    assert done.stderr == ""


def test_framework_warnings_go_to_the_apps_logging_handlers_when_it_has_some(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="durable_actors"):
        get_logger("runtime.test").warning("peer.gone", peer="worker-1")
        get_logger("runtime.test").info("routine.thing")
    (record,) = caplog.records
    assert record.name == "durable_actors" and record.levelno == logging.WARNING
    assert "warning: peer.gone peer=worker-1" in record.getMessage()


def test_no_framework_module_logs_through_the_application_s_structlog_configuration() -> None:
    """Every framework logger comes from ``actors.tracelog``: a module that called
    ``structlog.get_logger`` itself would print through the app's configuration (or
    structlog's default, to stdout) instead of the framework's own chain."""
    from pathlib import Path

    root = Path(__file__).parent.parent
    allowed = {"actors/tracelog.py", "actors/applog.py", "runtime/tracing.py"}
    offenders = [str(p.relative_to(root)) for package in ("actors", "runtime")
                 for p in (root / package).rglob("*.py")
                 if str(p.relative_to(root)) not in allowed
                 and "structlog.get_logger(" in p.read_text()]
    assert offenders == []
