"""The modern VGG's runs: the ladder's rungs, the final runs and their shipped weights."""
from types import SimpleNamespace

import pytest

from tests.helpers import tiny_cifar
from vgg_helpers.book import store
from vgg_helpers.book.modern import bridge_effects, bridge_runs, final_runs, ladder_runs, ladder_table
from vgg_helpers.book.plans import (BRIDGE_CLASSIC, BRIDGE_MODERN, FAST_LADDER, MODERN, MODERN_LADDER, MODERN_SHORT,
                                     pick)
from vgg_helpers.book.store import StoredRunError, stored_history, weights_path
from vgg_helpers.modern import ModernConfig, ModernRecipe, ModernVGG
from vgg_helpers.settings import settings

LADDER = pick(MODERN_LADDER, "cpu")


def test_every_rung_adds_exactly_one_ingredient():
    assert LADDER.rungs[0].base is None
    for before, rung in zip(LADDER.rungs, LADDER.rungs[1:]):
        assert rung.base == before.name and len(rung.changes) == 1, rung.name


def test_the_last_rung_is_the_modern_vgg_and_recipe():
    last = LADDER.for_rung(LADDER.rungs[-1].name)
    config = ModernConfig(**{k: v for k, v in last.model.items() if k != "arch"})
    recipe, default = last.modern_recipe(), ModernRecipe()
    for k in ("whiten", "pool_first", "identity_init", "activation"):
        assert getattr(config, k) == getattr(ModernConfig(), k), k
    for k in ("bias_scaler", "label_smoothing", "flip", "tta_level"):
        assert getattr(recipe, k) == getattr(default, k), k
    assert recipe.ema_from_epoch == 1        # scaled to the ladder's 4 epochs (3 of 15 in the default)


def test_ladder_runs_train_and_the_tta_rung_rereads_its_base():
    data = tiny_cifar(512, 64)
    names = [r.name for r in MODERN_LADDER["smoke"].rungs[-2:]]
    runs = ladder_runs(data, "smoke", "train", rungs=names, device="cpu")
    trained, tta = (runs[n] for n in names)
    assert tta is trained and len(trained) == len(MODERN_LADDER["smoke"].seeds)
    h = trained[0].history
    assert set(h.meta["acc_by_tta"]) == {"0", "1", "2"} and h.val_acc[-1] is not None
    assert h.meta["measured_on"] == "validation" and h.meta["run"] == "modern-ladder-8-averaging"
    assert isinstance(trained[0].model, ModernVGG)


def test_final_runs_need_data_only_to_train(monkeypatch):
    monkeypatch.setattr(store, "STORED_DIR", store.STORED_DIR / "nowhere")
    with pytest.raises(TypeError, match="'modern-final-s100' must be trained .*needs the data set"):
        final_runs(None, "cpu", store="load")


def test_the_smoke_final_run_trains_on_a_random_subset(monkeypatch):
    import vgg_helpers.book.modern as book_modern
    import vgg_helpers.modern as modern

    levels, evaluate = [], modern.evaluate_modern

    def counted(model, loader, level=2):
        levels.append(level)
        return evaluate(model, loader, level=level)

    monkeypatch.setattr(modern, "evaluate_modern", counted)          # train_modern's
    monkeypatch.setattr(book_modern, "evaluate_modern", counted)     # modern_run's
    data = tiny_cifar(600, 600)
    run = final_runs(data, "smoke", device="cpu")[0]
    assert run.trained and run.history.meta["measured_on"] == "test"
    assert 0 <= run.history.meta["final_acc"] <= 1 and run.history.meta["train_images"] == 512
    meta = run.history.meta
    # the plan's level (2) is measured once, on train_modern's clock, and read from there; the others once more
    assert sorted(levels) == [0] * (len(run.history.epoch) + 1) + [1, 2] and pick(MODERN, "smoke").tta == 2
    assert meta["acc_by_tta"]["2"] == dict(acc=meta["final_acc"],
                                           seconds=meta["total_seconds"] - meta["train_seconds"])
    assert list(meta["acc_by_tta"]) == ["0", "1", "2"] and meta["acc_by_tta"]["2"]["seconds"] > 0


def test_the_final_run_is_stored_over_five_declared_seeds_with_the_first_seeds_weights():
    plan = MODERN["cpu"]
    assert len(plan.seeds) == 5 and min(plan.seeds) >= 100          # fresh seeds for the test-set recording
    runs = [stored_history(plan.run_name(seed=s), "cpu") for s in plan.seeds]
    assert all(h is not None for h in runs)
    assert [h.meta["recipe"]["seed"] for h in runs] == list(plan.seeds)
    for h in runs:
        assert h.meta["arch"] == plan.model["arch"] and h.meta["recipe"]["epochs"] == plan.run.epochs
        assert h.meta["train_images"] == 50000 and h.meta["total_seconds"] <= 900
        assert h.meta["recipe"] == {**h.meta["recipe"], **plan.recipe, "batch_size": plan.run.batch_size}
    assert weights_path(plan.run_name(seed=plan.seeds[0]), "cpu").exists()
    assert not any(weights_path(plan.run_name(seed=s), "cpu").exists() for s in plan.seeds[1:])


def test_the_short_schedule_is_stored_over_five_declared_seeds_without_weights():
    plan = MODERN_SHORT["cpu"]
    assert len(plan.seeds) == 5 and min(plan.seeds) >= 100          # fresh seeds for the test-set recording
    runs = final_runs(None, "cpu", name=plan.name)
    assert [r.history.meta["recipe"]["seed"] for r in runs] == list(plan.seeds)
    for r in runs:
        h = r.history
        assert h.meta["arch"] == plan.model["arch"] and h.meta["recipe"]["epochs"] == plan.run.epochs
        assert h.meta["train_images"] == 50000 and h.meta["measured_on"] == "test"
        assert len(h.val_acc) == plan.run.epochs and h.time[-1] <= h.meta["total_seconds"]
    assert not any(weights_path(plan.run_name(seed=s), "cpu").exists() for s in plan.seeds)
    with pytest.raises(StoredRunError):
        runs[0].model


def test_final_runs_name_the_plans():
    with pytest.raises(ValueError, match="modern-final, modern-short"):
        final_runs(None, "cpu", name="modern-long")


def test_final_runs_load_quietly_when_asked(capsys):
    final_runs(None, "cpu", name=MODERN_SHORT["cpu"].name, store="load")
    assert "Loaded the stored" in capsys.readouterr().out
    final_runs(None, "cpu", name=MODERN_SHORT["cpu"].name, store="load", quiet=True)
    assert capsys.readouterr().out == ""


@pytest.mark.skipif(not settings().data_dir, reason="needs CIFAR-10 on this machine (VGG_DATA_DIR)")
def test_the_shipped_weights_reproduce_the_stored_test_accuracy():
    """The float16 weights of the final run classify the test set as the trained network did. One view per image
    (the last epoch's stored accuracy): the same network as the 6-view final accuracy, at a sixth of the cost (the
    chapter itself measures the 6 views again when it runs)."""
    from vgg_helpers.data import TensorLoader, load_cifar10
    from vgg_helpers.modern import evaluate_modern
    run = final_runs(None, "cpu", device="cpu", quiet=True)[0]
    data = load_cifar10(settings().data_dir, cache_dir=settings().cache_dir)
    if "JPEG" not in data.source:
        pytest.skip("the stored run was measured on the JPEG copy")
    acc = evaluate_modern(run.model, TensorLoader(data.test_images, data.test_labels, 2000), level=0)
    assert abs(acc - run.history.val_acc[-1]) < 0.003, (acc, run.history.val_acc[-1])


def test_ladder_table_pairs_seeds_and_reads_the_tta_level():
    def run(a0, a2, secs=10.0):
        meta = dict(train_seconds=secs, acc_by_tta={"0": dict(acc=a0, seconds=1.0), "2": dict(acc=a2, seconds=4.0)})
        return SimpleNamespace(history=SimpleNamespace(meta=meta))
    first, tta = LADDER.rungs[-2], LADDER.rungs[-1]
    shared = [run(0.80, 0.82), run(0.70, 0.73)]
    rows = ladder_table({first.name: shared, tta.name: shared}, "cpu")
    assert rows[0]["accs"] == [0.80, 0.70] and rows[0]["gain"] is None and rows[0]["seconds"] == 11.0
    assert rows[1]["accs"] == [0.82, 0.73] and rows[1]["seconds"] == 14.0
    assert rows[1]["gain"] == pytest.approx(0.025) and rows[1]["gain_sd"] == pytest.approx(0.00707, abs=1e-5)
    assert rows[1]["gain_se"] == pytest.approx(0.00707 / 2 ** 0.5, abs=1e-5) and rows[0]["gain_se"] is None


def test_the_ladder_is_stored_for_every_rung_and_seed():
    runs = ladder_runs(None, "cpu", store="load")
    assert list(runs) == [r.name for r in LADDER.rungs]
    for rung in LADDER.rungs:
        plan = LADDER.for_rung(rung.name)
        assert len(runs[rung.name]) == len(LADDER.seeds) >= 3
        for seed, run in zip(LADDER.seeds, runs[rung.name]):
            meta = run.history.meta
            assert not run.trained and meta["recipe"]["seed"] == seed
            assert meta["train_images"] == plan.run.train_size and meta["recipe"]["epochs"] == plan.run.epochs
            assert meta["model_changes"] == {k: v for k, v in plan.model.items() if k != "arch"}
            recipe = plan.modern_recipe(seed)
            assert all(meta["recipe"][k] == getattr(recipe, k) for k in meta["recipe"] if k != "tta_level"), \
                rung.name                                              # the tta rung re-reads the rung before
            assert "/" not in meta["data_source"]


def test_bridge_effects_are_paired_differences_of_the_four_cells():
    rows = [dict(network=n, recipe=r, accs=accs) for n, r, accs in (
        ("classic", "classic", [0.70, 0.72, 0.74]), ("modern", "classic", [0.71, 0.74, 0.74]),
        ("classic", "modern", [0.60, 0.61, 0.65]), ("modern", "modern", [0.80, 0.82, 0.84]))]
    effects = {e["what"]: e for e in bridge_effects(rows)}
    assert effects["network, classic recipe"]["gains"] == pytest.approx([0.01, 0.02, 0.0])
    assert effects["network, modern recipe"]["gain"] == pytest.approx(0.2)
    assert effects["recipe, classic VGG"]["gains"] == pytest.approx([-0.10, -0.11, -0.09])
    assert "recipe (head lr), classic VGG" not in effects                # its cell is not in these rows
    e = effects["recipe, modern VGG"]
    assert e["gain_se"] == pytest.approx(e["gain_sd"] / 3 ** 0.5) and e["gain"] == pytest.approx(0.09)


def test_the_bridge_trains_each_network_with_each_recipe_on_the_validation_split():
    data = tiny_cifar(1600, 600)
    rows = bridge_runs(data, "smoke", device="cpu", quiet=True)
    assert [(r["network"], r["recipe"]) for r in rows] == [("classic", "classic"), ("modern", "classic"),
                                                           ("classic", "modern"), ("classic", "modern, head lr"),
                                                           ("modern", "modern")]
    for r in rows:
        assert len(r["accs"]) == len(r["seeds"]) and all(0 <= a <= 1 for a in r["accs"] + r["own_accs"])
    plan = BRIDGE_MODERN["smoke"]
    assert plan.for_rung("classic-vgg").model == FAST_LADDER["smoke"].model        # the same classic network
    # the head-lr arm: the classic VGG at the lr that moves an unscaled head's logits as the modern one's move
    assert plan.for_rung("classic-vgg-head-lr").modern_recipe().lr == pytest.approx(11.5 / 81)
    assert BRIDGE_CLASSIC["smoke"].recipe == FAST_LADDER["smoke"].for_rung("2-tta").recipe   # the same recipe


def test_the_bridge_is_stored_for_every_cell_and_seed_and_never_saw_the_test_set():
    rows = bridge_runs(None, "cpu", quiet=True)
    assert len(rows) == 5 and all(r["seeds"] == [0, 1, 2] for r in rows)
    for r in rows:
        for name in r["names"]:
            meta = stored_history(name, "cpu").meta
            assert meta["measured_on"] in ("val", "validation") and meta["train_images"] == 45000


def test_the_airbench_chapter_loads_images_only_where_a_cell_needs_them():
    """Its stored runs need no images: before *Your run* no cell uses the data set, and the drivers get the
    loading function (called only if a run is trained, as in the smoke budget)."""
    import ast
    from pathlib import Path

    import nbformat
    chapter = Path(__file__).resolve().parents[2] / "notebooks" / "09-airbench-style-vgg.ipynb"
    cells = nbformat.read(chapter, as_version=4).cells
    first = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith("## Your run"))
    before = [c.source for c in cells[:first] if c.cell_type == "code" and not c.source.startswith("# Setup")]
    names = {n.id for src in before for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Name)}
    assert "data" not in names, "a cell before 'Your run' uses the data set: pass cifar10 (the function) instead"
    calls = [n for src in before for n in ast.walk(ast.parse(src))
             if isinstance(n, ast.Call) and getattr(n.func, "id", "") in {"ladder_runs", "final_runs", "fast_run",
                                                                          "bridge_runs"}]
    assert len(calls) == 5 and all(isinstance(c.args[0], ast.Name) and c.args[0].id == "cifar10" for c in calls)
    your_run = next(c.source for c in cells[first:] if c.cell_type == "code")
    assert "data = cifar10()" in your_run
