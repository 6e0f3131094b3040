"""The build-it checks of chapters 8 and 9 (chapters 7 and 8 when this file was named): they accept the
reference and the notebook's solution, and reject each planted mistake with a message that names it."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import torch

from vgg_helpers.data import TensorLoader
from vgg_helpers.exercises import ExerciseError, check_batch_stats, check_shard, check_tta, check_whitening
from tests.helpers import leaves_the_random_state_alone

ROOT = Path(__file__).resolve().parents[1]


# ---- chapter 8: the test-time flip ----

def tta_logits(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Reference: the mean of the logits of each image and of its mirror image (width flipped)."""
    return (model(images) + model(images.flip(3))) / 2


def test_tta_accepts_reference(capsys):
    assert check_tta(tta_logits) is None
    out = capsys.readouterr().out
    assert "correct:" in out and "mirror image" in out


def test_tta_accepts_other_right_forms():
    check_tta(lambda m, x: (m(x) + m(x.flip(-1))) / 2)
    check_tta(lambda m, x: torch.stack([m(x), m(torch.flip(x, dims=[3]))]).mean(0))


def _flip_in_place(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    plain = model(images)
    images[:] = images.flip(3)
    return (plain + model(images)) / 2


@pytest.mark.parametrize("wrong, match", [
    (lambda m, x: (m(x) + m(x.flip(2))) / 2, "flips the height"),
    (lambda m, x: m(x) + m(x.flip(3)), "sum of the two logits.*divide the sum by 2"),
    (lambda m, x: m(x), "plain logits: the mirror image is not used"),
    (lambda m, x: m(x.flip(3)), "only the mirror image's logits"),
    (lambda m, x: (m(x) + m(x.flip(2, 3))) / 2, "flips both height and width"),
    (lambda m, x: (m(x).softmax(1) + m(x.flip(3)).softmax(1)) / 2, "averages probabilities"),
    (lambda m, x: ((m(x) + m(x.flip(3))) / 2).mean(0), r"shape \(10,\)"),
    (lambda m, x: ((m(x) + m(x.flip(3))) / 2).tolist(), "returned a list"),
    (_flip_in_place, "changed the images"),
    (lambda m, x: (m(x) + m(x.flip(3))) / 3, "differs from FastModel"),
])
def test_tta_rejects(wrong, match):
    with pytest.raises(ExerciseError, match=match):
        check_tta(wrong)


# ---- chapter 8: the whitening layer ----

def _patch_cov(images: torch.Tensor, k: int, order=(0, 2, 3, 1, 4, 5)) -> torch.Tensor:
    p = images.unfold(2, k, 1).unfold(3, k, 1).permute(*order).reshape(-1, 3 * k * k)
    return p.T @ p / len(p)


def whitening_filters(images: torch.Tensor, k: int = 2, eps: float = 5e-4, *, ascending: bool = False,
                      power: float = 0.5, use_eps: bool = True, negatives: bool = True,
                      order=(0, 2, 3, 1, 4, 5)) -> torch.Tensor:
    """Reference (the keyword-only switches plant the mistakes the check must name)."""
    lam, vec = torch.linalg.eigh(_patch_cov(images, k, order))
    if not ascending:
        lam, vec = lam.flip(0), vec.flip(1)
    f = (vec.T / ((lam + (eps if use_eps else 0.0)) ** power)[:, None]).reshape(-1, 3, k, k)
    return torch.cat([f, -f]) if negatives else torch.cat([f, f])


def test_whitening_accepts_reference_and_either_sign(capsys):
    assert check_whitening(whitening_filters) is None
    assert "correct:" in capsys.readouterr().out

    def flipped_signs(images, k=2, eps=5e-4):
        f = whitening_filters(images, k, eps)[:12] * torch.tensor([1.0, -1.0] * 6).view(12, 1, 1, 1)
        return torch.cat([f, -f])
    check_whitening(flipped_signs)


@pytest.mark.parametrize("wrong, match", [
    (lambda x, k, eps: whitening_filters(x, k, eps, ascending=True), "smallest eigenvalue first"),
    (lambda x, k, eps: whitening_filters(x, k, eps, power=1.0), "divided by its eigenvalue, not by its square"),
    (lambda x, k, eps: whitening_filters(x, k, eps, use_eps=False), "eps is missing"),
    (lambda x, k, eps: whitening_filters(x, k, eps, negatives=False), "not the first half negated"),
    (lambda x, k, eps: whitening_filters(x, k, eps, order=(0, 2, 3, 4, 5, 1)), "differ from the principal"),
    (lambda x, k, eps: whitening_filters(x, k, eps)[:12], r"returned \(12, 3, 2, 2\)"),
])
def test_whitening_rejects(wrong, match):
    with pytest.raises(ExerciseError, match=match):
        check_whitening(wrong)


def test_tta_leaves_the_random_state_alone():
    assert leaves_the_random_state_alone(lambda: check_tta(tta_logits))


# ---- chapter 9, Exercise 1: shard ----

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


# ---- chapter 9, Exercise 2: the whole batch's statistics from the per-process sums ----

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


# ---- the notebooks' solution cells pass their checks ----

def _solution_source(chapter: str, defines: str) -> str:
    nb = nbformat.read(ROOT / "notebooks" / chapter, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and "solution" in c.metadata.get("tags", [])
             and f"def {defines}(" in c.source]
    assert len(cells) == 1, f"{chapter}: expected one solution cell defining {defines}"
    assert "hide-cell" in cells[0].metadata["tags"]
    after = nb.cells[nb.cells.index(cells[0]) + 1]
    assert after.cell_type == "code" and "solution" not in after.metadata.get("tags", []), \
        f"{chapter}: the cell after the solution must be the check cell"
    assert "check_" in after.source and defines in after.source
    return cells[0].source


def test_chapter_7_solution_passes_its_check():
    namespace: dict = {"torch": torch}          # the chapter imported it earlier
    exec(_solution_source("08-training-fast.ipynb", "tta_logits"), namespace)
    check_tta(namespace["tta_logits"])
    exec(_solution_source("08-training-fast.ipynb", "whitening_filters"), namespace)
    check_whitening(namespace["whitening_filters"])


def test_chapter_8_solutions_pass_their_checks():
    namespace: dict = {"torch": torch}
    exec(_solution_source("09-many-gpus.ipynb", "shard"), namespace)
    check_shard(namespace["shard"])
    exec(_solution_source("09-many-gpus.ipynb", "batch_stats"), namespace)
    check_batch_stats(namespace["batch_stats"], _halves(), (0, 2, 3))
