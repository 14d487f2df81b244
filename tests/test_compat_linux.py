"""The /proc child scan of the process host: the format it reads, and what it tolerates.

Shape tests: they fail when ``/proc/<pid>/stat`` no longer gives a process's state
and parent where ``actors._compat.linux`` reads them.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from actors._compat import linux


def test_a_stat_line_gives_state_and_parent_even_with_parentheses_in_the_name() -> None:
    assert linux.state_and_parent("4242 (my (odd) name) S 17 4242 4242 0 -1") == ("S", 17)


def test_an_empty_stat_read_of_a_process_gone_meanwhile_gives_nothing() -> None:
    assert linux.state_and_parent("") is None


def test_this_process_stat_file_names_its_parent() -> None:
    with open(f"/proc/{os.getpid()}/stat") as f:
        found = linux.state_and_parent(f.read())
    assert found is not None
    assert found[1] == os.getppid()


PARENT = (  # starts one grandchild that lives until stdin closes, says so, then waits for it
    "import subprocess, sys\n"
    "g = subprocess.Popen([sys.executable, '-c', 'import sys; sys.stdin.read()'])\n"
    "print('started', flush=True)\n"
    "sys.stdin.read(); g.wait()\n"
)


def test_a_process_with_a_running_child_has_live_children_and_one_without_has_none() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert parent.stdin is not None and parent.stdout is not None
    try:
        assert parent.stdout.readline().strip() == "started"
        assert linux.has_live_children(parent.pid) is True
    finally:
        parent.stdin.close()  # the grandchild shares it: both end
        parent.wait(timeout=30)
    assert linux.has_live_children(parent.pid) is False


def test_looking_for_a_forkservers_children_skips_processes_gone_while_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A process that exits while its stat file is read leaves the read empty: a shutdown
    # that raised on it left its forkserver running (seen in CI).
    monkeypatch.setattr(linux, "open", lambda *_: io.StringIO(""), raising=False)
    assert linux.has_live_children(os.getpid()) is False
