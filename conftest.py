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



# `make test` runs the suite on two worker processes (pytest-xdist, `-n 2 --dist loadgroup`): the two cores sit
# half idle while one process waits on a kernel, a subprocess or the browser. A worker takes whole groups: a test
# file (its module fixtures are built once), one notebook (nbval's cells share one kernel, in order), the book's
# build with every test that reads it, or one student copy's run. The groups are handed out longest first (their
# serial times, measured with --durations on 2026-12-06, are in the comments), so that neither worker is left
# with a long one at the end. (The groups come from the test ids, not from xdist_group marks: pytest 9.2 no
# longer shows the marks' suffix to xdist 3.8's scheduler.)
BOOK_GROUP = ("tests/test_book.py", "tests/test_browser.py", "tests/test_site.py")
ONE_TEST_PER_GROUP = {"tests/test_student_copies.py::test_every_student_copy_runs_top_to_bottom": "student-copy"}
SLOW_FIRST = (
    "tests/test_wheelhouse.py",               # ~100 s: a wheelhouse built and installed offline in a fresh venv
    "student-copy:10-many-gpus",              # ~75 s: its torchrun launches
    "notebooks/10-many-gpus.ipynb",           # ~65 s: the same launches, checked by nbval
    "book",                                   # ~65 s: the book's build, then the site, browser and deck tests
    "tests/test_models.py",                   # ~55 s: every configuration at full size
    "tests/test_distributed.py",              # ~55 s: torchrun
    "tests/book/test_modern.py",              # ~40 s: the shipped weights on the 10,000 test images
    "student-copy:06-batch-norm-fix",
    "tests/test_gpu_check.py",
    "tests/book/test_record.py",
    "student-copy:09-airbench-style-vgg",
)   # then the other notebooks and student copies, then the many short test files that fill the end


def order_of(group: str) -> int:
    """Where a group is handed out: the slowest first, then every notebook run, then the many short test files
    that fill the end."""
    if group in SLOW_FIRST:
        return SLOW_FIRST.index(group)
    return len(SLOW_FIRST) + (0 if group.endswith(".ipynb") or group.startswith("student-copy:") else 1)


def pin_worker(environ=os.environ) -> set[int] | None:
    """Pin this xdist worker (and the kernels and processes it starts) to its share of the cores: two workers on
    two cores get one each, so torch in one never competes with torch in the other for both (``set_threads``
    then gives each one thread; the README has the suite's time both ways). Returns the cores, or None outside a
    worker, with fewer cores than workers or where pinning is not possible."""
    worker, count = environ.get("PYTEST_XDIST_WORKER", ""), int(environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if not worker.startswith("gw") or count < 2 or not hasattr(os, "sched_setaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < count:
        return None
    mine = set(cores[int(worker[2:]) % count::count])
    os.sched_setaffinity(0, mine)
    return mine


PINNED = pin_worker()


def xdist_group_of(nodeid: str) -> str:
    """The group of the test with this id under ``--dist loadgroup`` (see above)."""
    path = nodeid.split("::", 1)[0]
    if path in BOOK_GROUP:
        return "book"
    for test, kind in ONE_TEST_PER_GROUP.items():
        if nodeid.startswith(test + "[") and nodeid.endswith("]"):
            return f"{kind}:{nodeid[len(test) + 1:-1]}"
    return path


@pytest.hookimpl(optionalhook=True)     # a hook of pytest-xdist: without it installed, nothing asks for it
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False    # xdist would hand out the groups with the most tests first

    class GroupScheduling(LoadScopeScheduling):
        """Hands out whole groups, in the order the workers collected them (``order_of``)."""

        def _split_scope(self, nodeid: str) -> str:
            return xdist_group_of(nodeid)

    return GroupScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not getattr(config.option, "loadgroup", False):   # what xdist tells its workers under --dist loadgroup
        return
    items.sort(key=lambda item: order_of(xdist_group_of(item.nodeid)))   # stable: the order within a group stays
