"""The GitHub workflows are valid and do what the README promises (issue 33): the README's test command on every
push and pull request, the unit tests on macOS and Windows with pip only, and the site published from main only
after the tests passed on it."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from conftest import NOT_UNIT
from vgg_helpers.settings import DEFAULT_CACHE_DIR

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
README = (ROOT / "README.md").read_text()


def _load(name: str) -> dict:
    wf = yaml.safe_load((WORKFLOWS / name).read_text())
    wf["on"] = wf.get("on", wf.pop(True, None))          # YAML 1.1 reads the key "on" as True
    return wf


def _runs(job: dict) -> list[str]:
    return [s["run"] for s in job["steps"] if "run" in s]


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def test_every_workflow_is_valid(name):
    wf = _load(name)
    assert wf["name"] and wf["on"] and wf["jobs"], name
    for job_name, job in wf["jobs"].items():
        assert "runs-on" in job and job["steps"], f"{name}: job {job_name}"
        for step in job["steps"]:
            assert ("run" in step) != ("uses" in step), f"{name}: a step runs a command or uses an action: {step}"
            if "uses" in step:
                assert re.fullmatch(r"[\w-]+/[\w-]+@v\d+", step["uses"]), f"{name}: pin a major version: {step}"
        for needed in [job.get("needs")] if isinstance(job.get("needs"), str) else job.get("needs", []):
            assert needed in wf["jobs"], f"{name}: {job_name} needs an unknown job {needed}"


def test_the_readme_test_command_runs_on_every_push_and_pull_request():
    wf = _load("tests.yml")
    assert "push" in wf["on"] and "pull_request" in wf["on"]
    assert wf["on"]["push"] is None or "branches" not in wf["on"]["push"]      # every branch, not main only
    job = wf["jobs"]["test"]
    assert "make test" in README and [r.strip() for r in _runs(job)][-1] == "make test"
    assert job["env"]["CI"] == "true"                                   # a missing tool fails, not skips
    assert job["env"]["PIP_EXTRA_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    cached = [s["with"]["path"] for s in job["steps"] if s.get("uses", "").startswith("actions/cache@")]
    data_cache = "~/" + DEFAULT_CACHE_DIR.relative_to(Path.home()).as_posix()
    assert data_cache in cached, "cache the official CIFAR-10 download between runs"


def test_the_unit_tests_run_on_macos_and_windows_with_pip_only():
    job = _load("tests.yml")["jobs"]["unit"]
    assert {"macos-latest", "windows-latest"} <= set(job["strategy"]["matrix"]["os"])
    commands = " ".join(_runs(job))
    assert "make" not in commands.split() and "bash" not in commands
    assert "pip install -r requirements-dev.txt" in commands and "pip install --no-deps -e ." in commands
    assert _runs(job)[-1].strip() == "python -m pytest --unit"
    for left_out in NOT_UNIT:
        assert (ROOT / left_out).exists(), f"--unit leaves out {left_out}, which does not exist (renamed?)"


def test_unit_leaves_out_the_notebooks_and_what_needs_more_than_pip(pytestconfig):
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}   # e.g. -v would change the listing
    listed = subprocess.run([sys.executable, "-m", "pytest", "--unit", "--collect-only", "-q"], cwd=ROOT,
                            capture_output=True, text=True, env=env).stdout
    files = {line.split("::")[0] for line in listed.splitlines() if "::" in line}
    assert files and not any(f.endswith(".ipynb") for f in files)
    assert not files & set(NOT_UNIT) and "tests/test_models.py" in files


def _lower_bounds(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([\w-]+)>=([\d.]+)", text, re.M))


def test_the_oldest_job_tests_the_lowest_versions_we_claim():
    job = _load("tests.yml")["jobs"]["oldest"]
    python = next(s["with"]["python-version"] for s in job["steps"] if s.get("uses", "").startswith(
        "actions/setup-python@"))
    requires = re.search(r'requires-python = ">=([\d.]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert python == requires and _runs(job)[-1].strip() == "make test-oldest"
    pins = dict(re.findall(r"^([\w-]+)==([\d.]+)", (ROOT / ".ci" / "oldest.txt").read_text(), re.M))
    bounds = _lower_bounds((ROOT / "requirements.txt").read_text())
    assert set(pins) == set(bounds), "pin every runtime dependency at its lower bound in .ci/oldest.txt"
    for name, bound in bounds.items():
        assert pins[name].split(".")[:len(bound.split("."))] == bound.split("."), f"{name}: {pins[name]} vs >={bound}"


def test_the_site_is_published_from_main_only_after_the_tests_passed():
    tests, book = _load("tests.yml"), _load("book.yml")
    trigger = book["on"]["workflow_run"]
    assert trigger["workflows"] == [tests["name"]] and trigger["types"] == ["completed"]
    assert trigger["branches"] == ["main"] and "push" not in book["on"]
    build = book["jobs"]["build"]
    assert "workflow_run.conclusion == 'success'" in build["if"]
    checkout = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert "workflow_run.head_sha" in checkout["with"]["ref"]           # the commit that passed
    assert "make book" in README and "make book" in [r.strip() for r in _runs(build)]
    upload = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "_build/html"
    assert book["permissions"]["pages"] == "write" and book["permissions"]["id-token"] == "write"
    deploy = book["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    assert any(s.get("uses", "").startswith("actions/deploy-pages@") for s in deploy["steps"])


def test_nbval_ignores_only_the_listed_output_differences(pytestconfig):
    import configparser

    path = Path(pytestconfig.option.nbval_sanitize_with)
    assert path == ROOT / ".ci" / "nbval-sanitize.cfg"
    text = path.read_text()
    rules = configparser.ConfigParser()
    rules.read_string(text)
    assert rules.sections() == ["torchinfo-units"], "each new rule needs a comment saying what it hides and why"
    rule = rules["torchinfo-units"]
    assert re.sub(rule["regex"], rule["replace"], "Total mult-adds (Units.GIGABYTES): 19.65") == \
        "Total mult-adds (G): 19.65"
    assert re.sub(rule["regex"], rule["replace"], "Total mult-adds (M): 7.61") == "Total mult-adds (M): 7.61"
    assert "Python 3.9" in text


def test_make_test_runs_on_two_workers_that_take_whole_groups(request):
    from conftest import BOOK_GROUP, ONE_TEST_PER_GROUP, SLOW_FIRST, order_of, xdist_group_of

    make = (ROOT / "Makefile").read_text()
    assert re.search(r"^TEST_WORKERS \?= 2$", make, re.M)
    assert "$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup" in make
    assert "pytest-xdist" in (ROOT / "requirements-dev.txt").read_text()
    # The groups of what this session collected: a notebook's cells stay together and in order (nbval runs them
    # in one kernel), each student copy's run is a group of its own, the book's tests share its one build.
    groups: dict[str, list[str]] = {}
    for item in request.session.items:
        groups.setdefault(xdist_group_of(item.nodeid), []).append(item.nodeid)
    for name, ids in groups.items():
        if name.endswith(".ipynb"):
            assert all(i.split("::")[0] == name for i in ids), name
        if name.startswith("student-copy:"):
            assert len(ids) == 1, ids
    assert xdist_group_of(request.node.nodeid) == "tests/test_workflows.py"
    # The slowest first, then the notebook runs, then the short test files that fill the end.
    assert [order_of(g) for g in (SLOW_FIRST[0], SLOW_FIRST[-1], "notebooks/01-architecture-table.ipynb",
                                  "student-copy:01-architecture-table", "tests/test_configs.py")] == \
        [0, len(SLOW_FIRST) - 1, len(SLOW_FIRST), len(SLOW_FIRST), len(SLOW_FIRST) + 1]
    # The names the order and the groups use still exist (a renamed file would silently lose its place).
    for path in BOOK_GROUP + tuple(p.split("::")[0] for p in ONE_TEST_PER_GROUP):
        assert (ROOT / path).is_file(), path
    for name in SLOW_FIRST:
        if name.startswith("student-copy:"):
            assert (ROOT / "student" / (name.split(":", 1)[1] + ".ipynb")).is_file(), name
        elif name != "book":
            assert (ROOT / name).is_file(), name


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="pinning a process to cores needs Linux")
def test_each_worker_is_pinned_to_its_share_of_the_cores():
    import subprocess
    import sys

    def pinned(worker: str, count: str) -> str:
        env = {"PYTEST_XDIST_WORKER": worker, "PYTEST_XDIST_WORKER_COUNT": count}
        code = ("import os; from conftest import pin_worker; "
                f"print(sorted(pin_worker({env!r}) or []), sorted(os.sched_getaffinity(0)))")
        return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()

    cores = sorted(os.sched_getaffinity(0))
    if len(cores) >= 2:
        assert pinned("gw0", "2") == f"{cores[0::2]} {cores[0::2]}"     # the process now runs on those only
        assert pinned("gw1", "2") == f"{cores[1::2]} {cores[1::2]}"
    assert pinned("gw0", "1") == f"[] {cores}"                          # one worker: nothing to share
    assert pinned("", "") == f"[] {cores}"                              # not a worker
