"""What every check shares: the error a wrong answer raises, the line a right one prints, the toy networks."""
from __future__ import annotations

from collections import OrderedDict
from typing import NoReturn

import torch
from torch import nn

__all__ = ["ExerciseError", "correct", "fail", "tiny_convnet", "toy_batches"]


class ExerciseError(AssertionError):
    """An exercise answer is not right yet; the message says what is wrong and where to look."""


def correct(message: str) -> None:
    """Print the line a check prints for a right answer, ``"correct: " + message``.

    Checks return nothing, so that a notebook cell ending with a check shows only this line.

    Args:
        message: what was checked (``"make_layers builds Table 1's VGG-11"``).
    """
    print(f"correct: {message}")


def fail(what: str, hint: str) -> NoReturn:
    """Raise the error a check raises for a wrong answer (``what`` is wrong; ``hint`` says where to look)."""
    raise ExerciseError(f"not yet: {what}. Hint: {hint}")


def tiny_convnet(seed: int) -> nn.Module:
    """A VGG-shaped toy (``features``, ``flatten``, ``classifier``) without dropout or batch norm, seeded."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        classifier = nn.Sequential(nn.Linear(16 * 2 * 2, 32), nn.ReLU(), nn.Linear(32, 4))
        return nn.Sequential(OrderedDict(features=features, flatten=nn.Flatten(),
                                           classifier=classifier))


def toy_batches(seed: int, n_batches: int, batch_size: int = 8) -> list:
    """``n_batches`` seeded ``(images, labels)`` pairs of 3x8x8 images in 4 classes."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch_size, 3, 8, 8, generator=g),
             torch.randint(0, 4, (batch_size,), generator=g)) for _ in range(n_batches)]
