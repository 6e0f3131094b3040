"""bench/holdout.py: a choice on the hold-out under the protocol's rule, never the test set."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from bench import holdout
from tests.helpers import tiny_cifar
from vgg_helpers.book.plans import BATCH_NORM, pick
from vgg_helpers.data import RunBudget


def test_the_rule_adopts_only_a_gain_beyond_two_standard_errors():
    clear = holdout.paired_decision([0.80, 0.81, 0.79], [0.82, 0.83, 0.81])
    assert clear["gains"] == pytest.approx([0.02, 0.02, 0.02]) and clear["adopt"]
    noisy = holdout.paired_decision([0.80, 0.81, 0.79], [0.83, 0.80, 0.80])   # +0.01 mean, sd 0.02: inside
    assert noisy["mean"] == pytest.approx(0.01) and noisy["se"] == pytest.approx(0.02 / 3 ** 0.5)
    assert not noisy["adopt"]
    assert not holdout.paired_decision([0.80, 0.81, 0.79], [0.78, 0.79, 0.77])["adopt"]   # a clear loss
    # the change simplifies (fewer epochs): the base must win clearly to be kept
    assert holdout.paired_decision([0.80, 0.81, 0.79], [0.83, 0.80, 0.80], simpler="arm")["adopt"]
    assert holdout.paired_decision([0.80, 0.81, 0.79], [0.81, 0.80, 0.79], simpler="arm")["adopt"]
    assert not holdout.paired_decision([0.80, 0.81, 0.79], [0.78, 0.79, 0.77], simpler="arm")["adopt"]
    with pytest.raises(ValueError, match="'base' or 'arm'"):
        holdout.paired_decision([0.8] * 3, [0.9] * 3, simpler="shorter")
    with pytest.raises(ValueError, match="at least three seeds"):
        holdout.paired_decision([0.8, 0.8], [0.9, 0.9])
    with pytest.raises(ValueError, match="paired by seed"):
        holdout.paired_decision([0.8, 0.8, 0.8], [0.9, 0.9])


def test_a_holdout_run_measures_the_validation_images_only():
    plan = replace(pick(BATCH_NORM, "smoke"), run=RunBudget(train_size=128, val_size=64, epochs=2, batch_size=64,
                                                            test_size=32), model={**pick(BATCH_NORM, "smoke").model,
                                                                                  "width": 0.125})
    data = tiny_cifar(256, 64)
    first, again = holdout.holdout_run(plan, 1, data, "cpu"), holdout.holdout_run(plan, 1, data, "cpu")
    assert first["seed"] == 1 and len(first["val_history"]) == 2 and 0 <= first["val_acc"] <= 1
    assert first["val_acc"] == again["val_acc"]                       # a seed fixes the run
    assert "test" not in json.dumps(first)


def test_the_stored_base_is_the_books_batch_norm_runs():
    base = holdout.stored_base(pick(BATCH_NORM, "cpu"), [0, 1, 2], "cpu")
    assert [b["stored"] for b in base] == ["batch-norm", "batch-norm-s1", "batch-norm-s2"]
    assert all(0.5 < b["val_acc"] < 1 and len(b["val_history"]) == 6 for b in base)
    with pytest.raises(FileNotFoundError, match="leave out --base stored"):
        holdout.stored_base(pick(BATCH_NORM, "cpu"), [7], "cpu")
    from vgg_helpers.book.plans import FAST_LADDER              # the ladder's runs are measured on validation too
    ladder = holdout.stored_base(pick(FAST_LADDER, "cpu"), [0, 1, 2], "cpu", rung="no-bn-kaiming")
    assert [b["stored"] for b in ladder] == ["fast-ladder-no-bn-kaiming", "fast-ladder-no-bn-kaiming-s1",
                                             "fast-ladder-no-bn-kaiming-s2"]
    assert all(len(b["val_history"]) == 4 for b in ladder)


def test_the_command_refuses_what_the_protocol_does_not_allow(capsys):
    for argv, words in ((["batch-norm", "--set", "epochs=4", "--seeds", "0", "1"], "at least three seeds"),
                        (["batch-norm", "--set", "epochs"], "expected FIELD=VALUE"),
                        (["batch-norm", "--set", "val_size=2000"], "45,000/5,000 hold-out"),
                        (["batch-norm", "--set", "colour=blue"], "unknown setting 'colour'"),
                        (["fast-final", "--set", "epochs=4"], "invalid choice"),
                        (["fast-ladder", "--rung", "no-bn-kaiming", "--base-set", "val_size=5000", "--set", "lr=0.05",
                          "--base", "stored"], "--base-set would make them another base")):
        with pytest.raises(SystemExit) as stop:
            holdout.main(argv)
        assert stop.value.code == 2 and words in capsys.readouterr().err, argv


def test_the_command_records_both_arms_and_the_verdict(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(holdout, "load_data", lambda args, env: tiny_cifar(64, 16))
    accs = {(4, 0): 0.78, (4, 1): 0.79, (4, 2): 0.77, (6, 0): 0.81, (6, 1): 0.80, (6, 2): 0.81}
    monkeypatch.setattr(holdout, "holdout_run", lambda plan, seed, data: dict(
        seed=seed, val_acc=accs[plan.run.epochs, seed], seconds=1.0))
    result = holdout.main(["batch-norm", "--set", "epochs=4", "--simpler", "arm", "--out", str(tmp_path)])
    (path,) = tmp_path.glob("holdout-batch-norm-cpu-*.json")
    saved = json.loads(path.read_text())
    assert saved["changes"] == {"epochs": 4} and saved["arm_run"]["epochs"] == 4 and saved["run"]["epochs"] == 6
    assert [r["val_acc"] for r in saved["arm"]] == [0.78, 0.79, 0.77] and saved["verdict"] == "keep the base"
    assert saved["decision"]["simpler"] == "arm"       # 4 epochs is the simpler recipe; 6 earned its place
    assert saved["decision"]["mean"] == pytest.approx(-0.0267, abs=1e-4) and result["seeds"] == [0, 1, 2]
    assert {"cpu_capability", "cpu_bf16", "torch"} <= set(saved["environment"])
    assert "-> keep the base" in capsys.readouterr().out


def test_the_benchmark_readme_lists_every_holdout_choice(tmp_path, monkeypatch):
    from bench import report
    monkeypatch.setattr(holdout, "load_data", lambda args, env: tiny_cifar(64, 16))
    monkeypatch.setattr(holdout, "holdout_run", lambda plan, seed, data: dict(
        seed=seed, val_acc=0.80 + 0.01 * seed + (0.02 if plan.run.epochs == 8 else 0), seconds=1.0))
    holdout.main(["batch-norm", "--set", "epochs=8", "--seeds", "0", "1", "2", "--out", str(tmp_path)])
    text = report.render(tmp_path)
    row = next(line for line in text.splitlines() if line.startswith("| `holdout-batch-norm-cpu-"))
    assert ("| epochs=8 | base | 3 | 0.8000 / 0.8100 / 0.8200 | 0.8200 / 0.8300 / 0.8400 | +2.00 +- 0.00 points "
            "| adopt the change |") in row
    assert "Choices on the hold-out" in text


def test_a_rung_with_its_base_adjusted_and_a_reused_base(tmp_path, monkeypatch):
    monkeypatch.setattr(holdout, "load_data", lambda args, env: tiny_cifar(64, 16))
    seen = []

    def fake_run(plan, seed, data):
        seen.append((plan.model["batch_norm"], plan.run.val_size, plan.recipe["lr"], plan.speed.amp))
        return dict(seed=seed, val_acc=0.7 + plan.recipe["lr"] + 0.001 * seed, seconds=1.0)

    monkeypatch.setattr(holdout, "holdout_run", fake_run)
    rung = ["fast-ladder", "--rung", "no-bn-kaiming", "--base-set", "lr=0.02"]
    first = holdout.main([*rung, "--set", "lr=0.05", "--out", str(tmp_path)])
    assert seen == [(False, 5000, 0.02, True)] * 3 + [(False, 5000, 0.05, True)] * 3   # base, then arm
    assert first["rung"] == "no-bn-kaiming" and first["base_changes"] == {"lr": 0.02}
    (path,) = tmp_path.glob("holdout-fast-ladder-cpu-*.json")
    seen.clear()
    again = holdout.main([*rung, "--set", "lr=0.01", "--base-from", str(path), "--out", str(tmp_path / "again")])
    assert seen == [(False, 5000, 0.01, True)] * 3                    # the base was not trained again
    assert again["base"] == first["base"] and again["base_source"] == f"from {path.name}"
    with pytest.raises(SystemExit):                                    # another base: refused
        holdout.main(["fast-ladder", "--rung", "no-bn-kaiming", "--base-set", "lr=0.02", "val_size=5000",
                      "--set", "lr=0.01", "--base-from", str(path), "--out", str(tmp_path)])


def test_a_base_trained_on_every_image_is_refused(capsys):
    with pytest.raises(SystemExit):
        holdout.main(["fast-ladder", "--rung", "no-bn-kaiming", "--base-set", "val_size=0", "--set", "lr=0.05"])
    assert "45,000/5,000 hold-out" in capsys.readouterr().err


def test_a_diverged_run_counts_as_chance(monkeypatch):
    from vgg_helpers.book import store
    from vgg_helpers.training import TrainingDiverged

    def diverge(*args, **kwargs):
        raise TrainingDiverged("the loss became nan at step 3 (lr 5.0)")

    monkeypatch.setattr(store, "train", diverge)          # what fit trains with
    plan = replace(pick(BATCH_NORM, "smoke"), run=RunBudget(train_size=128, val_size=64, epochs=1, batch_size=64),
                   model={**pick(BATCH_NORM, "smoke").model, "width": 0.125})
    run = holdout.holdout_run(plan, 0, tiny_cifar(256, 64), "cpu")
    assert run["val_acc"] == holdout.CHANCE == 0.1 and "nan" in run["diverged"]


def test_an_interrupted_comparison_resumes_without_training_its_finished_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VGG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(holdout, "load_data", lambda args, env: tiny_cifar(64, 16))
    trained = []

    def fake_run(plan, seed, data):
        if len(trained) == 4:                        # killed while training the arm's second seed
            raise KeyboardInterrupt
        trained.append((plan.run.epochs, seed))
        return dict(seed=seed, val_acc=0.8 + 0.01 * seed + 0.001 * plan.run.epochs, seconds=1.0)

    monkeypatch.setattr(holdout, "holdout_run", fake_run)
    command = ["batch-norm", "--set", "epochs=4", "--simpler", "arm", "--out", str(tmp_path / "out")]
    with pytest.raises(KeyboardInterrupt):
        holdout.main(command)
    assert trained == [(6, 0), (6, 1), (6, 2), (4, 0)] and not (tmp_path / "out").exists()
    with pytest.raises(KeyboardInterrupt):          # another command does not take these runs
        holdout.main(["batch-norm", "--set", "epochs=5", "--out", str(tmp_path / "other")])
    assert trained[4:] == []
    trained.clear()
    monkeypatch.setattr(holdout, "holdout_run", lambda plan, seed, data: trained.append((plan.run.epochs, seed))
                        or dict(seed=seed, val_acc=0.8 + 0.01 * seed + 0.001 * plan.run.epochs, seconds=1.0))
    result = holdout.main(command)
    assert trained == [(4, 1), (4, 2)]               # only what the interrupted command had not finished
    assert "resuming an interrupted comparison: 4 finished run(s)" in capsys.readouterr().out
    assert [r["val_acc"] for r in result["arm"]] == pytest.approx([0.804, 0.814, 0.824])
    assert [r["val_acc"] for r in result["base"]] == pytest.approx([0.806, 0.816, 0.826])
    assert not list((tmp_path / "cache" / "holdout").glob("*.json"))    # complete: nothing left to resume


def test_a_comparison_with_a_reused_base_resumes_under_another_spelling_of_its_path(tmp_path, monkeypatch):
    monkeypatch.setenv("VGG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(holdout, "load_data", lambda args, env: tiny_cifar(64, 16))
    monkeypatch.setattr(holdout, "holdout_run", lambda plan, seed, data:
                        dict(seed=seed, val_acc=0.8 + 0.001 * plan.run.epochs, seconds=1.0))
    first = holdout.main(["batch-norm", "--set", "epochs=4", "--out", str(tmp_path / "first")])
    (path,) = (tmp_path / "first").glob("holdout-batch-norm-cpu-*.json")
    trained = []

    def fake_run(plan, seed, data):
        if len(trained) == 1:                        # killed while training the arm's second seed
            raise KeyboardInterrupt
        trained.append(seed)
        return dict(seed=seed, val_acc=0.7 + 0.01 * seed, seconds=1.0)

    monkeypatch.setattr(holdout, "holdout_run", fake_run)
    command = ["batch-norm", "--set", "epochs=3", "--out", str(tmp_path / "second")]
    with pytest.raises(KeyboardInterrupt):
        holdout.main([*command, "--base-from", str(path)])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(holdout, "holdout_run", lambda plan, seed, data:
                        trained.append(seed) or dict(seed=seed, val_acc=0.7 + 0.01 * seed, seconds=1.0))
    result = holdout.main([*command, "--base-from", "first/../first/" + path.name])
    assert trained == [0, 1, 2]                      # seed 0 was not trained again
    assert result["base"] == first["base"]
