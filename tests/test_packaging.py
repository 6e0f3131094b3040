"""Packaging and test configuration: the docstring examples run with the README's test command, and the package
ships its type-hint marker."""
import ast
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:                      # Python < 3.11
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_pytest_runs_the_docstring_examples():
    options = PYPROJECT["tool"]["pytest"]["ini_options"]
    assert "--doctest-modules" in options["addopts"].split(), "keep --doctest-modules in pytest's addopts"
    assert "vgg_helpers" in options["testpaths"], "keep vgg_helpers in pytest's testpaths (its doctests)"


def test_py_typed_marker_is_shipped():
    assert (ROOT / "vgg_helpers" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["vgg_helpers"]


def _python_files() -> list[Path]:
    root = Path(__file__).resolve().parents[1]
    return sorted([root / "conftest.py", *[p for d in ("vgg_helpers", "tools", "bench", "tests")
                                          for p in (root / d).rglob("*.py")]])


def _annotations(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield from [a.annotation for a in node.args.args + node.args.kwonlyargs + node.args.posonlyargs
                        if a.annotation is not None]
            if node.returns is not None:
                yield node.returns
        elif isinstance(node, ast.AnnAssign):
            yield node.annotation


def test_the_code_is_python_3_9_as_pyproject_claims():
    """The syntax is Python 3.9's, and `X | None` in an annotation (3.10) comes with `from __future__ import
    annotations`, which keeps it unevaluated on 3.9."""
    later = []
    for path in _python_files():
        source = path.read_text()
        tree = ast.parse(source, feature_version=(3, 9))           # a SyntaxError names the file and line
        future = "from __future__ import annotations" in source
        for annotation in _annotations(tree):
            if not future and any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr)
                                  for n in ast.walk(annotation)):
                later.append(f"{path.name}:{annotation.lineno}")
    assert not later, f"X | Y in an annotation without `from __future__ import annotations`: {later}"
    with pytest.raises(SyntaxError):                                # the check can fail: 3.10's match
        ast.parse("match x:\n    case 1:\n        pass\n", feature_version=(3, 9))


def test_every_data_file_in_the_package_is_shipped():
    """A file of vgg_helpers that is not Python (stored runs, weights, the list of test-set recordings) reaches an
    installed package only when pyproject's package-data names it."""
    from fnmatch import fnmatch

    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]
    missing = []
    for path in sorted((ROOT / "vgg_helpers").rglob("*")):
        if not path.is_file() or path.suffix in (".py", ".pyc") or path.name.startswith(".") \
                or "__pycache__" in path.parts:
            continue
        package = ".".join(path.parent.relative_to(ROOT).parts)
        if not any(fnmatch(path.name, pattern) for pattern in patterns.get(package, [])):
            missing.append(str(path.relative_to(ROOT)))
    assert not missing, f"add these to [tool.setuptools.package-data] in pyproject.toml: {missing}"
    assert (ROOT / "vgg_helpers" / "book" / "results.json").is_file()
