"""Check cells of the chapter on several processes: each process's share of a batch, and batch norm's statistics
from the shares' sums."""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch

from ..data import TensorLoader
from .common import correct, expect_function, fail

__all__ = ["check_shard", "check_batch_stats"]


def _loader_shares(n: int, world_size: int) -> list[list[int]]:
    """Which items of a global batch of ``n`` the book's sharded ``TensorLoader`` gives each process."""
    shares = []
    for rank in range(world_size):
        loader = TensorLoader(torch.zeros(n, 3, 1, 1, dtype=torch.uint8), torch.arange(n), batch_size=n,
                              rank=rank, world_size=world_size)
        _, labels = next(iter(loader))             # the labels are the items' positions in the batch
        shares.append(labels.tolist())
    return shares


def check_shard(shard: Callable[[torch.Tensor, int, int], torch.Tensor]) -> None:
    """Check the build-it exercise ``shard(batch, rank, world_size)`` against the book's loader.

    For several batch sizes and process counts (some that do not divide evenly) the parts of ranks
    ``0 ... world_size - 1`` must be exactly the slices the sharded ``TensorLoader`` gives those processes:
    contiguous, in rank order, together the whole batch, sizes differing by at most one.

    Args:
        shard: the learner's function ``(batch, rank, world_size) -> part of batch``.
    Raises:
        ExerciseError: the parts are not tensors, overlap, leave items out, are strided instead of contiguous,
            are unbalanced, or are balanced but split differently from the loader.
    """
    if not expect_function(shard, "check_shard", "shard(batch, rank, world_size)"):
        return
    for n, world_size in ((10, 3), (128, 2), (7, 4), (12, 4), (6, 1)):
        batch = torch.stack([torch.arange(n), -torch.arange(n)], 1)   # (n, 2): row i holds item i
        before = batch.clone()
        parts = [shard(batch, rank, world_size) for rank in range(world_size)]
        where = f"a batch of {n} on {world_size} processes"
        if not torch.equal(batch, before):
            fail(f"shard changed the batch it was given ({where})", "return a slice of it, do not modify it")
        for rank, part in enumerate(parts):
            if not isinstance(part, torch.Tensor):
                fail(f"shard(batch, {rank}, {world_size}) returned a {type(part).__name__}, not a tensor",
                     "return batch[start:stop], a slice along the first (batch) dimension")
            if part.dim() != 2 or part.shape[1] != 2:
                fail(f"shard(batch, {rank}, {world_size}) of a batch of shape {tuple(batch.shape)} has shape "
                     f"{tuple(part.shape)}", "slice the first dimension only: batch[start:stop]")
        items = [part[:, 0].tolist() for part in parts]
        owner: dict[int, int] = {}
        for rank, part in enumerate(items):
            for item in part:
                if item in owner:
                    fail(f"the parts overlap: item {item} of {where} is in the parts of ranks {owner[item]} and "
                         f"{rank}", "rank r's part must stop where rank r + 1's starts")
                owner[item] = rank
        missing = sorted(set(range(n)) - set(owner))
        if missing:
            fail(f"the parts of {where} hold {len(owner)} of the {n} items: items {missing} are in no part",
                 f"n // world_size = {n // world_size} per rank drops the remainder; start rank r at "
                 "r * n // world_size and stop at (r + 1) * n // world_size")
        sizes = [len(part) for part in items]
        if any(part != list(range(part[0], part[0] + len(part))) for part in items if part) or \
                sum(items, []) != list(range(n)):
            fail(f"the parts of {where} are not consecutive slices in rank order (rank 0 got {items[0]})",
                 "the loader gives each process a contiguous slice, batch[start:stop], not every "
                 "world_size-th item (batch[rank::world_size])")
        if max(sizes) - min(sizes) > 1:
            fail(f"the parts of {where} are unbalanced: sizes {sizes}",
                 "sizes may differ by at most one (torch.chunk rounds up and can leave the last rank short)")
        expected = _loader_shares(n, world_size)
        if items != expected:
            fail(f"the parts of {where} have sizes {sizes}, the loader's have {[len(p) for p in expected]}",
                 "the loader gives rank r the items r * n // world_size to (r + 1) * n // world_size, so the "
                 "larger parts come last")
    return correct(f"shard splits like the book's loader: 10 items on 3 processes -> "
                   f"{[len(p) for p in _loader_shares(10, 3)]}")


def _stats_shares(seed: int = 0) -> list[torch.Tensor]:
    """Three shares of a batch with unequal sizes and different means: (N_r, C, H, W) with N_r = 1, 2, 5."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(k, 3, 2, 2, generator=gen) * (1 + r) + 2.0 * r for r, k in enumerate((1, 2, 5))]


def check_batch_stats(batch_stats: Callable[[list, list, list], Any], parts: Optional[list] = None,
                      dims: tuple[int, ...] = (0, 2, 3)) -> None:
    """Check the build-it exercise ``batch_stats(counts, sums, squares) -> (mean, var)``.

    The answer must turn each process's per-channel count, sum and sum of squares into the whole batch's
    per-channel mean and *biased* variance (divided by n), as synced batch norm does. The check builds shares of
    unequal sizes and different means; given ``parts`` (the notebook's shares) it also compares with them.

    Args:
        batch_stats: the learner's function ``(counts, sums, squares) -> (mean, var)``; ``counts`` is a list of
            numbers, ``sums`` and ``squares`` lists of (C,) tensors, one entry per process.
        parts: optional shares (tensors) of a real batch, e.g. the notebook's ``halves``.
        dims: the dimensions a channel's statistics run over (batch, height, width).
    Raises:
        ExerciseError: the answer returns the unbiased variance (n - 1), the mean of the processes' variances,
            the mean of the processes' means (wrong with unequal counts), or another wrong value or shape.
    """
    if not expect_function(batch_stats, "check_batch_stats", "batch_stats(counts, sums, squares)"):
        return
    def inputs(shares: list) -> tuple[list, list, list]:
        return ([s[:, 0].numel() for s in shares], [s.sum(dims) for s in shares],
                [(s * s).sum(dims) for s in shares])

    def call(counts: list, sums: list, squares: list) -> tuple[torch.Tensor, torch.Tensor]:
        result = batch_stats(counts, sums, squares)
        if not (isinstance(result, tuple) and len(result) == 2):
            fail(f"batch_stats returned {type(result).__name__}, not a (mean, var) pair", "return mean, var")
        mean, var = (torch.as_tensor(v).detach().double() for v in result)
        channels = sums[0].shape
        for name, value in (("mean", mean), ("var", var)):
            if value.shape != channels:
                fail(f"{name} has shape {tuple(value.shape)}, not one value per channel {tuple(channels)}",
                     "add the processes' (C,) tensors element by element (sum(sums)); do not sum over channels")
        return mean, var

    shares = _stats_shares()
    counts, sums, squares = inputs(shares)
    mean, var = call(counts, sums, squares)
    whole = torch.cat(shares).double()
    n = sum(counts)
    true_mean, true_var = whole.mean(dims), whole.var(dims, unbiased=False)
    own_means = [s.double().mean(dims) for s in shares]
    own_vars = [s.double().var(dims, unbiased=False) for s in shares]

    def close(a: torch.Tensor, b: torch.Tensor) -> bool:
        return torch.allclose(a, b, rtol=1e-4, atol=1e-5)

    if not close(mean, true_mean):
        if close(mean, sum(own_means) / len(own_means)):
            fail(f"mean averages the processes' own means; with unequal counts {counts} that weighs a small share "
                 "as much as a large one", "divide the total of the sums by the total count: sum(sums) / sum(counts)")
        fail("mean is not the whole batch's per-channel mean", "sum(sums) / sum(counts)")
    if not close(var, true_var):
        if close(var, whole.var(dims, unbiased=True)):
            fail(f"var is the unbiased variance (divided by n - 1 = {n - 1}); batch norm divides by n",
                 "E[x^2] - E[x]^2 with E[x^2] = sum(squares) / n")
        per_process = (sum(own_vars) / len(own_vars), sum(c * v for c, v in zip(counts, own_vars)) / n)
        if any(close(var, v) for v in per_process):
            fail("var averages the processes' own variances: that leaves out how far the shares' means are from "
                 "the whole batch's mean", "use the totals: sum(squares) / n - mean ** 2")
        if close(var, sum(squares[i].double() for i in range(len(shares))) / n):
            fail("var is the mean of the squares, E[x^2]; the variance subtracts the squared mean",
                 "sum(squares) / n - mean ** 2")
        fail("var is not the whole batch's per-channel (biased) variance", "sum(squares) / n - mean ** 2")
    if parts is not None:
        counts, sums, squares = inputs(list(parts))
        mean, var = call(counts, sums, squares)
        whole = torch.cat(list(parts)).double()
        if not torch.allclose(mean, whole.mean(dims), atol=1e-5):
            fail("mean differs from the mean of the notebook's whole batch", "sum(sums) / sum(counts)")
        if not torch.allclose(var, whole.var(dims, unbiased=False), rtol=1e-3, atol=1e-6):
            fail("var differs from the (biased) variance of the notebook's whole batch",
                 "sum(squares) / n - mean ** 2")
    return correct("batch_stats gives the mean and biased variance of the whole batch")


def _shard(batch: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Process ``rank``'s contiguous share of a global batch, as the sharded ``TensorLoader`` cuts it."""
    n = len(batch)
    return batch[rank * n // world_size:(rank + 1) * n // world_size]


def _batch_stats(counts: list, sums: list, squares: list) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole batch's per-channel mean and biased variance from every process's count, sum and squares."""
    n = sum(counts)
    mean = sum(sums) / n
    return mean, sum(squares) / n - mean ** 2


# The book's version of this module's pieces, for a student copy's stand-ins (``references``).
REFERENCES = {"shard": _shard, "batch_stats": _batch_stats}
