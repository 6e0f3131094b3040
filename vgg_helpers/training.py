"""The training engine: hyperparameters, the loop, the per-epoch history, evaluation and checkpoints.

* ``train`` -- SGD on cross-entropy, one ``History`` row per epoch, checkpoints to resume from, several processes;
* ``evaluate`` / ``predict`` -- the one evaluation of the book (loss and accuracy, or the predicted classes);
* ``tta_logits`` -- the one test-time augmentation: the image alone, with its mirror image, or with its mirror
  image and one-pixel shifts. The modern VGG's own loop (``vgg_helpers.modern``) evaluates through these too.

Where a run's data comes from is ``vgg_helpers.data``; where it runs is ``vgg_helpers.runtime``.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .checks import flag, real_number, whole_number
from .files import atomic_write, json_safe, write_json
from .runtime import environment_info, pick_device, process_world, sum_across_processes, unwrap

__all__ = ["History", "TrainConfig", "TrainingDiverged", "CheckpointError", "train", "tta_logits", "evaluate",
           "predict", "device_of", "save_checkpoint", "load_checkpoint", "read_checkpoint", "progress_bars_wanted",
           "plateau_drops", "lr_factor", "SCHEDULES", "TTA_LEVELS", "BATCH_NORM_RECIPE"]

_LISTS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr", "time")


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
        """Add one epoch's values, e.g. ``append(epoch=1, train_loss=2.3, ...)``."""
        unknown = sorted(set(row) - set(_LISTS))
        if unknown:
            raise ValueError(f"History has no column {', '.join(map(repr, unknown))}; its columns are "
                             f"{', '.join(_LISTS)} (put anything else in history.meta).")
        for k, v in row.items():
            getattr(self, k).append(v)

    def to_dict(self) -> dict:
        """The history as plain data (JSON-ready)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict, source: str = "the history") -> "History":
        """Rebuild a history from ``to_dict``'s output.

        Args:
            d: the dict.
            source: named in error messages (e.g. the file it was read from).
        Raises:
            ValueError: ``d`` is not a history: not a dict, no ``epoch`` list, or lists of different lengths.
        """
        if not isinstance(d, dict) or not isinstance(d.get("epoch"), list):
            raise ValueError(f"{source} is not a training history: expected a JSON object with an 'epoch' list "
                             f"(as written by History.save); got {type(d).__name__}"
                             + (f" with keys {', '.join(map(str, list(d)[:6]))}" if isinstance(d, dict) else ""))
        n = len(d["epoch"])
        for k in _LISTS:
            if k in d and not isinstance(d[k], list):
                raise ValueError(f"{source}: '{k}' must be a list; got {type(d[k]).__name__}")
            # test_* are empty unless a test loader was given; every other column has one value per epoch
            if k in d and len(d[k]) != n and not (k.startswith("test_") and not d[k]):
                raise ValueError(f"{source} is damaged: '{k}' has {len(d[k])} values for {n} epochs.")
        if "meta" in d and not isinstance(d["meta"], dict):
            raise ValueError(f"{source}: 'meta' must be an object; got {type(d['meta']).__name__}")
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def save(self, path: str | os.PathLike) -> Path:
        """Write the history as JSON, atomically (NaN and infinite values are written as ``null``).

        Args:
            path: the ``.json`` file to write.
        Returns:
            The path written.
        Raises:
            ValueError: the history is one ``load`` would refuse (columns of different lengths, ``meta`` not a
                dict); nothing is written, so no file is replaced by one that cannot be read back.
        """
        d = self.to_dict()
        History.from_dict(d, source="this history (not saved)")
        return write_json(path, d)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "History":
        """Read a history written by ``save``.

        Args:
            path: the ``.json`` file.
        Returns:
            The ``History``.
        Raises:
            FileNotFoundError: no such file.
            ValueError: the file is not valid JSON or not a history; the message names the file.
        """
        try:
            with open(path) as f:
                d = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON ({e}); it is not a history written by History.save. "
                             "The file was left as it is.") from None
        except UnicodeDecodeError:
            raise ValueError(f"{path} is not a text file; History.load reads the .json files written by "
                             "History.save.") from None
        return cls.from_dict(d, source=str(path))


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------
class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read or does not belong to this run; the file is left as it is."""


SCHEDULES = ("constant", "onecycle", "cosine", "plateau")
PLATEAU_FACTOR = 0.1      # the paper divides the learning rate by 10 ...
PLATEAU_MAX_DROPS = 3     # ... 3 times in all (sec. 3.1)


@dataclass
class TrainConfig:
    """Hyperparameters of one training run (the data loaders carry the batch size and augmentation)."""

    epochs: int = 10                 # passes over the training set
    lr: float = 0.05                 # peak learning rate of SGD
    momentum: float = 0.9            # SGD momentum
    nesterov: bool = True            # Nesterov momentum
    weight_decay: float = 5e-4       # L2 penalty on weights (the paper used 5e-4, sec. 3.1)
    schedule: str = "onecycle"       # "constant", "onecycle" (linear warm-up then linear decay), "cosine" or
    #                                  "plateau" (the paper's: lr / 10 when val accuracy stops improving, sec. 3.1)
    warmup: float = 0.2              # fraction of steps spent warming up (onecycle)
    patience: int = 2                # plateau: epochs without a better val accuracy before lr is divided by 10
    label_smoothing: float = 0.0     # CrossEntropyLoss label smoothing, 0 = off
    seed: int = 0                    # seeds the init-independent randomness of training (dropout)
    max_steps: Optional[int] = None  # stop after this many optimiser steps in total (None = all epochs)

    def __post_init__(self) -> None:
        inf = math.inf
        self.epochs = whole_number("epochs", self.epochs, 1)
        self.lr = real_number("lr", self.lr, 0, inf, low_ok=False, high_ok=False)
        self.momentum = real_number("momentum", self.momentum, 0, 1, high_ok=False)
        self.nesterov = flag("nesterov", self.nesterov)
        self.weight_decay = real_number("weight_decay", self.weight_decay, 0, inf, high_ok=False)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(map(repr, SCHEDULES))}; got {self.schedule!r}")
        self.warmup = real_number("warmup", self.warmup, 0, 1)
        self.patience = whole_number("patience", self.patience, 1, "epochs, e.g. 2")
        self.label_smoothing = real_number("label_smoothing", self.label_smoothing, 0, 1, high_ok=False)
        self.seed = whole_number("seed", self.seed, 0)
        self.max_steps = whole_number("max_steps", self.max_steps, 1, none_means="every epoch's steps")


# How the batch-norm VGG (models.CIFAR_BN_MODEL) is trained: TrainConfig(epochs=..., seed=..., **BATCH_NORM_RECIPE).
BATCH_NORM_RECIPE = dict(
    lr=0.1,                # peak learning rate, ten times the paper's 0.01
    momentum=0.9,          # as in the paper (sec. 3.1)
    nesterov=True,         # evaluates the gradient one momentum step ahead: a cheap, common refinement
    weight_decay=5e-4,     # the paper's L2 penalty (sec. 3.1); not applied to biases and batch-norm parameters
    schedule="onecycle",   # linear warm-up then linear decay to 0: a standard choice for short runs
    warmup=0.2,            # 20% of the steps warming up: big early steps from a random init can blow up
    label_smoothing=0.1,   # 10% of the target mass spread over all classes: less over-confidence
)


def plateau_drops(val_acc: Sequence[float], patience: int, max_drops: int = PLATEAU_MAX_DROPS) -> int:
    """How often the paper's schedule has divided the learning rate by 10 after these epochs (sec. 3.1).

    The best validation accuracy so far is tracked; an epoch that does not beat it counts as one without
    improvement. After ``patience`` such epochs in a row the rate is divided by 10 and the count starts again;
    the paper did this 3 times in all, so there are at most ``max_drops`` divisions.

    Args:
        val_acc: the validation accuracies of the epochs so far, in order.
        patience: epochs without improvement that trigger a division.
        max_drops: the most divisions.
    Returns:
        The number of divisions; the next epoch's learning rate is ``lr * 0.1 ** drops``.
    Raises:
        ValueError: a validation accuracy is missing (``None``): the schedule needs a validation set.

    Example:
        >>> plateau_drops([0.5, 0.6, 0.6, 0.6, 0.7], patience=2)
        1
    """
    best, bad, drops = -math.inf, 0, 0
    for epoch, acc in enumerate(val_acc, 1):
        if acc is None:
            raise ValueError(f"epoch {epoch} has no validation accuracy: the 'plateau' schedule needs a val_loader.")
        if acc > best:
            best, bad = acc, 0
            continue
        bad += 1
        if bad >= patience and drops < max_drops:
            drops, bad = drops + 1, 0
    return drops


def lr_factor(cfg: TrainConfig, step: int, total: int, val_acc: Sequence[float] = ()) -> float:
    """The multiplier of ``cfg.lr`` at ``step`` of ``total`` under ``cfg.schedule`` (``val_acc``: the validation
    accuracies so far, which the plateau schedule reads)."""
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "plateau":
        return PLATEAU_FACTOR ** plateau_drops(val_acc, cfg.patience)
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


def device_of(model: nn.Module, device: torch.device | str | None = None) -> torch.device:
    """``device`` if given (checked by ``pick_device``), else where the model's first parameter is."""
    return pick_device(device) if device is not None else next(model.parameters(), torch.empty(0)).device


TTA_LEVELS = (0, 1, 2)   # test-time augmentation: none; the mirror image; the mirror image and one-pixel shifts


def tta_logits(model: nn.Module, x: torch.Tensor, level: int = 0) -> torch.Tensor:
    """Logits of a batch with test-time augmentation: the one implementation of the book.

    Args:
        model: the network, in eval mode.
        x: normalised images ``(N, 3, H, W)``.
        level: 0 the images alone; 1 averaged with their mirror images; 2 also with the mirrored pair shifted by
            one pixel up-left and down-right (6 views; the unshifted pair weighs half).
    Returns:
        ``(N, num_classes)`` float32 logits.
    """
    if level not in TTA_LEVELS:
        raise ValueError(f"the test-time augmentation level must be 0 (none), 1 (mirror) or 2 (mirror and shifts); "
                         f"got {level!r}")

    def mirror(v: torch.Tensor) -> torch.Tensor:
        return 0.5 * (model(v).float() + model(v.flip(-1)).float())

    if level == 0:
        return model(x).float()
    logits = mirror(x)
    if level == 1:
        return logits
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    h, w = x.shape[-2:]
    shifted = 0.5 * (mirror(padded[..., :h, :w]) + mirror(padded[..., 2:, 2:]))
    return 0.5 * logits + 0.5 * shifted


def evaluate(model: nn.Module, loader: Iterable, device: torch.device | str | None = None,
             tta: int = 0) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of a model on a loader.

    Args:
        model: the network (put in eval mode here, restored afterwards).
        loader: yields ``(images, labels)``.
        device: where to compute; default: the model's device.
        tta: test-time augmentation level (``tta_logits``): 0 none, 1 the mirror image averaged in, 2 also
            one-pixel shifts.
    Returns:
        ``(loss, accuracy)``, loss in nats, accuracy as a fraction. When the loader yields one process's share of
        each batch (``world_size`` > 1), the sums are added up over all processes, so every process returns the
        whole set's numbers.
    """
    model = unwrap(model)       # evaluating needs no gradient averaging
    device = device_of(model, device)
    was_training = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            out = tta_logits(model, x, tta)
            total_loss += F.cross_entropy(out, y, reduction="sum").item()
            correct += (out.argmax(1) == y).sum().item()
            count += len(y)
    model.train(was_training)
    if getattr(loader, "world_size", 1) > 1:
        total_loss, correct, count = sum_across_processes([total_loss, correct, count], device)
    if count == 0:
        raise ValueError("evaluate() got an empty loader")
    return total_loss / count, correct / count


def predict(model: nn.Module, loader: Iterable, device: torch.device | str | None = None,
            tta: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted and true labels for every image of a loader (for confusion matrices).

    Args:
        model: the network (put in eval mode here, restored afterwards).
        loader: yields ``(images, labels)``.
        device: where to compute; default: the model's device.
        tta: test-time augmentation level (``tta_logits``).
    Returns:
        ``(predictions, labels)`` as int64 CPU tensors.
    """
    device = device_of(model, device)
    was_training = model.training
    model.eval()
    preds, labels = [], []
    with torch.no_grad():
        for x, y in loader:
            preds.append(tta_logits(model, x.to(device), tta).argmax(1).cpu())
            labels.append(y.cpu())
    model.train(was_training)
    return torch.cat(preds), torch.cat(labels)


def save_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer,
                    history: History, epoch: int, config: TrainConfig,
                    rng_by_rank: list[torch.Tensor] | None = None) -> Path:
    """Save everything needed to resume, atomically (loadable with ``weights_only=True``).

    Args:
        path: the checkpoint file.
        model: its ``state_dict`` is saved (the plain network's, also when it is wrapped in DDP).
        optimizer: its ``state_dict`` is saved (momentum buffers).
        history: the epochs so far (``meta`` is converted to plain data by ``json_safe``).
        epoch: the number of epochs completed.
        config: the run's ``TrainConfig``.
        rng_by_rank: with several processes, each one's random-number state (``rng_cpu`` is this process's).
    Returns:
        The path written.
    """
    state = {"model": unwrap(model).state_dict(), "optimizer": optimizer.state_dict(), "history": json_safe(history.to_dict()),
             "epoch": int(epoch), "train_config": asdict(config), "rng_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["rng_cuda"] = torch.cuda.get_rng_state_all()
    if rng_by_rank is not None:
        state["rng_cpu_by_rank"] = list(rng_by_rank)
    return atomic_write(path, lambda f: torch.save(state, f))


def _plain_data_globals() -> list:
    """Classes that older checkpoints may hold in ``history.meta`` (numpy scalars, paths): plain data, no code."""
    import pathlib

    import numpy as np

    core = getattr(np, "_core", None) or np.core
    safe = [core.multiarray.scalar, core.multiarray._reconstruct, np.ndarray, np.dtype, pathlib.PosixPath,
            pathlib.WindowsPath, pathlib.PurePosixPath, pathlib.PureWindowsPath]
    # numpy's dtype classes (numpy.dtypes.Float64DType, ...; found this way on numpy 1.24 too, which lacks np.dtypes)
    return safe + sorted({type(np.dtype(t)) for t in set(np.sctypeDict.values())}, key=str)


def load_checkpoint(path: str | os.PathLike, model: nn.Module,
                    optimizer: torch.optim.Optimizer | None = None) -> dict:
    """Load a checkpoint written by ``save_checkpoint`` into ``model`` (and ``optimizer``).

    Reads with ``weights_only=True`` (no code in the file can run), allowing the plain-data numpy and path
    objects that older versions stored in ``history.meta``. The file is never modified or deleted.

    Args:
        path: the checkpoint file.
        model: receives the weights.
        optimizer: receives the optimizer state, if given.
    Returns:
        The checkpoint dict (``epoch``, ``history``, ...).
    Raises:
        FileNotFoundError: no such file.
        CheckpointError: the file cannot be read, is a bare ``state_dict``, or holds another network's weights;
            the message says what to do, and the file is left as it is.
    """
    path = Path(path)
    state = read_checkpoint(path)
    _apply_checkpoint(path, state, model, optimizer)
    return state


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The contents of a checkpoint written by ``save_checkpoint`` (read with ``weights_only=True``).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: the file is damaged, not a checkpoint, or holds objects that are not plain data; the
            message says which and what to do. The file is left as it is.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No checkpoint at {path}.")
    try:
        with torch.serialization.safe_globals(_plain_data_globals()):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        try:
            objects = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:        # (torch < 2.6 has no such function: its message names the first object)
            objects = re.findall(r"Unsupported global: GLOBAL ([\w.]+)", str(e)) or None
        if objects:
            what = (f"it holds Python objects that are not plain data ({', '.join(objects[:4])}), which torch does "
                    "not unpickle with weights_only=True. If you wrote it yourself and trust it, open it with "
                    "torch.load(path, weights_only=False)")
        else:
            what = (f"it is damaged or not a PyTorch file ({type(e).__name__}). Keep it until you know why (a copy "
                    "cut short?); to start afresh, pass another checkpoint path")
        raise CheckpointError(f"Cannot read the checkpoint {path}: {what}. The file was left as it is.") from e
    if not isinstance(state, dict) or "model" not in state or "epoch" not in state:
        bare = isinstance(state, dict) and state and all(isinstance(v, torch.Tensor) for v in state.values())
        raise CheckpointError(
            f"{path} is not a checkpoint written by save_checkpoint"
            + (" but a bare state_dict (torch.save(model.state_dict())): it holds weights only, no optimizer or "
               "epoch, so training cannot resume from it. Load the weights with "
               "model.load_state_dict(torch.load(path, weights_only=True)); to resume, give train() a new "
               "checkpoint path." if bare else f"; it holds a {type(state).__name__}.") + " The file was left as it is.")
    return state


def _apply_checkpoint(path: Path, state: dict, model: nn.Module, optimizer: torch.optim.Optimizer | None) -> None:
    try:
        unwrap(model).load_state_dict(state["model"])
    except RuntimeError as e:
        raise CheckpointError(
            f"The checkpoint {path} holds the weights of a different network ({str(e).splitlines()[0]}). "
            + _config_difference(state, model)
            + "Build the same network as the run that wrote it, or pass another checkpoint path to start afresh."
        ) from None
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])


def _config_difference(state: dict, model: nn.Module) -> str:
    saved = state.get("history", {}).get("meta", {}).get("model_config")
    config = getattr(unwrap(model), "config", None)
    if not saved or not hasattr(config, "to_dict"):
        return ""
    now = config.to_dict()
    diff = [f"{k}: {saved.get(k)!r} there, {now.get(k)!r} here" for k in sorted(set(saved) | set(now))
            if saved.get(k) != now.get(k)]
    return f"Model settings that differ: {'; '.join(diff)}. " if diff else ""


# Settings a resumed run may change: it then trains for longer (or shorter). Every other change would make the
# resumed run a different experiment from the one its history describes, so it is refused.
_RESUMABLE_CHANGES = ("epochs", "max_steps")


def _check_resume(path: Path, saved: dict, cfg: TrainConfig) -> dict:
    """The changed resumable settings, ``{field: (old, new)}``; other changes raise ``CheckpointError``."""
    now = asdict(cfg)
    changed = {k: (saved.get(k), now[k]) for k in now if k in saved and saved[k] != now[k]}
    refused = {k: v for k, v in changed.items() if k not in _RESUMABLE_CHANGES}
    if refused:
        listed = "; ".join(f"{k}: {a!r} in the checkpoint, {b!r} now" for k, (a, b) in refused.items())
        raise CheckpointError(
            f"The checkpoint {path} was written with other training settings ({listed}). Resuming with them would "
            "mix two recipes in one history. Pass the checkpoint's settings to continue it (only epochs and "
            "max_steps may change), or pass a new checkpoint path to train afresh; the file was left as it is.")
    return changed


def train(model: nn.Module, train_loader: Iterable, val_loader: Iterable | None = None,
          config: TrainConfig | None = None, device: torch.device | str | None = None,
          checkpoint: str | os.PathLike | None = None, progress: bool | None = None,
          on_step: Callable[[nn.Module, int, float], None] | None = None, meta: dict | None = None,
          test_loader: Iterable | None = None, tta: int = 0, **overrides) -> History:
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
        tta: test-time augmentation level of those evaluations (``tta_logits``; 0: none).

    Several processes (``torchrun``, set up by ``vgg_helpers.distributed``): pass the ``DistributedDataParallel``
    model and loaders that yield each process's share (``make_loaders(..., rank=, world_size=)``). Every process
    then runs this same loop; DDP averages the gradients; losses and accuracies are summed over the processes,
    so each returns the same history; only rank 0 prints and writes the checkpoint.
    Returns:
        The ``History``.
    Raises:
        TrainingDiverged: the loss became NaN or infinite (the message gives the step and learning rate).
    """
    cfg = config or TrainConfig()
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"config must be a TrainConfig; got {type(cfg).__name__}"
                        + (": write TrainConfig(**config)" if isinstance(cfg, dict) else ""))
    unknown = sorted(set(overrides) - set(TrainConfig.__dataclass_fields__))
    if unknown:
        raise TypeError(f"train() got unknown argument(s) {', '.join(unknown)}; besides its own arguments it accepts "
                        f"the TrainConfig fields {', '.join(TrainConfig.__dataclass_fields__)}.")
    cfg = TrainConfig(**{**asdict(cfg), **overrides}) if overrides else cfg
    if not hasattr(train_loader, "__len__"):
        raise TypeError(f"train_loader must have a length (a TensorLoader or a torch DataLoader); got "
                        f"{type(train_loader).__name__}.")
    if cfg.schedule == "plateau" and val_loader is None:
        raise ValueError("schedule='plateau' divides the learning rate when the validation accuracy stops improving, "
                         "so it needs a val_loader; pass one, or choose another schedule.")
    if len(train_loader) == 0:
        raise ValueError("train_loader yields no batches: it is empty, or it drops its last incomplete batch and "
                         "holds fewer images than one batch. Give it more images or a smaller batch_size.")
    device = pick_device(device)
    meta = json_safe(meta or {})
    rank, world = process_world()
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
    history = History(meta={**environment_info(device), "train_config": asdict(cfg), **meta})
    # float16 autocast (FastModel on a GPU without native bfloat16) needs a gradient scaler: small gradients
    # would round to zero in float16's range. bfloat16 has float32's range and needs none.
    amp_dtype = getattr(unwrap(model), "amp_dtype", None)
    amp_dtype = amp_dtype(device) if callable(amp_dtype) else None
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    if amp_dtype is not None:
        history.meta["amp_dtype"] = str(amp_dtype).replace("torch.", "")
    if world > 1:
        history.meta["processes"] = world
    net = unwrap(model)
    if hasattr(net, "config") and hasattr(net.config, "to_dict"):
        history.meta["model_config"] = net.config.to_dict()
    start_epoch, elapsed_before = 0, 0.0
    if checkpoint is not None and Path(checkpoint).exists():
        state = read_checkpoint(Path(checkpoint))
        changed = _check_resume(Path(checkpoint), state.get("train_config", {}), cfg)
        _apply_checkpoint(Path(checkpoint), state, model, optimizer)
        history = History.from_dict(state["history"], source=f"the history in {checkpoint}")
        start_epoch = state["epoch"]
        if changed:
            # The history records the settings actually in force from here on, and where they changed.
            history.meta["train_config"] = asdict(cfg)
            history.meta.setdefault("resumed_with_changes", []).append(
                {"after_epoch": start_epoch, **{k: {"was": a, "now": b} for k, (a, b) in changed.items()}})
            warnings.warn(f"Resuming {checkpoint} after epoch {start_epoch} with "
                          + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items())
                          + f": the first {start_epoch} epoch(s) followed the old learning-rate schedule, so this "
                          "run is not the same as one trained with the new settings from the start.", stacklevel=2)
        elapsed_before = history.time[-1] if history.time else 0.0
        by_rank = state.get("rng_cpu_by_rank")
        torch.set_rng_state(by_rank[rank] if by_rank and len(by_rank) == world else state["rng_cpu"])
        if "rng_cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
    else:
        # one seed per process: each draws its own dropout masks for its own images (rank 0 alone: cfg.seed)
        torch.manual_seed(cfg.seed + rank)
    bars = progress_bars_wanted(progress) and rank == 0
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
            lr = cfg.lr * lr_factor(cfg, step, total_steps, history.val_acc)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            out = model(x)
            loss = loss_fn(out, y)
            local_loss = loss.item()
            # the batch's loss: with several processes, the mean of their shares' losses (every process gets it,
            # so that all of them stop together if it diverges)
            batch_loss = local_loss if world == 1 else sum_across_processes([local_loss], device)[0] / world
            if not math.isfinite(batch_loss):
                raise TrainingDiverged(
                    f"The loss became {batch_loss} at epoch {epoch + 1}, step {step + 1} (learning rate {lr:.4g}). "
                    "Lower the learning rate, check the weight init, or add batch normalisation.")
            optimizer.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()              # under DDP: the gradients are averaged over the processes here
            else:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)   # on_step and the update see the true gradients
            if on_step is not None:
                on_step(model, step, batch_loss)
            if scaler is None:
                optimizer.step()
            else:
                scaler.step(optimizer)       # skips the step when a gradient overflowed float16
                scaler.update()
            step += 1
            loss_sum += local_loss * len(y)
            correct += (out.argmax(1) == y).sum().item()
            count += len(y)
            if bars:
                bar.set_postfix(loss=f"{loss_sum / count:.3f}", acc=f"{correct / count:.3f}")
        if world > 1:
            loss_sum, correct, count = sum_across_processes([loss_sum, correct, count], device)
        row = dict(epoch=epoch + 1, train_loss=loss_sum / max(1, count), train_acc=correct / max(1, count))
        val_loss, val_acc = evaluate(model, val_loader, device, tta) if val_loader is not None else (None, None)
        row.update(val_loss=val_loss, val_acc=val_acc)
        if test_loader is not None:
            row["test_loss"], row["test_acc"] = evaluate(model, test_loader, device, tta)
        history.append(**row, lr=lr, time=time.perf_counter() - t0)
        if progress is not False and rank == 0:
            msg = f"epoch {epoch + 1:>3}: train loss {loss_sum / max(1, count):.3f} acc {correct / max(1, count):.3f}"
            if val_loss is not None:
                msg += f" | val loss {val_loss:.3f} acc {val_acc:.3f}"
            if test_loader is not None:
                msg += f" | test acc {row['test_acc']:.3f}"
            print(msg + f" | {history.time[-1]:.0f} s")
        if checkpoint is not None:
            rng_by_rank = None
            if world > 1:    # every process's random state, so that each resumes its own (a collective call)
                rng_by_rank = [None] * world
                torch.distributed.all_gather_object(rng_by_rank, torch.get_rng_state())
            if rank == 0:
                save_checkpoint(checkpoint, model, optimizer, history, epoch + 1, cfg, rng_by_rank)
    return history


