"""A failed step's traceback survives: in the log (bounded), the trace, stderr, the caller."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import traceback
from pathlib import Path

import pytest

from actors.branch import MAX_MESSAGE_CHARS, StoredError, decode_error, encode_error
from actors.errors import BatchFailedError
from actors.tracebacks import MAX_TRACEBACK_CHARS, bounded
from runtime import ActorSystem, SystemConfig, serialization
from runtime.testing import TraceEvents

from branches_for_tests import FailsDeep

pytestmark = pytest.mark.timeout(120)


def test_bounded_text_keeps_its_start_and_end_and_says_what_was_left_out() -> None:
    text = "A" * 500 + "B" * 10_000 + "Z" * 500
    kept = bounded(text, limit=2_000)
    assert len(kept) == 2_000
    assert kept.startswith("A" * 500) and kept.endswith("Z" * 500)
    assert "... 9000 characters left out ..." in kept
    assert bounded("short", limit=2_000) == "short"


def test_a_logged_failure_keeps_a_bounded_message_and_traceback() -> None:
    try:
        raise ValueError("x" * 100_000)
    except ValueError as exc:
        stored = serialization.loads(encode_error(exc, serialization.dumps))
    assert isinstance(stored, StoredError)
    assert len(stored.traceback) <= MAX_TRACEBACK_CHARS and len(stored.message) <= MAX_MESSAGE_CHARS
    assert stored.traceback.startswith("Traceback (most recent call last)")
    assert "test_a_logged_failure_keeps_a_bounded_message_and_traceback" in stored.traceback


def test_a_failure_loaded_from_the_log_carries_its_remote_traceback() -> None:
    def fails() -> None:
        raise KeyError("missing")

    try:
        fails()
    except KeyError as exc:
        data = encode_error(exc, serialization.dumps)
    loaded = decode_error(data, serialization.loads)
    assert isinstance(loaded, KeyError)
    assert "in fails" in loaded.remote_traceback  # type: ignore[attr-defined]
    assert any("in fails" in note for note in loaded.__notes__)


def test_the_caller_gets_the_failure_with_its_frames_now_and_after_a_restart(
    tmp_path: Path,
) -> None:
    store = f"sqlite:///{tmp_path / 'state.db'}"
    for started in ("created", "finished"):
        with ActorSystem(store=store, config=SystemConfig(workers=1)) as system:
            run = system.map(FailsDeep, [1], execution_id="deep")
            assert run.started == started
            result = run.result(timeout=60)
        error = result.errors[0]
        assert isinstance(error, KeyError) and error.args == ("missing",)
        remote: str = error.remote_traceback  # type: ignore[attr-defined]
        assert "in lookup_missing" in remote and 'catalogue["missing"] += 1' in remote
        with pytest.raises(BatchFailedError) as caught:
            result.values()
        printed = "".join(traceback.format_exception(caught.value))
        assert "in deep" in printed and "in lookup_missing" in printed  # as Python prints it


def test_failures_are_warnings_and_errors_in_the_trace_with_the_traceback(
    tmp_path: Path,
) -> None:
    config = SystemConfig(workers=1, trace_path=str(tmp_path / "trace.jsonl"))
    with ActorSystem(store=f"sqlite:///{tmp_path / 'state.db'}", config=config) as system:
        system.map(FailsDeep, [1], execution_id="deep").result(timeout=60)
    trace = TraceEvents(tmp_path / "trace.jsonl")
    step = trace.wait_for("step.failed", branch_id="deep/0")
    assert step["level"] == "warning" and step["error"] == "KeyError('missing')"
    branch = trace.wait_for("branch.failed", branch_id="deep/0")
    assert branch["level"] == "error" and "in lookup_missing" in branch["traceback"]


def test_a_failed_branch_prints_its_error_and_traceback_to_stderr(tmp_path: Path) -> None:
    script = tmp_path / "service.py"
    tests = Path(__file__).resolve().parent
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tests)!r})
        from branches_for_tests import FailsDeep
        from runtime import ActorSystem, SystemConfig

        with ActorSystem(store="sqlite:///state.db", config=SystemConfig(workers=1)) as system:
            system.map(FailsDeep, [1], execution_id="deep").result(timeout=60)
    """))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=100, check=False, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert "error: branch.failed" in done.stderr and "KeyError('missing')" in done.stderr
    assert "in lookup_missing" in done.stderr
