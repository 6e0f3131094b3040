"""The one record command: it trains a topic's runs and stores them under their topic names (never smoke)."""
from dataclasses import replace

import pytest

from tests.helpers import tiny_cifar
from vgg_helpers.book import record, store
from vgg_helpers.book.plans import BATCH_NORM, BATCH_NORM_FIX, FAILURE, MODERN
from vgg_helpers.book.store import stored_history


@pytest.fixture
def tiny_store(tmp_path, monkeypatch):
    """Record into a scratch folder, from tiny data, with the smoke plans standing in for the cpu ones."""
    monkeypatch.setattr(store, "STORED_DIR", tmp_path)
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


def test_the_modern_final_runs_are_recorded_with_seed_0s_weights(tiny_store):
    record.main(["modern", "--only", "final"])
    names = sorted(p.name for p in tiny_store.iterdir())
    assert names == ["modern-final-cpu.json", "modern-final-cpu.pt", "modern-final-s1-cpu.json"]
    assert stored_history("modern-final", "cpu").meta["measured_on"] == "test"


def test_unknown_topics_and_parts_are_refused(capsys):
    with pytest.raises(SystemExit):
        record.main(["chapter5"])
    with pytest.raises(SystemExit):
        record.main(["failure", "--only", "fix"])
    assert "topic failure has the parts reproduction, ablation, depth; not fix" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        record.main(["failure", "--budget", "smoke"])          # smoke runs are never stored
