"""The Linux tricks of ``actors._compat.linux`` still behave as the fork snapshots and the bench
rely on: these fail when a kernel, CPython or the platform stops giving what they use."""

from __future__ import annotations

import fcntl
import inspect
import mmap
import os
import sys

import pytest

from actors._compat import linux

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux tricks")


def _in_child(check: bytes | mmap.mmap) -> int:
    """Fork; the child exits 0 if ``check`` reads as all zeros there, 1 otherwise."""
    pid = linux.fork_threaded()
    if pid == 0:
        os._exit(0 if bytes(check[:]) == bytes(len(check)) else 1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_fork_threaded_is_os_fork_with_its_signature() -> None:
    assert inspect.signature(os.fork).parameters == {}
    assert linux.can_fork()


def test_a_mapping_outside_fork_reads_as_zeros_in_a_forked_child() -> None:
    entry = linux.outside_fork(b"\xff" * 65536)
    assert isinstance(entry, mmap.mmap), "MADV_WIPEONFORK was refused by this kernel"
    assert bytes(entry[:4]) == b"\xff" * 4
    assert _in_child(entry) == 0


def test_plain_bytes_are_copied_into_a_forked_child() -> None:
    # The control for the test above: without the advice a child sees the parent's bytes.
    assert _in_child(b"\xff" * 16) == 1


def test_wipeonfork_has_the_value_the_kernel_defines() -> None:
    assert linux.WIPEONFORK == getattr(mmap, "MADV_WIPEONFORK", 18) == 18


def test_a_snapshot_pipe_widens_to_a_megabyte() -> None:
    read_fd, write_fd = os.pipe()
    try:
        linux.widen_pipe(write_fd)
        assert fcntl.fcntl(write_fd, fcntl.F_GETPIPE_SZ) >= linux.PIPE_BYTES
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_the_bench_reads_resident_memory_threads_and_page_faults() -> None:
    assert linux.resident_mb() > 1.0
    status = linux.threads_and_rss_kb(os.getpid())
    assert status["Threads"] >= 1 and status["VmRSS"] > 1000
    assert linux.RUSAGE_THREAD != 0  # RUSAGE_THREAD itself, not the process-wide fallback
    before = linux.thread_page_faults()
    touched = bytearray(8 * 1024 * 1024)
    touched[::4096] = b"\x01" * len(touched[::4096])
    assert linux.thread_page_faults() > before


def test_a_process_gone_reads_as_unknown() -> None:
    assert linux.threads_and_rss_kb(2**22 + 1) == {}
