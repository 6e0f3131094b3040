"""The input-pipeline comparison of chapter 8: ratios, schema, settings."""
import pytest

from tests.helpers import tiny_cifar
from vgg_helpers.book.pipelines import compute_ratios, measure_pipelines
from vgg_helpers.runtime import bf16_supported


def test_ratios():
    ratios, book_vs = compute_ratios({"in_memory": 200.0, "book": 190.0, "conventional_pil_arrays": 95.0})
    assert ratios == {"in_memory": 1.0, "book": 0.95, "conventional_pil_arrays": 0.475}
    assert book_vs == {"in_memory": 0.95, "conventional_pil_arrays": 2.0}


def test_measure_pipelines_tiny():
    result = measure_pipelines(tiny_cifar(), width=0.125, batch_size=16, steps=2, warmup=1, num_workers=0,
                               threads=2, variants=True, rounds=2)
    assert set(result["images_per_second"]) == {"in_memory", "book", "conventional_pil_arrays"}
    assert all(len(v) == 4 for v in result["runs"].values())         # 2 rounds x mirrored order
    assert result["settings"]["threads"] == result["environment"]["torch_threads"] == 2
    assert result["settings"]["amp_used"] == bf16_supported("cpu") and result["settings"]["device"] == "cpu"
    assert len(result["in_memory_variants"]) == 4
    assert result["kind"] == "throughput" and "environment" in result
    with pytest.raises(ValueError, match="rounds"):
        measure_pipelines(tiny_cifar(), rounds=0)
