"""The config-driven VGG builder: one ``make_layers`` loop, one private factory, thin public builders.

Submodules are named ``features`` / ``avgpool`` / ``classifier`` with the same layer indices as
torchvision's ``models.vgg``, so a torchvision VGG's ``state_dict`` loads into ours unchanged.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .checks import flag, real_number, whole_number
from .configs import (FC_WIDTH, INITS, LRN, LRN_PARAMS, NUM_POOLS, POOL, LayerSpec, VGGConfig, check_fields,
                      sizes_around, check_layers, layers_for)

__all__ = ["VGG", "make_layers", "init_weights", "build_vgg", "count_parameters", "check_module", "CIFAR_BN_MODEL",
           "vgg11", "vgg11_lrn", "vgg13", "vgg16_1x1", "vgg16", "vgg19"]

# The batch-norm VGG for CIFAR-10 (the fix of the 10% failure): build_vgg(arch, width=..., **CIFAR_BN_MODEL).
CIFAR_BN_MODEL = dict(
    batch_norm=True,       # the fix: BatchNorm2d between every conv and its ReLU
    head="cifar",          # one Linear(512 -> 10) instead of FC-4096, FC-4096, FC-10
    input_size=32,
    num_classes=10,
    init="kaiming",        # He init suits ReLU nets; with batch norm even the paper's init trains
)


def make_layers(layers: Sequence[LayerSpec], batch_norm: bool = False,
                in_channels: int = 3) -> nn.Sequential:
    """Turn a layer list (see ``vgg_helpers.configs``) into the conv ``features`` stack.

    Args:
        layers: e.g. ``[64, "M", 128, "M", ...]``; ``(256, 1)`` is a 1x1 conv,
            ``"LRN"`` an LRN layer.
        batch_norm: put a ``BatchNorm2d`` between every conv and its ReLU.
        in_channels: channels of the input image (3 for RGB).
    Returns:
        An ``nn.Sequential`` of conv / (batch norm) / ReLU / LRN / max-pool modules.
    Raises:
        TypeError: ``batch_norm`` is not a bool, or ``in_channels`` not a whole number.
        ValueError: a bad layer list (see ``check_layers``), or ``in_channels`` < 1.
    """
    batch_norm = flag("batch_norm", batch_norm)
    channels = whole_number("in_channels", in_channels, 1, "3 for RGB images")
    modules: list[nn.Module] = []
    for v in check_layers(layers):
        if v == POOL:
            modules.append(nn.MaxPool2d(kernel_size=2, stride=2))  # H, W -> H/2, W/2
        elif v == LRN:
            modules.append(nn.LocalResponseNorm(**LRN_PARAMS))
        else:
            out, k = (v, 3) if isinstance(v, int) else v
            # stride 1 and padding k // 2 keep H and W (sec. 2.1: "padding is 1 pixel")
            modules.append(nn.Conv2d(channels, out, kernel_size=k, padding=k // 2))
            if batch_norm:
                modules.append(nn.BatchNorm2d(out))
            modules.append(nn.ReLU(inplace=True))
            channels = out
    return nn.Sequential(*modules)


class VGG(nn.Module):
    """A VGG network: ``features`` (convs and pools), ``avgpool``, flatten, ``classifier``.

    Args:
        features: the conv stack from ``make_layers``.
        num_classes: number of output units.
        head: ``"imagenet"`` (FC-4096, FC-4096, FC-num_classes with dropout) or ``"cifar"`` (one Linear).
        input_size: the input height = width this network is built for (224 or 32, say).
        dropout: drop probability after each FC-4096 layer (imagenet head).
        softmax: append ``nn.Softmax(dim=1)`` to the classifier (outputs probabilities, not logits).
    Raises:
        ValueError: ``features`` has no ``Conv2d``, or another argument is invalid (same messages as ``VGGConfig``).
        TypeError: ``features`` is not an ``nn.Module``.
    """

    def __init__(self, features: nn.Sequential, num_classes: int = 1000, head: str = "imagenet",
                 input_size: int = 224, dropout: float = 0.5, softmax: bool = False) -> None:
        super().__init__()
        # Checks num_classes, head, input_size, dropout and softmax with the same messages as VGGConfig.
        checked = VGGConfig(num_classes=num_classes, head=head, input_size=input_size, dropout=dropout,
                            softmax=softmax)
        num_classes, input_size, dropout = checked.num_classes, checked.input_size, checked.dropout
        if not isinstance(features, nn.Module):
            raise TypeError(f"features must be an nn.Module such as make_layers([64, 'M', ...]); "
                            f"got {type(features).__name__}")
        convs = [m for m in features.modules() if isinstance(m, nn.Conv2d)]
        if not convs:
            raise ValueError("features has no Conv2d layer: build it with make_layers([...])")
        channels = convs[-1].out_channels
        self.input_size = input_size
        self.head = head
        side = input_size // 2 ** NUM_POOLS          # 224 -> 7, 32 -> 1
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((side, side))  # identity for the size the net was built for
        flat = channels * side * side                  # 512 * 7 * 7 = 25088 in the paper's setting
        if head == "imagenet":
            layers: list[nn.Module] = [
                nn.Linear(flat, FC_WIDTH), nn.ReLU(inplace=True), nn.Dropout(dropout),
                nn.Linear(FC_WIDTH, FC_WIDTH), nn.ReLU(inplace=True), nn.Dropout(dropout),
                nn.Linear(FC_WIDTH, num_classes),
            ]
        else:
            layers = [nn.Linear(flat, num_classes)]
        if softmax:
            layers.append(nn.Softmax(dim=1))
        self.classifier = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``(N, 3, input_size, input_size)`` -> ``(N, num_classes)`` scores."""
        self._check_input(x)
        x = self.features(x)              # (N, 512, input_size / 32, input_size / 32)
        self._check_features(x)
        x = self.avgpool(x)               # a no-op at the size the net was built for
        x = torch.flatten(x, 1)           # (N, 512 * side * side): 25088 at 224x224
        return self.classifier(x)         # (N, num_classes)

    def _check_features(self, x: torch.Tensor) -> None:
        # torchvision's adaptive pool would silently resize a wrong-sized map; we refuse, so a layer that
        # changes the spatial size by mistake (padding=0, a stride-1 pool) fails the shape check loudly.
        side = self.input_size // 2 ** NUM_POOLS
        if tuple(x.shape[-2:]) != (side, side):
            raise ValueError(
                f"The features stack turned {self.input_size}x{self.input_size} inputs into "
                f"{x.shape[-2]}x{x.shape[-1]} maps, but the classifier expects {side}x{side} (the input halved by "
                f"{NUM_POOLS} max-pools). A layer changes the spatial size: every conv needs padding = "
                f"kernel_size // 2 and stride 1, every pool kernel 2 and stride 2.")

    def _check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"VGG expects a torch.Tensor of images shaped (N, 3, H, W); got {type(x).__name__}. "
                            f"Convert it with torch.as_tensor(x, dtype=torch.float32).")
        if x.dim() != 4:
            raise ValueError(f"VGG expects a batch of images shaped (N, 3, H, W); got a tensor of shape "
                             f"{tuple(x.shape)}. For one image use x.unsqueeze(0).")
        channels = next(m for m in self.features.modules() if isinstance(m, nn.Conv2d)).in_channels
        if x.shape[1] != channels:
            raise ValueError(f"VGG expects {channels} input channels (RGB); got shape "
                             f"{tuple(x.shape)}. Check the channel order is (N, C, H, W).")
        if not x.is_floating_point():
            raise TypeError(f"VGG expects floating-point images; got dtype {x.dtype}. Convert uint8 images with "
                            f"x.float() / 255 (and normalise them as in training).")
        h, w = x.shape[-2:]
        size = self.input_size
        if (h, w) == (size, size):
            return
        built = (f"This VGG was built for {size}x{size} inputs (its classifier expects "
                 f"{self.classifier[0].in_features} features); got {h}x{w}.")
        resize = f"resize the images to {size}x{size} (torchvision.transforms.Resize({size}))"
        if h != w:
            raise ValueError(f"{built} VGG needs square inputs: resize or crop them to {size}x{size} "
                             f"(torchvision.transforms.Resize(({size}, {size})) or CenterCrop({size})).")
        near = sizes_around(h)
        if near != [h]:
            others = [n for n in near if n != size]
            fix = (f"Either {resize}, or resize them to {' or '.join(f'{n}x{n}' for n in others)} and build the "
                   f"network with input_size={others[0]}" if others else resize[0].upper() + resize[1:])
            raise ValueError(f"{built} {h} is not a valid input size (a multiple of 32: the five max-pools halve it "
                             f"five times). {fix}.")
        fix = ("build the network for 32x32 images with build_vgg(..., head='cifar', input_size=32, "
               "num_classes=10)" if h == 32 and self.head != "cifar" else f"build the network with input_size={h}")
        raise ValueError(f"{built} Either {resize} or {fix}.")


def init_weights(model: nn.Module, scheme: str = "kaiming", std: float = 0.01) -> nn.Module:
    """Initialise a model's weights in place.

    Args:
        model: any module containing Conv2d / Linear / BatchNorm2d layers.
        scheme: ``"default"`` -- PyTorch's own init (each layer's ``reset_parameters``);
            ``"paper"`` -- every conv and linear weight from N(0, std^2), biases 0 (paper sec. 3.1; the text
            says "10^-2 variance", read here, as in most re-implementations, as std 0.01 by default);
            ``"kaiming"`` -- as torchvision: He-normal (fan_out, ReLU) convs, N(0, 0.01^2) linear, zero biases;
            ``"xavier"`` -- Glorot & Bengio (2010)'s normalised init, uniform on +-sqrt(6 / (fan_in + fan_out)),
            zero biases: the init the paper's note (added after submission) says makes pre-training unnecessary.
        std: standard deviation for ``"paper"``.
    Returns:
        The same model, for chaining.
    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
        ValueError: an unknown ``scheme``, or a ``std`` that is not a finite number >= 0.
    """
    check_module(model, "init_weights")
    if scheme not in INITS:
        raise ValueError(f"init scheme must be one of {', '.join(map(repr, INITS))}; got {scheme!r}")
    std = real_number("std", std, 0.0, expected="a standard deviation >= 0, e.g. 0.01")
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if scheme == "default":
                m.reset_parameters()
                continue
            if scheme == "xavier":
                nn.init.xavier_uniform_(m.weight)
            elif scheme == "kaiming" and isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            else:
                nn.init.normal_(m.weight, 0.0, std if scheme == "paper" else 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def check_module(model: object, where: str) -> None:
    """Refuse anything but an ``nn.Module`` where a model is expected, naming the function and what came instead."""
    if not isinstance(model, nn.Module):
        hint = (f" For a configuration name use params_from_config({model!r}).total." if isinstance(model, str)
                and where == "count_parameters" else "")
        raise TypeError(f"{where} expects a model (an nn.Module), e.g. build_vgg('vgg11'); got "
                        f"{type(model).__name__} {model!r:.60}.{hint}")


def _vgg(config: VGGConfig) -> VGG:
    """The one factory behind every public builder."""
    features = make_layers(layers_for(config.arch, config.width),
                           batch_norm=config.batch_norm)
    model = VGG(features, num_classes=config.num_classes, head=config.head,
                input_size=config.input_size, dropout=config.dropout,
                softmax=config.softmax)
    init_weights(model, config.init, config.init_std)
    model.config = config
    return model


def build_vgg(arch: str | VGGConfig = "vgg16", **kwargs) -> VGG:
    """Build any Table 1 configuration.

    Args:
        arch: a configuration name (``"vgg19"``, ``"E"``, ...) or a ``VGGConfig``.
        **kwargs: ``VGGConfig`` fields, e.g. ``batch_norm=True, head="cifar", input_size=32, num_classes=10``.
    Returns:
        The model (``model.config`` holds the ``VGGConfig`` it was built from, with the canonical ``arch`` name).
    Raises:
        ValueError: an unknown configuration name or an invalid field value; the message names the field.
        TypeError: a keyword that is not a ``VGGConfig`` field.
    Example:
        >>> model = build_vgg("E", head="cifar", input_size=32, num_classes=10)
        >>> model.config.arch
        'vgg19'
        >>> model(torch.randn(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    check_fields(kwargs)
    config = arch.replace(**kwargs) if isinstance(arch, VGGConfig) else VGGConfig(arch=arch, **kwargs)
    return _vgg(config)


def vgg11(**kwargs) -> VGG:
    """Configuration A (11 weight layers). Keyword arguments as in ``build_vgg``."""
    return build_vgg("vgg11", **kwargs)


def vgg11_lrn(**kwargs) -> VGG:
    """Configuration A-LRN: A with local response normalisation after the first conv."""
    return build_vgg("vgg11_lrn", **kwargs)


def vgg13(**kwargs) -> VGG:
    """Configuration B (13 weight layers)."""
    return build_vgg("vgg13", **kwargs)


def vgg16_1x1(**kwargs) -> VGG:
    """Configuration C: B plus a 1x1 conv at the end of blocks 3, 4 and 5 (16 weight layers)."""
    return build_vgg("vgg16_1x1", **kwargs)


def vgg16(**kwargs) -> VGG:
    """Configuration D (16 weight layers)."""
    return build_vgg("vgg16", **kwargs)


def vgg19(**kwargs) -> VGG:
    """Configuration E (19 weight layers)."""
    return build_vgg("vgg19", **kwargs)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of a model.

    Args:
        model: any module.
        trainable_only: count only parameters with ``requires_grad``.
    Returns:
        The count, e.g. 143,667,240 for ``vgg19()``.
    Raises:
        TypeError: ``model`` is not an ``nn.Module`` (for a configuration name use ``params_from_config``).
    """
    check_module(model, "count_parameters")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


