"""Bad input gets a typed error at the call that gave it, and the system goes on.

Items and branch classes that cannot be pickled are refused at the caller, so
the coordinator never receives them; an unpicklable step result fails its
branch with an error that names the step and the culprit.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import pytest

from actors import BranchActor, BranchContext
from actors.policies import Completion
from runtime import ActorSystem, ConfigurationError, SerializationError
from runtime.testing import TraceEvents

from branches_for_tests import Answer

pytestmark = pytest.mark.timeout(120)


def assert_still_works(system: ActorSystem) -> None:
    assert system.map(Answer, [1, 2]).result(timeout=60).values() == [("answer", 1),
                                                                     ("answer", 2)]


# -- map and parallel --------------------------------------------------------------------


def test_an_unpicklable_item_is_refused_at_the_caller_naming_its_index(
        system: ActorSystem) -> None:
    items: list[Any] = [0, 1, 2, {"name": "x", "guard": threading.Lock()}, 4]
    with pytest.raises(SerializationError) as refused:
        system.map(Answer, items)
    message = str(refused.value)
    assert "item 3 of map(Answer)" in message
    assert "item['guard'] is a _thread.lock" in message
    assert_still_works(system)


def test_an_item_that_captures_a_lock_is_named_by_the_path_to_it(system: ActorSystem) -> None:
    lock = threading.Lock()

    def guarded() -> bool:
        return lock.locked()

    with pytest.raises(SerializationError, match=r"item 1 of map\(Answer\).*"
                       r"item\[0\]<captures lock> is a _thread.lock"):
        system.map(Answer, [None, (guarded,)])
    assert_still_works(system)


def test_a_branch_class_that_closes_over_a_lock_is_refused_at_the_caller(
        system: ActorSystem, tmp_path: Path) -> None:
    lock = threading.Lock()

    class Guarded(BranchActor):
        def run(self, ctx: BranchContext, item: Any) -> Any:
            with lock:
                return item

    with pytest.raises(SerializationError) as refused:
        system.map(Guarded, [1, 2])
    message = str(refused.value)
    assert "branch class" in message and "Guarded" in message
    assert "run<captures lock> is a _thread.lock" in message
    assert_still_works(system)
    assert TraceEvents(tmp_path / "trace.jsonl").named("actor.failed") == []


def test_parallel_refuses_an_unpicklable_input_naming_its_index(system: ActorSystem) -> None:
    with pytest.raises(SerializationError, match=r"item 1 of parallel\(Answer\)"):
        system.parallel([(Answer, 1), (Answer, threading.Lock())])
    assert_still_works(system)


def test_no_execution_is_created_for_a_refused_map(system: ActorSystem) -> None:
    with pytest.raises(SerializationError):
        system.map(Answer, [threading.Lock()], execution_id="refused")
    # The same id is free: the refused call left nothing behind.
    run = system.map(Answer, [7], execution_id="refused")
    assert run.started == "created"
    assert run.result(timeout=60).values() == [("answer", 7)]


class ReturnsALock(BranchActor):
    def run(self, ctx: BranchContext, item: Any) -> Any:
        return ctx.step("make", lambda: {"conn": threading.Lock()})


def test_an_unpicklable_step_result_fails_the_branch_naming_the_step_and_path(
        system: ActorSystem) -> None:
    result = system.map(ReturnsALock, [0], completion=Completion.all_completed()).result(60)
    error = result.errors[0]
    assert isinstance(error, SerializationError)
    assert "step 'make'" in str(error)
    assert "value['conn'] is a _thread.lock" in str(error)
    assert_still_works(system)


@pytest.mark.parametrize("kwargs", [{"completion": 5}, {"completion": "all"},
                                    {"max_concurrency": 2.5}, {"max_concurrency": 0},
                                    {"max_concurrency": True}])
def test_map_refuses_options_of_the_wrong_kind(system: ActorSystem,
                                               kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        system.map(Answer, [1], **kwargs)
    assert_still_works(system)


# -- execution ids -----------------------------------------------------------------------


@pytest.mark.parametrize("execution_id", ["", " ", "\t\n", "a\x00b", "a/b", 12])
def test_a_blank_or_unprintable_execution_id_is_refused(system: ActorSystem,
                                                        execution_id: Any) -> None:
    with pytest.raises(ConfigurationError, match="execution_id"):
        system.map(Answer, [1], execution_id=execution_id)
    with pytest.raises(ConfigurationError, match="execution_id"):
        system.parallel([Answer], execution_id=execution_id)


# -- stores ------------------------------------------------------------------------------


@pytest.mark.parametrize("store", [123, b"sqlite:///x.db", ["sqlite:///x.db"], Path("x.db")])
def test_a_store_that_is_not_a_string_is_refused_at_construction(store: Any) -> None:
    with pytest.raises(ConfigurationError, match="store must be a URL string"):
        ActorSystem(store=store)


def test_a_nul_byte_in_the_store_path_is_refused_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="NUL"):
        ActorSystem(store=f"sqlite:///{tmp_path}/a\x00b.db")


def test_a_blank_store_url_is_refused_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="blank"):
        ActorSystem(store="  ")


# -- timeouts of blocking calls ----------------------------------------------------------


@pytest.mark.parametrize("timeout", [math.nan, -1, "5"])
def test_result_refuses_a_timeout_that_is_no_duration(system: ActorSystem,
                                                      timeout: Any) -> None:
    run = system.map(Answer, [1])
    with pytest.raises(ValueError, match=r"result\(\) timeout"):
        run.result(timeout=timeout)
    assert run.result(timeout=60).values() == [("answer", 1)]


def test_result_with_an_infinite_timeout_waits_like_none(system: ActorSystem) -> None:
    assert system.map(Answer, [1]).result(timeout=math.inf).values() == [("answer", 1)]


@pytest.mark.parametrize("timeout", [math.nan, -0.5])
def test_ask_refuses_a_timeout_that_is_no_duration(system: ActorSystem, timeout: float) -> None:
    from actors_for_tests import Counter

    ref = system.spawn(Counter, name="counter")
    with pytest.raises(ValueError, match="timeout"):
        ref.ask("count", timeout=timeout)
    assert ref.ask("count", timeout=math.inf) == 0


# -- spawn -------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [{"name": ""}, {"name": "  "}, {"name": "a\nb"},
                                    {"name": 7}, {"restart": 3}, {"restart": {"max": 3}}])
def test_spawn_refuses_a_name_or_restart_policy_of_the_wrong_kind(
        system: ActorSystem, kwargs: dict[str, Any]) -> None:
    from actors_for_tests import Counter

    with pytest.raises(ConfigurationError):
        system.spawn(Counter, **kwargs)
    assert system.processes() == {}
    assert system.spawn(Counter, name="counter").ask("count", timeout=10) == 0
