"""The one record command: it trains a topic's runs and stores them under their topic names (never smoke), and
a recording killed between runs or in the middle of one resumes to the result of an uninterrupted recording."""
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tests.helpers import tiny_cifar
from vgg_helpers.book import record, store
from vgg_helpers.book.fast import fast_run
from vgg_helpers.book.plans import (BATCH_NORM, BATCH_NORM_FIX, BRIDGE_CLASSIC, BRIDGE_MODERN, FAILURE, FAST_LADDER,
                                     MODERN)
from vgg_helpers.book.store import stored_history


@pytest.fixture
def tiny_store(tmp_path, tmp_path_factory, monkeypatch):
    """Record into a scratch folder, from tiny data, with the smoke plans standing in for the cpu ones."""
    monkeypatch.setattr(store, "STORED_DIR", tmp_path)
    monkeypatch.setenv("VGG_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setattr(record, "load_cifar10", lambda *a, **k: tiny_cifar(1600, 1100))
    for table in (FAILURE, BATCH_NORM, MODERN):
        monkeypatch.setitem(table, "cpu", replace(table["smoke"], seeds=(0, 1)))
    return tmp_path


def test_record_stores_a_topics_part_under_its_names(tiny_store, capsys):
    assert record.main(["failure", "--only", "reproduction", "--budget", "cpu", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "recording the failure runs (cpu budget)" in out and "reproduction" in out
    assert sorted(p.name for p in tiny_store.iterdir()) == ["failure-reproduction-cpu.json",
                                                            "failure-reproduction-s1-cpu.json"]
    assert stored_history("failure-reproduction-s1", "cpu").meta["seed"] == 1


def test_match_records_only_the_runs_it_names(tiny_store):
    record.main(["batch-norm", "--only", "main", "--match=-s1"])
    assert [p.name for p in tiny_store.iterdir()] == ["batch-norm-s1-cpu.json"]


def test_match_records_only_the_batch_norm_fix_control(tiny_store, monkeypatch):
    """The command that recorded the fix's control trains its seeds and no other fix run."""
    monkeypatch.setitem(BATCH_NORM_FIX, "cpu", replace(BATCH_NORM_FIX["smoke"], seeds=(0, 1)))
    record.main(["batch-norm", "--only", "fix", "--match", "plain-kaiming-no-softmax"])
    assert sorted(p.name for p in tiny_store.iterdir()) == ["batch-norm-fix-plain-kaiming-no-softmax-cpu.json",
                                                            "batch-norm-fix-plain-kaiming-no-softmax-s1-cpu.json"]


def test_the_modern_final_runs_are_recorded_with_the_first_seeds_weights(tiny_store, monkeypatch):
    smoke = MODERN["smoke"]          # declared seeds, as the plan's; 128 test images: only the files are checked
    monkeypatch.setitem(MODERN, "cpu", replace(smoke, seeds=(100, 101), run=replace(smoke.run, test_size=128)))
    record.main(["modern", "--only", "final"])
    names = sorted(p.name for p in tiny_store.iterdir())
    assert names == ["modern-final-s100-cpu.json", "modern-final-s100-cpu.pt", "modern-final-s101-cpu.json"]
    assert stored_history("modern-final-s100", "cpu").meta["measured_on"] == "test"


def test_the_bridge_records_its_new_cells_and_reuses_the_ladder(tiny_store, monkeypatch):
    """Recording the bridge trains each network with the other's recipe and the modern network with its own; the
    classic network with the classic recipe is the classic ladder's stored run, never recorded again here."""
    monkeypatch.setitem(FAST_LADDER, "cpu", replace(FAST_LADDER["smoke"], store="load"))
    for table in (BRIDGE_CLASSIC, BRIDGE_MODERN):
        monkeypatch.setitem(table, "cpu", replace(table["smoke"], seeds=(0, 1)))
    ladder = FAST_LADDER["cpu"]
    for seed in (0, 1):                   # the ladder's runs, as the ladder's own recording stores them
        fast_run(tiny_cifar(1600, 1100), replace(ladder.for_rung("1-fast-step"), seeds=(seed,)), budget="cpu",
                 name=ladder.run_name("1-fast-step", seed), store="record", eval_each_epoch="val",
                 measure_on="val", device="cpu")
    before = {p.name: p.read_bytes() for p in tiny_store.iterdir()}
    record.main(["modern", "--only", "bridge"])
    after = {p.name: p.read_bytes() for p in tiny_store.iterdir()}
    assert {k: after[k] for k in before} == before                       # the ladder's runs untouched
    assert sorted(set(after) - set(before)) == [
        "bridge-classic-recipe-cpu.json", "bridge-classic-recipe-s1-cpu.json",
        "bridge-modern-recipe-classic-vgg-cpu.json", "bridge-modern-recipe-classic-vgg-head-lr-cpu.json",
        "bridge-modern-recipe-classic-vgg-head-lr-s1-cpu.json", "bridge-modern-recipe-classic-vgg-s1-cpu.json",
        "bridge-modern-recipe-modern-vgg-cpu.json", "bridge-modern-recipe-modern-vgg-s1-cpu.json"]
    assert all(stored_history(n.removesuffix("-cpu.json"), "cpu").meta["measured_on"] in ("val", "validation")
               for n in set(after) - set(before))


def test_unknown_topics_and_parts_are_refused(capsys):
    with pytest.raises(SystemExit):
        record.main(["chapter5"])
    with pytest.raises(SystemExit):
        record.main(["failure", "--only", "fix"])
    assert "topic failure has the parts reproduction, ablation, depth; not fix" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        record.main(["failure", "--budget", "smoke"])          # smoke runs are never stored


# A recording in a child process (so that it can be killed for real): three seeds of the failure's reproduction on
# tiny data, into STORED; KILL_RUN and KILL_STEP (counted in this process) SIGKILL it in the middle of a run, and
# KILL_KEPT right after that many runs were kept (between two seeds). It prints one line per run it trains.
CHILD = """
import os, signal, sys
from dataclasses import replace
from pathlib import Path
from tests.helpers import tiny_cifar
from vgg_helpers.book import record, store
from vgg_helpers.book.plans import FAILURE

stored, kill_run, kill_step, kill_kept = Path(sys.argv[1]), *map(int, sys.argv[2:5])
store.STORED_DIR = stored
record.load_cifar10 = lambda *a, **k: tiny_cifar(1600, 1100)
FAILURE["cpu"] = replace(FAILURE["smoke"], seeds=(0, 1, 2))
real_train, real_keep, count = store.train, store._keep, {"trained": 0, "kept": 0}

def train(*args, **kwargs):
    count["trained"] += 1
    print("training a run", flush=True)
    inner = kwargs.get("on_step")
    def on_step(model, step, loss):
        if inner is not None:
            inner(model, step, loss)
        if count["trained"] == kill_run and step == kill_step:
            os.kill(os.getpid(), signal.SIGKILL)
    return real_train(*args, **{**kwargs, "on_step": on_step})

def keep(*args):
    real_keep(*args)
    count["kept"] += 1
    if count["kept"] == kill_kept:
        os.kill(os.getpid(), signal.SIGKILL)

store.train, store._keep = train, keep
record.main(["failure", "--only", "reproduction", "--threads", "1"])
"""


def _record(stored: Path, cache: Path, kill_run: int = 0, kill_step: int = 0, kill_kept: int = 0):
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "VGG_CACHE_DIR": str(cache), "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-c", CHILD, str(stored), str(kill_run), str(kill_step),
                           str(kill_kept)], capture_output=True, text=True, env=env, cwd=root, timeout=600)


def _results(stored: Path) -> dict:
    """Every stored run's numbers, without what depends on the clock or the process."""
    out = {}
    for path in sorted(stored.glob("*.json")):
        d = json.loads(path.read_text())
        d.pop("time")
        d["meta"] = {k: v for k, v in d["meta"].items() if k not in ("date", "recorded", "pid", "hostname")
                     and "seconds" not in k and "time" not in k}
        out[path.name] = d
    return out


def test_a_killed_recording_resumes_to_the_uninterrupted_result(tmp_path):
    once, resumed, cache = tmp_path / "once", tmp_path / "resumed", tmp_path / "cache"
    once.mkdir(), resumed.mkdir()
    assert _record(once, tmp_path / "cache-once").returncode == 0

    between = _record(resumed, cache, kill_kept=1)                # killed just after seed 0 was kept
    assert between.returncode == -9 and between.stdout.count("training a run") == 1
    assert [p.name for p in resumed.iterdir()] == ["failure-reproduction-cpu.json"]

    middle = _record(resumed, cache, kill_run=1, kill_step=1)       # resumes, then killed inside seed 1
    assert middle.returncode == -9
    assert "resuming an interrupted recording: 1 finished run(s) are not trained again" in middle.stdout
    assert middle.stdout.count("training a run") == 1                # seed 0 was not trained again
    assert sorted(p.name for p in resumed.iterdir()) == ["failure-reproduction-cpu.json"]   # nothing half-written

    last = _record(resumed, cache)
    assert last.returncode == 0, last.stderr[-2000:]
    assert last.stdout.count("training a run") == 2                  # seeds 1 (again, from its start) and 2
    assert _results(resumed) == _results(once) and len(_results(once)) == 3
    assert not list((cache / "recordings").iterdir())                # a completed recording leaves nothing behind


def test_only_the_same_command_resumes_and_fresh_starts_over(tmp_path):
    first = record.resume_folder(tmp_path, "failure", "cpu", ["reproduction"], "")
    assert first == record.resume_folder(tmp_path, "failure", "cpu", ("reproduction",), "")
    assert first != record.resume_folder(tmp_path, "failure", "cpu", ["reproduction"], "-s1")
    assert first != record.resume_folder(tmp_path, "failure", "gpu", ["reproduction"], "")
    with pytest.raises(SystemExit):
        record.main(["failure", "--threads", "0"])


def test_resumable_recordings_do_not_nest(tmp_path):
    with store.resumable(tmp_path / "a") as kept:
        assert kept == []
        with pytest.raises(RuntimeError, match="already in progress"):
            with store.resumable(tmp_path / "b"):
                pass
