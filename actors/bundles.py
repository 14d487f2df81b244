"""Bundles: several messages for one actor, told as one and handled in order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from actors.replies import ActorLike


@dataclass(frozen=True, slots=True)
class Bundle:
    """Several messages for one actor, handled in order as if each had been told alone."""

    items: tuple[Any, ...]


def bundle(items: Sequence[Any]) -> Any:
    """One message carrying ``items``: the item itself when there is only one."""
    return items[0] if len(items) == 1 else Bundle(tuple(items))


BUNDLE_LIMIT = 64  # items per Bundle: the receiver starts on the first while more are pickled


def tell_bundled(target: ActorLike, items: Sequence[Any]) -> None:
    """Tell ``target`` every item, ``BUNDLE_LIMIT`` per message.

    Bundles bound how long the receiver waits for its first item: it starts on the
    first bundle while the sender is still pickling the next ones.
    """
    for start in range(0, len(items), BUNDLE_LIMIT):
        target.tell(bundle(items[start:start + BUNDLE_LIMIT]))
