"""Looking inside a model and measuring what it does, in the order the chapters need it.

* shape trace / layer summary (chapter 4) -- run one input through a model with forward hooks and record, for
  every layer, its name, type, output shape and number of parameters;
* training diagnostics (chapter 5) -- what flows through a network while it trains: activation statistics layer by
  layer, the gradient norm of every weight layer, a recorder that collects both during
  ``train(..., on_step=...)``, and how often each class is predicted;
* metrics (chapter 6) -- where a trained classifier goes wrong: the confusion matrix and the accuracy per class;
* looking inside a trained network -- the feature maps its layers compute for a batch, and Grad-CAM:
  which part of each image raised the score of a class.

The figures drawn from these measurements are in ``vgg_helpers.plots``.
"""
from __future__ import annotations

import math
import numbers
import statistics
from contextlib import contextmanager
from typing import Any, Iterator, NamedTuple, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .checks import describe, flag, whole_number
from .models import check_module

__all__ = [
    # shape trace / layer summary (chapter 4)
    "ShapeRow", "shape_trace", "format_shape_trace", "check_shape_rows",
    # training diagnostics (chapter 5)
    "WEIGHT_LAYERS", "weight_layers_in_order", "activation_stats", "gradient_norms", "GradientRecorder",
    "prediction_counts",
    # is it learning? (chapter 5)
    "LEARNING", "loss_drop",
    # metrics (chapter 6) and results over seeds
    "as_int_array", "confusion_matrix", "per_class_accuracy", "mean_sd", "paired_gains", "first_reaching",
    # looking inside a trained network
    "feature_maps", "grad_cam",
]


# --- shape trace / layer summary (chapter 4) ---
# One input through the model with forward hooks: every layer's output shape and parameter count, in call order.

class ShapeRow(NamedTuple):
    """One layer of a shape trace."""

    name: str                 # dotted module name, e.g. "features.0" ("" for the model itself)
    type: str                 # class name, e.g. "Conv2d"
    output_shape: tuple       # shape of the layer's output, e.g. (1, 64, 224, 224)
    params: int               # parameters owned by this layer itself (not by its children)


def shape_trace(model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224),
                leaves_only: bool = True, partial: bool = False) -> list[ShapeRow]:
    """Run one random input through ``model`` and record every layer's output shape, in call order.

    Forward hooks are attached to the layers, the model runs once in eval mode without gradients, and the
    hooks are removed again (also when the forward pass fails); the model's train/eval mode is restored.

    Args:
        model: any ``nn.Module`` taking one tensor.
        input_size: the input's shape, batch dimension included, e.g. ``(1, 3, 224, 224)``.
        leaves_only: record only layers without children (Conv2d, ReLU, ...); ``False`` also records the
            containers (``features``, ``classifier``) and the model itself, after their children.
        partial: when the forward pass raises (a shape error, say), return the rows recorded up to the failing
            layer instead of raising: the trace then shows where the shapes went wrong.
    Returns:
        A list of ``ShapeRow(name, type, output_shape, params)`` in the order the layers ran. A layer that runs
        twice appears twice.
    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
        ValueError: ``input_size`` is not a shape; or the forward pass fails (unless ``partial``).
    Example:
        >>> from vgg_helpers import build_vgg
        >>> rows = shape_trace(build_vgg("vgg11", head="cifar", input_size=32, num_classes=10), (1, 3, 32, 32))
        >>> rows[0]
        ShapeRow(name='features.0', type='Conv2d', output_shape=(1, 64, 32, 32), params=1792)
        >>> rows[-1].output_shape
        (1, 10)
    """
    check_module(model, "shape_trace")
    shape = tuple(input_size) if hasattr(input_size, "__iter__") and not isinstance(input_size, (str, bytes)) else ()
    if not shape or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n > 0 for n in shape):
        raise ValueError(f"input_size must be a shape of positive whole numbers, batch dimension included, such as "
                         f"(1, 3, 224, 224); got {input_size!r}")
    input_size = tuple(int(n) for n in shape)
    rows: list[ShapeRow] = []

    def hook_for(name: str):
        def hook(module: nn.Module, inputs: tuple, output) -> None:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else ()
            params = sum(p.numel() for p in module.parameters(recurse=False))
            rows.append(ShapeRow(name, type(module).__name__, shape, params))
        return hook

    handles = [m.register_forward_hook(hook_for(n)) for n, m in model.named_modules()
               if not leaves_only or not any(True for _ in m.children())]
    was_training = model.training
    try:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
        model.eval()
        with torch.no_grad():
            model(torch.randn(*input_size, device=device))
    except (RuntimeError, ValueError):
        if not partial:
            raise
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return rows


def check_shape_rows(rows: Any, where: str) -> list:
    """The rows of a shape trace as a list; a clear error for a model or for items that are not rows."""
    if isinstance(rows, nn.Module):
        raise TypeError(f"{where} expects the rows of a shape trace, not a model: pass "
                        f"shape_trace(model, (1, 3, 224, 224))")
    if isinstance(rows, (str, bytes)) or not hasattr(rows, "__iter__"):
        raise TypeError(f"{where} expects the rows of a shape trace (a list of ShapeRow); got {type(rows).__name__}")
    rows = list(rows)
    for i, r in enumerate(rows):
        if not all(hasattr(r, a) for a in ShapeRow._fields):
            raise TypeError(f"{where}: row {i} is {r!r:.80}, not a ShapeRow (name, type, output_shape, params); "
                            f"pass the list that shape_trace returns")
    return rows


def format_shape_trace(rows: Sequence[ShapeRow]) -> str:
    """Format a shape trace as a fixed-width text table with a total line.

    Args:
        rows: the output of ``shape_trace``.
    Returns:
        A string such as ``"features.0  Conv2d  (1, 64, 224, 224)  1,792"``, one line per row.
    Raises:
        TypeError: ``rows`` is not a list of ``ShapeRow`` (a model, say).
    """
    rows = check_shape_rows(rows, "format_shape_trace")
    header = ("layer", "type", "output shape", "params")
    body = [(r.name or "(model)", r.type, str(tuple(r.output_shape)), f"{r.params:,}") for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]
    line = "  ".join(["{:<%d}" % widths[0], "{:<%d}" % widths[1], "{:<%d}" % widths[2], "{:>%d}" % widths[3]])
    out = [line.format(*header), "-" * (sum(widths) + 6)]
    out += [line.format(*b) for b in body]
    out.append(f"total params: {sum(r.params for r in rows):,}")
    return "\n".join(out)


# --- training diagnostics (chapter 5) ---
# What flows through a network while it trains: activation statistics layer by layer, the gradient norm of every
# weight layer, and a recorder that collects both during ``train(..., on_step=...)``.

WEIGHT_LAYERS = (nn.Conv2d, nn.Linear)


def weight_layers_in_order(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The Conv2d and Linear layers of a model, in registration order (= depth order for a VGG).

    Args:
        model: any module.
    Returns:
        ``[(name, module), ...]``, e.g. ``[("features.0", Conv2d(...)), ..., ("classifier.6", Linear(...))]``.
    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
    """
    check_module(model, "weight_layers_in_order")
    return [(n, m) for n, m in model.named_modules() if isinstance(m, WEIGHT_LAYERS)]


def _following_relus(model: nn.Module) -> dict[str, nn.Module]:
    """Map each weight layer's name to the ReLU that follows it before the next weight layer (if any)."""
    leaves = [(n, m) for n, m in model.named_modules() if not any(True for _ in m.children())]
    found: dict[str, nn.Module] = {}
    current: Optional[str] = None
    for name, module in leaves:
        if isinstance(module, WEIGHT_LAYERS):
            current = name
        elif isinstance(module, nn.ReLU) and current is not None and current not in found:
            found[current] = module
    return found


def activation_stats(model: nn.Module, x: torch.Tensor, training: bool = True) -> list[dict]:
    """Statistics of what every Conv2d / Linear layer outputs for one batch, through the depth.

    Forward hooks are attached to each weight layer and to the ReLU that follows it (after its BatchNorm, if
    the model has one), the batch runs once without gradients, and the hooks are removed again. The model's
    train/eval mode and its batch-norm running statistics are restored afterwards, so calling this during
    training changes nothing.

    Args:
        model: a network whose layers are registered in the order they run (true for ``VGG``).
        x: one input batch, e.g. ``(64, 3, 32, 32)``, on the model's device.
        training: run the batch in train mode (batch norm uses the batch's statistics, as during training;
            dropout is active) or, with ``False``, in eval mode.
    Returns:
        One dict per weight layer, in depth order, with keys

        * ``depth`` -- 1 for the first weight layer, 2 for the second, ...;
        * ``name``, ``type`` -- e.g. ``"features.0"``, ``"Conv2d"``;
        * ``mean``, ``std`` -- of the layer's own output (before batch norm / ReLU);
        * ``zero_frac`` -- fraction of exact zeros in the output of the ReLU that follows the layer, i.e. of
          units that are switched off for this batch; ``nan`` for a layer with no ReLU after it (the last
          Linear, which outputs the logits);
        * ``relu_mean`` -- mean of that ReLU's output (``nan`` without a ReLU).
    Raises:
        TypeError: ``model`` is not an ``nn.Module`` or ``x`` is not a tensor.
        ValueError: the model has no Conv2d / Linear layer.
    """
    check_module(model, "activation_stats")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"activation_stats expects x to be a batch of images as a torch.Tensor, e.g. "
                        f"next(iter(loader))[0]; got {type(x).__name__}")
    training = flag("training", training)
    layers = weight_layers_in_order(model)
    if not layers:
        raise ValueError("the model has no Conv2d or Linear layer to record")
    relus = _following_relus(model)
    rows = {name: {"depth": i + 1, "name": name, "type": type(m).__name__, "mean": math.nan, "std": math.nan,
                   "zero_frac": math.nan, "relu_mean": math.nan} for i, (name, m) in enumerate(layers)}

    def layer_hook(name: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            out = output.detach().float()
            rows[name]["mean"] = out.mean().item()
            rows[name]["std"] = out.std().item() if out.numel() > 1 else 0.0
        return hook

    def relu_hook(name: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            out = output.detach().float()
            rows[name]["zero_frac"] = (out == 0).float().mean().item()
            rows[name]["relu_mean"] = out.mean().item()
        return hook

    handles = [m.register_forward_hook(layer_hook(n)) for n, m in layers]
    handles += [r.register_forward_hook(relu_hook(n)) for n, r in relus.items()]
    buffers = {k: v.clone() for k, v in model.state_dict().items()
               if "running_" in k or "num_batches_tracked" in k}
    was_training = model.training
    try:
        model.train(training)
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
        if buffers:
            model.load_state_dict(buffers, strict=False)
    return list(rows.values())


def gradient_norms(model: nn.Module, relative: bool = False) -> dict[str, float]:
    """The L2 norm of every Conv2d / Linear weight's gradient, in depth order. Call it after ``backward()``.

    Args:
        model: the network.
        relative: divide each gradient norm by the norm of its weight (how big a step SGD takes relative to
            the weight, before the learning rate).
    Returns:
        ``{layer name: norm}`` in depth order, e.g. ``{"features.0": 0.013, ..., "classifier.6": 0.2}``;
        layers whose weight has no gradient (frozen, or not used in the last forward pass) are left out.
    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
        ValueError: no weight layer has a gradient (``loss.backward()`` was not called, or ``zero_grad``
            cleared them).
    """
    check_module(model, "gradient_norms")
    norms: dict[str, float] = {}
    for name, m in weight_layers_in_order(model):
        g = m.weight.grad
        if g is None:
            continue
        norm = g.detach().float().norm().item()
        if relative:
            norm /= max(m.weight.detach().float().norm().item(), 1e-30)
        norms[name] = norm
    if not norms:
        raise ValueError("no Conv2d/Linear weight has a gradient: call gradient_norms after loss.backward() "
                         "and before optimizer.zero_grad()")
    return norms


class GradientRecorder:
    """Collects the loss at every step and the per-layer gradient norms every ``every`` steps.

    Pass it to ``train(..., on_step=recorder)``: ``train`` calls it after each backward pass, before the
    optimiser step, as ``recorder(model, step, loss)``.

    Args:
        every: record gradient norms at steps 0, every, 2 * every, ... (the loss is recorded at every step).
        relative: record gradient norms relative to the weight norms (see ``gradient_norms``).

    Attributes:
        loss_steps, losses: every step's number and training loss (nats), for a step-level loss curve.
        steps: the steps at which gradient norms were recorded.
        norms: one ``{layer name: norm}`` dict per recorded step.
    """

    def __init__(self, every: int = 10, relative: bool = False) -> None:
        self.every = whole_number("every", every, 1, "record gradient norms every this many steps, e.g. 10")
        self.relative = flag("relative", relative)
        self.loss_steps: list[int] = []
        self.losses: list[float] = []
        self.steps: list[int] = []
        self.norms: list[dict[str, float]] = []

    def __call__(self, model: nn.Module, step: int, loss: float) -> None:
        self.loss_steps.append(int(step))
        self.losses.append(float(loss))
        if step % self.every == 0:
            self.steps.append(int(step))
            self.norms.append(gradient_norms(model, relative=self.relative))

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def layer_names(self) -> list[str]:
        """The layer names of the first record, in depth order (empty before the first record)."""
        return list(self.norms[0]) if self.norms else []

    def as_array(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """The records as arrays.

        Returns:
            ``(layer_names, steps, norms)`` with ``steps`` of shape ``(R,)`` and ``norms`` of shape
            ``(R, L)``: row r holds the gradient norm of every layer at ``steps[r]`` (``nan`` where a layer
            had no gradient at that step).
        """
        names = self.layer_names
        table = np.array([[rec.get(n, np.nan) for n in names] for rec in self.norms], dtype=float)
        return names, np.asarray(self.steps, dtype=int), table.reshape(len(self.norms), len(names))

    def to_dict(self) -> dict:
        """Plain data (JSON-serialisable), e.g. to store beside a run's history."""
        return {"every": self.every, "relative": self.relative, "loss_steps": self.loss_steps,
                "losses": self.losses, "steps": self.steps, "norms": self.norms}


def prediction_counts(predictions: torch.Tensor | Sequence[int], num_classes: int = 10) -> list[int]:
    """How many times each class was predicted (a network stuck at 10% often predicts one class only).

    Args:
        predictions: predicted class indices, e.g. the first output of ``training.predict``.
        num_classes: number of classes.
    Returns:
        ``counts`` with ``counts[c]`` = number of predictions of class ``c``.
    Raises:
        ValueError: ``predictions`` are not 1-D whole numbers in ``0 .. num_classes - 1`` (logits, say), or
            ``num_classes`` is not a whole number >= 1.
    """
    num_classes = _check_num_classes(num_classes)
    p = as_int_array(predictions, "predictions", allow_scalar=True)
    _check_range(p, "predictions", num_classes)
    return np.bincount(p, minlength=num_classes).tolist()


LEARNING = 0.01    # nats: a run whose loss over its last fifth of steps is this far below ln 10 "is learning"


def loss_drop(losses: Sequence[float]) -> float:
    """How far the mean loss of the last fifth of the steps lies below ln 10 (nats; > ``LEARNING``: learning).

    >>> round(loss_drop([2.302585] * 10), 6)
    0.0
    >>> round(loss_drop([2.3, 2.3, 2.3, 2.3, 1.3]), 3)
    1.003
    """
    if len(losses) == 0:
        raise ValueError("loss_drop needs at least one step's loss")
    tail = losses[-max(1, len(losses) // 5):]
    return math.log(10) - sum(tail) / len(tail)


# --- metrics (chapter 6) ---
# Where a trained classifier goes wrong, from predicted and true class indices (lists, arrays or tensors).

def _check_num_classes(num_classes: Any) -> int:
    return whole_number("num_classes", num_classes, 1, "10 for CIFAR-10")


def as_int_array(values: Any, name: str, allow_scalar: bool = False) -> np.ndarray:
    """A 1-D int64 NumPy array of class indices from a list, NumPy array or (CPU or GPU) torch tensor."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    try:
        arr = np.asarray(values)
    except ValueError:                      # ragged nested lists
        arr = np.asarray(values, dtype=object)
    if allow_scalar and arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        hint = ": for logits or probabilities (N, C) pass output.argmax(1)" if arr.ndim == 2 else ""
        raise ValueError(f"{name} must be 1-D (one class index per image); got shape {arr.shape}{hint}")
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64)
    whole = arr.dtype.kind == "f" and np.isfinite(arr) & (arr == np.round(arr))
    if arr.dtype.kind == "f" and whole.all():
        return arr.astype(np.int64)
    bad = (arr[~whole][0] if arr.dtype.kind == "f" else arr[0]).item()
    hint = " For logits or probabilities pass output.argmax(1)." if arr.dtype.kind == "f" else ""
    raise ValueError(f"{name} must be whole class indices such as [3, 0, 7]; got {bad!r} (dtype {arr.dtype}).{hint}")


def _check_range(arr: np.ndarray, name: str, num_classes: int) -> None:
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise ValueError(f"{name} must lie in 0..{num_classes - 1} (num_classes={num_classes}); "
                         f"got values {arr.min()}..{arr.max()}")


def confusion_matrix(preds: Any, labels: Any, num_classes: int = 10) -> np.ndarray:
    """Count how often each true class was predicted as each class.

    Args:
        preds: predicted class indices (list, array or tensor), e.g. the first output of ``training.predict``.
        labels: the true class indices, same length.
        num_classes: number of classes.
    Returns:
        An int64 array ``m`` of shape ``(num_classes, num_classes)``: ``m[t, p]`` = images of true class ``t``
        predicted as ``p``. Rows sum to the number of images per true class; the diagonal holds the hits.
    Raises:
        ValueError: ``preds`` and ``labels`` differ in length, are not 1-D whole numbers in
            ``0 .. num_classes - 1``, or ``num_classes`` is not a whole number >= 1.
    """
    num_classes = _check_num_classes(num_classes)
    p, t = as_int_array(preds, "preds"), as_int_array(labels, "labels")
    if len(p) != len(t):
        raise ValueError(f"{len(p)} predictions but {len(t)} labels")
    for name, arr in (("preds", p), ("labels", t)):
        _check_range(arr, name, num_classes)
    return np.bincount(t * num_classes + p, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def per_class_accuracy(preds: Any, labels: Any, num_classes: int = 10) -> np.ndarray:
    """Fraction of each true class that was classified right (recall per class).

    Args:
        preds, labels, num_classes: as for ``confusion_matrix``.
    Returns:
        A float array of length ``num_classes``; ``nan`` for a class with no images.
    Raises:
        ValueError: as ``confusion_matrix``.
    """
    m = confusion_matrix(preds, labels, num_classes)
    totals = m.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(m) / np.maximum(totals, 1), np.nan)


def mean_sd(xs: Sequence[Optional[float]], scale: float = 1.0, digits: int = 1) -> str:
    """``"mean +- sd"`` of ``xs`` times ``scale``, e.g. accuracies over seeds in percent (``None`` values, runs
    that measured nothing, are left out; ``"n/a"`` if none is left).

    >>> mean_sd([0.1, 0.12, 0.14], scale=100)
    '12.0 +- 2.0'
    >>> mean_sd([-4.2e5, -3.3e5])      # far from the usual size: two significant digits
    '-3.8e+05 +- 6.4e+04'
    >>> mean_sd([-0.0001, 0.0], digits=3)
    '0.000 +- 0.000'
    """
    values = [x * scale for x in xs if x is not None]
    if not values:
        return "n/a"
    m, s = statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)
    if math.isfinite(m) and abs(m) >= 1000:
        return f"{m:.1e} +- {s:.1e}"
    m = m if round(m, digits) != 0 else 0.0       # no "-0.000"
    return f"{m:.{digits}f} +- {s:.{digits}f}"


def paired_gains(new: Sequence[Optional[float]], old: Sequence[Optional[float]]) -> dict:
    """How much ``new`` beats ``old`` seed by seed (``new[i]`` and ``old[i]`` share seed i, so the same initial
    weights and batches): ``gains`` (new minus old per seed), their mean ``gain``, sd ``gain_sd`` and standard error
    ``gain_se`` (sd / sqrt(seeds); sd 0 for one seed). A ``None`` (a run that measured nothing) makes its gain
    ``None`` and the three summaries ``None``.

    >>> g = paired_gains([0.82, 0.83, 0.82], [0.80, 0.81, 0.79])
    >>> round(g["gain"], 4), round(g["gain_se"], 4)
    (0.0233, 0.0033)
    >>> paired_gains([0.8, None], [0.7, 0.7])["gain"] is None
    True
    """
    if len(new) != len(old):
        raise ValueError(f"the runs must be paired by seed: {len(new)} against {len(old)}")
    gains = [None if a is None or b is None else a - b for a, b in zip(new, old)]
    if not gains or None in gains:
        return dict(gains=gains, gain=None, gain_sd=None, gain_se=None)
    sd = statistics.stdev(gains) if len(gains) > 1 else 0.0
    return dict(gains=gains, gain=statistics.fmean(gains), gain_sd=sd, gain_se=sd / math.sqrt(len(gains)))


def first_reaching(values: Sequence[Optional[float]], target: float) -> Optional[int]:
    """Index of the first value >= ``target`` (``None`` values are skipped), or ``None`` if none reaches it.

    >>> first_reaching([0.5, None, 0.9, 0.95], 0.9)
    2
    """
    return next((i for i, v in enumerate(values) if v is not None and v >= target), None)


# --- looking inside a trained network ---
# One batch through a trained network with forward hooks: what chosen layers output (feature maps), and Grad-CAM.

_ACTIVATIONS = (nn.ReLU, nn.GELU)


def _check_batch(x: Any, where: str) -> torch.Tensor:
    """``x`` when it is a float batch ``(N, C, H, W)`` with N >= 1; else an error that says what to pass."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{where} expects x to be a batch of images as a torch.Tensor (N, 3, H, W), e.g. "
                        f"next(iter(loader))[0]; got {type(x).__name__}")
    if x.ndim != 4 or len(x) == 0:
        hint = ": for one image add the batch dimension with x.unsqueeze(0)" if x.ndim == 3 else ""
        raise ValueError(f"{where} expects x shaped (N, 3, H, W) with N >= 1; got shape {tuple(x.shape)}{hint}")
    if not x.is_floating_point():
        raise TypeError(f"{where} expects float images, normalised as the model was trained on; got dtype "
                        f"{x.dtype}: convert uint8 images (e.g. x.float() / 255) and normalise them first")
    return x


def _to_model(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x`` on the device (and in the floating dtype) of the model's first parameter or buffer."""
    first = next(model.parameters(), None)
    if first is None:
        first = next(model.buffers(), None)
    if first is None:
        return x
    return x.to(device=first.device, dtype=first.dtype if first.is_floating_point() else x.dtype)


def _find_layers(model: nn.Module, names: Sequence[Any], where: str) -> list[tuple[str, nn.Module]]:
    """The modules called ``names`` in ``model.named_modules()``; an error listing valid names for unknown ones."""
    modules = dict(model.named_modules())
    found = []
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"{where}: layer names must be strings as model.named_modules() gives them, e.g. "
                            f"'features.1'; got {describe(name)}")
        if name not in modules:
            import difflib
            close = difflib.get_close_matches(name, list(modules), n=3)
            guess = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
            leaves = [n for n, m in modules.items() if n and not any(True for _ in m.children())]
            shown = ", ".join(map(repr, leaves) if len(leaves) <= 12 else
                              [*map(repr, leaves[:6]), "...", *map(repr, leaves[-6:])])
            raise ValueError(f"{where}: the model has no layer named {name!r}{guess}; pass a name from "
                             f"[n for n, _ in model.named_modules()], e.g. {shown}")
        found.append((name, modules[name]))
    return found


@contextmanager
def _eval_with_hooks(model: nn.Module, hooks: Sequence[tuple[nn.Module, Any]]) -> Iterator[None]:
    """Attach forward hooks and put the model in eval mode; afterwards (also on error) remove the hooks and give
    every module back the train/eval mode it had."""
    modes = [(m, m.training) for m in model.modules()]
    handles = []
    try:
        for module, hook in hooks:
            handles.append(module.register_forward_hook(hook))
        model.eval()
        yield
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes:
            m.training = mode


def _single_output(name: str, calls: list, where: str) -> Any:
    """The one output a hooked layer produced in a forward pass; an error when it ran never or several times."""
    if not calls:
        raise ValueError(f"{where}: layer {name!r} did not run in the forward pass; pick a layer that the model's "
                         f"forward uses")
    if len(calls) > 1:
        raise ValueError(f"{where}: layer {name!r} ran {len(calls)} times in one forward pass (one module used "
                         f"several times), so its output is ambiguous; pick a layer that runs once")
    if not isinstance(calls[0], torch.Tensor):
        raise TypeError(f"{where}: layer {name!r} returned {type(calls[0]).__name__}, not a tensor; pick a layer "
                        f"that outputs a tensor (a Conv2d, an activation, a pooling layer, ...)")
    return calls[0]


def feature_maps(model: nn.Module, x: torch.Tensor,
                 layers: Optional[Union[str, Sequence[str]]] = None) -> dict[str, torch.Tensor]:
    """What chosen layers of ``model`` output for one batch: the feature maps a trained network computes.

    The batch runs once in eval mode without gradients, with forward hooks on the chosen layers; the hooks are
    removed again (also when the forward pass fails) and every module gets back its train/eval mode. Nothing
    random runs and no batch-norm statistic changes.

    Args:
        model: any network taking one batch of images, e.g. a ``ModernVGG`` or a ``build_vgg`` network.
        x: one batch, ``(N, 3, H, W)`` float, normalised as for training (moved to the model's device).
        layers: names as ``model.named_modules()`` gives them, e.g. ``["features.1", "features.5"]`` (one
            string for one layer); ``None``: every activation (``ReLU`` / ``GELU``) inside ``model.features``.
    Returns:
        ``{layer name: output}`` in the order of ``layers`` (for ``None``: the order of the layers in the model),
        each output detached, float32, on the CPU, e.g. ``(N, 64, 31, 31)`` for the first GELU of a modern VGG.
    Raises:
        TypeError: ``model`` is not an ``nn.Module``, ``x`` is not a float tensor, or a layer does not output a
            tensor.
        ValueError: ``x`` is not ``(N, C, H, W)``; a layer name is unknown (the message lists valid ones), did not
            run, or ran more than once; or ``layers`` is ``None`` and ``model.features`` has no activation.

    Example:
        >>> from vgg_helpers.modern import build_modern_vgg
        >>> maps = feature_maps(build_modern_vgg("modern-128"), torch.zeros(2, 3, 32, 32))
        >>> {name: tuple(m.shape) for name, m in list(maps.items())[:2]}
        {'features.1': (2, 24, 31, 31), 'features.5': (2, 64, 15, 15)}
    """
    check_module(model, "feature_maps")
    x = _check_batch(x, "feature_maps")
    if layers is None:
        features = getattr(model, "features", None)
        if not isinstance(features, nn.Module):
            raise ValueError(f"feature_maps: {type(model).__name__} has no `features` module to take the "
                             f"activations from; pass the layers to look at, e.g. layers=['features.1']")
        inside = {id(m) for m in features.modules()}
        names = [n for n, m in model.named_modules() if id(m) in inside and isinstance(m, _ACTIVATIONS)]
        if not names:
            raise ValueError("feature_maps: model.features has no ReLU or GELU; pass the layers to look at, "
                             "e.g. layers=['features.0']")
    elif isinstance(layers, str):
        names = [layers]
    else:
        if not hasattr(layers, "__iter__"):
            raise TypeError(f"feature_maps: layers must be a list of layer names such as ['features.1'] (or "
                            f"None); got {describe(layers)}")
        names = list(dict.fromkeys(layers))
        if not names:
            raise ValueError("feature_maps: layers is empty; pass layer names such as ['features.1'], or None for "
                             "every activation in model.features")
    found = _find_layers(model, names, "feature_maps")
    outputs: dict[str, list] = {name: [] for name in names}

    def hook_for(name: str):
        def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
            # a copy: an in-place operation after the layer (ReLU(inplace=True)) must not change what is kept
            outputs[name].append(output.detach().to("cpu", torch.float32, copy=True)
                                 if isinstance(output, torch.Tensor) else output)
        return hook

    with _eval_with_hooks(model, [(m, hook_for(n)) for n, m in found]), torch.no_grad():
        model(_to_model(model, x))
    return {name: _single_output(name, outputs[name], "feature_maps") for name in names}


def _targets(target: Any, logits: torch.Tensor) -> torch.Tensor:
    """The class index of every image: ``target`` checked against the logits, or the predicted class."""
    n, classes = logits.shape
    if target is None:
        return logits.detach().argmax(1)
    raw = target.detach().cpu() if hasattr(target, "detach") else target
    arr = as_int_array(raw, "target", allow_scalar=True)
    if np.ndim(raw) == 0:
        arr = np.full(n, arr[0])
    if len(arr) != n:
        raise ValueError(f"target must hold one class index per image: {n} images but {len(arr)} targets (or pass "
                         f"one int for every image, or None for the predicted classes)")
    _check_range(arr, "target", classes)
    return torch.from_numpy(arr).to(logits.device)


def grad_cam(model: nn.Module, x: torch.Tensor, layer: str, target: Any = None) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017): which part of each image raised the score of a class, seen at ``layer``.

    Each channel of the layer's activation ``A`` is weighted by the spatial mean of the gradient of the class's
    logit with respect to it; the map is ``ReLU(sum over channels of weight * A)`` (the places whose features
    raise the logit), upsampled bilinearly to the image's size and divided by its maximum, per image.

    The model runs in eval mode (batch norm with its running statistics, so images do not influence each other)
    and gets back every module's train/eval mode afterwards; the hook is removed, also on error. The gradient is
    taken with ``torch.autograd.grad``, so it works with frozen parameters and leaves every ``.grad`` as it was.

    Args:
        model: a classifier taking ``(N, 3, H, W)`` images and returning ``(N, classes)`` logits.
        x: one batch, ``(N, 3, H, W)`` float, normalised as for training (moved to the model's device).
        layer: the name of a layer with a spatial output ``(N, C, h, w)``, as ``model.named_modules()`` gives
            it; usually the last activation before the global pooling, e.g. ``"features.22"`` in a ``modern-128``.
        target: the class to explain for each image: a ``LongTensor`` (or list) of ``N`` class indices, one int
            for every image, or ``None`` for the predicted class.
    Returns:
        The maps, ``(N, H, W)`` float32 on the CPU, in ``[0, 1]`` with 1 at each image's peak; an image whose map
        is zero everywhere (nothing raises the logit) keeps a map of zeros.
    Raises:
        TypeError: ``model`` is not an ``nn.Module``, ``x`` is not a float tensor, or ``layer`` is not a string.
        ValueError: ``x`` is not ``(N, C, H, W)``; ``layer`` is unknown (the message lists valid ones), does not
            run exactly once, has no ``(N, C, h, w)`` output or does not lead to the logits; the model does not
            return ``(N, classes)``; or ``target`` does not fit.
    """
    check_module(model, "grad_cam")
    x = _check_batch(x, "grad_cam")
    if not isinstance(layer, str):
        raise TypeError(f"grad_cam: layer must be the name of one layer as model.named_modules() gives it, e.g. "
                        f"'features.22'; got {describe(layer)}")
    [(name, module)] = _find_layers(model, [layer], "grad_cam")
    calls: list = []

    def hook(module: nn.Module, inputs: tuple, output: Any) -> Any:
        calls.append(output)
        # a copy goes on: an in-place operation after the layer (ReLU(inplace=True)) leaves the kept output alone
        return output.clone() if isinstance(output, torch.Tensor) else None

    with _eval_with_hooks(model, [(module, hook)]), torch.enable_grad():
        # the input requires a gradient, so the activation does even when every parameter before it is frozen
        logits = model(_to_model(model, x).detach().requires_grad_(True))
        if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or len(logits) != len(x):
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise ValueError(f"grad_cam needs a classifier returning logits (N, classes) = ({len(x)}, classes); "
                             f"the model returned {shape}")
        act = _single_output(name, calls, "grad_cam")
        if act.ndim != 4:
            raise ValueError(f"grad_cam needs a layer with a spatial output (N, C, h, w); {name!r} outputs shape "
                             f"{tuple(act.shape)}: pick a convolution, activation or pooling layer in "
                             f"model.features")
        targets = _targets(target, logits)
        score = logits.gather(1, targets.view(-1, 1)).sum()   # images are independent in eval mode
        grad = (torch.autograd.grad(score, act, allow_unused=True)[0]
                if act.requires_grad and score.requires_grad else None)
    if grad is None:
        raise ValueError(f"grad_cam: the logits do not depend (differentiably) on the output of layer {name!r}; "
                         f"pick a layer on the way from the input to the logits")
    with torch.no_grad():
        a, g = act.detach().float(), grad.detach().float()
        weights = g.mean(dim=(2, 3), keepdim=True)                       # (N, C, 1, 1)
        cam = F.relu((weights * a).sum(dim=1, keepdim=True))             # (N, 1, h, w)
        cam = F.interpolate(cam, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)[:, 0]
        peak = cam.flatten(1).amax(dim=1).view(-1, 1, 1)
        cam = (cam / peak.clamp_min(torch.finfo(torch.float32).tiny)).clamp_(0.0, 1.0)
    return cam.cpu()
