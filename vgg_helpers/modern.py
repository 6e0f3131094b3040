"""The modern VGG: the network of the fastest known CIFAR-10 trainers, built from a Table-1-style layer list, and
the recipe that trains it.

It is still a VGG: a plain stack of 3x3 convolutions with max pooling, no residual connections. What changed
since 2014 (credits beside each):

* a frozen **whitening** first layer: a 2x2 convolution whose filters are the principal components of the
  training images' 2x2 patches (and their negatives), computed once from the data (Coates & Ng 2011; tysam-code's
  hlb-CIFAR10 and Keller Jordan's airbench, arXiv 2404.00498, use it for speed);
* **pool right after the first convolution of each block**, so that batch norm and the activation run on a
  quarter of the pixels (airbench);
* batch norm without a learned scale, **GELU** activations, convolutions without bias initialised as the
  **identity** (``dirac_``) on their first input channels (airbench);
* a global max-pool and one linear layer whose output is scaled down (1/9): the network starts with small,
  uncertain logits (airbench).

The layer list reads like a column of Table 1: ``"W"`` is the whitening layer, a number is a 3x3 convolution
with that many output channels, ``"M"`` a 2x2 max-pool *of the convolution before it* (before its batch norm and
activation), ``"G"`` the global max-pool before the classifier.

The recipe (``ModernRecipe``, ``train_modern``) follows the same trainers, re-measured on a 2-core CPU: large
batches with *decoupled* hyperparameters (``lr`` and ``weight_decay`` per 1,024 images, independent of the
momentum), batch-norm shifts that learn ``bias_scaler`` times faster, a whitening bias trained for the first epochs
only, a triangular learning-rate schedule, label smoothing, weight averaging, alternating flips, random
translation and test-time augmentation; ``Muon`` is an optional optimiser for the conv filters.

Why ``train_modern`` is a loop of its own rather than ``training.train``: it averages the weights every few *steps*
(not per epoch), gives the batch-norm shifts and the whitening bias their own parameter groups and learning
rates, augments the whole training set once per epoch on tensors (alternating flips need the epoch's parity), and
times itself from the first step to the final accuracy. Everything else is the book's shared code: the split and
the images come from ``data.make_loaders``, the normalisation is ``data.normalize_images``, the crops are
``data.crop_windows`` and ``data.flip_where``, and every accuracy is ``training.evaluate`` with
``training.tta_logits``, run in the precision training used (``fast.FastModel``).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional, Sequence, Union

import torch
from torch import nn
from torch.nn import functional as F

from .checks import describe, flag, known_fields, real_number, whole_number
from .data import Loaders, TensorLoader, check_labelled_images, crop_windows, flip_where, normalize_images
from .diagnostics import shape_trace
from .fast import FastModel
from .models import VGG
from .runtime import autocast_dtype, environment_info, pick_device
from .training import History, evaluate, predict

__all__ = ["MODERN_CONFIGS", "WHITEN", "GLOBAL_POOL", "ModernConfig", "ModernVGG", "build_modern_vgg",
           "init_whitening", "describe_modern", "layer_costs", "ModernRecipe", "as_trained", "evaluate_modern",
           "predict_modern", "orthogonalize", "Muon", "update_average", "train_modern"]

WHITEN = "W"          # the whitening layer (a frozen 2x2 convolution, then the activation)
GLOBAL_POOL = "G"     # global max-pool over what is left of the image
POOL = "M"            # 2x2 max-pool of the convolution before it

# Four sizes, the same shape: whitening, then three blocks of two 3x3 convolutions, each block halving the image
# (32 -> 31 after the 2x2 whitening, then 15, 7, 3), then a global max-pool.
MODERN_CONFIGS: dict[str, list[Union[int, str]]] = {
    "modern-128": [WHITEN, 64, POOL, 64, 128, POOL, 128, 128, POOL, 128, GLOBAL_POOL],   # airbench93's widths
    "modern-256": [WHITEN, 64, POOL, 64, 256, POOL, 256, 256, POOL, 256, GLOBAL_POOL],   # airbench94's widths
    # modern-128 with a wider last block: twice the weights for a sixth more time per step (its maps are 7x7, 3x3)
    "modern-128-256": [WHITEN, 64, POOL, 64, 128, POOL, 128, 256, POOL, 256, GLOBAL_POOL],
    # the last block wider again: a hold-out candidate that did not pay at equal time (bench/README.md)
    "modern-128-384": [WHITEN, 64, POOL, 64, 128, POOL, 128, 384, POOL, 384, GLOBAL_POOL],
}


@dataclass(frozen=True)
class ModernConfig:
    """Everything that defines a modern VGG."""

    layers: Sequence[Union[int, str]] = field(default_factory=lambda: list(MODERN_CONFIGS["modern-256"]))
    num_classes: int = 10            # outputs of the classifier
    whiten_kernel: int = 2           # pixels: side of the whitening patches
    activation: str = "gelu"         # "gelu" or "relu"
    logit_scale: float = 1 / 9       # the classifier's output is multiplied by this (small logits at the start)
    bn_momentum: float = 0.4         # PyTorch's convention: weight of the new batch in the running statistics
    bn_eps: float = 1e-12            # batch norm's epsilon (tiny: the whitened inputs are well scaled)
    # switches for the airbench-style ladder (each turns one ingredient off; the defaults are the modern VGG)
    whiten: bool = True              # False: the first 2x2 layer is an ordinary trained convolution
    pool_first: bool = True          # False: pool after batch norm and activation, as VGG does
    identity_init: bool = True       # False: PyTorch's default (Kaiming-uniform) init of every 3x3 conv

    def __post_init__(self) -> None:
        whole_number("num_classes", self.num_classes, 2)
        whole_number("whiten_kernel", self.whiten_kernel, 1)
        if self.activation not in ("gelu", "relu"):
            raise ValueError(f"activation must be 'gelu' or 'relu'; got {self.activation!r}")
        real_number("logit_scale", self.logit_scale, 0.0, low_ok=False)
        real_number("bn_momentum", self.bn_momentum, 0.0, 1.0)
        real_number("bn_eps", self.bn_eps, 0.0, low_ok=False)
        for name in ("whiten", "pool_first", "identity_init"):
            flag(name, getattr(self, name))
        _check_modern_layers(self.layers)


def _check_modern_layers(layers: Sequence[Union[int, str]]) -> None:
    hint = f"e.g. {MODERN_CONFIGS['modern-128']}"
    if isinstance(layers, str) or not isinstance(layers, Sequence):
        raise TypeError(f"layers must be a list such as {MODERN_CONFIGS['modern-128']}; got {describe(layers)}. "
                        f"For a named configuration use build_modern_vgg(name) ({', '.join(MODERN_CONFIGS)}).")
    layers = list(layers)
    if not layers or layers[0] != WHITEN or layers[-1] != GLOBAL_POOL:
        raise ValueError(f"a modern VGG layer list starts with 'W' (whitening) and ends with 'G' (global pool); "
                         f"{hint}; got {layers}")
    middle = layers[1:-1]
    for i, v in enumerate(middle):
        if v == POOL:
            if i == 0 or not isinstance(middle[i - 1], int):
                raise ValueError(f"'M' pools the convolution before it, so it must follow a number; {hint}; "
                                 f"got {layers}")
        elif isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"entries between 'W' and 'G' are channel counts (whole numbers >= 1) or 'M'; "
                             f"{hint}; got {v!r} in {layers}")
    if not any(isinstance(v, int) for v in middle):
        raise ValueError(f"a modern VGG needs at least one convolution; {hint}; got {layers}")


class _BatchNorm(nn.BatchNorm2d):
    """Batch norm with a fixed scale of 1 (only the shift is learned)."""

    def __init__(self, channels: int, momentum: float, eps: float) -> None:
        super().__init__(channels, eps=eps, momentum=momentum)
        self.weight.requires_grad_(False)


def _conv(c_in: int, c_out: int, identity: bool = True) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False)
    if not identity:
        return conv
    with torch.no_grad():
        # Identity on the first min(c_in, c_out) channels: at the start each block passes its input through, plus
        # the random part of the other filters (an implicit residual connection, without the connection).
        nn.init.dirac_(conv.weight[:min(c_in, c_out)])
    return conv


class ModernVGG(nn.Module):
    """A modern VGG (see the module docstring), built from a ``ModernConfig``.

    ``features`` holds the whitening layer and the convolution blocks; ``classifier`` the one linear layer.
    """

    def __init__(self, config: ModernConfig) -> None:
        super().__init__()
        self.config = config
        act = nn.GELU if config.activation == "gelu" else nn.ReLU
        k = config.whiten_kernel
        whiten_width = 2 * 3 * k * k          # every principal component of a k x k x 3 patch, and its negative
        layers: list[nn.Module] = [nn.Conv2d(3, whiten_width, kernel_size=k, bias=True), act()]
        channels = whiten_width
        items = list(config.layers[1:-1])
        for i, v in enumerate(items):
            if v == POOL:
                continue
            layers.append(_conv(channels, v, config.identity_init))
            pooled = i + 1 < len(items) and items[i + 1] == POOL
            if pooled and config.pool_first:
                layers.append(nn.MaxPool2d(2))       # pool first: batch norm and activation on 1/4 of the pixels
            layers += [_BatchNorm(v, config.bn_momentum, config.bn_eps), act()]
            if pooled and not config.pool_first:
                layers.append(nn.MaxPool2d(2))       # VGG's order: normalise and activate 4x the pixels
            channels = v
        self.features = nn.Sequential(*layers)
        # set from the data by init_whitening, then frozen (trained like any other layer without whitening)
        self.features[0].weight.requires_grad_(not config.whiten)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.classifier = nn.Linear(channels, config.num_classes, bias=False)
        self.logit_scale = config.logit_scale
        # the smallest image side that leaves a pixel after the whitening patch and every pool
        pools = sum(v == POOL for v in config.layers)
        self.min_input_side = 2 ** pools + k - 1

    @property
    def whiten(self) -> nn.Conv2d:
        """The whitening layer (``features[0]``)."""
        return self.features[0]

    def check_input(self, x: torch.Tensor) -> None:
        """Refuse a batch this network cannot take, saying why (before torch fails deep inside).

        Raises:
            TypeError: not a floating-point tensor.
            ValueError: not (N, 3, H, W), or smaller than ``min_input_side`` (too many ``"M"`` for the image).
        """
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"ModernVGG expects a tensor of images shaped (N, 3, H, W); got {describe(x)}.")
        if x.dim() != 4 or x.shape[1] != 3:
            fix = (" For one image use x.unsqueeze(0)." if x.dim() == 3 else
                   " They look like (N, H, W, 3): pass x.permute(0, 3, 1, 2)." if x.dim() == 4 and x.shape[-1] == 3
                   else " Grayscale images: repeat the channel, x.expand(-1, 3, -1, -1)." if x.dim() == 4
                   and x.shape[1] == 1 else "")
            raise ValueError(f"ModernVGG expects RGB images shaped (N, 3, H, W); got shape {tuple(x.shape)}.{fix}")
        if not x.is_floating_point():
            raise TypeError(f"ModernVGG expects normalised floating-point images; got {x.dtype}. Convert uint8 "
                            "images with data.normalize_images(x).")
        side = min(x.shape[-2:])
        if side < self.min_input_side:
            pools = sum(v == POOL for v in self.config.layers)
            raise ValueError(f"this ModernVGG pools {pools} times after its {self.config.whiten_kernel}x"
                             f"{self.config.whiten_kernel} whitening, so it needs images of at least "
                             f"{self.min_input_side}x{self.min_input_side} pixels; got {tuple(x.shape[-2:])}. "
                             f"Use fewer 'M' in its layers (MODERN_CONFIGS pool 3 times for 32x32 images) or "
                             "larger images.")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        x = self.features(x)                 # (N, C, 3, 3) for 32x32 inputs
        x = self.pool(x).flatten(1)          # (N, C)
        return self.classifier(x) * self.logit_scale   # (N, num_classes)


def build_modern_vgg(arch: str = "modern-256", **kwargs) -> ModernVGG:
    """A modern VGG from ``MODERN_CONFIGS`` (the whitening layer still needs ``init_whitening``).

    Args:
        arch: a key of ``MODERN_CONFIGS``.
        kwargs: other ``ModernConfig`` fields (``num_classes``, ``activation``, ...).
    Returns:
        The network, with random weights (seed ``torch.manual_seed`` first for a repeatable one).
    """
    if arch not in MODERN_CONFIGS:
        raise ValueError(f"arch must be one of {', '.join(MODERN_CONFIGS)}; got {arch!r}")
    known_fields(ModernConfig, kwargs)
    return ModernVGG(ModernConfig(layers=list(MODERN_CONFIGS[arch]), **kwargs))


@torch.no_grad()
def init_whitening(model: ModernVGG, images: torch.Tensor, eps: float = 5e-4) -> torch.Tensor:
    """Set the whitening layer's filters from the training images: the principal components of their patches.

    Each filter is one eigenvector of the covariance of all k x k patches, divided by the square root of its
    eigenvalue (plus ``eps``), so the layer's outputs are decorrelated and of unit variance; the second half of
    the filters are the negatives of the first (the activation after it would otherwise discard half the signal).

    Args:
        model: a ``ModernVGG``.
        images: normalised training images, ``(N, 3, 32, 32)`` float (a few thousand are plenty).
        eps: added to the eigenvalues (keeps the weakest components from being amplified without bound).
    Returns:
        The eigenvalues, largest first.
    """
    if not isinstance(model, ModernVGG):
        raise TypeError(f"model must be a ModernVGG (build_modern_vgg); got {type(model).__name__}.")
    if not isinstance(images, torch.Tensor) or not images.is_floating_point() or images.dim() != 4 \
            or images.shape[1] != 3:
        raise ValueError(f"images must be normalised float images (N, 3, H, W), as data.normalize_images gives "
                         f"them; got {describe(images)}" + (f" of {images.dtype}" if isinstance(images, torch.Tensor)
                                                          else "") + ".")
    conv = model.whiten
    k = conv.kernel_size[0]
    if len(images) == 0 or min(images.shape[-2:]) < k:
        raise ValueError(f"images must hold at least one image of {k}x{k} pixels or more (the whitening patch); "
                         f"got shape {tuple(images.shape)}.")
    x = images.float()
    patches = x.unfold(2, k, 1).unfold(3, k, 1)                  # (N, 3, H-k+1, W-k+1, k, k)
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, 3 * k * k)   # (patches, 3*k*k)
    cov = patches.T @ patches / len(patches)
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)          # ascending
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)
    filters = (eigenvectors.T / torch.sqrt(eigenvalues + eps).unsqueeze(1)).reshape(-1, 3, k, k)
    conv.weight.copy_(torch.cat([filters, -filters]).to(conv.weight))
    return eigenvalues


def describe_modern(arch: str) -> list[str]:
    """The layer list of ``arch`` in words, one line per layer (as Table 1 reads), e.g. ``"conv3-64, maxpool"``."""
    if arch not in MODERN_CONFIGS:
        raise ValueError(f"arch must be one of {', '.join(MODERN_CONFIGS)}; got {arch!r}")
    items = MODERN_CONFIGS[arch]
    out = []
    for i, v in enumerate(items):
        if v == WHITEN:
            out.append("whiten2 (filters from the data, not trained)")
        elif v == GLOBAL_POOL:
            out.append("global maxpool")
        elif v != POOL:
            pooled = i + 1 < len(items) and items[i + 1] == POOL
            out.append(f"conv3-{v}" + (", maxpool" if pooled else ""))
    return out


def layer_costs(model: nn.Module, input_size: Sequence[int] = (1, 3, 32, 32)) -> list[dict]:
    """Every weight layer of ``model`` (conv or linear) with its output size, parameters and multiply-adds for one
    image: what a layer-by-layer comparison of two networks needs.

    Args:
        model: any network of ``Conv2d`` / ``Linear`` layers (a ``ModernVGG``, a ``build_vgg`` network, ...).
        input_size: one input's shape, batch dimension (1) included.
    Returns:
        One dict per layer in the order they run: ``name``, ``kind`` (e.g. ``"conv3-64"``, ``"fc-10"``),
        ``out`` (output channels x height x width, e.g. ``"64x31x31"``), ``params`` and ``macs``.
    """
    modules = dict(model.named_modules())
    rows = []
    for r in shape_trace(model, input_size):
        m = modules[r.name]
        if isinstance(m, nn.Conv2d):
            c, h, w = r.output_shape[1:]
            k = m.kernel_size[0]
            rows.append(dict(name=r.name, kind=f"conv{k}-{c}", out=f"{c}x{h}x{w}", params=r.params,
                             macs=m.weight.numel() // m.groups * h * w))
        elif isinstance(m, nn.Linear):
            rows.append(dict(name=r.name, kind=f"fc-{m.out_features}", out=str(m.out_features), params=r.params,
                             macs=m.weight.numel()))
    return rows


@dataclass(frozen=True)
class ModernRecipe:
    """How a modern VGG is trained (every field has its unit; the defaults are airbench94's, to be tuned)."""

    epochs: float = 10.0             # passes over the training images (a fraction is allowed)
    batch_size: int = 1024           # images per step
    lr: float = 11.5                 # learning rate per 1,024 images, decoupled from the momentum
    momentum: float = 0.85           # Nesterov momentum
    weight_decay: float = 0.0153     # per 1,024 images, decoupled from the learning rate
    bias_scaler: float = 64.0        # batch-norm shifts learn this many times faster (no extra decay)
    label_smoothing: float = 0.2     # fraction of the target spread over all classes
    whiten_bias_epochs: int = 3      # epochs during which the whitening layer's bias trains
    whiten_images: int = 5000        # training images whose patches set the whitening layer
    translate: int = 2               # pixels: random shift of every training image (reflect padding)
    flip: str = "alternate"          # "alternate" (every other epoch), "random" or "none"
    ema_from_epoch: int = 3          # weight averaging starts after this many epochs (0: never averages)
    ema_every: int = 5               # steps between two updates of the average
    ema_decay: float = 0.95 ** 5     # decay of the average per update at the end (warmed up as progress^3)
    lr_start: float = 0.2            # the schedule's multiplier of lr at step 0 ...
    lr_peak_at: float = 0.23         # ... rises linearly to 1 at this fraction of the steps ...
    lr_end: float = 0.07             # ... and falls linearly to this at the end
    tta_level: int = 2               # test-time augmentation: 0 none, 1 mirror, 2 mirror + 1-pixel shifts
    seed: int = 0                    # initial weights, batch order, flips and shifts
    optimizer: str = "sgd"           # "sgd" (all weights) or "muon" (orthogonalised steps for the conv filters)
    muon_lr: float = 0.24            # muon: step per update of a filter bank kept at norm sqrt(out channels)
    muon_momentum: float = 0.6       # muon: Nesterov momentum of the filters' steps
    head_lr: float = 0.67            # muon: SGD lr of the linear layer, for logits divided by the width
    bias_lr: float = 0.053           # muon: SGD lr of the batch-norm shifts and the whitening bias
    decay_per_image: float = 2e-6    # muon: weight decay of the SGD weights per image in a step

    def __post_init__(self) -> None:
        real_number("epochs", self.epochs, 0.0, low_ok=False)
        whole_number("batch_size", self.batch_size, 1)
        for name in ("lr", "weight_decay", "bias_scaler", "ema_decay", "lr_start", "lr_end"):
            real_number(name, getattr(self, name), 0.0)
        real_number("momentum", self.momentum, 0.0, 1.0, high_ok=False)
        real_number("label_smoothing", self.label_smoothing, 0.0, 1.0, high_ok=False)
        real_number("lr_peak_at", self.lr_peak_at, 0.0, 1.0)
        for name in ("muon_lr", "head_lr", "bias_lr", "decay_per_image"):
            real_number(name, getattr(self, name), 0.0)
        real_number("muon_momentum", self.muon_momentum, 0.0, 1.0, high_ok=False)
        for name in ("whiten_bias_epochs", "translate", "ema_from_epoch", "seed"):
            whole_number(name, getattr(self, name), 0)
        whole_number("whiten_images", self.whiten_images, 1)
        whole_number("ema_every", self.ema_every, 1)
        whole_number("tta_level", self.tta_level, 0, maximum=2)
        if self.flip not in ("alternate", "random", "none"):
            raise ValueError(f"flip must be 'alternate', 'random' or 'none'; got {self.flip!r}")
        if self.optimizer not in ("sgd", "muon"):
            raise ValueError(f"optimizer must be 'sgd' or 'muon'; got {self.optimizer!r}")

    def lr_multiplier(self, step: int, total: int) -> float:
        """The triangular schedule: the multiplier of the learning rate at ``step`` of ``total``."""
        x, peak = step / max(1, total), self.lr_peak_at
        if x < peak:                     # (peak 0: no warm-up, a straight fall from lr_start to lr_end)
            return self.lr_start + (1 - self.lr_start) * x / peak
        top = self.lr_start if peak == 0 else 1.0
        return top + (self.lr_end - top) * (x - peak) / (1 - peak) if peak < 1 else 1.0


def as_trained(model: nn.Module) -> FastModel:
    """``model`` as ``train_modern`` runs it: channels-last layout, bfloat16 autocast where native (float16 on an
    older GPU, float32 where bfloat16 would be emulated), float32 logits."""
    return FastModel(model, channels_last=True, amp=True)


def evaluate_modern(model: nn.Module, loader, level: int = 2) -> float:
    """Accuracy of a modern VGG on ``loader`` with test-time augmentation ``level`` (``training.tta_logits``), in
    the precision training used (``as_trained``)."""
    return evaluate(as_trained(model), loader, tta=level)[1]


def predict_modern(model: nn.Module, loader, level: int = 2) -> torch.Tensor:
    """The predicted class of every image of ``loader`` (as ``evaluate_modern`` measures it), on the CPU."""
    return predict(as_trained(model), loader, tta=level)[0]


def _translate(padded: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """A random ``size`` x ``size`` window of every image of ``padded`` (``crop_windows``; one shift per image)."""
    positions = padded.shape[-1] - size + 1                  # 2r + 1 per axis
    n = len(padded)
    dy = torch.randint(0, positions, (n,), generator=generator)
    dx = torch.randint(0, positions, (n,), generator=generator)
    return crop_windows(padded, dy, dx, size)


def orthogonalize(g: torch.Tensor, steps: int = 3) -> torch.Tensor:
    """An approximately orthogonal matrix with the row and column spaces of ``g`` (its singular values pushed
    towards 1), by a quintic Newton-Schulz iteration (Keller Jordan's Muon, 2024; its published coefficients).

    Args:
        g: a 2-D tensor, e.g. a conv filter bank's gradient as ``(out_channels, in_channels * k * k)``.
        steps: iterations (3 leave the singular values between about 0.5 and 1.5, which trains as well as 1).
    Returns:
        A float32 tensor of ``g``'s shape.
    """
    if not isinstance(g, torch.Tensor) or g.dim() != 2:
        raise ValueError(f"g must be a 2-D tensor (a filter bank's gradient as g.reshape(len(g), -1)); got "
                         f"{describe(g)}.")
    steps = whole_number("steps", steps, 0)
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g.float() / (g.norm() + 1e-7)            # every singular value <= 1
    wide = x.shape[0] <= x.shape[1]
    if not wide:
        x = x.T
    for _ in range(steps):
        gram = x @ x.T                           # (rows, rows): the smaller side
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x if wide else x.T


class Muon(torch.optim.Optimizer):
    """Muon for conv filters: Nesterov momentum, then the step orthogonalised (``orthogonalize``); each filter bank
    is rescaled to norm sqrt(out_channels) before its step, so the step size ``lr`` is relative to the weights.

    Args:
        params: 4-D conv weights.
        lr: the step size; momentum: the Nesterov momentum.
    """

    def __init__(self, params, lr: float, momentum: float) -> None:
        real_number("lr", lr, 0.0, low_ok=False)
        real_number("momentum", momentum, 0.0, 1.0, high_ok=False)
        super().__init__(params, dict(lr=lr, momentum=momentum))

    @torch.no_grad()
    def step(self, closure=None) -> None:  # noqa: D102 (torch.optim.Optimizer.step)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                buf = state.setdefault("momentum", torch.zeros_like(p.grad))
                buf.mul_(group["momentum"]).add_(p.grad)
                g = p.grad.add(buf, alpha=group["momentum"])            # Nesterov
                p.mul_(len(p) ** 0.5 / p.norm())
                p.add_(orthogonalize(g.reshape(len(g), -1)).view_as(p).to(p.dtype), alpha=-group["lr"])


@torch.no_grad()
def update_average(average: dict[str, torch.Tensor], model: nn.Module, decay: float) -> None:
    """One step of weight averaging: move the average towards the network, then copy it into the network.

    For every floating-point entry of ``model.state_dict()`` (the weights and the batch-norm running statistics;
    not the integer step counters) that ``average`` holds: ``average[k] = decay * average[k] + (1 - decay) *
    model[k]``, in place, and then the network's entry becomes ``average[k]``. ``train_modern`` does this every
    ``ema_every`` steps (airbench's "lookahead": the network goes on training from the average).

    Args:
        average: the running average, ``{name: tensor}`` as ``model.state_dict()`` names them; updated in place.
        model: the network; its entries are overwritten with the new average.
        decay: the weight of the old average, from 0 (the average becomes the network) to 1 (it stays).

    Example:
        >>> net = nn.Linear(1, 1, bias=False)
        >>> _ = net.weight.data.fill_(1.0)
        >>> average = {"weight": torch.zeros(1, 1)}
        >>> update_average(average, net, decay=0.75)
        >>> average["weight"].item(), net.weight.item()
        (0.25, 0.25)
    """
    for k, v in model.state_dict().items():
        if k in average:
            average[k].lerp_(v, 1 - decay)
            v.copy_(average[k])


class _WeightAverage:
    """An exponential moving average of the floating-point weights and buffers, copied back into the network."""

    def __init__(self, model: nn.Module) -> None:
        self.average = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    def update(self, model: nn.Module, decay: float) -> None:
        update_average(self.average, model, decay)


def _num_classes(model: ModernVGG | VGG) -> int:
    """The network's outputs: its config's ``num_classes``, or its last linear layer's (a ``VGG`` built by hand)."""
    if isinstance(model, ModernVGG):
        return model.config.num_classes
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1].out_features


def _vgg_description(model: VGG) -> dict:
    """A VGG's ``VGGConfig`` as a dict (``build_vgg`` attaches it), or its output count for one built by hand."""
    config = getattr(model, "config", None)
    return config.to_dict() if config is not None else {"num_classes": _num_classes(model)}


def _check_training(model: ModernVGG | VGG, loaders: Loaders, recipe: ModernRecipe, measure_on: Optional[str]
                    ) -> Optional[TensorLoader]:
    """``train_modern``'s checks of its inputs (those of ``TensorLoader`` and ``train``); the loader measured on."""
    if not isinstance(model, (ModernVGG, VGG)):
        raise TypeError(f"model must be a ModernVGG from build_modern_vgg (e.g. build_modern_vgg('modern-128')) or "
                        f"a VGG from build_vgg; got {type(model).__name__}.")
    if not isinstance(recipe, ModernRecipe):
        fix = ": write ModernRecipe(**recipe)" if isinstance(recipe, dict) else ", e.g. ModernRecipe(epochs=10)"
        raise TypeError(f"recipe must be a ModernRecipe{fix}; got {describe(recipe)}.")
    if recipe.optimizer == "muon" and not isinstance(model, ModernVGG):
        raise ValueError("optimizer='muon' needs a ModernVGG (its per-group learning rates are set for that "
                         "network's whitening bias and scaled logits): use optimizer='sgd' for a VGG")
    if not isinstance(loaders, Loaders):
        raise TypeError(f"loaders must be the Loaders that data.make_loaders returns (train, val and test together); "
                        f"got {type(loaders).__name__}. Pass make_loaders(data, run) whole, not one of its loaders.")
    if measure_on not in ("val", "test", None):
        raise ValueError(f"measure_on must be 'val', 'test' or None; got {measure_on!r}")
    measured = {"val": loaders.val, "test": loaders.test, None: None}[measure_on]
    if measure_on is not None and measured is None:
        raise ValueError(f"measure_on={measure_on!r} but the loaders have no {measure_on} set (val_size=0): "
                         "measure on 'test', or give the run a validation hold-out")
    for name, loader in (("loaders.train", loaders.train), (f"loaders.{measure_on}", measured)):
        if loader is None:
            continue
        if not isinstance(loader, TensorLoader):
            raise TypeError(f"{name} must be a data.TensorLoader (as make_loaders builds it); got "
                            f"{type(loader).__name__}.")
        try:
            images, _ = check_labelled_images(loader.images, loader.labels, _num_classes(model))
        except (TypeError, ValueError) as e:
            raise type(e)(f"{name}: {e}") from None
        if isinstance(model, ModernVGG) and min(images.shape[-2:]) < model.min_input_side:
            model.check_input(images[:1].float())          # says why, in the network's words
    n = len(loaders.train.images)
    if n < recipe.batch_size:
        raise ValueError(f"{n} training images give no full batch of recipe.batch_size={recipe.batch_size}, so "
                         f"nothing would be trained: use more images or ModernRecipe(batch_size={n}) or smaller.")
    return measured


def train_modern(model: ModernVGG | VGG, loaders: Loaders, recipe: ModernRecipe, *, measure_on: Optional[str] = "val",
                 device: torch.device | str | None = None, eval_every_epoch: bool = False,
                 on_epoch: Optional[Callable[[dict], None]] = None) -> History:
    """Train a modern VGG with ``recipe``; the clock runs from the first step to the final (test-time
    augmented) accuracy on ``measure_on`` (the hold-out, or the test set for a final run).

    Args:
        model: from ``build_modern_vgg`` (seed it first); its whitening layer is set here from the training images.
            A VGG from ``build_vgg`` trains with the same recipe (no whitening layer, so the recipe's whitening
            fields do nothing): the book's bridge between the two networks.
        loaders: from ``data.make_loaders`` (their ``eval_batch_size`` is the evaluation's batch): the training
            images are read whole from ``loaders.train`` (this loop draws its own batches, flips and shifts).
        recipe: the ``ModernRecipe``.
        measure_on: ``"val"`` (``loaders.val``), ``"test"`` (``loaders.test``) or ``None`` (no accuracy).
        device: default ``pick_device()``. On a CPU with native bfloat16 (and on CUDA) the forward pass runs in
            bfloat16 autocast (float16 on older GPUs, with a gradient scaler); channels-last memory layout.
        eval_every_epoch: also measure the accuracy (without test-time augmentation) after every epoch. That
            time is *not* counted in ``history.time``.
        on_epoch: called with each epoch's row (e.g. to print it).
    Returns:
        A ``History``: per epoch the training loss and accuracy, ``val_acc`` (``None`` unless
        ``eval_every_epoch``), the learning rate and the training seconds so far; ``meta`` holds the recipe, the
        environment, ``final_acc`` (with test-time augmentation), ``train_seconds`` and ``total_seconds``.
    Raises:
        TypeError: ``model``, ``loaders`` or ``recipe`` of the wrong kind (e.g. a network that is neither a
            ``ModernVGG`` nor a ``VGG``, a recipe given as a dict, a single ``TensorLoader``).
        ValueError: images or labels that ``data.TensorLoader`` would refuse, labels beyond the network's
            ``num_classes``, images too small for its pools, fewer training images than one batch, or
            ``measure_on`` naming a set the loaders do not have (``val`` when ``val_size`` is 0), or the
            muon optimizer for a ``VGG``.
    """
    measured = _check_training(model, loaders, recipe, measure_on)
    eval_every_epoch = flag("eval_every_epoch", eval_every_epoch)
    if on_epoch is not None and not callable(on_epoch):
        raise TypeError(f"on_epoch must be a function of an epoch's row (e.g. print), or None; got "
                        f"{describe(on_epoch)}.")
    device = pick_device(device)
    dtype = autocast_dtype(device)
    torch.manual_seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    model = model.to(device).to(memory_format=torch.channels_last)
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None

    t0 = time.perf_counter()
    x_all = normalize_images(loaders.train.images, device)
    y_all = loaders.train.labels.to(device)
    whiten = isinstance(model, ModernVGG) and model.config.whiten
    if whiten:
        init_whitening(model, x_all[:recipe.whiten_images])
    if recipe.flip != "none":       # a random half starts mirrored; "alternate" then flips all every other epoch
        x_all = flip_where(x_all, torch.rand(len(x_all), generator=gen) < 0.5)
    r = recipe.translate
    padded = F.pad(x_all, (r, r, r, r), mode="reflect") if r else x_all

    n = len(x_all)
    steps_per_epoch = n // recipe.batch_size
    total = max(1, math.ceil(steps_per_epoch * recipe.epochs))
    # decoupled -> PyTorch's SGD: with Nesterov momentum m a constant gradient moves a weight 1 + 1/(1-m) times
    # the plain step; dividing it out keeps lr the size of a step per 1,024 images whatever the momentum.
    kilo = 1024 * (1 + 1 / (1 - recipe.momentum))
    lr = recipe.lr / kilo
    wd = recipe.weight_decay * recipe.batch_size / kilo
    bn_shifts = [p for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in (m.bias,)]
    shift_ids = {id(p) for p in bn_shifts}
    others = [p for p in model.parameters() if p.requires_grad and id(p) not in shift_ids]
    lr_shift = lr * recipe.bias_scaler
    if recipe.optimizer == "sgd":
        optimizer = torch.optim.SGD([dict(params=bn_shifts, lr=lr_shift, weight_decay=wd / lr_shift),
                                     dict(params=others, lr=lr, weight_decay=wd / lr)],
                                    momentum=recipe.momentum, nesterov=True)
        optimizers = [optimizer]
    else:
        # muon: the conv filters take orthogonalised steps; the rest is plain SGD with airbench's per-step lrs.
        # The head's lr is for logits divided by the width; rescaled for this network's own logit scale (a
        # weight's effect on the logits, and its gradient, both scale with it).
        filters = [p for p in others if p.dim() == 4]
        head = [p for p in others if p.dim() != 4 and p is not model.whiten.bias]
        width = model.classifier.in_features
        head_lr = recipe.head_lr / (width * model.logit_scale) ** 2
        decay = recipe.decay_per_image * recipe.batch_size
        biases = bn_shifts + [model.whiten.bias]
        optimizer = torch.optim.SGD([dict(params=biases, lr=recipe.bias_lr, weight_decay=decay / recipe.bias_lr),
                                     dict(params=head, lr=head_lr, weight_decay=decay / head_lr)],
                                    momentum=recipe.momentum, nesterov=True)
        optimizers = [optimizer, Muon(filters, lr=recipe.muon_lr, momentum=recipe.muon_momentum)]
    groups = [g for opt in optimizers for g in opt.param_groups]
    base_lrs = [g["lr"] for g in groups]
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing, reduction="sum")
    average: Optional[_WeightAverage] = None
    history = History(meta={**environment_info(device), "recipe": asdict(recipe),
                             "model": (dict(arch_layers=list(model.config.layers), activation=model.config.activation)
                                       if isinstance(model, ModernVGG) else _vgg_description(model)),
                             "train_images": n, "autocast": str(dtype).replace("torch.", "") if dtype else None})
    step, eval_seconds = 0, 0.0
    for epoch in range(math.ceil(recipe.epochs)):
        if whiten:                   # (a first layer that is not whitening trains like the others)
            model.whiten.bias.requires_grad_(epoch < recipe.whiten_bias_epochs)
        model.train()
        images = _translate(padded, x_all.shape[-1], gen) if r else x_all
        if recipe.flip == "alternate" and epoch % 2 == 1:
            images = images.flip(-1)
        elif recipe.flip == "random":
            images = flip_where(images, torch.rand(n, generator=gen) < 0.5)
        order = torch.randperm(n, generator=gen).to(device)
        loss_sum, correct, seen = 0.0, 0, 0
        for i in range(steps_per_epoch):
            if step >= total:
                break
            idx = order[i * recipe.batch_size:(i + 1) * recipe.batch_size]
            x = images[idx].contiguous(memory_format=torch.channels_last)
            y = y_all[idx]
            for g, base in zip(groups, base_lrs):
                g["lr"] = base * recipe.lr_multiplier(step, total)
            with torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                logits = model(x)
            loss = loss_fn(logits.float(), y)
            for opt in optimizers:
                opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                for opt in optimizers:
                    scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                for opt in optimizers:
                    opt.step()
            step += 1
            loss_sum += loss.item()
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
            if recipe.ema_from_epoch and epoch >= recipe.ema_from_epoch and step % recipe.ema_every == 0:
                if average is None:
                    average = _WeightAverage(model)
                else:          # a weak average early, a strong one at the end
                    average.update(model, recipe.ema_decay * (step / total) ** 3)
        if average is not None:
            average.update(model, 1.0)                  # the network holds the average at every epoch's end
        val_acc = None
        if eval_every_epoch and measured is not None:
            t_eval = time.perf_counter()
            val_acc = evaluate_modern(model, measured, level=0)
            eval_seconds += time.perf_counter() - t_eval
        row = dict(epoch=epoch + 1, train_loss=loss_sum / max(1, seen), train_acc=correct / max(1, seen),
                   val_loss=None, val_acc=val_acc, lr=groups[-1]["lr"],
                   time=time.perf_counter() - t0 - eval_seconds)
        history.append(**row)
        if on_epoch is not None:
            on_epoch(row)
        if not math.isfinite(row["train_loss"]):
            raise RuntimeError(f"the training loss became {row['train_loss']} in epoch {epoch + 1}: lower lr "
                               f"(now {recipe.lr}) or check the data")
    train_seconds = time.perf_counter() - t0 - eval_seconds
    if measured is not None:
        history.meta["final_acc"] = evaluate_modern(model, measured, level=recipe.tta_level)
    history.meta.update(train_seconds=train_seconds, total_seconds=time.perf_counter() - t0 - eval_seconds,
                        steps=step)
    return history
