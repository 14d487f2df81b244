"""The wheel, not the source tree: what a user installs holds every package and runs the demo.

The wheel is built from a copy of the project without build isolation (nothing
is downloaded) and installed with ``--no-deps`` into a fresh venv; that venv
sees this environment's packages (pykka, structlog, ...) through a ``.pth``
file of plain paths, so the editable install's import hook is never run and
``actors``/``runtime`` can only come from the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("actors", "runtime")

pytestmark = pytest.mark.timeout(300)


def run(*args: str | Path, cwd: Path, timeout: float = 240) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{args} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def source_packages() -> set[str]:
    return {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in PACKAGES for init in (ROOT / top).rglob("__init__.py")
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for top in PACKAGES:
        shutil.copytree(ROOT / top, source / top,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
        "-w", work / "dist", source, cwd=work)
    (built,) = (work / "dist").glob("durable_actors-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with only the wheel installed in it; its ``bin`` directory."""
    venv = tmp_path_factory.mktemp("venv") / "fresh"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=venv.parent)
    python = venv / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                    cwd=venv.parent).strip())
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "dependencies.pth").write_text("".join(f"{path}\n" for path in sorted(ours)))
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel,
        cwd=venv.parent)
    return venv / "bin"


def test_the_wheel_holds_every_package_of_the_source_tree(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    shipped = {name.rpartition("/")[0].replace("/", ".") for name in names
               if name.endswith("/__init__.py")}
    assert shipped == source_packages()
    assert {"actors/py.typed", "runtime/py.typed"} <= set(names)


def test_the_installed_wheel_imports_every_package_from_another_directory(
    installed: Path, tmp_path: Path
) -> None:
    script = ("import importlib, sys\n"
              f"for name in sorted({sorted(source_packages())!r}):\n"
              "    print(importlib.import_module(name).__file__)\n")
    files = run(installed / "python", "-c", script, cwd=tmp_path).split()
    assert len(files) == len(source_packages())
    venv = str(installed.parent)
    assert all(path.startswith(venv) for path in files), files  # the wheel, not the tree


def test_the_installed_demo_runs_to_its_end_from_another_directory(
    installed: Path, tmp_path: Path
) -> None:
    out = run(installed / "durable-actors", "demo", "--items", "12", cwd=tmp_path)
    assert "execution demo-12: SUCCEEDED" in out
    assert (tmp_path / ".durable" / "durable.db").exists()
    assert "demo-12" in run(installed / "durable-actors", "inspect", cwd=tmp_path)
