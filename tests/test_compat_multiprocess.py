"""Shape tests of multiprocess's private names in ``runtime._compat.multiprocess``: each
fails when one changes (gone, another signature or type), before a shutdown would."""

from __future__ import annotations

import inspect

from multiprocess import forkserver, resource_tracker, spawn, util

from runtime._compat import multiprocess as compat

from conftest import pid_gone, wait_until


def _params(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def test_preparation_data_takes_a_name_and_our_children_skip_main() -> None:
    compat.context("spawn", [])
    wrapped = spawn.get_preparation_data
    assert _params(wrapped.__wrapped__) == ["name"]
    ours = wrapped("da-shape")
    assert isinstance(ours, dict)
    assert "init_main_from_path" not in ours and "init_main_from_name" not in ours
    assert "sys_path" in ours  # still multiprocess's own preparation data


def test_the_forkserver_singleton_has_the_fields_read_and_reset() -> None:
    server = forkserver._forkserver
    for field in ("_lock", "_forkserver_pid", "_forkserver_alive_fd", "_forkserver_address"):
        assert hasattr(server, field), field
    assert _params(forkserver.read_signed) == ["fd"]
    assert _params(server._stop) == []
    assert _params(util.is_abstract_socket_namespace) == ["address"]


def test_the_resource_tracker_singleton_has_the_fields_read_and_a_send_to_wrap() -> None:
    tracker = resource_tracker._resource_tracker
    for field in ("_lock", "_fd", "_pid"):
        assert hasattr(tracker, field), field
    assert _params(tracker._stop) == []
    send = getattr(tracker._send, "__wrapped__", tracker._send)
    assert _params(send) == ["cmd", "name", "rtype"]


def _answer() -> None:
    pass


def test_the_last_user_released_stops_the_forkserver_it_started() -> None:
    user = object()
    compat.helpers_acquired(user)
    try:
        process = compat.context("forkserver", []).Process(target=_answer, name="da-shape")
        process.start()
        process.join(timeout=30)
        assert process.exitcode == 0
        server_pid = compat.forkserver_pid()
        assert isinstance(server_pid, int)
    finally:
        compat.helpers_released(user, forkserver_used=True)
    assert forkserver._forkserver._forkserver_pid is None
    wait_until(lambda: pid_gone(server_pid), timeout=30)
