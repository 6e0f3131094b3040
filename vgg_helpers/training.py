"""Training engine: device choice, loop, history, checkpoints, budgets."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import numpy as np
import torch
from torch import nn

__all__ = ["pick_device", "describe_runtime", "current_budget", "seed_everything", "atomic_write",
           "environment_info", "History", "TrainConfig", "TrainingDiverged", "train", "evaluate", "predict",
           "save_checkpoint", "load_checkpoint"]


def pick_device(prefer: str | None = None) -> torch.device:
    """Choose where to train: CUDA, then Apple's MPS, then the CPU.

    Args:
        prefer: force a device ("cpu", "cuda", "mps"); default: the environment variable ``VGG_BOOK_DEVICE``
            or the best one available.
    Returns:
        A ``torch.device``.
    """
    prefer = prefer or os.environ.get("VGG_BOOK_DEVICE")
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_runtime() -> torch.device:
    """Print the Python / torch versions and the device this notebook will use, and return the device.

    In Colab without a GPU it also says how to switch the runtime to one.
    """
    device = pick_device()
    if device.type == "cuda":
        where = f"cuda ({torch.cuda.get_device_name(device)})"
    elif device.type == "cpu":
        where = f"cpu ({os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads)"
    else:
        where = device.type
    print(f"Python {platform.python_version()} | torch {torch.__version__} | device: {where}")
    if device.type == "cpu" and "google.colab" in sys.modules:
        print("No GPU in this Colab runtime: Runtime > Change runtime type > T4 GPU, then run this cell again.")
    return device


# --------------------------------------------------------------------------------------------------
# Budgets
# --------------------------------------------------------------------------------------------------
BUDGETS = ("smoke", "cpu", "gpu")


def current_budget(budget: str | None = None) -> str:
    """The training budget every notebook obeys.

    Args:
        budget: ``"smoke"`` (seconds, a small subset: what CI runs), ``"cpu"`` (a workshop run on a 2-core
            laptop, at most ~15 minutes a notebook) or ``"gpu"`` (the full run). Default: the environment
            variable ``VGG_BOOK_BUDGET``, else ``"gpu"`` when CUDA is available and ``"cpu"`` otherwise.
    Returns:
        The budget's name.
    """
    budget = budget or os.environ.get("VGG_BOOK_BUDGET") or ("gpu" if torch.cuda.is_available() else "cpu")
    budget = budget.strip().lower()
    if budget not in BUDGETS:
        raise ValueError(f"VGG_BOOK_BUDGET must be one of {', '.join(BUDGETS)}; got {budget!r}")
    return budget


# --------------------------------------------------------------------------------------------------
# Seeds, atomic files, history
# --------------------------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so a CPU run repeats exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], mode: str = "wb") -> Path:
    """Write a file so that a crash mid-write leaves the old file (or none), never a half-written one.

    Args:
        path: destination.
        write: called with an open file object for a temporary file in the same folder.
        mode: ``"wb"`` or ``"w"``.
    Returns:
        The destination path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _cpu_name() -> str:
    """The CPU model (from /proc/cpuinfo on Linux, where platform.processor() is often empty)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment_info(device: torch.device | str | None = None) -> dict:
    """Hardware and software facts recorded beside every result."""
    device = torch.device(device) if device is not None else pick_device()
    info = {"torch": str(torch.__version__), "python": platform.python_version(), "device": device.type,
            "cpu": _cpu_name(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


@dataclass
class History:
    """Per-epoch record of a training run, plus the facts needed to interpret it.

    Lists are aligned by epoch. ``meta`` holds hardware, torch version, budget, data source, seed, config.
    """

    epoch: list = field(default_factory=list)       # 1-based epoch numbers
    train_loss: list = field(default_factory=list)  # mean cross-entropy over the epoch's batches, nats
    train_acc: list = field(default_factory=list)   # fraction of training images classified right (while training)
    val_loss: list = field(default_factory=list)    # mean cross-entropy on the validation set, nats
    val_acc: list = field(default_factory=list)     # validation accuracy, fraction
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
        return atomic_write(path, lambda f: json.dump(self.to_dict(), f, indent=1), mode="w")

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

    Default (``None``): the environment variable ``VGG_BOOK_PROGRESS`` (``1``/``0``), else bars in a terminal
    or where notebook widgets (ipywidgets, as in Colab and JupyterLab) can draw them. Elsewhere, e.g. when a
    notebook is executed to be stored in the book, only the one-line-per-epoch summary is printed.
    """
    if progress is not None:
        return progress
    env = os.environ.get("VGG_BOOK_PROGRESS")
    if env in ("0", "1"):
        return env == "1"
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
          **overrides) -> History:
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
        val_loss, val_acc = evaluate(model, val_loader, device) if val_loader is not None else (None, None)
        history.append(epoch=epoch + 1, train_loss=loss_sum / max(1, count), train_acc=correct / max(1, count),
                       val_loss=val_loss, val_acc=val_acc, lr=lr, time=time.perf_counter() - t0)
        if progress is not False:
            msg = f"epoch {epoch + 1:>3}: train loss {loss_sum / max(1, count):.3f} acc {correct / max(1, count):.3f}"
            if val_loss is not None:
                msg += f" | val loss {val_loss:.3f} acc {val_acc:.3f}"
            print(msg + f" | {history.time[-1]:.0f} s")
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, optimizer, history, epoch + 1, cfg)
    return history


# --------------------------------------------------------------------------------------------------
# Stored reference runs (train_or_load)
# --------------------------------------------------------------------------------------------------
REFERENCE_DIR = Path(__file__).with_name("reference_runs")


def reference_path(name: str, budget: str) -> Path:
    """Where the stored history of run ``name`` in ``budget`` lives (shipped inside the package)."""
    return REFERENCE_DIR / f"{name}-{budget}.json"


def load_reference(name: str, budget: str | None = None) -> Optional[History]:
    """The stored history of a committed run, or ``None`` when that run was not recorded.

    Args:
        name: run name, e.g. ``"ch6-vgg11-bn"``.
        budget: ``"cpu"`` or ``"gpu"``; default ``current_budget()``.
    """
    path = reference_path(name, current_budget(budget))
    return History.load(path) if path.exists() else None


def train_or_load(name: str, build_model: Callable[[], nn.Module], train_loader: Iterable,
                  val_loader: Iterable | None = None, config: TrainConfig | None = None,
                  budget: str | None = None, use_stored: bool | None = None, **train_kwargs) -> tuple[Optional[nn.Module], History]:
    """Train a run, or show its stored history without retraining.

    Args:
        name: run name; the stored history is ``reference_path(name, budget)``.
        build_model: makes a fresh model (only called when training).
        train_loader, val_loader, config, **train_kwargs: passed to ``train``.
        budget: default ``current_budget()``; histories are stored per budget.
        use_stored: load the stored history instead of training (default: environment variable
            ``VGG_BOOK_USE_STORED=1``). Falls back to training when nothing is stored.
    Returns:
        ``(model, history)``; ``model`` is ``None`` when the history was loaded.

    When ``VGG_BOOK_SAVE_REFERENCE=1`` (maintainers, when re-running the committed notebooks) the history of
    a cpu or gpu run is written to the package's ``reference_runs/`` folder.
    """
    budget = current_budget(budget)
    if use_stored is None:
        use_stored = os.environ.get("VGG_BOOK_USE_STORED") == "1"
    if use_stored:
        stored = load_reference(name, budget)
        if stored is not None:
            print(f"Loaded the stored {budget}-budget history of '{name}' (measured on {stored.meta.get('device')}, "
                  f"torch {stored.meta.get('torch')}); set VGG_BOOK_USE_STORED=0 to train it yourself.")
            return None, stored
    model = build_model()
    meta = {"run": name, "budget": budget, **train_kwargs.pop("meta", {})}
    history = train(model, train_loader, val_loader, config, meta=meta, **train_kwargs)
    if os.environ.get("VGG_BOOK_SAVE_REFERENCE") == "1" and budget != "smoke":
        history.save(reference_path(name, budget))
    return model, history
