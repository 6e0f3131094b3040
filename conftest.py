"""Shared test set-up: the smoke budget and the offline data copy for every test and notebook.

It sits at the repository root so that `pytest notebooks/05-....ipynb` alone also runs with these settings.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent

# nbval's kernels inherit this process's environment: notebooks run with the tiny budget and offline data.
# (MPLBACKEND is left alone: the kernels' inline backend must draw the figures that checked cells show.)
os.environ.setdefault("VGG_BOOK_BUDGET", "smoke")
_shared = ROOT.parent / "shared" / "data" / "cifar10-jpeg"
if _shared.is_dir():
    os.environ.setdefault("VGG_DATA_DIR", str(_shared))
# OpenMP threads that spin while waiting make torch up to ~20x slower when another process shares the two cores
# (measured while developing chapter 5); passive waiting costs nothing on an idle machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> Path:
    """Build the book once per test session (warnings are errors) and return the HTML folder."""
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(ROOT), "--path-output", str(out), "--warningiserror", "--nitpick", "--keep-going"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        pytest.fail(f"jupyter-book build failed (exit {proc.returncode}):\n{log[-6000:]}")
    html = out / "_build" / "html"
    assert (html / "index.html").exists(), log[-3000:]
    (out / "build.log").write_text(log)
    return html


# `pytest --unit`: the unit tests and docstring examples only, with nothing but pip's packages (no make, bash,
# browser, book build or torchrun): what the macOS and Windows jobs and `make test-oldest` run. Left out:
# the notebooks and these files.
NOT_UNIT = ("tests/test_browser.py", "tests/test_site.py", "tests/test_book.py", "tests/test_student_copies.py",
            "tests/test_distributed.py", "tests/test_setup_cell.py", "tests/test_workshop.py", "tests/test_hygiene.py",
            "tests/test_tools.py", "tests/test_gpu_check.py", "tests/test_wheelhouse.py")


def pytest_configure(config: pytest.Config) -> None:
    # nbval ignores the output differences listed here (an absolute path: pytest may run from another folder).
    if hasattr(config.option, "nbval_sanitize_with") and config.option.nbval_sanitize_with is None:
        config.option.nbval_sanitize_with = str(ROOT / ".ci" / "nbval-sanitize.cfg")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--unit", action="store_true",
                     help="only the unit tests and docstring examples (no notebooks, browser, book build, torchrun)")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if not config.getoption("--unit"):
        return None
    path = collection_path.resolve()
    if path.suffix == ".ipynb" or path in {ROOT / p for p in NOT_UNIT}:
        return True
    return None
