"""Packaging and test configuration: the docstring examples run with the README's test command, and the package
ships its type-hint marker."""
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
