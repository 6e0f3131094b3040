"""Chapter 8's recipe: FastModel, the flip, timing helpers, fast_run, the ladder, and its stored runs."""
import math
from dataclasses import asdict, replace

import pytest
import torch

from tests.helpers import tiny_cifar, tiny_model
from vgg_helpers import fast
from vgg_helpers.budgets import CHAPTER6, CHAPTER7, CHAPTER7_LADDER, CHAPTER7_LADDER_RUN, Rung, SpeedSettings
from vgg_helpers.configs import VGGConfig
from vgg_helpers.data import TensorLoader
from vgg_helpers.runs import load_reference
from vgg_helpers.training import train


def test_fast_model_flip_and_layout():
    net = tiny_model()
    model = fast.FastModel(net, channels_last=True, tta_flip=True).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        both = model(x)
        expected = (net(x) + net(x.flip(3))) / 2
    assert torch.allclose(both, expected, atol=1e-5)
    assert net.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    model.train()
    assert model(x).shape == (4, 10)                                # no flip while training


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, None])
def test_fast_model_autocasts_in_the_device_precision(monkeypatch, dtype):
    monkeypatch.setattr(fast, "autocast_dtype", lambda device="cpu": dtype)
    net = tiny_model()
    seen = []
    net.features[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    model = fast.FastModel(net, amp=True)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.dtype == torch.float32                               # the loss always sees float32 logits
    assert seen == [dtype or torch.float32] and model.amp_dtype("cpu") == dtype
    seen.clear()
    model = fast.FastModel(net, amp=False)
    model(torch.randn(2, 3, 32, 32))
    assert seen == [torch.float32] and model.amp_dtype("cpu") is None


def test_float16_training_uses_a_gradient_scaler(monkeypatch):
    """A GPU without native bfloat16 (a T4) trains in float16 with a scaler; simulated on the CPU."""
    monkeypatch.setattr(fast, "autocast_dtype", lambda device="cpu": torch.float16)
    calls = []
    real = torch.amp.GradScaler

    class Recording(real):
        def step(self, optimizer, *args, **kwargs):
            calls.append(self.get_scale())
            return super().step(optimizer, *args, **kwargs)

    monkeypatch.setattr(torch.amp, "GradScaler", Recording)
    data = tiny_cifar(n_train=64)
    loader = TensorLoader(data.train_images, data.train_labels, 16, shuffle=True, seed=0)
    torch.manual_seed(0)
    model = fast.FastModel(tiny_model(), amp=True)
    history = train(model, loader, epochs=1, lr=0.01, device="cpu", progress=False)
    assert len(calls) == len(loader) and history.meta["amp_dtype"] == "float16"
    assert all(math.isfinite(v) for v in history.train_loss)
    calls.clear()
    monkeypatch.setattr(fast, "autocast_dtype", lambda device="cpu": torch.bfloat16)
    history = train(fast.FastModel(tiny_model(), amp=True), loader, epochs=1, device="cpu",
                    progress=False)
    assert calls == [] and history.meta["amp_dtype"] == "bfloat16"   # bfloat16 needs no scaler


def test_test_accuracy_and_timed_loader():
    data = tiny_cifar(n_test=60)
    loader = fast.TimedLoader(TensorLoader(data.test_images, data.test_labels, 25))
    acc = fast.test_accuracy(tiny_model(), loader)
    assert set(acc) == {"plain", "flip"} and all(0 <= v <= 1 for v in acc.values())
    assert len(loader.seconds) == 1 and len(loader) == 3


def test_first_reaching():
    assert fast.first_reaching([0.5, 0.88, 0.882, 0.9], 0.882) == 2
    assert fast.first_reaching([0.5, None, 0.7], 0.882) is None


def test_fast_run_records_test_accuracy_and_timings():
    plan = CHAPTER7["smoke"]
    h = fast.fast_run("t", tiny_cifar(600), plan, budget="smoke", eval_each_epoch="test", progress=False).history
    assert len(h.test_acc) == plan.run.epochs and h.val_acc == [None] * plan.run.epochs
    assert len(h.meta["eval_seconds"]) == plan.run.epochs
    assert all(t > 0 for t in h.meta["train_seconds"])
    assert h.meta["test_acc"] == h.meta["test_acc_flip"] and h.meta["eval_set"] == "test"
    with pytest.raises(ValueError, match="eval_each_epoch"):
        fast.fast_run("t", tiny_cifar(), plan, budget="smoke", eval_each_epoch="train")


def test_a_diverged_run_has_no_test_accuracy():
    plan = replace(CHAPTER7["smoke"], recipe={**CHAPTER7["smoke"].recipe, "lr": 1e30})
    h = fast.fast_run("t", tiny_cifar(600), plan, budget="smoke", progress=False).history
    assert h.meta["diverged"] and h.meta["test_acc"] is None and h.meta["test_acc_flip"] is None


def test_ladder_starts_at_chapter6_and_reaches_the_final_recipe():
    steps = {s.rung.name: s for s in fast.ladder_plans("cpu")}
    assert list(steps) == [rung.name for rung in CHAPTER7_LADDER]
    first = steps["ch7-ladder-0-chapter6"].plan
    ch6 = CHAPTER6["cpu"]
    assert first.recipe == ch6.recipe and first.model == ch6.model and first.augment and not first.tta_flip
    assert first.speed == SpeedSettings(threads=None, channels_last=False, amp=False, compile=False)
    assert first.run == CHAPTER7_LADDER_RUN["cpu"]                  # chapter 6 kept a validation hold-out
    # the last cumulative rung is the final recipe at the ladder's budget: same network, recipe, speed, data
    last, final = steps["ch7-ladder-3-all-images"].plan, CHAPTER7["cpu"]
    assert (last.recipe, last.model, last.speed, last.augment, last.tta_flip) == \
        (final.recipe, final.model, final.speed, final.augment, final.tta_flip)
    assert last.run.val_size == final.run.val_size == 0

    def flat(p):
        return {**p.recipe, **p.model, **asdict(p.speed), "augment": p.augment, "tta_flip": p.tta_flip,
                "val_size": p.run.val_size}

    for rung in CHAPTER7_LADDER:          # each rung differs from its base in exactly what it names
        if rung.base is not None:
            r, b = flat(steps[rung.name].plan), flat(steps[rung.base].plan)
            assert {k for k in r if r[k] != b.get(k)} == {k for k, v in rung.changes.items() if b[k] != v}
    assert [s.reuse_base for s in steps.values()].count(True) == 1   # only the test-time-flip rung
    assert steps["ch7-no-bn-kaiming"].plan.model["batch_norm"] is False


def test_ladder_rejects_unknown_settings_and_bases():
    with pytest.raises(ValueError, match="ch7-x.*unknown settings.*learning_rate"):
        fast.ladder_plans("cpu", [Rung("ch7-x", "typo", None, {"learning_rate": 0.1})])
    with pytest.raises(ValueError, match="not an earlier rung"):
        fast.ladder_plans("cpu", [Rung("ch7-x", "bad base", "ch7-nope", {})])


def test_run_ladder_smoke():
    rows = fast.run_ladder(tiny_cifar(1200), "smoke", store="train", progress=False)
    assert [r["name"] for r in rows] == [rung.name for rung in CHAPTER7_LADDER]
    tta = next(i for i, r in enumerate(rows) if r["name"].endswith("tta"))
    assert rows[tta]["history"] is rows[tta - 1]["history"]       # re-read, not retrained
    assert rows[tta]["test_acc"] == rows[tta - 1]["history"].meta["test_acc_flip"]
    assert rows[tta - 1]["test_acc"] == rows[tta - 1]["history"].meta["test_acc_plain"]
    assert all(r["train_seconds"] > 0 and r["source"] == "trained here" for r in rows)


def _assert_history_matches(name: str, plan, eval_set=None):
    history = load_reference(name, "cpu")
    assert history is not None, f"no stored run {name}: record it (python -m vgg_helpers.fast record)"
    meta = history.meta
    config = meta["train_config"]
    assert config["epochs"] == plan.run.epochs and len(history.epoch) == plan.run.epochs, name
    assert {k: config[k] for k in plan.recipe} == dict(plan.recipe), name
    assert meta["model_config"] == VGGConfig(**plan.model).to_dict(), name
    assert meta["speed"] == asdict(plan.speed), name
    assert (meta["augment"], meta["tta_flip"]) == (plan.augment, plan.tta_flip), name
    expected_images = (50_000 - plan.run.val_size) if plan.run.train_size is None else plan.run.train_size
    assert meta["train_images"] == expected_images and meta["eval_set"] == eval_set, name


def test_stored_cpu_runs_are_the_plans_runs():
    # chapter 8 shows stored cpu-budget runs: they must have been made with the settings budgets.py has now
    plan = CHAPTER7["cpu"]
    _assert_history_matches("ch7-final", plan, "test")
    _assert_history_matches("ch7-final-no-augment", replace(plan, augment=False), "test")
    for step in fast.ladder_plans("cpu"):
        if not step.reuse_base:
            _assert_history_matches(step.rung.name, step.plan)


def test_fast_run_without_data_says_what_to_pass():
    with pytest.raises(TypeError, match=r"needs the data set to train 't'.*load_cifar10"):
        fast.fast_run("t", None, CHAPTER7["smoke"], budget="smoke")
    with pytest.raises(ValueError, match="empty loader"):
        fast.test_accuracy(tiny_model(), [])
