"""Ctrl-C in a terminal: the demo says what to do next, and nothing else speaks up.

A terminal's Ctrl-C signals the whole foreground process group, so the demo runs
in a session of its own and SIGINT goes to its group, as a terminal would send it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from actors.errors import StoreError
from actors.messages import BranchStatus
from runtime.inspect_cmd import open_reader
from runtime.testing import wait_until

HINT = "interrupted; run the same command again to resume"


def succeeded(url: str, execution_id: str) -> int | None:
    """Branches of the execution that succeeded; None while the store cannot be read yet."""
    if not Path(url.removeprefix("sqlite:///")).exists():
        return None
    try:
        reader = open_reader(url)
    except StoreError:
        return None
    try:
        return sum(1 for b in reader.read_branches(execution_id)
                   if b.status is BranchStatus.SUCCEEDED)
    except StoreError:  # the schema is still being created by the system's first open
        return None
    finally:
        reader.close()


@pytest.mark.timeout(120)
def test_ctrl_c_on_the_demo_prints_one_line_and_nothing_from_framework_processes(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    command = [sys.executable, "-m", "runtime.cli", "demo", "--store", url, "--items", "600"]
    demo = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "COLUMNS": "250"})
    try:
        wait_until(lambda: (succeeded(url, "demo-600") or 0) >= 20, timeout=60)
        os.killpg(demo.pid, signal.SIGINT)  # the whole group, as a terminal's Ctrl-C
        printed, errors = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 130, printed + errors
    assert errors == "", f"framework processes spoke up on stderr:\n{errors}"
    lines = [line for line in printed.splitlines() if line.strip()]
    assert lines[-1] == HINT
    after_start = lines[next(i for i, line in enumerate(lines) if "started execution" in line)
                         + 1:]
    # What follows the start: the progress bar as it stood, then the one line of advice.
    assert len(after_start) <= 2 and all("demo-600" in line for line in after_start[:-1]), lines
