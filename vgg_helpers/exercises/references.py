"""The book's version of every build-it exercise's piece: what a student copy runs until the learner has written
their own (``not_attempted``), so that the rest of the chapter can go on. Each is the answer its check accepts
(``tests/exercises/test_references.py``); read it after trying the exercise, not before."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..models import make_layers
from ..modern import ModernConfig, ModernVGG, init_whitening
from ..paper import fc_to_conv
from ..training import tta_logits
from .architecture import REFERENCES as ARCHITECTURE
from .batch_norm import REFERENCES as BATCH_NORM
from .paper import REFERENCES as PAPER
from .training import REFERENCES as TRAINING

__all__ = ["REFERENCES", "reference"]


def _train_loop(model: nn.Module, train_loader, optimizer: torch.optim.Optimizer,
                steps: int) -> tuple[list[float], float]:
    """``steps`` optimiser steps, passing over ``train_loader`` again when it ends: (losses, running accuracy)."""
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    losses: list[float] = []
    correct = seen = 0
    while len(losses) < steps:
        for images, labels in train_loader:
            if len(losses) == steps:
                break
            outputs = model(images)
            loss = loss_fn(outputs, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            correct += (outputs.argmax(1) == labels).sum().item()
            seen += len(labels)
    return losses, correct / seen


def _shard(batch: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Process ``rank``'s contiguous share of a global batch, as the sharded ``TensorLoader`` cuts it."""
    n = len(batch)
    return batch[rank * n // world_size:(rank + 1) * n // world_size]


def _batch_stats(counts: list, sums: list, squares: list) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole batch's per-channel mean and biased variance from every process's count, sum and squares."""
    n = sum(counts)
    mean = sum(sums) / n
    return mean, sum(squares) / n - mean ** 2


def _whitening_filters(images: torch.Tensor, k: int = 2, eps: float = 5e-4) -> torch.Tensor:
    """The whitening layer's filters, as ``modern.init_whitening`` sets them."""
    net = ModernVGG(ModernConfig(layers=["W", 8, "G"], whiten_kernel=k))
    init_whitening(net, images, eps=eps)
    return net.whiten.weight.detach().clone()


def _make_layers(layers: list, batch_norm: bool = False) -> nn.Sequential:
    """The features stack of a layer list (``models.make_layers``)."""
    return make_layers(layers, batch_norm=batch_norm)


def _fc_to_conv(model: nn.Module) -> nn.Module:
    """The VGG with its FC layers as convolutions (``paper.fc_to_conv``)."""
    return fc_to_conv(model)


# exercise piece (the name the chapter defines) -> the book's version
REFERENCES: dict[str, Callable] = {
    **ARCHITECTURE,                   # conv_params, vgg_params
    "my_make_layers": _make_layers,
    **TRAINING,                       # train_step
    "train_loop": _train_loop,
    **BATCH_NORM,                     # record_stds
    **PAPER,                          # lrn
    "fc_to_conv": _fc_to_conv,
    "tta_logits": lambda model, images: tta_logits(model, images, 1),
    "whitening_filters": _whitening_filters,
    "shard": _shard,
    "batch_stats": _batch_stats,
}


def reference(name: str) -> Callable:
    """The book's version of the exercise piece ``name`` (a key of ``REFERENCES``)."""
    if name not in REFERENCES:
        raise KeyError(f"no exercise piece is called {name!r}; the pieces are {', '.join(REFERENCES)}")
    return REFERENCES[name]
