"""The training engine: hyperparameters, the loop, the per-epoch history, evaluation and checkpoints.

Where a run's data comes from is ``vgg_helpers.data``; where it runs is ``vgg_helpers.runtime``; storing and
reloading whole runs is ``vgg_helpers.runs``.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional

import torch
from torch import nn

from .files import atomic_write, write_json
from .runtime import environment_info, pick_device

__all__ = ["History", "TrainConfig", "TrainingDiverged", "train", "evaluate", "predict", "save_checkpoint",
           "load_checkpoint", "progress_bars_wanted"]


@dataclass
class History:
    """Per-epoch record of a training run, plus the facts needed to interpret it.

    Lists are aligned by epoch (``val_*`` hold ``None`` where no validation set was given; ``test_*`` are
    empty unless a test loader was). ``meta`` holds hardware, torch version, budget, data source, seed, config.
    """

    epoch: list = field(default_factory=list)       # 1-based epoch numbers
    train_loss: list = field(default_factory=list)  # mean cross-entropy over the epoch's batches, nats
    train_acc: list = field(default_factory=list)   # fraction of training images classified right (while training)
    val_loss: list = field(default_factory=list)    # mean cross-entropy on the validation set, nats
    val_acc: list = field(default_factory=list)     # validation accuracy, fraction
    test_loss: list = field(default_factory=list)   # mean cross-entropy on the test set, nats (only when asked)
    test_acc: list = field(default_factory=list)    # test accuracy, fraction (benchmarks only: never for tuning)
    lr: list = field(default_factory=list)          # learning rate at the end of the epoch
    time: list = field(default_factory=list)        # wall-clock seconds since the run started, at epoch end
    meta: dict = field(default_factory=dict)

    def append(self, **row: float) -> None:
        for k, v in row.items():
            getattr(self, k).append(v)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def save(self, path: str | os.PathLike) -> Path:
        """Write the history as JSON, atomically."""
        return write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "History":
        with open(path) as f:
            return cls.from_dict(json.load(f))


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------
class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class TrainConfig:
    """Hyperparameters of one training run (the data loaders carry the batch size and augmentation)."""

    epochs: int = 10                 # passes over the training set
    lr: float = 0.05                 # peak learning rate of SGD
    momentum: float = 0.9            # SGD momentum
    nesterov: bool = True            # Nesterov momentum
    weight_decay: float = 5e-4       # L2 penalty on weights (the paper used 5e-4, sec. 3.1)
    schedule: str = "onecycle"       # "constant", "onecycle" (linear warm-up then linear decay) or "cosine"
    warmup: float = 0.2              # fraction of steps spent warming up (onecycle)
    label_smoothing: float = 0.0     # CrossEntropyLoss label smoothing, 0 = off
    seed: int = 0                    # seeds the init-independent randomness of training (dropout)
    max_steps: Optional[int] = None  # stop after this many optimiser steps in total (None = all epochs)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1; got {self.epochs}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive; got {self.lr}")
        if self.schedule not in ("constant", "onecycle", "cosine"):
            raise ValueError(f"schedule must be 'constant', 'onecycle' or 'cosine'; got {self.schedule!r}")


def _lr_factor(cfg: TrainConfig, step: int, total: int) -> float:
    if cfg.schedule == "constant":
        return 1.0
    t = step / max(1, total)
    if cfg.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * t))
    w = cfg.warmup
    return t / w if t < w and w > 0 else max(0.0, (1 - t) / (1 - w)) if w < 1 else 1.0


def progress_bars_wanted(progress: bool | None = None) -> bool:
    """Whether ``train`` shows tqdm bars.

    Default (``None``, e.g. ``settings().progress`` unset): bars in a terminal or where notebook widgets
    (ipywidgets, as in Colab and JupyterLab) can draw them. Elsewhere, e.g. when a notebook is executed to be
    stored in the book, only the one-line-per-epoch summary is printed.
    """
    if progress is not None:
        return progress
    in_notebook = "ipykernel" in sys.modules
    return importlib.util.find_spec("ipywidgets") is not None if in_notebook else sys.stderr.isatty()


def _progress(iterable: Iterable, show: bool, **kwargs):
    if not show:
        return iterable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # tqdm.auto warns when it falls back to text bars
        from tqdm.auto import tqdm
    return tqdm(iterable, **kwargs)


def _batches(loader: Iterable, epoch: int):
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    return loader


def evaluate(model: nn.Module, loader: Iterable, device: torch.device | str | None = None,
             flip: bool = False) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of a model on a loader.

    Args:
        model: the network (put in eval mode here, restored afterwards).
        loader: yields ``(images, labels)``.
        device: where to compute; default: the model's device.
        flip: test-time augmentation: average the logits of the image and its mirror image.
    Returns:
        ``(loss, accuracy)``, loss in nats, accuracy as a fraction.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            out = model(x)
            if flip:
                out = (out + model(x.flip(3))) / 2
            total_loss += nn.functional.cross_entropy(out.float(), y, reduction="sum").item()
            correct += (out.argmax(1) == y).sum().item()
            count += len(y)
    model.train(was_training)
    if count == 0:
        raise ValueError("evaluate() got an empty loader")
    return total_loss / count, correct / count


def predict(model: nn.Module, loader: Iterable, device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted and true labels for every image of a loader (for confusion matrices).

    Returns:
        ``(predictions, labels)`` as int64 CPU tensors.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    preds, labels = [], []
    with torch.no_grad():
        for x, y in loader:
            preds.append(model(x.to(device)).argmax(1).cpu())
            labels.append(y.cpu())
    model.train(was_training)
    return torch.cat(preds), torch.cat(labels)


def save_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer,
                    history: History, epoch: int, config: TrainConfig) -> Path:
    """Save everything needed to resume, atomically (loadable with ``weights_only=True``)."""
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "history": history.to_dict(),
             "epoch": epoch, "train_config": asdict(config), "rng_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["rng_cuda"] = torch.cuda.get_rng_state_all()
    return atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | os.PathLike, model: nn.Module,
                    optimizer: torch.optim.Optimizer | None = None) -> dict:
    """Load a checkpoint written by ``save_checkpoint`` into ``model`` (and ``optimizer``).

    Returns:
        The checkpoint dict (``epoch``, ``history``, ...).
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise RuntimeError(f"Cannot read checkpoint {path} ({type(e).__name__}: {e}). Delete it to start "
                           "afresh.") from e
    model.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    return state


def train(model: nn.Module, train_loader: Iterable, val_loader: Iterable | None = None,
          config: TrainConfig | None = None, device: torch.device | str | None = None,
          checkpoint: str | os.PathLike | None = None, progress: bool | None = None,
          on_step: Callable[[nn.Module, int, float], None] | None = None, meta: dict | None = None,
          test_loader: Iterable | None = None, **overrides) -> History:
    """Train with SGD and cross-entropy, one history row per epoch.

    Args:
        model: the network; moved to ``device``.
        train_loader: yields ``(images, labels)``; with ``set_epoch`` (``TensorLoader``) resuming is exact.
        val_loader: evaluated after every epoch (model selection); ``None`` skips it.
        config: a ``TrainConfig``; ``**overrides`` change its fields (``lr=0.01, epochs=3``).
        device: default ``pick_device()``.
        checkpoint: path of a checkpoint written after every epoch; if it exists, training resumes from it.
        progress: ``None`` (default): tqdm bars where they can be drawn (``progress_bars_wanted``) and one
            summary line per epoch; ``True``: bars and lines; ``False``: silent.
        on_step: called as ``on_step(model, step, loss)`` after every backward pass, before the update
            (diagnostics read gradients here).
        meta: extra facts to record in ``history.meta`` (data source, budget, ...).
        test_loader: also evaluated after every epoch, into ``history.test_*``: for benchmarks that time the
            way to a test accuracy; never choose anything by it.
    Returns:
        The ``History``.
    Raises:
        TrainingDiverged: the loss became NaN or infinite (the message gives the step and learning rate).
    """
    cfg = config or TrainConfig()
    cfg = TrainConfig(**{**asdict(cfg), **overrides}) if overrides else cfg
    device = torch.device(device) if device is not None else pick_device()
    model.to(device)
    params_decay = [p for p in model.parameters() if p.dim() > 1]
    params_other = [p for p in model.parameters() if p.dim() <= 1]   # biases and batch-norm: no weight decay
    optimizer = torch.optim.SGD([{"params": params_decay, "weight_decay": cfg.weight_decay},
                                 {"params": params_other, "weight_decay": 0.0}],
                                lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    steps_per_epoch = len(train_loader)
    total_steps = cfg.epochs * steps_per_epoch if cfg.max_steps is None else min(cfg.max_steps,
                                                                                cfg.epochs * steps_per_epoch)
    history = History(meta={**environment_info(device), "train_config": asdict(cfg), **(meta or {})})
    if hasattr(model, "config") and hasattr(model.config, "to_dict"):
        history.meta["model_config"] = model.config.to_dict()
    start_epoch, elapsed_before = 0, 0.0
    if checkpoint is not None and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, model, optimizer)
        history = History.from_dict(state["history"])
        start_epoch = state["epoch"]
        elapsed_before = history.time[-1] if history.time else 0.0
        torch.set_rng_state(state["rng_cpu"])
        if "rng_cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
    else:
        torch.manual_seed(cfg.seed)
    bars = progress_bars_wanted(progress)
    t0 = time.perf_counter() - elapsed_before
    step = start_epoch * steps_per_epoch
    for epoch in range(start_epoch, cfg.epochs):
        if step >= total_steps:
            break
        model.train()
        loss_sum, correct, count = 0.0, 0, 0
        batches = _batches(train_loader, epoch)
        bar = _progress(batches, bars, total=steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False)
        for x, y in bar:
            if step >= total_steps:
                break
            lr = cfg.lr * _lr_factor(cfg, step, total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            out = model(x)
            loss = loss_fn(out, y)
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"The loss became {loss.item()} at epoch {epoch + 1}, step {step + 1} (learning rate {lr:.4g}). "
                    "Lower the learning rate, check the weight init, or add batch normalisation.")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if on_step is not None:
                on_step(model, step, loss.item())
            optimizer.step()
            step += 1
            loss_sum += loss.item() * len(y)
            correct += (out.argmax(1) == y).sum().item()
            count += len(y)
            if bars:
                bar.set_postfix(loss=f"{loss_sum / count:.3f}", acc=f"{correct / count:.3f}")
        row = dict(epoch=epoch + 1, train_loss=loss_sum / max(1, count), train_acc=correct / max(1, count))
        val_loss, val_acc = evaluate(model, val_loader, device) if val_loader is not None else (None, None)
        row.update(val_loss=val_loss, val_acc=val_acc)
        if test_loader is not None:
            row["test_loss"], row["test_acc"] = evaluate(model, test_loader, device)
        history.append(**row, lr=lr, time=time.perf_counter() - t0)
        if progress is not False:
            msg = f"epoch {epoch + 1:>3}: train loss {loss_sum / max(1, count):.3f} acc {correct / max(1, count):.3f}"
            if val_loss is not None:
                msg += f" | val loss {val_loss:.3f} acc {val_acc:.3f}"
            if test_loader is not None:
                msg += f" | test acc {row['test_acc']:.3f}"
            print(msg + f" | {history.time[-1]:.0f} s")
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, optimizer, history, epoch + 1, cfg)
    return history


