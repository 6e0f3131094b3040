"""A modern VGG: the network of the fastest known CIFAR-10 trainers, built from a Table-1-style layer list.

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
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence, Union

import torch
from torch import nn

from .checks import real_number, whole_number

__all__ = ["MODERN_CONFIGS", "WHITEN", "GLOBAL_POOL", "ModernConfig", "ModernVGG", "build_modern_vgg",
           "init_whitening", "describe_modern", "layer_costs"]

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
    # switches for chapter 8's ladder (each turns one ingredient off; the defaults are the modern VGG)
    whiten: bool = True              # False: the first 2x2 layer is an ordinary trained convolution
    pool_first: bool = True          # False: pool after batch norm and activation, as VGG does
    identity_init: bool = True       # False: PyTorch's default (Kaiming-uniform) init of every 3x3 conv

    def __post_init__(self) -> None:
        whole_number("num_classes", self.num_classes, 2)
        whole_number("whiten_kernel", self.whiten_kernel, 1)
        if self.activation not in ("gelu", "relu"):
            raise ValueError(f"activation must be 'gelu' or 'relu'; got {self.activation!r}")
        real_number("logit_scale", self.logit_scale, 0.0, low_ok=False)
        _check_modern_layers(self.layers)


def _check_modern_layers(layers: Sequence[Union[int, str]]) -> None:
    layers = list(layers)
    hint = f"e.g. {MODERN_CONFIGS['modern-128']}"
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

    @property
    def whiten(self) -> nn.Conv2d:
        """The whitening layer (``features[0]``)."""
        return self.features[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
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
    conv = model.whiten
    k = conv.kernel_size[0]
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
            out.append("whiten2 (frozen, from the data)")
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
    from .diagnostics import shape_trace
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
