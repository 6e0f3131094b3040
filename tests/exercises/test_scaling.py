"""The build-it exercises of the chapter on several processes: each process's share of a batch
(``check_shard``) and the whole batch's statistics from the shares' sums (``check_batch_stats``)."""
from __future__ import annotations

import pytest
import torch

from tests.helpers import solution_source
from vgg_helpers.data import TensorLoader
from vgg_helpers.exercises import ExerciseError, check_batch_stats, check_shard


# ---- Exercise 1: shard ----

def shard(batch: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Reference: the contiguous slice the book's loader gives process ``rank``."""
    n = len(batch)
    return batch[rank * n // world_size:(rank + 1) * n // world_size]


def test_shard_accepts_reference(capsys):
    assert check_shard(shard) is None
    out = capsys.readouterr().out
    assert "correct:" in out and "[3, 3, 4]" in out


def test_shard_reference_matches_the_loader():
    """The check's premise: the sharded TensorLoader yields exactly the reference's slices."""
    images = torch.randint(0, 256, (10, 3, 4, 4), dtype=torch.uint8)
    labels = torch.arange(10)
    for rank in range(3):
        loader = TensorLoader(images, labels, batch_size=10, rank=rank, world_size=3)
        assert torch.equal(next(iter(loader))[1], shard(labels, rank, 3))


@pytest.mark.parametrize("wrong, match", [
    (lambda b, r, w: b[r * len(b) // w:(r + 1) * len(b) // w + 1], "the parts overlap"),
    (lambda b, r, w: b[r * (len(b) // w):(r + 1) * (len(b) // w)], r"in no part.*drops the remainder"),
    (lambda b, r, w: b[r::w], "not consecutive slices.*contiguous slice"),
    (lambda b, r, w: b.chunk(w)[r], r"unbalanced: sizes \[4, 4, 2\]"),
    (lambda b, r, w: torch.tensor_split(b, w)[r], r"sizes \[4, 3, 3\], the loader's have \[3, 3, 4\]"),
    (lambda b, r, w: b[(w - 1 - r) * len(b) // w:(w - r) * len(b) // w], "not consecutive slices in rank order"),
    (lambda b, r, w: list(shard(b, r, w)), "returned a list"),
    (lambda b, r, w: b[:, r * len(b) // w:(r + 1) * len(b) // w], "slice the first dimension only"),
    (lambda b, r, w: shard(b.mul_(2), r, w), "changed the batch"),
])
def test_shard_rejects(wrong, match):
    with pytest.raises(ExerciseError, match=match):
        check_shard(wrong)


# ---- Exercise 2: the whole batch's statistics from the per-process sums ----

def batch_stats(counts: list, sums: list, squares: list) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference: total sum / total count, and E[x^2] - E[x]^2 over all processes."""
    n = sum(counts)
    mean = sum(sums) / n
    return mean, sum(squares) / n - mean ** 2


def _unbiased(counts, sums, squares):
    mean, var = batch_stats(counts, sums, squares)
    n = sum(counts)
    return mean, var * n / (n - 1)


def _mean_of_means(counts, sums, squares):
    n = sum(counts)
    return sum(s / c for s, c in zip(sums, counts)) / len(counts), sum(squares) / n - (sum(sums) / n) ** 2


def _mean_of_variances(counts, sums, squares):
    own = [q / c - (s / c) ** 2 for q, s, c in zip(squares, sums, counts)]
    return sum(sums) / sum(counts), sum(own) / len(own)


def _weighted_mean_of_variances(counts, sums, squares):
    own = [c * (q / c - (s / c) ** 2) for q, s, c in zip(squares, sums, counts)]
    return sum(sums) / sum(counts), sum(own) / sum(counts)


def _halves(seed: int = 0) -> list[torch.Tensor]:
    """Two equal shares of a batch of conv outputs, like the notebook's ``halves``."""
    gen = torch.Generator().manual_seed(seed)
    return list((torch.randn(16, 8, 8, 8, generator=gen) * 0.7 + 0.2).chunk(2))


def test_batch_stats_accepts_reference(capsys):
    assert check_batch_stats(batch_stats) is None
    assert "correct:" in capsys.readouterr().out
    assert check_batch_stats(batch_stats, _halves(), (0, 2, 3)) is None
    out = capsys.readouterr().out
    assert "correct:" in out and "biased variance" in out


def test_batch_stats_accepts_centred_form():
    def two_pass(counts, sums, squares):
        n = sum(counts)
        mean = torch.stack(sums).sum(0) / n
        centred = [q - 2 * mean * s + c * mean ** 2 for q, s, c in zip(squares, sums, counts)]
        return mean, torch.stack(centred).sum(0) / n
    check_batch_stats(two_pass, _halves())


@pytest.mark.parametrize("wrong, match", [
    (_unbiased, r"unbiased variance \(divided by n - 1"),
    (_mean_of_means, r"mean averages the processes' own means; with unequal counts"),
    (_mean_of_variances, "var averages the processes' own variances"),
    (_weighted_mean_of_variances, "var averages the processes' own variances"),
    (lambda c, s, q: (sum(s) / sum(c), sum(q) / sum(c)), r"mean of the squares, E\[x\^2\]"),
    (lambda c, s, q: (sum(s).sum() / sum(c), sum(q) / sum(c)), r"mean has shape \(\)"),
    (lambda c, s, q: sum(s) / sum(c), r"not a \(mean, var\) pair"),
    (lambda c, s, q: batch_stats(c, s, q)[::-1], "mean is not the whole batch's per-channel mean"),
    (lambda c, s, q: (sum(s) / sum(c), (sum(q) / sum(c) - (sum(s) / sum(c)) ** 2) ** 0.5),
     "var is not the whole batch's per-channel"),
])
def test_batch_stats_rejects(wrong, match):
    with pytest.raises(ExerciseError, match=match):
        check_batch_stats(wrong)


def test_batch_stats_checks_the_given_shares():
    """An answer right on the check's own shares but wrong on the learner's is caught too."""
    def only_small(counts, sums, squares):
        mean, var = batch_stats(counts, sums, squares)
        return (mean, var) if sum(counts) < 100 else (mean + 1, var)
    check_batch_stats(only_small)
    with pytest.raises(ExerciseError, match="notebook's whole batch"):
        check_batch_stats(only_small, _halves())


def test_the_chapters_solutions_pass_their_checks():
    namespace: dict = {"torch": torch}
    exec(solution_source("10-many-gpus.ipynb", "shard"), namespace)
    check_shard(namespace["shard"])
    exec(solution_source("10-many-gpus.ipynb", "batch_stats"), namespace)
    check_batch_stats(namespace["batch_stats"], _halves(), (0, 2, 3))
