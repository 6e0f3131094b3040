"""The benchmarks in bench/: both commands on tiny settings, their JSON, and the generated README part."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import report, save
from bench import scaling as scaling_cmd
from bench import throughput as throughput_cmd
from bench import time_to_accuracy as tta_cmd
from tests.helpers import tiny_cifar
from vgg_helpers.settings import settings

DATA_DIR = settings().data_dir
HAVE_JPEGS = bool(DATA_DIR) and (Path(DATA_DIR) / "train").is_dir()


def test_results_dir_does_not_depend_on_the_working_directory(monkeypatch, tmp_path):
    from bench import RESULTS_DIR

    monkeypatch.chdir(tmp_path)
    assert RESULTS_DIR.is_absolute() and RESULTS_DIR.parent.name == "bench" and RESULTS_DIR.is_dir()


def test_time_to_accuracy_tiny(tmp_path):
    result = tta_cmd.time_to_accuracy(tiny_cifar(1000), "smoke", target=0.0, epochs=2, progress=False)
    assert result["kind"] == "time-to-accuracy-smoke"
    assert [row["epoch"] for row in result["epochs"]] == [1, 2]
    assert result["reached_target_at_epoch"] == 1
    assert result["time_to_target_s"] <= result["wall_to_target_s"]
    assert all(row["train_seconds"] > 0 and row["eval_seconds"] >= 0 for row in result["epochs"])
    assert result["final_test_acc"]["flip"] is not None and result["diverged"] is None
    never = tta_cmd.time_to_accuracy(tiny_cifar(1000), "smoke", target=1.01, epochs=1, progress=False,
                                     augment=False)
    assert never["reached_target_at_epoch"] is None and never["time_to_target_s"] is None
    assert never["kind"] == "time-to-accuracy-smoke-no-augment"
    assert save(result, tmp_path).exists()


@pytest.mark.skipif(not HAVE_JPEGS, reason="needs the image-folder copy of CIFAR-10 (VGG_DATA_DIR)")
def test_commands_record_results(tmp_path):
    assert tta_cmd.main(["--budget", "smoke", "--epochs", "1", "--train-size", "256", "--test-size", "200",
                         "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("time-to-accuracy-*.json")
    result = json.loads(path.read_text())
    assert result["settings"]["test_images"] == 200 and result["settings"]["train_images"] == 256
    assert 0.0 <= result["final_test_acc"]["flip"] <= 1.0 and result["data_load_s"] > 0
    assert throughput_cmd.main(["--width", "0.125", "--batch-size", "16", "--steps", "1", "--warmup", "1",
                                "--rounds", "1", "--num-workers", "0", "--threads", "1", "--out",
                                str(tmp_path)]) == 0
    (path,) = tmp_path.glob("throughput-*.json")
    result = json.loads(path.read_text())
    assert "conventional_imagefolder" in result["images_per_second"]       # the JPEG folder was found
    assert result["settings"]["threads"] == result["environment"]["torch_threads"] == 1


def test_bench_readme_matches_the_recorded_results():
    # every number in bench/README.md's "Recorded numbers" is rendered from the results by bench/report.py
    assert report.main(["--check"]) == 0, "run `python -m bench.report` after recording results"


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
    (tmp_path / "time-to-accuracy-cpu-2026-01-01T000000Z.json").write_text(json.dumps(_tta_result(acc, seconds)))
    text = report.render(tmp_path)
    assert f"cpu-budget target (>= 90% within 15 min): {verdict}" in text
    assert "### Time to accuracy, gpu budget" in text and "**Not measured**" in text   # no gpu file: says so
    assert "### Ladder, cpu budget" in text                        # read from the stored runs


def test_commands_refuse_bad_numbers_when_parsing(capsys):
    with pytest.raises(SystemExit):
        tta_cmd.main(["--target", "88.2"])
    assert "write 0.882 for 88.2%" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        throughput_cmd.main(["--steps", "0"])
    assert "--steps: expected a whole number >= 1, got 0" in capsys.readouterr().err


def test_commands_explain_missing_data_without_a_traceback(tmp_path):
    with pytest.raises(SystemExit, match=r"error: The data folder .* does not exist"):
        tta_cmd.main(["--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path)])


def test_scaling_configurations_and_their_names():
    assert scaling_cmd.configurations("cpu", 2, 0) == [(1, 1, True), (1, 2, True), (2, 1, True), (2, 1, False)]
    assert scaling_cmd.configurations("cpu", 1, 0) == [(1, 1, True)]
    assert scaling_cmd.configurations("cuda", 1, 1) == [(1, 1, True)]
    assert scaling_cmd.configurations("cuda", 1, 4)[1:] == [(4, 1, True), (4, 1, False)]
    assert scaling_cmd.label(2, 1, False) == "2 processes x 1 thread, batch norm per process"
    assert scaling_cmd.label(1, 2) == "1 process x 2 threads"
