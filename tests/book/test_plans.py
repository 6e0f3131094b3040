"""The book's plans: one shape, complete for every budget, named by topic, and every setting one the code accepts."""
import re
from dataclasses import fields

import pytest

from vgg_helpers.book.plans import (BATCH_NORM, BATCH_NORM_FIX, FAILURE, FAILURE_DEPTH, FAST, FAST_LADDER,
                                    MODERN_LADDER, PAPER_INIT, TOPICS, Plan, Rung, ladder, pick)
from vgg_helpers.configs import VGGConfig
from vgg_helpers.data import RunBudget
from vgg_helpers.fast import SpeedSettings
from vgg_helpers.models import build_vgg
from vgg_helpers.modern import MODERN_CONFIGS, ModernConfig
from vgg_helpers.training import BATCH_NORM_RECIPE

PLANS = [(topic, budget, plan) for topic, table in TOPICS.items() for budget, plan in table.items()]


@pytest.mark.parametrize("topic", TOPICS)
def test_every_topic_has_one_plan_per_budget(topic):
    assert set(TOPICS[topic]) == {"smoke", "cpu", "gpu"}
    assert all(isinstance(p, Plan) for p in TOPICS[topic].values())
    assert len({p.name for p in TOPICS[topic].values()}) == 1, "a topic's runs keep one name in every budget"


MODERN_RECIPE_TOPICS = {"modern", "modern-short", "modern-ladder", "bridge-modern-recipe"}   # train_modern's


@pytest.mark.parametrize("topic, budget, plan", PLANS, ids=[f"{t}-{b}" for t, b, _ in PLANS])
def test_every_plan_and_rung_builds_its_network_and_recipe(topic, budget, plan):
    """Every rung's complete plan gives a valid network and recipe: no setting lands where it does not belong."""
    assert not re.search(r"ch\d|chapter", plan.name), "plans are named by topic, never by chapter"
    for name in [None] + [r.name for r in plan.rungs]:
        p = plan if name is None else plan.for_rung(name)
        if p.model.get("arch") in MODERN_CONFIGS:      # the network by its arch; the recipe by its topic (the
            ModernConfig(**{k: v for k, v in p.model.items() if k != "arch"})    # bridge crosses them)
        else:
            VGGConfig(**p.model)
        if topic in MODERN_RECIPE_TOPICS:
            assert p.modern_recipe().epochs == p.run.epochs
        else:
            assert p.train_config().epochs == p.run.epochs


def test_one_recipe_not_copies():
    assert pick(BATCH_NORM, "cpu").recipe is pick(FAST, "cpu").recipe is BATCH_NORM_RECIPE
    assert "seed" not in BATCH_NORM_RECIPE, "seeds are the plan's (Plan.seeds), not the recipe's"


def test_changes_are_routed_by_name():
    plan = pick(BATCH_NORM, "cpu").changed({"init": "paper", "lr": 0.01, "amp": True, "augment": False,
                                            "val_size": 0, "tta": 1})
    assert plan.model["init"] == "paper" and plan.recipe["lr"] == 0.01 and plan.speed.amp
    assert plan.augment is False and plan.run.val_size == 0 and plan.tta == 1
    assert pick(BATCH_NORM, "cpu").model["init"] == "kaiming", "changed() returns a new plan"
    with pytest.raises(ValueError, match="unknown setting 'learning_rate'.*recipe fields"):
        pick(BATCH_NORM, "cpu").changed({"learning_rate": 0.1})


def test_ladder_chains_rungs_and_a_rung_resolves_along_its_chain():
    rungs = ladder([("a", "+ a", {"lr": 0.5}), ("b", "+ b", {"init": "paper"}), ("c", "flip", {"tta": 1})])
    assert [(r.name, r.base) for r in rungs] == [("a", None), ("b", "a"), ("c", "b")]
    plan = Plan("x", RunBudget(None, 0, 1, 8), {"arch": "vgg11"}, {"lr": 0.1}, rungs=rungs)
    assert plan.for_rung("b").recipe["lr"] == 0.5 and plan.for_rung("b").model["init"] == "paper"
    assert plan.retrains("b") and not plan.retrains("c"), "a rung that only adds test-time flips re-reads its base"
    assert plan.run_name("c", 2) == "x-c-s2" and plan.run_name() == "x"
    with pytest.raises(ValueError, match="starts from 'z', which is not an earlier rung"):
        Plan("y", plan.run, {}, {}, rungs=[Rung("a", "a", base="z")])
    with pytest.raises(ValueError, match="has no rung 'q'; its rungs: a, b, c"):
        plan.rung("q")


def test_depth_runs_compare_only_depth_and_init():
    """Every depth run drops the soft-max and changes nothing but the architecture and the init."""
    rungs = pick(FAILURE_DEPTH, "cpu").rungs
    for rung in rungs:
        assert rung.changes["softmax"] is False
        assert set(rung.changes) <= {"arch", "softmax", "init", "init_std"}
    assert {(r.changes["arch"], r.changes.get("init_std")) for r in rungs} >= {
        ("vgg11", 0.01), ("vgg11", 0.1), ("vgg16", 0.01), ("vgg16", 0.1)}    # both readings of "10^-2 variance"


def test_fix_runs_are_a_2x2_then_one_ingredient_per_rung():
    plan = pick(BATCH_NORM_FIX, "cpu")
    grid, steps = plan.rungs[:4], plan.rungs[5:]        # rungs[4]: the control (test below)
    assert {(r.changes.get("batch_norm", False), r.changes.get("init", "paper")) for r in grid} == {
        (False, "paper"), (False, "kaiming"), (True, "paper"), (True, "kaiming")}
    before = grid[-1]
    for rung in steps:      # each rung starts from the one before and adds its own ingredient
        assert rung.base == before.name and rung.changes, rung.name
        before = rung
    final = plan.for_rung(plan.rungs[-1].name)      # the ladder ends at the batch-norm recipe (on VGG-16)
    for key in ("lr", "nesterov", "schedule", "warmup", "label_smoothing"):
        assert final.recipe[key] == BATCH_NORM_RECIPE[key], key
    assert final.model["head"] == "cifar" and final.model["batch_norm"] and final.augment


def test_the_fix_control_differs_from_the_ladders_first_rung_only_in_batch_norm():
    """No soft-max + Kaiming without batch norm: one change from its base, and everything but batch norm the same
    as the ladder's first rung (no soft-max on batch norm + Kaiming)."""
    plan = pick(BATCH_NORM_FIX, "cpu")
    control, first = plan.rungs[4], plan.rungs[5]
    assert control.base == "plain-kaiming" and dict(control.changes) == {"softmax": False}
    a, b = plan.for_rung(control.name), plan.for_rung(first.name)
    assert (a.run, a.recipe, a.augment, a.seeds, a.steps) == (b.run, b.recipe, b.augment, b.seeds, b.steps)
    assert {k: v for k, v in a.model.items() if k != "batch_norm"} == {
        k: v for k, v in b.model.items() if k != "batch_norm"}
    assert (a.model["batch_norm"], b.model["batch_norm"]) == (False, True)


def test_the_fast_ladder_starts_from_the_batch_norm_run():
    start, bn = pick(FAST_LADDER, "cpu").for_rung("0-start"), pick(BATCH_NORM, "cpu")
    assert (start.model, start.recipe, start.speed, start.tta) == (bn.model, bn.recipe, SpeedSettings(), 0)
    assert pick(FAST_LADDER, "cpu").for_rung("2-tta").speed.amp


def test_the_modern_ladder_ends_at_the_modern_recipe_defaults():
    plan = pick(MODERN_LADDER, "cpu")
    last = plan.for_rung(plan.rungs[-1].name)
    assert last.tta == 2 and plan.for_rung(plan.rungs[0].name).tta == 0
    config = ModernConfig(**{k: v for k, v in last.model.items() if k != "arch"})
    assert (config.whiten, config.pool_first, config.identity_init, config.activation) == (True, True, True, "gelu")


def test_the_paper_init_plan_starts_one_rung_from_another():
    plan = pick(PAPER_INIT, "cpu")
    starts = {r.name: r.start_from for r in plan.rungs if r.start_from}
    assert starts == {"D-from-A": "A-xavier"}
    build_vgg(**plan.for_rung("D-from-A").model)


def test_failure_plans_keep_the_blog_posts_network_and_the_papers_optimiser():
    plan = pick(FAILURE, "cpu")
    assert plan.model["softmax"] and plan.model["init"] == "paper" and plan.recipe["lr"] == 0.01
    assert (plan.steps, plan.width, plan.seeds) == (60, 1.0, (0, 1, 2))


def test_pick_names_the_budgets():
    assert pick(BATCH_NORM, "cpu") is BATCH_NORM["cpu"]
    with pytest.raises(ValueError, match="smoke, cpu, gpu"):
        pick(BATCH_NORM, "tpu")


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_size=2.5), r"batch_size must be a whole number >= 1; got 2\.5"),
    (dict(epochs=0), r"epochs must be a whole number >= 1; got 0"),
    (dict(val_size=-1), r"val_size must be a whole number >= 0"),
    (dict(train_size="all"), r"train_size must be a whole number >= 1 \(or None for all\); got 'all'"),
])
def test_run_budget_refuses_bad_sizes_when_built(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        RunBudget(**{**dict(train_size=None, val_size=0, epochs=1, batch_size=8), **kwargs})
    with pytest.raises(ValueError, match=r"threads must be a whole number >= 1 \(or None for one per core\); got 0"):
        SpeedSettings(threads=0)


def test_plan_fields_are_documented():
    """Every field of the one plan shape has its unit comment (nanoGPT's rule) in the source."""
    import inspect

    source = inspect.getsource(Plan)
    for f in fields(Plan):
        line = next(line for line in source.splitlines() if line.strip().startswith(f"{f.name}:"))
        assert "#" in line, f"Plan.{f.name} has no comment"
