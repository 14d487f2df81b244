"""``bound_context`` binds structlog context for a block and restores it after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from structlog.contextvars import bind_contextvars, clear_contextvars, get_contextvars

from actors.logcontext import bound_context


@pytest.fixture(autouse=True)
def _clean_context() -> Iterator[None]:
    clear_contextvars()
    yield
    clear_contextvars()


def test_keys_bound_in_the_block_are_seen_inside_it() -> None:
    with bound_context(op_id="3", step="load"):
        assert get_contextvars() == {"op_id": "3", "step": "load"}


def test_a_key_that_was_not_bound_before_is_unbound_after() -> None:
    with bound_context(op_id="3"):
        pass
    assert "op_id" not in get_contextvars()


def test_an_inner_block_restores_the_outer_value() -> None:
    with bound_context(op_id="outer"):
        with bound_context(op_id="inner"):
            assert get_contextvars()["op_id"] == "inner"
        assert get_contextvars()["op_id"] == "outer"


def test_other_keys_are_left_as_they_were() -> None:
    bind_contextvars(branch_id="b-1")
    with bound_context(op_id="3"):
        assert get_contextvars() == {"branch_id": "b-1", "op_id": "3"}
    assert get_contextvars() == {"branch_id": "b-1"}


def test_the_context_is_restored_when_the_block_raises() -> None:
    bind_contextvars(op_id="before")
    with pytest.raises(KeyError), bound_context(op_id="during"):
        raise KeyError("boom")
    assert get_contextvars() == {"op_id": "before"}
