"""The classic VGG made fast: fast_run, the ladder, and the stored runs the chapter shows."""
import re
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
    assert len(ladder.seeds) >= 3                                   # the protocol's paired seeds
    # the last cumulative rung is the final recipe at the ladder's budget, on the hold-out instead of all images
    last, final = ladder.for_rung("2-tta"), pick(FAST, "cpu")
    assert (last.recipe, last.model, last.speed, last.augment, last.tta) == \
        (final.recipe, final.model, final.speed, final.augment, final.tta)
    assert final.run.val_size == 0

    def flat(p):
        return {**p.recipe, **p.model, **asdict(p.speed), "augment": p.augment, "tta": p.tta,
                "val_size": p.run.val_size}

    for rung in ladder.rungs:          # every rung keeps the 5,000 validation images (never the test set)
        assert ladder.for_rung(rung.name).run.val_size == 5000, rung.name
        if rung.base is not None:      # and differs from its base in exactly what it names
            r, b = flat(ladder.for_rung(rung.name)), flat(ladder.for_rung(rung.base))
            assert {k for k in r if r[k] != b.get(k)} == {k for k, v in rung.changes.items() if b[k] != v}
    assert [ladder.retrains(r.name) for r in ladder.rungs].count(False) == 1   # only the test-time-flip rung
    no_bn = ladder.for_rung("no-bn-kaiming")
    assert no_bn.model["batch_norm"] is False and no_bn.recipe["lr"] == 0.05   # the hold-out's learning rate


def test_run_ladder_smoke_measures_on_validation_only(monkeypatch):
    tested = []
    real = fast.evaluate
    monkeypatch.setattr(fast, "evaluate", lambda model, loader, **kw: tested.append(loader) or real(model, loader, **kw))
    rows = fast.run_ladder(tiny_cifar(1200), "smoke", store="train", progress=False)
    assert [r["rung"] for r in rows] == [rung.name for rung in FAST_LADDER["smoke"].rungs]
    assert rows[0]["names"] == ["fast-ladder-0-start"] and rows[0]["gains"] is None
    tta = next(i for i, r in enumerate(rows) if r["rung"].endswith("tta"))
    assert rows[tta]["histories"] is rows[tta - 1]["histories"]     # re-read, not retrained
    assert rows[tta]["accs"] == [rows[tta - 1]["histories"][0].meta["val_acc_flip"]]
    assert rows[tta - 1]["accs"] == [rows[tta - 1]["histories"][0].meta["val_acc_plain"]]
    assert rows[tta]["gains"] == [rows[tta]["accs"][0] - rows[tta - 1]["accs"][0]]
    for r in rows:
        assert r["train_seconds"] > 0 and all(h.meta["measured_on"] == "val" for h in r["histories"])
        assert all("test_acc" not in h.meta for h in r["histories"]) and not r["histories"][0].test_acc
    # the test set is never evaluated: every evaluation went to a loader of the validation images
    assert tested and all(len(loader.labels) == FAST_LADDER["smoke"].run.val_size for loader in tested)


def test_run_ladder_statistics_over_seeds(monkeypatch):
    def fake_run(data, plan, *, name, **kw):
        rung = re.sub(r"-s\d+$", "", name).removeprefix("fast-ladder-")
        acc = {"0-start": 0.70, "1-fast-step": 0.71}.get(rung, 0.6)
        acc += 0.01 * plan.seeds[0]
        h = fast.History()
        h.meta.update(val_acc=acc, val_acc_plain=acc, val_acc_flip=acc + 0.005, train_seconds=[10.0 + plan.seeds[0]])
        return fast.RunResult(name, h, True)

    monkeypatch.setattr(fast, "fast_run", fake_run)
    rows = {r["rung"]: r for r in fast.run_ladder(None, "cpu", store="train")}
    assert rows["1-fast-step"]["accs"] == pytest.approx([0.71, 0.72, 0.73])
    assert rows["1-fast-step"]["gain"] == pytest.approx(0.01) and rows["1-fast-step"]["gain_sd"] == pytest.approx(0)
    assert rows["2-tta"]["gains"] == pytest.approx([0.005] * 3)
    assert rows["without-augment"]["gain"] == pytest.approx(0.6 - 0.715)   # against rung 2, seed by seed
    assert rows["0-start"]["acc_sd"] == pytest.approx(0.01) and rows["0-start"]["train_seconds"] == 11.0
    assert rows["without-augment"]["names"][2] == "fast-ladder-without-augment-s2"


def test_a_validation_run_needs_a_hold_out():
    with pytest.raises(ValueError, match="hold images out"):
        fast.fast_run(tiny_cifar(), FAST["smoke"], budget="smoke", measure_on="val")
    with pytest.raises(ValueError, match="measure_on"):
        fast.fast_run(tiny_cifar(), FAST["smoke"], budget="smoke", measure_on="train")


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
    assert config["seed"] == (int(name.rsplit("-s", 1)[1]) if re.search(r"-s\d+$", name) else 0), name


def test_stored_cpu_runs_are_the_plans_runs():
    # the chapter shows stored cpu-budget runs: they must have been made with the settings the plans have now
    _assert_history_matches("fast-final", pick(FAST, "cpu"), "test")
    _assert_history_matches("fast-final-no-augment", pick(FAST_NO_AUGMENT, "cpu"), "test")
    ladder = pick(FAST_LADDER, "cpu")
    for rung in ladder.rungs:
        for seed in ladder.seeds if ladder.retrains(rung.name) else ():
            name = ladder.run_name(rung.name, seed)
            _assert_history_matches(name, ladder.for_rung(rung.name), "val")
            meta = stored_history(name, "cpu").meta          # measured on the validation split, never the test set
            assert meta["measured_on"] == "val" and meta["val_images"] == 5000 and "test_acc" not in meta, name


def test_fast_run_without_data_says_what_to_pass():
    with pytest.raises(TypeError, match=r"'fast-final' must be trained .*load_cifar10"):
        fast.fast_run(None, FAST["smoke"], budget="smoke")
