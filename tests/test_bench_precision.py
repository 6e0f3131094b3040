"""bench.precision: one training step in float32 and in bfloat16 autocast, recorded with the CPU's instructions."""
from __future__ import annotations

import json

import pytest
import torch

from bench import precision, report


def test_precision_records_both_precisions_and_the_cpus_instructions(tmp_path, capsys):
    assert precision.main(["--plans", "fast", "--steps", "2", "--warmup", "0", "--batch-size", "4",
                           "--threads", "1", "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("precision-cpu-*.json")
    result = json.loads(path.read_text())
    (row,) = result["rows"]
    assert row["plan"] == "fast" and row["network"] == "vgg11" and row["batch_size"] == 4
    assert len(row["seconds"]["float32"]) == len(row["seconds"]["bfloat16"]) == 2
    assert row["bf16_over_float32"] == pytest.approx(row["median_s"]["bfloat16"] / row["median_s"]["float32"])
    assert set(result["instructions"]) == {"avx512", "avx512_bf16", "amx", "onednn_says_bf16"}
    assert result["environment"]["torch_threads"] == 1 and isinstance(result["book_uses_bf16"], bool)
    out = capsys.readouterr().out
    assert "fast (vgg11, batch 4, channels_last)" in out and "the book trains in" in out
    text = "\n".join(report.precision_section([(path, result)]))
    assert "| `vgg11` (fast), 4, channels-last |" in text and ("| float32 |" in text or "| bfloat16 |" in text)
    assert " cores, 1 thread |" in text                    # (not "1 threads")


def test_a_step_really_switches_precision(monkeypatch):
    seen = []
    real = torch.autocast

    def spy(*args, **kwargs):
        seen.append(kwargs.get("enabled"))
        return real(*args, **kwargs)
    monkeypatch.setattr(precision.torch, "autocast", spy)
    step = precision.step_timer(precision.PLANS["fast"]["cpu"], batch_size=2)
    assert step(False) > 0 and step(True) > 0
    assert seen == [False, True]


def test_precision_refuses_an_unknown_plan(capsys):
    with pytest.raises(SystemExit):
        precision.main(["--plans", "huge"])
    assert "invalid choice" in capsys.readouterr().err


def test_precision_measures_every_batch_size_and_layout_in_turn(tmp_path, capsys):
    assert precision.main(["--plans", "fast", "--steps", "2", "--warmup", "0", "--batch-size", "2", "4",
                           "--layouts", "channels_last", "contiguous", "--threads", "1",
                           "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("precision-cpu-*.json")
    result = json.loads(path.read_text())
    assert [(r["batch_size"], r["layout"]) for r in result["rows"]] == [
        (2, "channels_last"), (2, "contiguous"), (4, "channels_last"), (4, "contiguous")]
    for row in result["rows"]:
        for k in ("float32", "bfloat16"):
            assert row["per_1024_images_s"][k] == pytest.approx(row["median_s"][k] * 1024 / row["batch_size"])
    assert result["settings"]["layouts"] == ["channels_last", "contiguous"]
    assert "fast (vgg11, batch 2, contiguous)" in capsys.readouterr().out
    text = "\n".join(report.precision_section([(path, result)]))
    assert "| `vgg11` (fast), 4, contiguous |" in text and "| `vgg11` (fast), 2, channels-last |" in text


@pytest.mark.parametrize("layout, fmt", [("channels_last", torch.channels_last),
                                         ("contiguous", torch.contiguous_format)])
def test_a_step_really_uses_the_layout(monkeypatch, layout, fmt):
    seen = []

    class Spy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 10, 3)

        def forward(self, x):
            seen.append((x.is_contiguous(memory_format=fmt), self.conv.weight.is_contiguous(memory_format=fmt)))
            return self.conv(x).mean((2, 3))
    monkeypatch.setattr(precision, "build_network", lambda spec: Spy())
    step = precision.step_timer(precision.PLANS["fast"]["cpu"], batch_size=2, layout=layout)
    assert step(False) > 0
    assert seen == [(True, True)]


def test_precision_refuses_an_unknown_layout(capsys):
    with pytest.raises(ValueError, match="layout must be one of"):
        precision.step_timer(precision.PLANS["fast"]["cpu"], batch_size=2, layout="nhwc")
    with pytest.raises(SystemExit):
        precision.main(["--layouts", "nhwc"])
    assert "invalid choice" in capsys.readouterr().err


def test_older_results_without_a_layout_still_render():
    row = {"plan": "fast", "network": "vgg11", "batch_size": 128, "seconds": {},
           "median_s": {"float32": 0.2, "bfloat16": 0.1}, "bf16_over_float32": 0.5}
    result = {"date": "2026-12-07T00:00:00+00:00", "environment": {"cpu": "x", "cpu_count": 2, "torch": "2.14.1"},
              "instructions": {}, "settings": {"threads": 2, "steps": 5, "channels_last": True},
              "book_uses_bf16": False, "rows": [row]}
    text = "\n".join(report.precision_section([(None, result)]))
    assert "| `vgg11` (fast), 128, channels-last | 0.200 | 0.100 | 1.600 / 0.800 | 0.50x | float32 |" in text
