"""The classic VGG made fast: fast_run, the ladder, and the stored runs the chapter shows."""
from dataclasses import asdict, replace

import pytest

from tests.helpers import tiny_cifar
from vgg_helpers.book import fast
from vgg_helpers.book.plans import BATCH_NORM, FAST, FAST_LADDER, FAST_NO_AUGMENT, pick
from vgg_helpers.book.store import stored_history
from vgg_helpers.configs import VGGConfig
from vgg_helpers.data import TensorLoader
from vgg_helpers.fast import SpeedSettings


def test_timed_loader_records_each_pass():
    data = tiny_cifar(n_test=60)
    loader = fast.TimedLoader(TensorLoader(data.test_images, data.test_labels, 25))
    assert sum(len(y) for _, y in loader) == 60
    assert len(loader.seconds) == 1 and len(loader) == 3


def test_fast_run_records_test_accuracy_and_timings():
    plan = FAST["smoke"]
    h = fast.fast_run(tiny_cifar(600), plan, budget="smoke", eval_each_epoch="test", progress=False).history
    assert len(h.test_acc) == plan.run.epochs and h.val_acc == [None] * plan.run.epochs
    assert len(h.meta["eval_seconds"]) == plan.run.epochs
    assert all(t > 0 for t in h.meta["train_seconds"])
    assert h.meta["test_acc"] == h.meta["test_acc_flip"] and h.meta["eval_set"] == "test"
    assert h.meta["run"] == "fast-final" and 0 <= h.meta["test_acc_plain"] <= 1
    with pytest.raises(ValueError, match="eval_each_epoch"):
        fast.fast_run(tiny_cifar(), plan, budget="smoke", eval_each_epoch="train")


def test_a_diverged_run_has_no_test_accuracy():
    plan = replace(FAST["smoke"], recipe={**FAST["smoke"].recipe, "lr": 1e30})
    h = fast.fast_run(tiny_cifar(600), plan, budget="smoke", progress=False).history
    assert h.meta["diverged"] and h.meta["test_acc"] is None and h.meta["test_acc_flip"] is None


def test_ladder_starts_at_the_batch_norm_run_and_reaches_the_final_recipe():
    ladder = pick(FAST_LADDER, "cpu")
    first, bn = ladder.for_rung("0-start"), pick(BATCH_NORM, "cpu")
    assert first.recipe == bn.recipe and first.model == bn.model and first.augment and not first.tta
    assert first.speed == SpeedSettings(threads=None, channels_last=False, amp=False, compile=False)
    assert first.run.val_size == 5000                            # the batch-norm run kept a validation hold-out
    # the last cumulative rung is the final recipe at the ladder's budget: same network, recipe, speed, data
    last, final = ladder.for_rung("3-all-images"), pick(FAST, "cpu")
    assert (last.recipe, last.model, last.speed, last.augment, last.tta) == \
        (final.recipe, final.model, final.speed, final.augment, final.tta)
    assert last.run.val_size == final.run.val_size == 0

    def flat(p):
        return {**p.recipe, **p.model, **asdict(p.speed), "augment": p.augment, "tta": p.tta,
                "val_size": p.run.val_size}

    for rung in ladder.rungs:          # each rung differs from its base in exactly what it names
        if rung.base is not None:
            r, b = flat(ladder.for_rung(rung.name)), flat(ladder.for_rung(rung.base))
            assert {k for k in r if r[k] != b.get(k)} == {k for k, v in rung.changes.items() if b[k] != v}
    assert [ladder.retrains(r.name) for r in ladder.rungs].count(False) == 1   # only the test-time-flip rung
    assert ladder.for_rung("no-bn-kaiming").model["batch_norm"] is False


def test_run_ladder_smoke():
    rows = fast.run_ladder(tiny_cifar(1200), "smoke", store="train", progress=False)
    assert [r["rung"] for r in rows] == [rung.name for rung in FAST_LADDER["smoke"].rungs]
    assert rows[0]["name"] == "fast-ladder-0-start"
    tta = next(i for i, r in enumerate(rows) if r["rung"].endswith("tta"))
    assert rows[tta]["history"] is rows[tta - 1]["history"]       # re-read, not retrained
    assert rows[tta]["test_acc"] == rows[tta - 1]["history"].meta["test_acc_flip"]
    assert rows[tta - 1]["test_acc"] == rows[tta - 1]["history"].meta["test_acc_plain"]
    assert all(r["train_seconds"] > 0 and r["source"] == "trained here" for r in rows)


def _assert_history_matches(name: str, plan, eval_set=None):
    history = stored_history(name, "cpu")
    assert history is not None, f"no stored run {name}: record it (python -m vgg_helpers.book.record fast)"
    meta = history.meta
    config = meta["train_config"]
    assert config["epochs"] == plan.run.epochs and len(history.epoch) == plan.run.epochs, name
    assert {k: config[k] for k in plan.recipe} == dict(plan.recipe), name
    assert meta["model_config"] == VGGConfig(**plan.model).to_dict(), name
    assert meta["speed"] == asdict(plan.speed), name
    tta = meta["tta"] if "tta" in meta else int(meta["tta_flip"])   # (recorded before the one TTA: a flag)
    assert (meta["augment"], tta) == (plan.augment, plan.tta), name
    expected_images = (50_000 - plan.run.val_size) if plan.run.train_size is None else plan.run.train_size
    assert meta["train_images"] == expected_images and meta["eval_set"] == eval_set, name


def test_stored_cpu_runs_are_the_plans_runs():
    # the chapter shows stored cpu-budget runs: they must have been made with the settings the plans have now
    _assert_history_matches("fast-final", pick(FAST, "cpu"), "test")
    _assert_history_matches("fast-final-no-augment", pick(FAST_NO_AUGMENT, "cpu"), "test")
    ladder = pick(FAST_LADDER, "cpu")
    for rung in ladder.rungs:
        if ladder.retrains(rung.name):
            _assert_history_matches(ladder.run_name(rung.name), ladder.for_rung(rung.name))


def test_fast_run_without_data_says_what_to_pass():
    with pytest.raises(TypeError, match=r"'fast-final' must be trained .*load_cifar10"):
        fast.fast_run(None, FAST["smoke"], budget="smoke")
