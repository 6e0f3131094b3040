"""The runs of the chapter on the paper's methods: pre-initialisation from a shallow net, the test methods, the
schedule comparison, and the stored runs the chapter shows."""
from __future__ import annotations

import math
from pathlib import Path

import nbformat
import pytest
import torch
from torch import nn

from vgg_helpers import build_vgg
from vgg_helpers.budgets import PAPER_INIT_VARIANTS, PAPER_METHODS, InitVariant
from vgg_helpers.paper_runs import (SCHEDULES_COMPARED, TEST_METHODS, init_from_shallow, init_run_name, init_runs,
                                    jitter_run_name, jitter_runs, measure_test_methods, schedule_run_name,
                                    schedule_runs)
from vgg_helpers.runs import load_reference
from tests.helpers import tiny_cifar, unprinted_numbers

KW = dict(head="cifar", input_size=32, num_classes=10, width=0.125)


def _convs(model: nn.Module) -> list[nn.Conv2d]:
    return [m for m in model.features if isinstance(m, nn.Conv2d)]


def test_init_from_shallow_copies_by_block_and_position():
    torch.manual_seed(0)
    shallow, deep = build_vgg("vgg11", **KW), build_vgg("vgg16", **KW)
    before = [c.weight.clone() for c in _convs(deep)]
    pairs = init_from_shallow(deep, shallow)
    assert pairs == [("features.0", "features.0"), ("features.3", "features.5"), ("features.6", "features.10"),
                     ("features.8", "features.12"), ("classifier.0", "classifier.0")]
    s, d = _convs(shallow), _convs(deep)
    # A: conv1 | conv2 | conv3 conv4 ...  ->  D: conv1_1 | conv2_1 | conv3_1 conv3_2 (indices 0, 2, 4, 5)
    for i, j in ((0, 0), (1, 2), (2, 4), (3, 5)):
        assert torch.equal(d[j].weight, s[i].weight) and torch.equal(d[j].bias, s[i].bias)
    for j in (1, 3, 6, 7, 8, 9, 10, 11, 12):            # every other conv keeps its own init
        assert torch.equal(d[j].weight, before[j])
    assert torch.equal(deep.classifier[0].weight, shallow.classifier[0].weight)


def test_init_from_shallow_copies_the_three_fc_layers_of_the_paper_head():
    torch.manual_seed(0)
    kw = dict(num_classes=10, width=1 / 16)
    shallow, deep = build_vgg("vgg11", **kw), build_vgg("vgg19", **kw)
    pairs = init_from_shallow(deep, shallow)
    assert [p for p in pairs if p[0].startswith("classifier")] == [
        ("classifier.0", "classifier.0"), ("classifier.3", "classifier.3"), ("classifier.6", "classifier.6")]
    x = torch.randn(1, 3, 224, 224)
    deep.eval(), shallow.eval()
    with torch.no_grad():   # same first conv: same first-layer output
        assert torch.equal(deep.features[0](x), shallow.features[0](x))


def test_init_from_shallow_refuses_mismatched_nets():
    shallow = build_vgg("vgg11", **KW)
    with pytest.raises(ValueError, match="same widths and head"):
        init_from_shallow(build_vgg("vgg16", **{**KW, "width": 0.25}), shallow)
    with pytest.raises(ValueError, match="conv_layers must be a whole number from 0 to 8"):
        init_from_shallow(build_vgg("vgg16", **KW), shallow, conv_layers=9)
    with pytest.raises(TypeError, match="expects VGGs"):
        init_from_shallow(nn.Linear(2, 2), shallow)


def test_run_names():
    assert init_run_name("D-xavier", 2) == "paper-init-D-xavier-s2"
    assert jitter_run_name(0) == "paper-jitter-s0"
    assert schedule_run_name("plateau", 1) == "paper-schedule-plateau-s1"


def test_init_runs_train_every_variant_and_start_the_student_from_the_teacher():
    data = tiny_cifar(400, 100)
    variants = [InitVariant("A", "teacher", dict(arch="vgg11", init="xavier")),
                InitVariant("D", "student", dict(arch="vgg16", init="paper"), teacher="A")]
    runs = init_runs(data, "smoke", variants=variants, progress=False)
    assert list(runs) == ["A", "D"] and all(len(r) == len(PAPER_METHODS["smoke"].init_seeds) for r in runs.values())
    meta = runs["D"][0].history.meta
    assert meta["copied"][0] == ["features.0", "features.0"] or meta["copied"][0] == ("features.0", "features.0")
    assert 0 <= meta["test_acc"] <= 1 and meta["step_loss"] and meta["step_loss_every"] == 5
    assert runs["A"][0].history.meta["copied"] == []
    with pytest.raises(ValueError, match="starts from the trained 'A'"):
        init_runs(data, "smoke", variants=variants[1:], progress=False)


def test_measure_test_methods_on_a_small_net():
    torch.manual_seed(0)
    model = build_vgg("vgg11", batch_norm=True, **KW).eval()
    images, labels = torch.randn(12, 3, 32, 32), torch.arange(12) % 10
    plan = PAPER_METHODS["smoke"]
    res = measure_test_methods(model, images, labels, plan)
    assert list(res) == list(TEST_METHODS)
    assert all(0 <= r["acc"] <= 1 and r["seconds"] >= 0 for r in res.values())
    q = len(plan.test_scales)
    assert res["multi-crop, 3 scales"]["views"] == 2 * plan.crop_grid ** 2 * q
    assert res["dense + multi-crop"]["views"] == 2 * q + 2 * plan.crop_grid ** 2 * q
    with torch.no_grad():   # "one view" is the plain forward pass
        assert res["one view"]["acc"] == (model(images).argmax(1) == labels).float().mean().item()


def test_jitter_and_schedule_runs_in_the_smoke_budget():
    data = tiny_cifar(400, 100)
    jit = jitter_runs(data, "smoke", progress=False)
    assert [r.name for r in jit] == [jitter_run_name(s) for s in PAPER_METHODS["smoke"].jitter_seeds]
    assert list(jit[0].history.meta["test_methods"]) == list(TEST_METHODS)
    sched = schedule_runs(data, "smoke", progress=False)
    assert list(sched) == list(SCHEDULES_COMPARED)
    assert sched["plateau"][0].history.meta["schedule"] == "plateau"


# ---- the stored cpu-budget runs the chapter shows ----

def _stored(name: str):
    history = load_reference(name, "cpu")
    assert history is not None, f"stored run {name}-cpu is missing: python -m vgg_helpers.paper_runs record"
    return history


def test_every_stored_init_run_matches_the_plan():
    plan = PAPER_METHODS["cpu"]
    for v in PAPER_INIT_VARIANTS:
        for seed in plan.init_seeds:
            h = _stored(init_run_name(v.name, seed))
            assert h.meta["variant"] == v.name and h.meta["seed"] == seed and h.meta["width"] == plan.init_width
            assert h.meta["train_images"] == plan.init_run.train_size
            if v.teacher:
                assert len(h.meta["copied"]) == 5
            if "diverged" not in h.meta:
                assert len(h.epoch) == plan.init_run.epochs and 0 <= h.meta["test_acc"] <= 1
                assert h.meta["test_images"] == 10000


def test_every_stored_jitter_and_schedule_run_matches_the_plan():
    plan = PAPER_METHODS["cpu"]
    for seed in plan.jitter_seeds:
        h = _stored(jitter_run_name(seed))
        assert h.meta["eval_images"] == plan.eval_images and h.meta["train_scales"] == list(plan.train_scales)
        assert list(h.meta["test_methods"]) == list(TEST_METHODS)
        assert len(h.epoch) == plan.jitter_run.epochs
    for schedule in SCHEDULES_COMPARED:
        for seed in plan.schedule_seeds:
            h = _stored(schedule_run_name(schedule, seed))
            assert h.meta["schedule"] == schedule and len(h.epoch) == plan.schedule_run.epochs
            assert h.meta["train_images"] == plan.schedule_run.train_size
    # the plateau runs really dropped the rate; one-cycle ended near zero
    plateau = _stored(schedule_run_name("plateau", plan.schedule_seeds[0]))
    assert min(plateau.lr) < max(plateau.lr) / 5
    assert math.isclose(max(plateau.lr), 0.1)


def test_the_plain_runs_use_the_papers_optimiser():
    """Sec. 3.1: SGD with momentum 0.9, weight decay 5e-4, learning rate 10^-2 (batch 256: 128 here, said so)."""
    from vgg_helpers.budgets import PAPER_RECIPE
    from vgg_helpers.training import TrainConfig

    cfg = TrainConfig(**PAPER_RECIPE)
    assert (cfg.lr, cfg.momentum, cfg.weight_decay, cfg.schedule, cfg.label_smoothing) == (
        0.01, 0.9, 5e-4, "constant", 0.0)
    assert not cfg.nesterov


# ---- chapter 7's prose quotes only numbers its own cells printed ----

CHAPTER = Path(__file__).resolve().parents[1] / "notebooks" / "07-paper-methods.ipynb"
# a decimal number in prose, unless it names a section, an equation or a version ("sec. 3.1", "torch 2.14")
def test_the_number_check_can_fail():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("It reached 41.3% (sec. 3.1), not 12.5."),
                nbformat.v4.new_code_cell("print(41.3)")]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="41.3\n")]
    assert unprinted_numbers(nb) == ["12.5"]


def test_chapter_7_prose_quotes_only_printed_numbers():
    missing = unprinted_numbers(nbformat.read(CHAPTER, as_version=4))
    assert not missing, (f"chapter 7's prose quotes numbers that no output of the committed run prints (stale "
                         f"prose after a re-run?): {missing}")
