"""Resume once, as pure bookkeeping: ``ResumeOnce`` without an actor, a clock or a store."""

from __future__ import annotations

from actors.scheduling._resume_once import ResumeOnce

DEP = ("order-1/0", "3")
KEEP = 60.0


def test_a_dependency_done_before_its_branch_waits_is_taken_once_with_its_payload() -> None:
    once = ResumeOnce(KEEP)
    assert once.done_unwaited(DEP, 0.0, b"batch", durable=True) is False
    assert once.is_done_early(DEP)
    assert once.take_done_early(DEP, 1.0) == b"batch"
    assert not once.is_done_early(DEP)


def test_a_second_resume_of_the_same_dependency_is_a_duplicate() -> None:
    once = ResumeOnce(KEEP)
    once.resumed(DEP, 0.0)
    assert once.done_unwaited(DEP, 1.0, b"again", durable=True) is True
    assert not once.is_done_early(DEP)  # a duplicate is dropped, not kept for later


def test_the_durable_word_after_an_early_resume_is_a_confirmation_not_a_duplicate() -> None:
    once = ResumeOnce(KEEP)
    once.resumed(DEP, 0.0)
    once.expect_confirmation(DEP, 0.0)
    assert once.done_unwaited(DEP, 1.0, b"batch", durable=True) is False
    assert once.done_unwaited(DEP, 2.0, b"batch", durable=True) is True  # only once


def test_a_new_suspension_on_a_dependency_makes_its_next_resume_a_first_one() -> None:
    once = ResumeOnce(KEEP)
    once.resumed(DEP, 0.0)
    once.waited_on(DEP)
    assert once.done_unwaited(DEP, 1.0, b"batch", durable=True) is False


def test_facts_are_forgotten_once_older_than_keep() -> None:
    once = ResumeOnce(KEEP)
    once.resumed(DEP, 0.0)
    once.done_unwaited(("order-2/0", "1"), 30.0, b"early", durable=False)
    assert len(once) == 3  # resumed; done early and its expected confirmation
    once.forget_older_than(KEEP + 1.0)
    assert len(once) == 2  # the resume at 0.0 is gone; the facts of 30.0 are kept
    once.forget_older_than(KEEP + 31.0)
    assert len(once) == 0
