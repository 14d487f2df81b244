"""A failure's traceback, kept where its exception goes: the log, the trace, the caller.

An exception that crosses a process (a branch's failure, reported by its
worker) or is loaded from the log loses its frames: pickling keeps the type,
the arguments and the attributes, not ``__traceback__``. So the text of the
traceback is taken where the exception was raised, bounded (a recursion error
must not put megabytes into every log row), and travels as an attribute,
``remote_traceback``, and as a note that Python prints under the exception,
as for the exceptions of spawned actors.

    text = traceback_text(exc)                      # at most MAX_TRACEBACK_CHARS
    keep_traceback(exc, text, "branch 'e-1/0'")     # exc.remote_traceback, and a note
"""

from __future__ import annotations

import traceback

MAX_TRACEBACK_CHARS = 16_000  # the head (where it started) and the tail (where it raised)


def bounded(text: str, limit: int = MAX_TRACEBACK_CHARS) -> str:
    """``text``, or its first and last parts with what was left out said in between.

        bounded("x" * 100, limit=40)   # 'xxxx…\\n... 60 characters left out ...\\n…xxxx'
    """
    if len(text) <= limit:
        return text
    gap = f"\n... {len(text) - limit} characters left out ...\n"
    head = (limit - len(gap)) // 3
    tail = limit - len(gap) - head
    return text[:head] + gap + text[len(text) - tail:]


def traceback_text(exc: BaseException) -> str:
    """The formatted traceback of ``exc`` (its chain and notes too), bounded."""
    return bounded("".join(traceback.format_exception(exc)))


def keep_traceback(exc: BaseException, text: str, where: str) -> BaseException:
    """Attach ``text`` to ``exc`` as ``remote_traceback`` and as a note; once, never failing.

    ``where`` says whose traceback it is ("branch 'e-1/0'"). An exception that
    already carries a remote traceback keeps the one it has.
    """
    if getattr(exc, "remote_traceback", None):
        return exc
    try:
        exc.remote_traceback = text  # type: ignore[attr-defined]
        exc.add_note(f"Traceback of {where}, where it was raised:\n{text.rstrip()}")
    except (AttributeError, TypeError):  # an exception type that takes no attributes
        pass
    return exc


__all__ = ["MAX_TRACEBACK_CHARS", "bounded", "keep_traceback", "traceback_text"]
