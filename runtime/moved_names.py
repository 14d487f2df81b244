"""Loading pickles written before the modules were reorganised (0.1's flat layout).

A store keeps pickles: an execution's spec, a step's result (which may hold a
``Ref``), a logged failure, a batch's result. Pickles name classes by the module
they lived in when written, and the modules of ``actors`` and ``runtime`` moved
into subpackages (``actors.messages`` into ``actors.records`` and
``actors.protocol``, ``actors.ref`` into ``actors.refs``, ...). So a pickle that
names a module that no longer exists is loaded again with a lookup that finds
each class in the package it moved to: an execution stored by an earlier
version still resumes. Only the failure path pays for it.

    load_moved(data)      # what pickle.loads(data) gave before the move
"""

from __future__ import annotations

import importlib
import io
import pickle
import pkgutil
from typing import Any

# Each module of the flat layout, and the packages its names live in now.
MOVED: dict[str, tuple[str, ...]] = {
    "actors.messages": ("actors.records", "actors.protocol", "actors.replies", "actors.bundles",
                        "actors.refs", "actors.clock"),
    "actors.ownership": ("actors.records", "actors.protocol"),
    "actors.control": ("actors.protocol",),
    "actors.faults": ("actors.protocol", "actors.coordinator"),
    "actors.branch": ("actors.branches",),
    "actors.context": ("actors.branches",),
    "actors.async_context": ("actors.branches",),
    "actors.operations": ("actors.branches",),
    "actors.replay": ("actors.branches",),
    "actors.callbacks": ("actors.branches",),
    "actors.testing": ("actors.branches",),
    "actors.ref": ("actors.refs", "actors.errors"),
    "actors.blobs": ("actors.refs", "actors.errors"),
    "actors.digest": ("actors.refs",),
    "actors.fork_snapshot": ("actors.refs", "actors.errors"),
    "actors.checkpoint": ("actors.checkpointing",),
    "actors.inbox": ("actors.checkpointing",),
    "actors.outbox": ("actors.checkpointing",),
    "actors.loop_outbox": ("actors.checkpointing",),
    "actors.leasedesk": ("actors.checkpointing", "actors.protocol"),
    "actors.gate": ("actors.checkpointing",),
    "actors.execution": ("actors.coordinator",),
    "actors.lifecycle": ("actors.coordinator",),
    "actors.batches": ("actors.coordinator",),
    "actors.leasekeeper": ("actors.coordinator",),
    "actors.execution_spans": ("actors.coordinator",),
    "actors.scheduler": ("actors.scheduling",),
    "actors.worker": ("actors.workers",),
    "actors.async_host": ("actors.workers",),
    "actors.branch_loop": ("actors.workers",),
    "actors.pool": ("actors.workers",),
    "actors.fences": ("actors.workers",),
    "runtime.transport": ("runtime.wire",),
    "runtime.channel": ("runtime.wire",),
    "runtime.ref": ("runtime.remote",),
    "runtime.proxy": ("runtime.remote",),
    "runtime.future": ("runtime.remote",),
    "runtime.exports": ("runtime.remote",),
    "runtime.introspection": ("runtime.remote",),
    "runtime.host": ("runtime.processes",),
    "runtime.process": ("runtime.processes",),
    "runtime.supervisor": ("runtime.processes",),
    "runtime.lifeline": ("runtime.processes",),
    "runtime.registry": ("runtime.processes",),
    "runtime.executions": ("runtime.durable",),
    "runtime.blobs": ("runtime.durable",),
    "runtime.ledger": ("runtime.tools",),
}


# Modules of the flat layout whose name a new package took (``runtime.transport`` is the
# transport seam now): a pickle naming one finds the module, but not the old name in it.
REUSED = frozenset({"runtime.transport"})


def names_a_moved_module(error: BaseException) -> bool:
    """Whether ``error`` (from ``pickle.loads``) is a pickle naming a module that moved."""
    if isinstance(error, ModuleNotFoundError):
        return error.name in MOVED
    return isinstance(error, AttributeError) and any(
        f"<module '{module}'" in str(error) for module in REUSED)


def load_moved(data: bytes | bytearray | memoryview) -> Any:
    """``pickle.loads(data)``, finding the classes of moved modules where they are now."""
    return _MovedNames(io.BytesIO(data)).load()


def find_moved(module: str, name: str) -> Any:
    """The object ``module.name`` of the flat layout, from the package it moved to."""
    for package_name in MOVED[module]:
        package = importlib.import_module(package_name)
        found = getattr(package, name, None)
        if found is not None:
            return found
        for sub in pkgutil.iter_modules(getattr(package, "__path__", [])):
            inner = importlib.import_module(f"{package_name}.{sub.name}")
            found = getattr(inner, name, None)
            if found is not None:
                return found
    raise AttributeError(f"{name} of the old module {module} is in none of {MOVED[module]}")


class _MovedNames(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module in MOVED:
            return find_moved(module, name)
        return super().find_class(module, name)


__all__ = ["MOVED", "find_moved", "load_moved", "names_a_moved_module"]
