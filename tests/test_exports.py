"""Every package says what it exports (``__all__``), and the reference pages say the same.

A name a package exports and no reference page mentions is an undocumented
surface; a reference entry for a name no package exports documents something
that is not there (or a private module). Both fail here, naming the culprits.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import actors
import runtime

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = "\n".join(p.read_text() for p in sorted((ROOT / "docs" / "reference").glob("*.md")))
# Imported only when asked for: optional extras (Ray) and the CLI's lazily imported commands.
_OPTIONAL = ("runtime.raybackend",)


def _packages() -> list[str]:
    found = ["actors", "runtime"]
    for root in (actors, runtime):
        for info in pkgutil.walk_packages(root.__path__, prefix=root.__name__ + "."):
            if info.ispkg and not info.name.startswith(_OPTIONAL):
                found.append(info.name)
    return found


PACKAGES = _packages()


def _documented(package: str, name: str) -> bool:
    if re.search(rf"(?<![\w.]){re.escape(package)}\.{re.escape(name)}(?![\w])", REFERENCE):
        return True
    # A module documented whole (``::: actors.errors``) documents what it defines.
    module = getattr(getattr(importlib.import_module(package), name), "__module__", None)
    return module is not None and re.search(
        rf"^:::\s+{re.escape(module)}\s*$", REFERENCE, flags=re.M) is not None


def _is_module(path: str) -> bool:
    try:
        importlib.import_module(path)
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_declares_its_exports(package: str) -> None:
    module = importlib.import_module(package)
    assert isinstance(getattr(module, "__all__", None), list), f"{package} has no __all__"
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing, f"{package}.__all__ names what it does not define: {missing}"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_export_is_on_a_reference_page(package: str) -> None:
    module = importlib.import_module(package)
    undocumented = [name for name in module.__all__ if not _documented(package, name)]
    assert not undocumented, (
        f"{package} exports {undocumented}, which no page of docs/reference/ mentions; "
        f"document them (e.g. in docs/reference/internals.md) or stop exporting them"
    )


def test_every_reference_entry_is_exported() -> None:
    stale = []
    for path in re.findall(r"^:::\s+([\w.]+)\s*$", REFERENCE, flags=re.M):
        module_name, _, name = path.rpartition(".")
        try:
            importlib.import_module(path)
            continue  # a module documented whole
        except ImportError:
            pass
        module = importlib.import_module(module_name)
        exported = getattr(module, "__all__", None)
        if not hasattr(module, name) or (exported is not None and name not in exported):
            stale.append(path)
    listed = re.findall(r"`((?:actors|runtime)(?:\.[a-z]\w*)+)\.([A-Za-z_]\w*)`", REFERENCE)
    for package, name in listed:
        if f"{package}.{name}" in PACKAGES or _is_module(f"{package}.{name}"):
            continue  # a module or package named in prose, not a name
        if package in PACKAGES and name not in importlib.import_module(package).__all__:
            stale.append(f"{package}.{name}")
    assert not stale, f"docs/reference/ documents names that are not exported: {stale}"
