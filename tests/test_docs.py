"""The documentation as a reader meets it: the site renders its diagrams, the guides' code runs.

Every fenced ``python`` block of a guide runs, in order, as one module in a
fresh directory: a guide whose code defines tests is run by pytest (with the
durable-actors plugin, as in a user's project; a block that starts with
``# conftest.py`` is that file), any other as a script. A snippet that starts
something and never stops it hangs its run, and fails here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)

pytestmark = pytest.mark.timeout(300)


def python_blocks(page: Path) -> list[str]:
    return [body for lang, body in FENCE.findall(page.read_text()) if lang == "python"]


GUIDES = [page for page in sorted([*(DOCS / "guides").glob("*.md"), DOCS / "getting-started.md"])
          if python_blocks(page)]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(built)],
                          cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr
    return built


def test_the_site_holds_each_mermaid_diagram_as_an_element_mermaid_renders(site: Path) -> None:
    pages = [p for p in DOCS.rglob("*.md") if "```mermaid" in p.read_text()]
    assert pages, "no page has a diagram any more: drop this test or the loader"
    for page in pages:
        relative = page.relative_to(DOCS).with_suffix("")
        html = (site / relative / "index.html").read_text()
        diagrams = re.findall(r'<div class="mermaid">(.*?)</div>', html, re.DOTALL)
        assert len(diagrams) == page.read_text().count("```mermaid"), relative
        assert all(d.lstrip().split()[0] in ("flowchart", "sequenceDiagram", "graph",
                                              "stateDiagram-v2") for d in diagrams)
        assert "language-mermaid" not in html and '<pre class="mermaid">' not in html
        scripts = re.findall(r'<script src="([^"]+)"', html)
        loaded = [(site / relative / src).resolve() for src in scripts if "mermaid" in src]
        assert any(p.exists() and "initialize" in p.read_text() for p in loaded), scripts
        assert any(p.exists() and p.stat().st_size > 1_000_000 for p in loaded), scripts


def test_no_file_of_the_project_refers_to_a_design_document_outside_it() -> None:
    outside = "API" + ".md"  # the design notes of the project's authors are not shipped
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    naming = [name for name in tracked
              if outside in (ROOT / name).read_text(errors="replace")]
    assert naming == []


@pytest.mark.parametrize("guide", GUIDES, ids=[g.stem for g in GUIDES])
def test_the_python_code_of_a_guide_runs(guide: Path, tmp_path: Path) -> None:
    blocks = python_blocks(guide)
    conftest = [b for b in blocks if b.startswith("# conftest.py")]
    module = "\n\n".join(b for b in blocks if b not in conftest)
    if conftest:
        (tmp_path / "conftest.py").write_text("\n\n".join(conftest))
    if "def test_" in module:
        (tmp_path / f"test_{guide.stem.replace('-', '_')}_guide.py").write_text(module)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W",
                   "error::pytest.PytestUnraisableExceptionWarning", str(tmp_path)]
    else:
        (tmp_path / "guide.py").write_text(module)
        command = [sys.executable, "guide.py"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=240,
                          check=False, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{guide.name}:\n{done.stdout}\n{done.stderr}"
    if "def test_" in module:
        summary = done.stdout.strip().splitlines()[-1]
        assert " passed" in summary and not re.search(r"skipped|failed|error", summary), summary


def test_the_reference_documents_how_to_read_a_fake_clock(site: Path) -> None:
    html = (site / "reference" / "testing" / "index.html").read_text()
    for method in ("time", "advance", "monotonic"):
        assert f'id="actors.clock.FakeClock.{method}"' in html, method
