"""Bundles: several messages for one actor, told as one and handled in order.

How many go in one bundle is the sender's policy (``BatchingPolicy.bundle_limit``
for the checkpoint actor's answers and a worker loop's suspensions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Bundle:
    """Several messages for one actor, handled in order as if each had been told alone."""

    items: tuple[Any, ...]


def bundle(items: Sequence[Any]) -> Any:
    """One message carrying ``items``: the item itself when there is only one."""
    return items[0] if len(items) == 1 else Bundle(tuple(items))
