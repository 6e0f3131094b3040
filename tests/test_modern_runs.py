"""Chapter 8's modern-VGG runs: the ladder's rungs, the final run and its shipped weights."""
import pytest
import torch

from tests.helpers import tiny_cifar
from vgg_helpers.budgets import MODERN_FINAL, MODERN_LADDER, MODERN_LADDER_RUN, MODERN_SHORT
from vgg_helpers.modern import ModernVGG
from vgg_helpers.modern_runs import FINAL, SHORT, final_runs, ladder_runs, split_modern_changes
from vgg_helpers.runs import StoredRunError, load_reference, run_name, weights_path
from vgg_helpers.settings import settings


def test_every_rung_adds_exactly_one_ingredient():
    assert MODERN_LADDER[0].base is None
    for before, rung in zip(MODERN_LADDER, MODERN_LADDER[1:]):
        assert rung.base == before.name
        changed = {k for k in rung.changes if rung.changes[k] != before.changes.get(k)}
        assert len(changed) == 1, (rung.name, changed)
        split_modern_changes(dict(rung.changes))         # every setting is the network's or the recipe's


def test_the_last_rung_is_the_modern_vgg_and_recipe():
    from vgg_helpers.modern import ModernConfig
    from vgg_helpers.recipes import ModernRecipe
    model, recipe = split_modern_changes(dict(MODERN_LADDER[-1].changes))
    for k, v in model.items():
        assert getattr(ModernConfig(), k) == v, k
    for k, v in recipe.items():
        if k != "ema_from_epoch":                         # scaled to the ladder's 4 epochs (3 of 15 in the final)
            assert getattr(ModernRecipe(), k) == v, k


def test_unknown_settings_are_named():
    with pytest.raises(ValueError, match="unknown modern-VGG settings \\['depth'\\]"):
        split_modern_changes({"depth": 3, "lr": 1.0})
    assert split_modern_changes({"whiten": False, "lr": 1.0}) == ({"whiten": False}, {"lr": 1.0})


def test_ladder_runs_train_and_the_tta_rung_rereads_its_base():
    data = tiny_cifar(512, 64)
    runs = ladder_runs(data, "smoke", "train", rungs=MODERN_LADDER[-2:], device="cpu")
    trained, tta = (runs[r.name] for r in MODERN_LADDER[-2:])
    assert tta is trained and len(trained) == len(MODERN_LADDER_RUN["smoke"]["seeds"])
    h = trained[0].history
    assert set(h.meta["acc_by_tta"]) == {"0", "1", "2"} and h.val_acc[-1] is not None
    assert isinstance(trained[0].model, ModernVGG)
    assert run_name("ch8-modern-1-pool-first", 2) == "ch8-modern-1-pool-first-s2"


def test_final_runs_are_recorded_by_the_benchmark_only():
    with pytest.raises(ValueError, match="bench.modern_vgg"):
        final_runs(None, "cpu", store="record")
    with pytest.raises(TypeError, match="needs the data set"):
        final_runs(None, "smoke", store="load")


def test_the_smoke_final_run_trains_on_a_random_subset():
    data = tiny_cifar(600, 600)
    run = final_runs(data, "smoke", device="cpu")[0]
    assert run.trained and run.history.meta["measured_on"] == "test"
    assert 0 <= run.history.meta["final_acc"] <= 1


def test_the_final_run_is_stored_over_three_seeds_with_seed_0s_weights():
    plan = MODERN_FINAL["cpu"]
    runs = [load_reference(run_name(FINAL, s), "cpu") for s in (0, 1, 2)]
    assert all(h is not None for h in runs)
    for h in runs:
        assert h.meta["arch"] == plan["arch"] and h.meta["recipe"]["epochs"] == plan["recipe"]["epochs"]
        assert h.meta["train_images"] == 50000 and h.meta["total_seconds"] <= 900
    assert weights_path(FINAL, "cpu").exists() and not weights_path(run_name(FINAL, 1), "cpu").exists()


def test_the_short_schedule_is_stored_over_three_seeds_without_weights():
    plan = MODERN_SHORT["cpu"]
    runs = final_runs(None, "cpu", name=SHORT)
    assert [r.history.meta["recipe"]["seed"] for r in runs] == [0, 1, 2]
    for r in runs:
        h = r.history
        assert h.meta["arch"] == plan["arch"] and h.meta["recipe"]["epochs"] == plan["recipe"]["epochs"]
        assert h.meta["train_images"] == 50000 and h.meta["measured_on"] == "test"
        assert len(h.val_acc) == plan["recipe"]["epochs"] and h.time[-1] <= h.meta["total_seconds"]
    assert not weights_path(SHORT, "cpu").exists()
    with pytest.raises(StoredRunError):
        runs[0].model


def test_final_runs_name_the_plans():
    with pytest.raises(ValueError, match="ch8-modern-short"):
        final_runs(None, "cpu", name="ch8-modern-long")
    epochs = MODERN_SHORT["cpu"]["recipe"]["epochs"]
    with pytest.raises(ValueError, match=f"bench.modern_vgg .*--epochs {epochs} .*--store ch8-modern-short"):
        final_runs(None, "cpu", store="record", name=SHORT)


@pytest.mark.skipif(not settings().data_dir, reason="needs CIFAR-10 on this machine (VGG_DATA_DIR)")
def test_the_shipped_weights_reproduce_the_stored_test_accuracy():
    """The float16 weights of the final run classify the test set as the trained network did."""
    from vgg_helpers.data import load_cifar10
    from vgg_helpers.recipes import evaluate_modern, normalize_images
    run = final_runs(None, "cpu", device="cpu")[0]
    data = load_cifar10(settings().data_dir, cache_dir=settings().cache_dir)
    if "JPEG" not in data.source:
        pytest.skip("the stored run was measured on the JPEG copy")
    acc = evaluate_modern(run.model.to(memory_format=torch.channels_last), normalize_images(data.test_images),
                          data.test_labels, level=run.history.meta["recipe"]["tta_level"])
    assert abs(acc - run.history.meta["final_acc"]) < 0.003, (acc, run.history.meta["final_acc"])


def test_ladder_table_pairs_seeds_and_reads_the_tta_level():
    from types import SimpleNamespace
    from vgg_helpers.modern_runs import ladder_table

    def run(a0, a2, secs=10.0):
        meta = dict(train_seconds=secs, acc_by_tta={"0": dict(acc=a0, seconds=1.0), "2": dict(acc=a2, seconds=4.0)})
        return SimpleNamespace(history=SimpleNamespace(meta=meta))
    first, tta = MODERN_LADDER[-2], MODERN_LADDER[-1]
    shared = [run(0.80, 0.82), run(0.70, 0.73)]
    rows = ladder_table({first.name: shared, tta.name: shared}, rungs=[first, tta])
    assert rows[0]["accs"] == [0.80, 0.70] and rows[0]["gain"] is None and rows[0]["seconds"] == 11.0
    assert rows[1]["accs"] == [0.82, 0.73] and rows[1]["seconds"] == 14.0
    assert rows[1]["gain"] == pytest.approx(0.025) and rows[1]["gain_sd"] == pytest.approx(0.00707, abs=1e-5)


def test_the_ladder_is_stored_for_every_rung_and_seed():
    runs = ladder_runs(None, "cpu", store="load")
    plan = MODERN_LADDER_RUN["cpu"]
    assert list(runs) == [r.name for r in MODERN_LADDER]
    for rung in MODERN_LADDER:
        assert len(runs[rung.name]) == len(plan["seeds"]) >= 3
        for seed, run in zip(plan["seeds"], runs[rung.name]):
            meta = run.history.meta
            assert not run.trained and meta["recipe"]["seed"] == seed
            assert meta["train_images"] == plan["train_size"] and meta["recipe"]["epochs"] == plan["recipe"]["epochs"]
            model, recipe = split_modern_changes(dict(rung.changes))
            assert meta["model_changes"] == model
            assert all(meta["recipe"][k] == v for k, v in recipe.items() if k != "tta_level")   # rung 9 re-reads 8
            assert "/" not in meta["data_source"]
