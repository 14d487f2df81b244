"""Runs last (file order): nothing the suite started may still be running."""

from __future__ import annotations

import os

from conftest import wait_until_quiet


def test_no_process_started_by_the_suite_is_left_running() -> None:
    leftover = wait_until_quiet(os.getpid())
    assert leftover == [], f"still running: {leftover}"
