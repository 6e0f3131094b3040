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
    assert "fast (vgg11, batch 4)" in out and "the book trains in" in out
    text = "\n".join(report.precision_section([(path, result)]))
    assert "| `vgg11` (fast), 4 |" in text and ("| float32 |" in text or "| bfloat16 |" in text)


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
