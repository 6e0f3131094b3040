"""The recorded results the chapters print (``vgg_helpers.book.results``): the shipped summary holds what the
plans recorded, and its tables say what they show."""
from vgg_helpers.book.plans import MODERN, MODERN_SHORT
from vgg_helpers.book.results import (comparisons_table, holdout_comparisons, precision_steps, precision_table,
                                      recordings_on_test_set, recordings_table)


def test_the_shipped_test_set_recordings_hold_every_frozen_schedule_of_the_plans():
    rows = recordings_on_test_set()
    assert [r["date"] for r in rows] == sorted(r["date"] for r in rows)          # oldest first
    for r in rows:
        assert len(r["seeds"]) == len(r["test_acc"]) == len(r["seconds"]) > 0, r["source"]
        assert all(0.1 < a < 1.0 for a in r["test_acc"]) and all(s > 0 for s in r["seconds"]), r["source"]
        assert r["precision"] in ("bfloat16", "float32") and r["cpu"], r["source"]
    for plan in (MODERN["cpu"], MODERN_SHORT["cpu"]):         # the recordings the chapter's stored runs are
        want = (list(plan.seeds), plan.model["arch"], plan.run.epochs, "bfloat16")
        (row,) = [r for r in rows if (r["seeds"], r["network"], r["epochs"], r["precision"]) == want]
        assert row["under_protocol"] and row["recipe_changes"] == dict(plan.recipe), row["source"]


def test_the_recordings_table_marks_the_protocol_and_the_recipe_changes():
    def row(date, seeds, accs, protocol, changes=None):
        return {"date": date, "network": "modern-128-256", "epochs": 6.0, "precision": "bfloat16", "cpu": "AMD EPYC",
                "under_protocol": protocol, "recipe_changes": changes or {}, "seeds": seeds, "test_acc": accs,
                "seconds": [380.4 + s for s in range(len(seeds))]}

    lines = recordings_table([row("2026-11-27", [0, 1, 2], [0.88, 0.89, 0.90], False),
                              row("2026-12-06", [100], [0.902], True),
                              row("2026-12-07", [600, 602], [0.8805, 0.8829], True, {"ema_from_epoch": 2})])
    assert len(lines) == 6 and all(len(line) <= 88 for line in lines)
    assert lines[0].split() == ["date", "network", "ep", "precision", "CPU", "seeds", "test", "acc", "(%)",
                                "lowest", "seconds"]
    assert lines[1].split() == ["2026-11-27", "modern-128-256", "6", "bfloat16", "AMD", "EPYC", "0-2",
                                "89.00", "+-", "1.00", "88.00", "380-382"]
    assert lines[2].startswith("-- the protocol from here on")            # once, before the first such row
    assert lines[3].split()[-4:] == ["100", "90.20", "90.20", "380"]       # one seed: no spread
    assert lines[4].split()[1] == "modern-128-256*" and lines[4].split()[6] == "600,602"
    assert lines[5] == "* the final recipe with ema_from_epoch=2"


def test_the_shipped_holdout_comparisons_are_paired_by_seed_and_hold_the_declared_choices():
    rows = holdout_comparisons()
    assert [r["date"] for r in rows] == sorted(r["date"] for r in rows)          # oldest first
    for r in rows:
        assert len(r["seeds"]) == len(r["base_acc"]) == len(r["arm_acc"]) == len(r["gains"]) >= 3, r["source"]
        assert [round(a - b, 6) for a, b in zip(r["arm_acc"], r["base_acc"])] == [round(g, 6) for g in r["gains"]]
        assert abs(r["gain"] - sum(r["gains"]) / len(r["gains"])) < 1e-9 and r["gain_se"] > 0, r["source"]
    assert {r["plan"] for r in rows} == {"batch-norm", "fast-ladder", "modern"}
    assert holdout_comparisons("modern") == [r for r in rows if r["plan"] == "modern"]
    # the short schedule's two choices, as plans.py gives them (6 epochs, averaging from epoch 2)
    modern = {r["change"]: r for r in holdout_comparisons("modern")}
    assert modern["epochs=6"]["base"].endswith("epochs=7") and modern["epochs=6"]["epochs"] == 6
    assert MODERN_SHORT["cpu"].run.epochs == 6 and dict(MODERN_SHORT["cpu"].recipe) == {"ema_from_epoch": 2}
    assert modern["ema_from_epoch=2"]["gain"] > 2 * modern["ema_from_epoch=2"]["gain_se"]


def test_the_comparisons_table_names_each_base_once_and_calls_a_gain_clear_over_two_standard_errors():
    def row(base, change, gains, plan="fast-ladder"):
        return {"plan": plan, "network": "vgg11 x0.5", "base": base, "change": change, "epochs": 4.0,
                "cpu": "AMD EPYC", "precision": "bfloat16", "base_acc": [0.80, 0.80, 0.80],
                "arm_acc": [0.80 + g for g in gains], "gain": sum(gains) / 3,
                "gain_se": (sum((g - sum(gains) / 3) ** 2 for g in gains) / 2) ** 0.5 / 3 ** 0.5}

    lines = comparisons_table([row("rung no-bn-kaiming", "lr=0.05", [0.05, 0.04, 0.06]),
                               row("rung no-bn-kaiming", "lr=0.01", [-0.01, 0.01, 0.003]),
                               row("rung 2-tta, epochs=16", "augment=False", [-0.04, -0.03, -0.05])])
    assert all(len(line) <= 88 for line in lines)
    assert [line for line in lines if line.startswith("base:")] == [
        "base: fast-ladder (vgg11 x0.5), rung no-bn-kaiming", "base: fast-ladder (vgg11 x0.5), rung 2-tta, epochs=16"]
    assert lines[2].split() == ["lr=0.05", "4", "80.00", "85.00", "+5.00", "+-", "0.58", "yes", "EPYC,", "bfloat16"]
    assert lines[3].split()[-3] == "no"                       # +0.10 +- 0.58: not clear
    assert lines[5].split()[:2] == ["augment=False", "4"] and lines[5].split()[7] == "yes"


def test_the_shipped_precision_steps_cover_a_cpu_with_and_one_without_native_bfloat16():
    fast = precision_steps("fast")
    assert {r["cpu_bf16"] for r in fast} == {True, False}          # what the training-fast chapter prints
    for r in precision_steps():
        assert r["float32_s"] > 0 and r["bfloat16_s"] > 0 and r["threads"] >= 1, r["source"]
    # emulated bfloat16 is slower than float32 wherever the CPU lacks it: why FastModel leaves autocast off there
    assert all(r["bfloat16_s"] > r["float32_s"] for r in precision_steps() if r["cpu_bf16"] is False)


def test_the_precision_table_gives_each_cpu_its_ratio():
    steps = [{"cpu": "Intel Xeon", "cpu_bf16": False, "threads": 2, "network": "vgg11 x0.5", "batch_size": 128,
              "float32_s": 0.15, "bfloat16_s": 0.42},
             {"cpu": "AMD EPYC", "cpu_bf16": None, "threads": 1, "network": "modern-128-256", "batch_size": 1024,
              "float32_s": 5.0, "bfloat16_s": 3.0}]
    lines = precision_table(steps)
    assert len(lines) == 3 and all(len(line) <= 88 for line in lines)
    assert lines[1].split() == ["Intel", "Xeon", "no", "2", "vgg11", "x0.5", "128", "0.150", "0.420", "2.80x"]
    assert lines[2].split() == ["AMD", "EPYC", "?", "1", "modern-128-256", "1024", "5.000", "3.000", "0.60x"]
