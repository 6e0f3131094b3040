"""The benchmarks of vgg_helpers.bench: both subcommands on tiny settings, their JSON schema, the ratios, and the
fast-training helpers (FastModel, TimedLoader, test_accuracy) of chapter 7."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from vgg_helpers import bench
from vgg_helpers.budgets import CHAPTER7, CHAPTER7_LADDER, CHAPTER7_MODEL, CHAPTER7_RECIPE, CHAPTER7_SPEED
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
                              imagefolder=False, variants=True)
    assert result["kind"] == "throughput"
    assert {"torch", "cpu_count", "torch_threads", "device"} <= set(result["environment"])
    ips = result["images_per_second"]
    assert set(ips) == {"in_memory", "book", "conventional_pil_arrays"}
    assert all(v > 0 for v in ips.values())
    assert len(result["in_memory_runs"]) == 2                      # measured first and last
    assert ips["in_memory"] == pytest.approx(sum(result["in_memory_runs"]) / 2)
    for k, v in ips.items():                                        # the stored ratios are the stored numbers'
        assert result["ratios"][k] == pytest.approx(v / ips["in_memory"])
    assert result["book_vs"]["conventional_pil_arrays"] == pytest.approx(ips["book"] / ips["conventional_pil_arrays"])
    assert result["targets"]["book_at_least_95pct_of_in_memory"] == (result["ratios"]["book"] >= 0.95)
    assert len(result["in_memory_variants"]) == 3
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
    assert result["kind"] == "time-to-accuracy"
    assert [r["epoch"] for r in result["epochs"]] == [1, 2]
    assert result["reached_target_at_epoch"] == 1                   # target 0: reached after the first epoch
    first = result["epochs"][0]
    assert result["time_to_target_s"] == first["train_seconds"]
    # evaluations are excluded from the training time and included in the wall time
    assert first["train_seconds"] == pytest.approx(first["wall_seconds"] - first["eval_seconds"])
    assert first["eval_seconds"] > 0
    assert set(result["final_test_acc"]) == {"flip", "plain"}
    assert result["total_wall_s"] >= result["train_seconds"]
    never = bench.time_to_accuracy("smoke", target=1.01, data=tiny_cifar(1000), epochs=1, progress=False)
    assert never["reached_target_at_epoch"] is None and never["time_to_target_s"] is None
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
    names = [name for name, _, _ in CHAPTER7_LADDER]
    assert len(set(names)) == len(names) and all(n.startswith("ch7-") for n in names)


def test_ladder_settings_accumulate():
    rungs = bench.ladder_settings("cpu")
    assert [r["name"] for r in rungs[:-1]] == [name for name, _, _ in CHAPTER7_LADDER]
    bare, last, no_bn = rungs[0], rungs[-2], rungs[-1]
    assert bare["recipe"]["schedule"] == "constant" and not bare["augment"] and not bare["speed"].channels_last
    assert last["recipe"] == CHAPTER7_RECIPE and last["augment"] and last["tta_flip"] and last["speed"].channels_last
    assert [r["reuse_previous"] for r in rungs].count(True) == 1   # only the test-time-flip rung skips training
    assert no_bn["model_kwargs"]["batch_norm"] is False and bare["model_kwargs"]["batch_norm"] is True


def test_run_ladder_smoke(monkeypatch):
    monkeypatch.delenv("VGG_BOOK_SAVE_REFERENCE", raising=False)
    rows = bench.run_ladder(tiny_cifar(1200), "smoke", use_stored=False, progress=False)
    assert len(rows) == len(CHAPTER7_LADDER) + 1
    tta = next(i for i, r in enumerate(rows) if r["name"].endswith("tta"))
    assert rows[tta]["history"] is rows[tta - 1]["history"]       # re-read, not retrained
    assert rows[tta]["test_acc"] == rows[tta - 1]["history"].meta["test_acc_flip"]
    assert all(r["train_seconds"] > 0 for r in rows)
