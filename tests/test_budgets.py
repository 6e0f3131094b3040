"""The chapters' plans: complete for every budget, and every key is one the code accepts."""
from dataclasses import fields

import pytest

from vgg_helpers.budgets import (BATCH_NORM_RECIPE, CHAPTER5, CHAPTER5_ABLATION, CHAPTER5_DEPTH, CHAPTER6,
                                 CHAPTER6_FIX, CHAPTER7,
                                 CHAPTER7_LADDER, CHAPTER7_LADDER_RUN, MODEL_KEYS, RECIPE_KEYS, SPEED_KEYS,
                                 SpeedSettings, pick, split_changes)
from vgg_helpers.configs import VGGConfig
from vgg_helpers.models import build_vgg
from vgg_helpers.training import TrainConfig


def test_key_lists_match_the_classes_they_name():
    assert set(RECIPE_KEYS) == {f.name for f in fields(TrainConfig)}
    assert set(MODEL_KEYS) == {f.name for f in fields(VGGConfig)}
    assert set(SPEED_KEYS) == {f.name for f in fields(SpeedSettings)}


@pytest.mark.parametrize("table", [CHAPTER5, CHAPTER6, CHAPTER7, CHAPTER7_LADDER_RUN])
def test_every_budget_has_a_plan(table):
    assert set(table) == {"smoke", "cpu", "gpu"}


def test_plans_build_and_configure():
    for table in (CHAPTER6, CHAPTER7):
        for plan in table.values():
            TrainConfig(epochs=plan.run.epochs, **plan.recipe)
            VGGConfig(**plan.model)
    for plan in CHAPTER5.values():
        TrainConfig(**plan.recipe)
        build_vgg(**{**plan.model, "width": plan.ablation_width})
    assert CHAPTER6["cpu"].recipe is CHAPTER7["cpu"].recipe is BATCH_NORM_RECIPE   # one recipe, not copies


def test_rungs_are_named_once_and_route_their_changes():
    for ladder, prefix in ((CHAPTER5_ABLATION, "ch5-"), (CHAPTER5_DEPTH, "ch5-depth-"), (CHAPTER6_FIX, "ch6-fix-"),
                           (CHAPTER7_LADDER, "ch7-")):
        names = [r.name for r in ladder]
        assert len(set(names)) == len(names) and all(n.startswith(prefix) for n in names)
    model, recipe, speed, other = split_changes({"init": "kaiming", "lr": 0.1, "amp": True, "augment": False})
    assert (model, recipe, speed, other) == ({"init": "kaiming"}, {"lr": 0.1}, {"amp": True}, {"augment": False})


def test_depth_runs_compare_only_depth_and_init():
    """Every depth run drops the soft-max and changes nothing but the architecture and the init."""
    for rung in CHAPTER5_DEPTH:
        assert rung.changes["softmax"] is False
        assert set(rung.changes) <= {"arch", "softmax", "init", "init_std"}
    assert {(r.changes["arch"], r.changes.get("init_std")) for r in CHAPTER5_DEPTH} >= {
        ("vgg11", 0.01), ("vgg11", 0.1), ("vgg16", 0.01), ("vgg16", 0.1)}    # both readings of "10^-2 variance"


def test_fix_runs_are_a_2x2_then_one_ingredient_per_rung():
    grid, ladder = CHAPTER6_FIX[:4], CHAPTER6_FIX[4:]
    assert {(r.changes.get("batch_norm", False), r.changes.get("init", "paper")) for r in grid} == {
        (False, "paper"), (False, "kaiming"), (True, "paper"), (True, "kaiming")}
    before = grid[-1]
    for rung in ladder:      # each rung keeps everything of the one before and adds its own ingredient
        assert rung.base == before.name and dict(rung.changes, **before.changes) == dict(rung.changes)
        assert set(rung.changes) - set(before.changes), rung.name
        before = rung
    final = CHAPTER6_FIX[-1].changes        # the ladder ends at chapter 6's recipe (on VGG-16)
    for key in ("lr", "nesterov", "schedule", "warmup", "label_smoothing"):
        assert final[key] == BATCH_NORM_RECIPE[key], key
    assert final["head"] == "cifar" and final["batch_norm"] and final["augment"]


def test_pick_names_the_budgets():
    assert pick(CHAPTER6, "cpu") is CHAPTER6["cpu"]
    with pytest.raises(ValueError, match="smoke, cpu, gpu"):
        pick(CHAPTER6, "tpu")


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_size=2.5), r"batch_size must be a whole number >= 1; got 2\.5"),
    (dict(epochs=0), r"epochs must be a whole number >= 1; got 0"),
    (dict(val_size=-1), r"val_size must be a whole number >= 0"),
    (dict(train_size="all"), r"train_size must be a whole number >= 1 \(or None for all\); got 'all'"),
])
def test_run_budget_refuses_bad_sizes_when_built(kwargs, message):
    from vgg_helpers.budgets import RunBudget

    with pytest.raises((TypeError, ValueError), match=message):
        RunBudget(**{**dict(train_size=None, val_size=0, epochs=1, batch_size=8), **kwargs})
    with pytest.raises(ValueError, match=r"threads must be a whole number >= 1 \(or None for one per core\); got 0"):
        SpeedSettings(threads=0)
