"""The package's layout: the library the chapters teach, apart from the book's experiment harness.

* no module of the library imports the harness (``vgg_helpers.book``);
* no module imports another's private name;
* the chapters import the harness only for plans, stored runs and recorded results (``vgg_helpers.book.*``);
* no name in the code, the tests, the tools or the benchmarks carries a chapter number (chapters get renumbered);
* the tests mirror the package: a test file per library module, per harness module and per exercise topic.
"""
from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vgg_helpers"
HARNESS = PACKAGE / "book"
LIBRARY = sorted(p for p in PACKAGE.rglob("*.py") if HARNESS not in p.parents)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, source: str | None = None) -> list[tuple[str, list[str]]]:
    """``(absolute module, imported names)`` of every import in a file of the package (relative imports resolved);
    ``source`` stands in for the file's text."""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text() if source is None else source)):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.append((module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
    return found


def imports_of_the_harness(path: Path, source: str | None = None) -> list[str]:
    """The imports of ``path`` that reach into the harness."""
    out = []
    for module, names in _imports(path, source):
        if module == "vgg_helpers.book" or module.startswith("vgg_helpers.book."):
            out.append(module)
        elif module == "vgg_helpers" and "book" in names:
            out.append("vgg_helpers.book")
    return out


def private_names_imported(path: Path, source: str | None = None) -> list[str]:
    """``module._name`` for every private name ``path`` imports from another module of the package."""
    return [f"{module}.{n}" for module, names in _imports(path, source) if module.startswith("vgg_helpers")
            for n in names if n.startswith("_") and n != "__version__"]


def test_the_checks_can_fail():
    probe = PACKAGE / "probe.py"                 # a module of the package (never written: its text is given)
    source = "from .book.plans import FAST\nfrom .training import _secret\nfrom . import book\n"
    assert imports_of_the_harness(probe, source) == ["vgg_helpers.book.plans", "vgg_helpers.book"]
    assert private_names_imported(probe, source) == ["vgg_helpers.training._secret"]


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: _module_name(p))
def test_the_library_never_imports_the_harness(path):
    assert not imports_of_the_harness(path), f"{path.relative_to(ROOT)} imports {imports_of_the_harness(path)}"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: _module_name(p))
def test_no_private_name_is_imported_across_modules(path):
    assert not private_names_imported(path), f"{path.relative_to(ROOT)} imports {private_names_imported(path)}"


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.stem)
def test_the_chapters_import_the_harness_only_for_plans_and_runs(path):
    """A chapter reads its plans and its stored runs from the harness; everything it teaches, from the library."""
    allowed = {"plans", "store", "failure", "paper", "fast", "modern", "pipelines", "scaling", "results"}
    code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    used = set(re.findall(r"vgg_helpers\.book\.(\w+)", code))
    assert used <= allowed, f"{path.name} imports {used - allowed} from the harness"
    assert "vgg_helpers.book.record" not in code and "from vgg_helpers import book" not in code


CHAPTER_NUMBERED = re.compile(r"CHAPTER[0-9]|ch[0-9]-")


def test_no_name_carries_a_chapter_number():
    """``grep -rn "CHAPTER[0-9]\\|ch[0-9]-" vgg_helpers tools tests bench`` finds nothing."""
    tracked = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "vgg_helpers", "tools", "tests",
                              "bench"], capture_output=True, text=True, cwd=ROOT, check=True).stdout.split()
    found = []
    for name in tracked:
        path = ROOT / name
        if path.suffix in (".pt",) or not path.is_file() or path == Path(__file__):
            continue
        for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if CHAPTER_NUMBERED.search(line):
                found.append(f"{name}:{i}: {line.strip()[:100]}")
    assert not found, "chapter-numbered names:\n" + "\n".join(found[:20])


def _mirrors(folder: Path, tests: Path, skip: set[str] = frozenset()) -> list[str]:
    modules = sorted(p.stem for p in folder.glob("*.py") if p.stem != "__init__" and p.stem not in skip)
    return [m for m in modules if not (tests / f"test_{m}.py").is_file()]


def test_the_tests_mirror_the_package():
    assert not _mirrors(PACKAGE, ROOT / "tests"), \
        f"library modules without tests/test_<module>.py: {_mirrors(PACKAGE, ROOT / 'tests')}"
    assert not _mirrors(HARNESS, ROOT / "tests" / "book"), \
        f"harness modules without tests/book/test_<module>.py: {_mirrors(HARNESS, ROOT / 'tests' / 'book')}"
    topics = _mirrors(PACKAGE / "exercises", ROOT / "tests" / "exercises", skip={"common"})
    assert not topics, f"exercise topics without tests/exercises/test_<topic>.py: {topics}"


def test_every_package_folder_is_installed():
    """pyproject.toml names every package (a wheel, e.g. Colab's install from git, would leave one out)."""
    try:
        import tomllib
    except ImportError:                      # Python < 3.11
        tomllib = pytest.importorskip("tomli")

    packages = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {_module_name(p) for p in PACKAGE.rglob("__init__.py")}
    assert folders <= packages, f"missing from pyproject.toml's packages: {sorted(folders - packages)}"
    assert "vgg_helpers.book.stored_runs" in packages
