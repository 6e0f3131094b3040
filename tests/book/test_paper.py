"""The runs of the paper's methods: pre-initialisation from a shallow net, the test methods, the schedule
comparison, and the stored runs the chapter shows."""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest

from vgg_helpers.book.paper import init_runs, jitter_runs, schedule_runs
from vgg_helpers.book.plans import PAPER_INIT, PAPER_JITTER, PAPER_RECIPE, PAPER_SCHEDULE
from vgg_helpers.book.store import stored_history
from vgg_helpers.paper import TEST_METHODS, crop_positions
from vgg_helpers.training import TrainConfig
from tests.helpers import tiny_cifar, unprinted_numbers


def test_init_runs_train_every_start_and_start_the_deep_net_from_the_trained_shallow_one(monkeypatch):
    data = tiny_cifar(400, 100)
    runs = init_runs(data, "smoke", progress=False)
    plan = PAPER_INIT["smoke"]
    assert list(runs) == [r.name for r in plan.rungs] and all(len(r) == len(plan.seeds) for r in runs.values())
    assert runs["A-std0.01"][0].name == "paper-init-A-std0.01"
    meta = runs["D-from-A"][0].history.meta
    assert list(meta["copied"][0]) == ["features.0", "features.0"] and len(meta["copied"]) == 5
    assert 0 <= meta["test_acc"] <= 1 and meta["step_loss"] and meta["step_loss_every"] == 5
    assert runs["A-xavier"][0].history.meta["copied"] == []
    monkeypatch.setitem(PAPER_INIT, "smoke", replace(plan, rungs=(plan.rung("D-from-A"),)))
    with pytest.raises(ValueError, match="starts from the trained 'A-xavier'"):
        init_runs(data, "smoke", progress=False)


def test_jitter_and_schedule_runs_in_the_smoke_budget():
    data = tiny_cifar(400, 100)
    jit = jitter_runs(data, "smoke", progress=False)
    assert [r.name for r in jit] == [PAPER_JITTER["smoke"].run_name(seed=s) for s in PAPER_JITTER["smoke"].seeds]
    assert list(jit[0].history.meta["test_methods"]) == list(TEST_METHODS)
    sched = schedule_runs(data, "smoke", progress=False)
    assert list(sched) == ["plateau", "onecycle"]
    assert sched["plateau"][0].history.meta["schedule"] == "plateau"
    assert sched["plateau"][0].name == "paper-schedule-plateau"


# ---- the stored cpu-budget runs the chapter shows ----

def _stored(name: str):
    history = stored_history(name, "cpu")
    assert history is not None, f"stored run {name}-cpu is missing: python -m vgg_helpers.book.record paper"
    return history


def test_every_stored_init_run_matches_the_plan():
    plan = PAPER_INIT["cpu"]
    for rung in plan.rungs:
        for seed in plan.seeds:
            h = _stored(plan.run_name(rung.name, seed))
            assert h.meta["variant"] == rung.name and h.meta["seed"] == seed and h.meta["width"] == plan.width
            assert h.meta["train_images"] == plan.run.train_size
            assert h.meta["train_config"] == {**h.meta["train_config"], **plan.recipe}
            if rung.start_from:
                assert len(h.meta["copied"]) == 5
            if "diverged" not in h.meta:
                assert len(h.epoch) == plan.run.epochs and 0 <= h.meta["test_acc"] <= 1
                assert h.meta["test_images"] == 10000


def test_every_stored_jitter_and_schedule_run_matches_the_plan():
    plan = PAPER_JITTER["cpu"]
    for seed in plan.seeds:
        h = _stored(plan.run_name(seed=seed))
        assert h.meta["eval_images"] == plan.extra["eval_images"]
        assert h.meta["train_scales"] == list(plan.extra["train_scales"])
        assert list(h.meta["test_methods"]) == list(TEST_METHODS)
        assert len(h.epoch) == plan.run.epochs
        # the passes were counted as made: each distinct crop once (at Q = 32 the crop is the whole image)
        grid = plan.extra["crop_grid"]
        distinct = sum(2 * len(crop_positions(q, 32, grid)) ** 2 for q in plan.extra["test_scales"])
        assert h.meta["test_methods"]["multi-crop, 3 scales"]["views"] == distinct
        assert h.meta["test_methods"]["dense, 3 scales"]["views"] == 2 * len(plan.extra["test_scales"])
    plan = PAPER_SCHEDULE["cpu"]
    for rung in plan.rungs:
        for seed in plan.seeds:
            h = _stored(plan.run_name(rung.name, seed))
            assert h.meta["schedule"] == rung.changes["schedule"] and len(h.epoch) == plan.run.epochs
            assert h.meta["train_images"] == plan.run.train_size
            assert h.meta["train_config"]["patience"] == plan.recipe["patience"]
    # the plateau runs really dropped the rate; one-cycle ended near zero
    plateau = _stored(plan.run_name("plateau", plan.seeds[0]))
    assert min(plateau.lr) < max(plateau.lr) / 5
    assert math.isclose(max(plateau.lr), 0.1)


def test_the_plain_runs_use_the_papers_optimiser():
    """Sec. 3.1: SGD with momentum 0.9, weight decay 5e-4, learning rate 10^-2 (batch 256: 128 here, said so)."""
    cfg = TrainConfig(**PAPER_RECIPE)
    assert (cfg.lr, cfg.momentum, cfg.weight_decay, cfg.schedule, cfg.label_smoothing) == (
        0.01, 0.9, 5e-4, "constant", 0.0)
    assert not cfg.nesterov


# ---- the chapter's prose quotes only numbers its own cells printed ----

CHAPTER = Path(__file__).resolve().parents[2] / "notebooks" / "07-paper-methods.ipynb"


def test_the_number_check_can_fail():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("It reached 41.3% (sec. 3.1), not 12.5."),
                nbformat.v4.new_code_cell("print(41.3)")]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="41.3\n")]
    assert unprinted_numbers(nb) == ["12.5"]


def test_the_paper_chapters_prose_quotes_only_printed_numbers():
    missing = unprinted_numbers(nbformat.read(CHAPTER, as_version=4))
    assert not missing, (f"chapter 7's prose quotes numbers that no output of the committed run prints (stale "
                         f"prose after a re-run?): {missing}")
