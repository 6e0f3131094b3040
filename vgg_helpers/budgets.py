"""How much training each chapter does in each budget (smoke / cpu / gpu), as plain data.

``VGG_BOOK_BUDGET`` picks the column (see ``vgg_helpers.training.current_budget``):

* ``smoke`` -- seconds per notebook on a small subset: what CI runs through nbval;
* ``cpu``   -- a workshop run on a 2-core laptop, at most ~15 minutes per training notebook;
* ``gpu``   -- the full run.

The cpu numbers were chosen by measuring (the chapters print their own wall time).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class RunBudget:
    """The size of one training run."""

    train_size: Optional[int]   # training images used per epoch (None = all left after the validation split)
    val_size: int               # images carved from the training set for validation (model selection)
    epochs: int                 # passes over the training images
    batch_size: int             # images per optimiser step
    test_size: Optional[int] = None  # test images evaluated (None = all 10,000)


def pick(table: dict[str, RunBudget], budget: str | None = None) -> RunBudget:
    """The entry of ``table`` for ``budget`` (default: ``current_budget()``)."""
    from .training import current_budget

    return table[current_budget(budget)]


# ---- chapter 5 (the 10% failure and its ablation) ----

# ---- chapter 6 (the batch-norm fix) ----
