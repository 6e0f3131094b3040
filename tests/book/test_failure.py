"""The runs on the failing network: one failure run, the repeats over seeds, the verdicts, the learner's loop
against train(), and the stored runs and committed outputs the failure and batch-norm chapters show."""
from __future__ import annotations

import math
import re
from pathlib import Path

import nbformat
import pytest
import torch
from torch import nn

from vgg_helpers.book import store
from vgg_helpers.book.failure import (RunSummary, ablation_runs, batch_norm_runs, depth_runs, failure_loaders,
                                      failure_run, fix_runs, reproduction_runs, seed_table, step_losses,
                                      summarize)
from vgg_helpers.book.plans import BATCH_NORM, BATCH_NORM_FIX, FAILURE, FAILURE_ABLATION, FAILURE_DEPTH, pick
from vgg_helpers.book.store import RunResult, StoredRunError, stored_history
from vgg_helpers.diagnostics import LEARNING, loss_drop, mean_sd
from vgg_helpers.settings import settings
from vgg_helpers.training import History
from tests.helpers import tiny_cifar, unprinted_numbers

CHAPTER = Path(__file__).resolve().parents[2] / "notebooks" / "05-ten-percent-failure.ipynb"
SMOKE = FAILURE["smoke"]


def _changed(**changes):
    """The smoke failure plan with some settings changed (a rung's plan)."""
    return SMOKE.changed(changes)


def _history(losses, val_acc=0.1, diverged=False) -> RunResult:
    meta = {"step_losses": list(losses)}
    if diverged:
        meta["diverged"] = "The loss became nan"
    h = History(meta=meta)
    if not diverged:
        h.append(epoch=1, train_loss=losses[-1], train_acc=0.1, val_loss=2.3, val_acc=val_acc, lr=0.01, time=1.0)
    return RunResult("x", h, trained=False)


def test_loss_drop_reads_the_last_fifth():
    assert loss_drop([math.log(10)] * 10) == pytest.approx(0.0, abs=1e-12)
    assert loss_drop([9.0] * 8 + [math.log(10) - 0.5] * 2) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="at least one"):
        loss_drop([])


@pytest.mark.parametrize("drops, diverged, verdict", [
    ([0.2, 0.3, 0.1], 0, "learning"),
    ([0.0, 0.001, -0.002], 0, "stuck at ln 10"),
    ([-5.0, -1e4, -0.5], 0, "above ln 10"),
    ([], 3, "diverged"),
    ([0.2, 0.0], 1, "1 of 3 learning, 1 stuck, 1 diverged"),
])
def test_verdicts_count_every_seed(drops, diverged, verdict):
    row = RunSummary("x", len(drops) + diverged, diverged, drops, [0.1] * len(drops), [1.0] * len(drops))
    assert row.verdict == verdict


def test_summarize_separates_diverged_runs():
    ln10 = math.log(10)
    rows = summarize({"a": [_history([ln10] * 5 + [ln10 - 0.3] * 5, 0.2), _history([ln10] * 3, diverged=True)]})
    assert rows[0].diverged == 1 and rows[0].drop == [pytest.approx(0.3)] and rows[0].val_acc == [0.2]
    assert rows[0].verdict == "1 of 2 learning, 1 diverged"
    assert LEARNING == 0.01


def test_mean_sd_formats_spread():
    assert mean_sd([0.1, 0.12, 0.14], scale=100) == "12.0 +- 2.0"
    assert mean_sd([0.5], digits=3) == "0.500 +- 0.000"
    assert mean_sd([]) == "n/a"


def test_failure_run_records_every_step_and_repeats_exactly():
    data = tiny_cifar(n_train=400, n_test=100)
    plan = _changed(init="kaiming", head="cifar", max_steps=3)
    loaders = failure_loaders(data, plan, seed=1)
    runs = [failure_run(plan, loaders, "smoke", name="failure-test", seed=1) for _ in range(2)]
    (a, rec), (b, _) = runs
    assert len(step_losses(a)) == 3 == len(rec.losses) and rec.norms
    assert step_losses(a) == step_losses(b)            # same seed: the same run
    assert a.history.meta["seed"] == 1 and a.history.meta["steps"] == 3 and a.name == "failure-test"
    other, _ = failure_run(plan, failure_loaders(data, plan, seed=2), "smoke", name="failure-test", seed=2)
    assert step_losses(other) != step_losses(a)          # another seed: other weights and batches


def test_failure_run_refuses_loaders_that_do_not_augment_as_stated():
    data = tiny_cifar()
    with pytest.raises(ValueError, match="augment=True but the loaders were built with augment=False"):
        failure_run(_changed(augment=True), failure_loaders(data, SMOKE), "smoke", name="failure-test")
    with pytest.raises(ValueError, match="augment=False but the loaders were built with augment=True"):
        failure_run(SMOKE, failure_loaders(data, _changed(augment=True)), "smoke", name="failure-test")


def test_an_exploding_init_is_a_result_not_a_crash():
    data = tiny_cifar()
    plan = _changed(max_steps=2, width=0.25, softmax=False, init="paper", init_std=1.0, lr=10.0, head="cifar")
    result, _ = failure_run(plan, failure_loaders(data, plan), "smoke", name="failure-test")
    row = summarize({"big": [result]})[0]
    assert row.verdict in ("above ln 10", "diverged")


def test_repeats_train_every_seed_and_need_data_only_when_missing(monkeypatch):
    data = tiny_cifar(n_train=400)
    runs = ablation_runs(data, "smoke", "train", rungs=["kaiming"], seeds=(0, 1))
    assert list(runs) == ["Kaiming init"] and [r.history.meta["seed"] for r in runs["Kaiming init"]] == [0, 1]
    assert runs["Kaiming init"][0].history.meta["changes"] == {"init": "kaiming"}
    monkeypatch.setattr(store, "STORED_DIR", Path("/nonexistent"))
    with pytest.raises(TypeError, match="'failure-depth-vgg11-kaiming' must be trained .*needs the data set"):
        depth_runs(None, "cpu", "load", rungs=["vgg11-kaiming"], seeds=(0,))


# ---- the learner's loop (the chapter's solution cell) computes what train() computes ----


def _notebook_loop():
    cells = nbformat.read(CHAPTER, as_version=4).cells
    source = next(c.source for c in cells if c.cell_type == "code" and "solution" in c.metadata.get("tags", [])
                  and "def train_loop(" in c.source)
    namespace = {"torch": torch, "nn": nn}
    exec(source, namespace)
    return namespace["train_loop"]


def test_chapter_loop_matches_train_on_the_chapters_network():
    """The parity the chapter shows, at a tiny size: its network (soft-max, dropout, paper init), its optimiser
    with the biases out of weight decay, its loaders; the solution cell's loop against failure_run's train()."""
    train_loop = _notebook_loop()
    data = tiny_cifar(n_train=300)                       # 100 training images left: 6 batches of 16
    loaders = failure_loaders(data, SMOKE, seed=0)
    steps = len(loaders.train) + 2                       # into a second pass over the data
    plan = _changed(max_steps=steps, init="kaiming", lr=0.05)
    result, rec = failure_run(plan, loaders, "smoke", name="failure-test", seed=0)
    torch.manual_seed(0)
    from vgg_helpers import build_vgg
    model = build_vgg(**plan.model)
    weights = [p for p in model.parameters() if p.dim() > 1]
    biases = [p for p in model.parameters() if p.dim() == 1]
    optimizer = torch.optim.SGD([{"params": weights, "weight_decay": SMOKE.recipe["weight_decay"]},
                                 {"params": biases, "weight_decay": 0.0}], lr=0.05, momentum=0.9)
    loaders.train.set_epoch(0)                           # the loader counts its passes: start again at 0
    torch.manual_seed(0)
    losses, acc = train_loop(model, loaders.train, optimizer, steps)
    assert losses == pytest.approx(rec.losses, abs=1e-6) and len(losses) == steps
    assert len(set(round(x, 4) for x in losses)) > 1     # it moved: the comparison is not of constants
    for a, b in zip(model.state_dict().values(), result.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6)
    assert 0.0 <= acc <= 1.0


# ---- the stored runs the chapter shows ----

@pytest.mark.parametrize("table", [FAILURE, FAILURE_ABLATION, FAILURE_DEPTH, BATCH_NORM_FIX])
def test_stored_runs_are_complete_and_match_the_plan(table):
    plan = table["cpu"]
    for rung in [r.name for r in plan.rungs] or [None]:
        run_plan = plan if rung is None else plan.for_rung(rung)
        for seed in plan.seeds:
            name = plan.run_name(rung, seed)
            h = stored_history(name, "cpu")
            assert h is not None, f"stored run {name}-cpu is missing: python -m vgg_helpers.book.record failure"
            assert h.meta["seed"] == seed and h.meta["steps"] == plan.steps and h.meta["width"] == plan.width, name
            assert h.meta["changes"] == ({} if rung is None else plan.changes_for(rung)), name
            assert "/" not in h.meta["data_source"], f"{name}: a machine path in data_source"
            if not h.meta.get("diverged"):        # a diverged run keeps its meta, not train()'s history
                config = h.meta["train_config"]
                assert config["seed"] == seed and config["max_steps"] == plan.steps, name
                assert config == {**config, **run_plan.recipe}, f"{name} was not trained with its plan's recipe"
                assert len(h.meta["step_losses"]) == plan.steps, name


def _outputs(nb) -> str:
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_chapter_tables_are_the_stored_runs():
    """Every row of the ablation and depth tables the committed chapter prints is recomputed from the stored runs:
    a re-recorded run that changes a result cannot leave a stale table (or the prose quoting it) behind."""
    printed = _outputs(nbformat.read(CHAPTER, as_version=4))
    for runs in (ablation_runs(None, "cpu", "load"), depth_runs(None, "cpu", "load")):
        for label, results in runs.items():
            drops = ["div." if r.history.meta.get("diverged") else f"{loss_drop(step_losses(r)):.4f}".replace(
                "-0.0000", "0.0000") for r in results]
            accs = ["-" if r.history.meta.get("diverged") else f"{100 * r.history.val_acc[-1]:.1f}" for r in results]
            learning = sum(d != "div." and float(d) > LEARNING for d in drops)
            row = r"\s+".join(map(re.escape, [label, *drops, *accs, f"{learning} of {len(results)}"]))
            assert re.search(r"^" + row + r"$", printed, flags=re.M), (
                f"the chapter's committed output has no row '{label} {drops} {accs}': re-run chapter 5")
    for r in reproduction_runs(None, "cpu", "load"):
        s = f"seed {r.history.meta['seed']}: loss first {step_losses(r)[0]:.4f}, last {step_losses(r)[-1]:.4f}"
        assert s in printed, f"the chapter does not print the stored reproduction '{s}'"


def test_seed_table_shows_every_seed_and_the_threshold():
    runs = {"a": [_history([math.log(10)] * 4 + [math.log(10) - 0.0105], val_acc=0.143), _history([2.0], 0.2),
                  _history([math.log(10)], 0.1)],
            "exploding": [_history([3e5], diverged=True)] * 3}
    for i, r in enumerate(runs["a"]):
        r.history.meta["seed"] = i
    lines = seed_table(runs, "start").splitlines()
    assert lines[1].split() == ["start", "s0", "s1", "s2", "s0", "s1", "s2", "learning"]
    assert lines[2].split() == ["a", "0.0105", "0.3026", "0.0000", "14.3", "20.0", "10.0", "2", "of", "3"]
    assert lines[3].split() == ["exploding", "div.", "div.", "div.", "-", "-", "-", "0", "of", "3"]
    assert f"more than {LEARNING} nats" in lines[4]
    assert lines[5] == "exploding: first loss 3.0e+05 to 3.0e+05, inf or NaN at step 2"
    assert max(map(len, lines)) <= 88


def test_the_failure_chapters_prose_quotes_only_printed_numbers():
    missing = unprinted_numbers(nbformat.read(CHAPTER, as_version=4))
    assert not missing, (f"chapter 5's prose quotes numbers that no output of the committed run prints (stale "
                         f"prose after a re-run?): {missing}")


# ---- chapter 6: its headline numbers come from its stored runs ----

BATCH_NORM_CHAPTER = CHAPTER.with_name("06-batch-norm-fix.ipynb")


def test_the_batch_norm_chapters_prose_quotes_only_printed_numbers():
    missing = unprinted_numbers(nbformat.read(BATCH_NORM_CHAPTER, as_version=4))
    assert not missing, (f"chapter 6's prose quotes numbers that no output of the committed run prints (stale "
                         f"prose after a re-run?): {missing}")


def test_the_batch_norm_chapter_prints_its_stored_run():
    """The accuracies chapter 6 prints (and its prose quotes) are those of its stored cpu-budget run."""
    h = stored_history(BATCH_NORM["cpu"].run_name(), "cpu")
    assert h is not None
    printed = _outputs(nbformat.read(BATCH_NORM_CHAPTER, as_version=4))
    for value in (h.meta["test_acc"], h.val_acc[-1], h.train_acc[-1]):
        assert f"{value:.1%}" in printed, f"chapter 6 does not print its stored run's {value:.1%}: re-run it"


def test_the_batch_norm_chapters_fix_table_is_the_stored_runs():
    """The isolated-fix table chapter 6 prints is recomputed from the stored runs, row by row."""
    printed = _outputs(nbformat.read(BATCH_NORM_CHAPTER, as_version=4))
    for row in summarize(fix_runs(None, "cpu", "load")):
        cells = [row.label, mean_sd(row.drop, digits=3), mean_sd(row.val_acc, 100), row.verdict]
        assert re.search(r"\s+".join(re.escape(c) for c in cells[:3]) + r"\s+\d+\s+" + re.escape(cells[3]),
                         printed), f"chapter 6 does not print the stored row {cells}: re-run chapter 6"


def test_batch_norm_runs_train_each_seed_with_its_test_accuracy():
    data = tiny_cifar(1600, 1100)            # the smoke plan's 1,024 + 512 images and 1,024 test images
    first, second = batch_norm_runs(data, "smoke", store="train", seeds=[0, 1], progress=False)
    assert (first.name, second.name) == ("batch-norm", "batch-norm-s1")
    for r in (first, second):
        assert r.trained and 0.0 <= r.history.meta["test_acc"] <= 1.0 and r.history.meta["test_size"] == 1024
    w0, w1 = (next(r.model.parameters()) for r in (first, second))
    assert not torch.equal(w0, w1)           # each seed draws its own initial weights


def test_batch_norm_runs_load_the_first_seed_with_its_network(tmp_path, monkeypatch):
    from vgg_helpers.models import build_vgg
    monkeypatch.setattr(store, "STORED_DIR", tmp_path)
    torch.manual_seed(5)
    trained = build_vgg(**BATCH_NORM["cpu"].model)
    h = History(meta={"test_acc": 0.8})
    h.append(epoch=1, train_loss=1.0, train_acc=0.7, val_loss=1.0, val_acc=0.75, lr=0.1, time=1.0)
    for name in ("batch-norm", "batch-norm-s1"):
        store.save_history(h, name, "cpu")
    store.save_weights(trained, "batch-norm", "cpu")
    first, second = batch_norm_runs(None, "cpu", seeds=[0, 1], device="cpu")
    assert not first.trained and not second.trained
    stored = next(first.model.parameters())
    assert torch.allclose(stored, next(trained.parameters()), rtol=1e-3, atol=1e-4)
    with pytest.raises(StoredRunError, match="holds no weights"):
        second.model
    with pytest.raises(TypeError, match="'batch-norm-s2' must be trained .*needs the data set"), \
            pytest.warns(UserWarning, match="no stored cpu-budget run is called 'batch-norm-s2'"):
        batch_norm_runs(None, "cpu", seeds=[2])


def test_the_batch_norm_main_runs_are_stored_over_seeds():
    plan = BATCH_NORM["cpu"]
    assert len(plan.seeds) >= 3 and plan.store == "load"
    for seed in plan.seeds:
        h = stored_history(plan.run_name(seed=seed), "cpu")
        assert h is not None, f"seed {seed} of chapter 6's main run is not stored"
        assert h.meta["seed"] == seed and h.meta["model"] == dict(plan.model)
        assert len(h.epoch) == plan.run.epochs and h.meta["test_size"] == 10_000
        assert "/" not in h.meta["data_source"]


@pytest.mark.skipif(not settings().data_dir, reason="needs CIFAR-10 on this machine (VGG_DATA_DIR)")
def test_the_batch_norm_runs_shipped_weights_reproduce_the_stored_test_accuracy():
    """The float16 weights shipped with chapter 6's run classify the test set as the trained network did."""
    from vgg_helpers.data import load_cifar10, make_loaders
    from vgg_helpers.training import predict
    run = batch_norm_runs(None, "cpu", seeds=[0], device="cpu")[0]
    data = load_cifar10(settings().data_dir, cache_dir=settings().cache_dir)
    if "JPEG" not in data.source:
        pytest.skip("the stored run was measured on the JPEG copy")
    plan = pick(BATCH_NORM, "cpu")
    test = make_loaders(data, plan.run, seed=plan.split_seed, device="cpu").test
    preds, labels = predict(run.model, test)
    acc = (preds == labels).float().mean().item()
    assert abs(acc - run.history.meta["test_acc"]) < 0.003, (acc, run.history.meta["test_acc"])
