"""The benchmarks of vgg_helpers.bench: both subcommands on tiny settings, their JSON schema, the ratios, and the
fast-training helpers (FastModel, TimedLoader, test_accuracy) of chapter 7."""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from vgg_helpers import bench
from vgg_helpers.budgets import (CHAPTER6_MODEL, CHAPTER6_RECIPE, CHAPTER7, CHAPTER7_AUGMENT, CHAPTER7_LADDER,
                                 CHAPTER7_LADDER_BUDGET, CHAPTER7_MODEL, CHAPTER7_RECIPE, CHAPTER7_SPEED,
                                 CHAPTER7_TTA_FLIP, SpeedSettings)
from vgg_helpers.data import CIFAR10, TensorLoader
from vgg_helpers.models import build_vgg
from vgg_helpers.training import TrainConfig

DATA_DIR = os.environ.get("VGG_DATA_DIR")
HAVE_JPEGS = bool(DATA_DIR) and (Path(DATA_DIR) / "train").is_dir()


def tiny_cifar(n_train: int = 300, n_test: int = 100) -> CIFAR10:
    """A learnable synthetic CIFAR-10: the class is the image's brightness band."""
    g = torch.Generator().manual_seed(0)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(n) % 10
        x = (y.view(n, 1, 1, 1) * 25 + torch.randint(0, 20, (n, 3, 32, 32), generator=g)).to(torch.uint8)
        return x, y

    return CIFAR10(*make(n_train), *make(n_test), source="synthetic test data")


def test_compute_ratios():
    ratios, book_vs = bench.compute_ratios({"in_memory": 200.0, "book": 190.0, "conventional_pil_arrays": 95.0})
    assert ratios == pytest.approx({"in_memory": 1.0, "book": 0.95, "conventional_pil_arrays": 0.475})
    assert book_vs == pytest.approx({"in_memory": 0.95, "conventional_pil_arrays": 2.0})


def test_first_reaching():
    assert bench.first_reaching([0.5, 0.88, 0.882, 0.9], 0.882) == 2
    assert bench.first_reaching([0.5, None, 0.7], 0.882) is None


def test_throughput_schema_and_ratios():
    result = bench.throughput(width=0.125, batch_size=16, steps=2, warmup=1, num_workers=0, data=tiny_cifar(),
                              imagefolder=False, variants=True, rounds=2)
    assert result["kind"] == "throughput"
    assert {"torch", "cpu_count", "torch_threads", "device"} <= set(result["environment"])
    ips = result["images_per_second"]
    assert set(ips) == {"in_memory", "book", "conventional_pil_arrays"}
    assert all(v > 0 for v in ips.values())
    for name, runs in result["runs"].items():                       # 2 rounds, each pipeline twice per round
        assert len(runs) == 4 and ips[name] == pytest.approx(sum(runs) / 4), name
    with pytest.raises(ValueError, match="rounds"):
        bench.throughput(data=tiny_cifar(), rounds=0)
    for k, v in ips.items():                                        # the stored ratios are the stored numbers'
        assert result["ratios"][k] == pytest.approx(v / ips["in_memory"])
    assert result["book_vs"]["conventional_pil_arrays"] == pytest.approx(ips["book"] / ips["conventional_pil_arrays"])
    assert result["targets"]["book_at_least_95pct_of_in_memory"] == (result["ratios"]["book"] >= 0.95)
    assert len(result["in_memory_variants"]) == 4                  # layout, 1 thread, autocast toggled
    assert result["settings"]["amp_used"] == bench.bf16_supported("cpu")
    json.dumps(result)                                              # JSON-serialisable


@pytest.mark.skipif(not HAVE_JPEGS, reason="needs the image-folder copy of CIFAR-10 (VGG_DATA_DIR)")
def test_throughput_command_line(tmp_path):
    assert bench.main(["throughput", "--width", "0.125", "--batch-size", "16", "--steps", "2", "--warmup", "1",
                       "--num-workers", "0", "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("throughput-*.json")
    result = json.loads(path.read_text())
    assert "conventional_imagefolder" in result["images_per_second"]
    assert result["settings"]["threads"] == result["environment"]["torch_threads"]


def test_time_to_accuracy_schema(tmp_path, monkeypatch):
    monkeypatch.delenv("VGG_BOOK_SAVE_REFERENCE", raising=False)
    result = bench.time_to_accuracy("smoke", target=0.0, data=tiny_cifar(1000), epochs=2, progress=False)
    assert result["kind"] == "time-to-accuracy-smoke"
    assert [r["epoch"] for r in result["epochs"]] == [1, 2]
    assert result["reached_target_at_epoch"] == 1                   # target 0: reached after the first epoch
    first = result["epochs"][0]
    assert result["time_to_target_s"] == first["train_seconds"]
    # evaluations are excluded from the training time and included in the wall time
    assert first["train_seconds"] == pytest.approx(first["wall_seconds"] - first["eval_seconds"])
    assert first["eval_seconds"] > 0
    assert set(result["final_test_acc"]) == {"flip", "plain"}
    assert result["total_wall_s"] >= result["train_seconds"]
    never = bench.time_to_accuracy("smoke", target=1.01, data=tiny_cifar(1000), epochs=1, progress=False,
                                   augment=False)
    assert never["reached_target_at_epoch"] is None and never["time_to_target_s"] is None
    # the ablation is its own kind, so it can never be mistaken for the recipe's result
    assert never["kind"] == "time-to-accuracy-smoke-no-augment" and never["settings"]["augment"] is False
    assert bench.save(result, tmp_path).exists()


@pytest.mark.skipif(not HAVE_JPEGS, reason="needs the image-folder copy of CIFAR-10 (VGG_DATA_DIR)")
def test_time_to_accuracy_command_line(tmp_path):
    assert bench.main(["time-to-accuracy", "--budget", "smoke", "--epochs", "1", "--train-size", "256",
                       "--test-size", "200", "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("time-to-accuracy-*.json")
    result = json.loads(path.read_text())
    assert result["settings"]["test_images"] == 200 and result["settings"]["train_images"] == 256
    assert 0.0 <= result["final_test_acc"]["flip"] <= 1.0


def test_fast_model_flip_and_layout():
    torch.manual_seed(0)
    net = build_vgg("vgg11", head="cifar", input_size=32, num_classes=10, batch_norm=True, width=0.125)
    model = bench.FastModel(net, channels_last=True, tta_flip=True).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        both = model(x)
        expected = (net(x) + net(x.flip(3))) / 2
    assert torch.allclose(both, expected, atol=1e-5)
    assert net.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    model.train()
    assert model(x).shape == (4, 10)                                # no flip while training


@pytest.mark.parametrize("native", [True, False])
def test_fast_model_bf16_autocast_only_where_native(monkeypatch, native):
    monkeypatch.setattr(bench, "bf16_supported", lambda device="cpu": native)
    torch.manual_seed(0)
    net = build_vgg("vgg11", head="cifar", input_size=32, num_classes=10, batch_norm=True, width=0.125)
    seen = []
    net.features[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    out = bench.FastModel(net, amp=True)(torch.randn(2, 3, 32, 32))
    assert out.dtype == torch.float32                               # the loss always sees float32 logits
    assert seen == [torch.bfloat16 if native else torch.float32]
    seen.clear()
    bench.FastModel(net, amp=False)(torch.randn(2, 3, 32, 32))
    assert seen == [torch.float32]


def test_bf16_supported_answers_for_every_device():
    assert isinstance(bench.bf16_supported("cpu"), bool)
    assert bench.bf16_supported("meta") is False
    if not torch.cuda.is_available():
        assert bench.bf16_supported("cuda") is False


def test_test_accuracy_and_timed_loader():
    data = tiny_cifar(n_test=60)
    loader = bench.TimedLoader(TensorLoader(data.test_images, data.test_labels, 25))
    net = build_vgg("vgg11", head="cifar", input_size=32, num_classes=10, batch_norm=True, width=0.125)
    acc = bench.test_accuracy(net, loader)
    assert set(acc) == {"plain", "flip"} and all(0 <= v <= 1 for v in acc.values())
    assert len(loader.seconds) == 1 and len(loader) == 3


def test_chapter7_budgets_are_consistent():
    for budget in ("smoke", "cpu", "gpu"):
        assert budget in CHAPTER7 and budget in CHAPTER7_MODEL and budget in CHAPTER7_SPEED
    TrainConfig(**CHAPTER7_RECIPE)                                   # every recipe key is a TrainConfig field
    names = [rung[0] for rung in CHAPTER7_LADDER]
    assert len(set(names)) == len(names) and all(n.startswith("ch7-") for n in names)


def test_ladder_starts_at_chapter6_and_reaches_the_final_recipe():
    rungs = {r["name"]: r for r in bench.ladder_settings("cpu")}
    assert list(rungs) == [rung[0] for rung in CHAPTER7_LADDER]
    first = rungs["ch7-ladder-0-chapter6"]
    assert first["recipe"] == CHAPTER6_RECIPE and first["augment"] and not first["tta_flip"]
    assert first["model_kwargs"] == {**CHAPTER6_MODEL["cpu"], "batch_norm": True, "init": "kaiming"}
    assert first["speed"] == SpeedSettings(threads=None, channels_last=False, amp=False, compile=False)
    assert first["run"] == CHAPTER7_LADDER_BUDGET["cpu"]            # chapter 6 kept a validation hold-out
    # the last cumulative rung is the final recipe at the ladder's budget: same network, recipe, speed, data
    last = rungs["ch7-ladder-3-all-images"]
    assert last["recipe"] == CHAPTER7_RECIPE and last["augment"] == CHAPTER7_AUGMENT
    assert last["tta_flip"] == CHAPTER7_TTA_FLIP and last["speed"] == CHAPTER7_SPEED["cpu"]
    assert last["model_kwargs"] == {**CHAPTER7_MODEL["cpu"], "batch_norm": True, "init": "kaiming"}
    assert last["run"].val_size == CHAPTER7["cpu"].val_size == 0
    # each ablation differs from its base in exactly what it names
    for name, _, base, changes in CHAPTER7_LADDER:
        if base is None:
            continue
        r, b = rungs[name], rungs[base]
        flat = lambda x: {**x["recipe"], **x["model_kwargs"], **asdict(x["speed"]), "augment": x["augment"],
                          "tta_flip": x["tta_flip"], "val_size": x["run"].val_size}
        diff = {k for k in flat(r) if flat(r)[k] != flat(b)[k]}
        assert diff == {k for k, v in changes.items() if flat(b)[k] != v}, name
    assert [r["reuse_base"] for r in rungs.values()].count(True) == 1   # only the test-time-flip rung
    assert rungs["ch7-no-bn-kaiming"]["model_kwargs"]["batch_norm"] is False


def test_ladder_rejects_unknown_settings(monkeypatch):
    monkeypatch.setattr(bench, "CHAPTER7_LADDER", [("ch7-x", "typo", None, {"learning_rate": 0.1})])
    with pytest.raises(ValueError, match="unknown settings.*learning_rate"):
        bench.ladder_settings("cpu")
    monkeypatch.setattr(bench, "CHAPTER7_LADDER", [("ch7-x", "bad base", "ch7-nope", {})])
    with pytest.raises(ValueError, match="not an earlier rung"):
        bench.ladder_settings("cpu")


def test_run_ladder_smoke(monkeypatch):
    monkeypatch.delenv("VGG_BOOK_SAVE_REFERENCE", raising=False)
    rows = bench.run_ladder(tiny_cifar(1200), "smoke", use_stored=False, progress=False)
    assert [r["name"] for r in rows] == [rung[0] for rung in CHAPTER7_LADDER]
    tta = next(i for i, r in enumerate(rows) if r["name"].endswith("tta"))
    assert rows[tta]["history"] is rows[tta - 1]["history"]       # re-read, not retrained
    assert rows[tta]["test_acc"] == rows[tta - 1]["history"].meta["test_acc_flip"]
    assert rows[tta - 1]["test_acc"] == rows[tta - 1]["history"].meta["test_acc_plain"]
    assert all(r["train_seconds"] > 0 for r in rows)


def _report_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_report", Path(__file__).parents[1] / "bench" / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_readme_matches_the_recorded_results():
    # every number in bench/README.md's "Recorded numbers" is rendered from bench/results/ by bench/report.py
    assert _report_module().main(["--check"]) == 0, "run `python bench/report.py` after recording results"


def _tta_result(acc: float, seconds: float) -> dict:
    return {"kind": "time-to-accuracy-cpu", "date": "2026-01-01T00:00:00+00:00",
            "environment": {"torch": "2.x", "python": "3.11", "cpu": "Test CPU", "cpu_count": 2, "torch_threads": 2},
            "settings": {"budget": "cpu", "target": 0.882, "data_source": "synthetic", "train_images": 50000,
                         "test_images": 10000, "run": {"epochs": 1, "batch_size": 128},
                         "model": {"arch": "vgg11", "width": 0.5}, "speed": {"threads": None},
                         "recipe": {"lr": 0.1, "schedule": "onecycle", "label_smoothing": 0.1},
                         "augment": True, "tta_flip": True},
            "epochs": [{"epoch": 1, "test_acc": acc, "train_seconds": seconds - 5, "eval_seconds": 5.0,
                        "wall_seconds": seconds}],
            "reached_target_at_epoch": 1 if acc >= 0.882 else None,
            "time_to_target_s": seconds - 5 if acc >= 0.882 else None, "train_seconds": seconds - 5,
            "time_to_result_s": seconds, "final_test_acc": {"flip": acc, "plain": acc - 0.01},
            "total_wall_s": seconds + 10}


@pytest.mark.parametrize("acc, seconds, verdict", [
    (0.91, 800.0, "**met**"),
    (0.87, 800.0, "**missed**: 0.0300 short in accuracy"),
    (0.91, 960.0, "**missed**: 60 s over time"),
])
def test_report_states_whether_the_cpu_target_was_met(tmp_path, acc, seconds, verdict):
    report = _report_module()
    (tmp_path / "time-to-accuracy-cpu-2026-01-01T000000Z.json").write_text(json.dumps(_tta_result(acc, seconds)))
    text = report.render(tmp_path)
    assert f"cpu-budget target (>= 90% within 15 min): {verdict}" in text
    assert "### Time to accuracy, gpu budget" in text and "**Not measured**" in text   # no gpu file: says so


def _assert_history_matches(history, name, run, model_kwargs, recipe, speed, augment, tta_flip):
    assert history is not None, f"no stored run {name}: record it (bench/ladder.py or bench time-to-accuracy)"
    meta = history.meta
    config = meta["train_config"]
    assert config["epochs"] == run.epochs and len(history.epoch) == run.epochs, name
    assert {k: config[k] for k in recipe} == recipe, name
    assert meta["model_kwargs"] == model_kwargs, name
    assert meta["speed"] == asdict(speed), name
    assert (meta["augment"], meta["tta_flip"]) == (augment, tta_flip), name
    expected_images = (50_000 - run.val_size) if run.train_size is None else run.train_size
    assert meta["train_images"] == expected_images, name


def test_stored_cpu_runs_are_the_budgets_runs():
    # chapter 7 shows stored cpu-budget runs: they must have been made with the settings budgets.py has now
    from vgg_helpers.training import load_reference

    _assert_history_matches(load_reference("ch7-final", "cpu"), "ch7-final", CHAPTER7["cpu"], CHAPTER7_MODEL["cpu"],
                            CHAPTER7_RECIPE, CHAPTER7_SPEED["cpu"], CHAPTER7_AUGMENT, CHAPTER7_TTA_FLIP)
    _assert_history_matches(load_reference("ch7-final-no-augment", "cpu"), "ch7-final-no-augment", CHAPTER7["cpu"],
                            CHAPTER7_MODEL["cpu"], CHAPTER7_RECIPE, CHAPTER7_SPEED["cpu"], False, CHAPTER7_TTA_FLIP)
    for rung in bench.ladder_settings("cpu"):
        if not rung["reuse_base"]:
            _assert_history_matches(load_reference(rung["name"], "cpu"), rung["name"], rung["run"],
                                    rung["model_kwargs"], rung["recipe"], rung["speed"], rung["augment"],
                                    rung["tta_flip"])
