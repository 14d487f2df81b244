"""What travels by reference and what by value across the process boundary (pure logic)."""

from __future__ import annotations

import pickle
import subprocess
import sys
from typing import Any

from actors.protocol import Checkpoint
from actors.records import (
    BranchLog,
    BranchStatus,
    BranchUpdate,
    OperationRecord,
    OperationUpdate,
    OpKind,
    OpStatus,
)
from runtime import serialization
from runtime.wire import RemoteReply

from actors_for_tests import Counter


def _by_value(obj: Any) -> bool:
    """True when ``obj``'s pickle carries its code (cloudpickle), not an import path."""
    return b"cloudpickle" in serialization.dumps(obj)


def test_an_importable_class_travels_by_reference_every_time() -> None:
    first, second = serialization.dumps(Counter), serialization.dumps(Counter)
    assert first == second == pickle.dumps(Counter, protocol=5)
    assert Counter in serialization._known_by_reference


def test_a_closure_travels_by_value_every_time_not_only_the_first() -> None:
    def make(n: int) -> Any:
        return lambda: n

    for n in (1, 2, 3):
        fn = make(n)
        assert _by_value(fn)
        assert serialization.loads(serialization.dumps(fn))() == n
    assert not any(getattr(o, "__name__", "") == "<lambda>"
                   for o in serialization._known_by_reference)


def test_a_class_made_in_a_function_travels_by_value() -> None:
    def make() -> type:
        class Local:
            value = 7
        return Local

    cls = make()
    assert _by_value(cls)
    assert serialization.loads(serialization.dumps(cls)).value == 7
    assert cls not in serialization._known_by_reference


def test_an_update_round_trips_with_its_enum_members_themselves() -> None:
    update = OperationUpdate("e", "e/0", "3", OpKind.WAIT, "nap", OpStatus.SUSPENDED,
                             attempt=2, due_at=12.5, epoch=4)
    copy = serialization.loads(serialization.dumps(Checkpoint("e/0", update))).update
    assert copy == update
    assert copy.kind is OpKind.WAIT and copy.status is OpStatus.SUSPENDED


def test_an_update_pickles_its_enum_fields_as_plain_values() -> None:
    data = serialization.dumps(BranchUpdate("e", "e/0", BranchStatus.RUNNING, epoch=1))
    assert b"BranchStatus" not in data  # no class to look up on load: a string per field
    assert serialization.loads(data).status is BranchStatus.RUNNING


def test_an_update_loads_in_a_process_that_never_saved_one() -> None:
    data = serialization.dumps(BranchUpdate("e", "e/0", BranchStatus.RUNNING, epoch=1))
    load = ("import sys; from runtime import serialization; "
            "print(serialization.loads(sys.stdin.buffer.read()).status.name)")
    done = subprocess.run([sys.executable, "-c", load], input=data, capture_output=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().strip() == "RUNNING"


def test_records_in_a_log_keep_their_members_by_name_and_share_them() -> None:
    ops = tuple(OperationRecord("e", "e/0", str(i), i, OpKind.STEP, f"s{i}", OpStatus.SUCCEEDED,
                                1, None, None, None, 1.0, 1.0) for i in range(3))
    log = BranchLog("e/0", None, ops)
    data = serialization.dumps(log)
    assert data.count(b"SUCCEEDED") == 1  # the pickle memo: one member, referenced thrice
    assert serialization.loads(data) == log


def test_a_pickle_naming_the_flat_transport_module_loads_from_the_wire_though_the_name_is_reused(
) -> None:
    written = pickle.dumps(RemoteReply, protocol=0)  # names the class by module, as text
    old = written.replace(b"runtime.wire._replies\n", b"runtime.transport\n")
    assert b"runtime.transport\n" in old
    assert serialization.loads(old) is RemoteReply


def test_a_pickle_naming_a_module_of_the_flat_layout_loads_from_where_it_moved() -> None:
    update = BranchUpdate("e", "e/0", BranchStatus.RUNNING, epoch=1)
    written = pickle.dumps(update, protocol=0)  # names each class by module, as text
    old = written.replace(b"actors.records._updates\n", b"actors.messages\n")
    old = old.replace(b"actors.records._status\n", b"actors.messages\n")
    assert b"actors.records" not in old
    assert serialization.loads(old) == update
