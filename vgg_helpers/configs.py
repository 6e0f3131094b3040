"""The paper's architecture tables as plain data (no torch needed).

Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition" (ICLR 2015,
arXiv:1409.1556):

* Table 1 ("ConvNet configurations") gives six columns, A, A-LRN, B, C, D and E.
* Table 2 ("Number of parameters, in millions") gives 133, 133, 134, 138, 144 for A/A-LRN, B, C, D, E.
* Section 2.1 gives what the table leaves out: 3x3 convolutions with stride 1 and padding 1, 1x1
  convolutions in C, 2x2 max-pooling with stride 2, ReLU after every hidden layer, and three fully
  connected layers (4096, 4096, 1000) followed by a soft-max.

A layer list is a list of entries:

* ``64`` -- a 3x3 convolution with 64 output channels (stride 1, padding 1), followed by ReLU;
* ``(256, 1)`` -- a convolution with 256 output channels and kernel size 1 (config C), followed by ReLU;
* ``"M"`` -- a 2x2 max-pool with stride 2 (halves height and width);
* ``"LRN"`` -- local response normalisation (config A-LRN only).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Sequence, Union

LayerSpec = Union[int, tuple, str]

POOL = "M"
LRN = "LRN"

# Table 1, one list per column. Readable names first; the paper's letters are aliases (PAPER_NAMES).
CONFIGS: dict[str, list[LayerSpec]] = {
    # A: 8 conv + 3 FC = 11 weight layers
    "vgg11": [64, POOL, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL],
    # A-LRN: A with local response normalisation after the first conv layer (Table 1, column 2)
    "vgg11_lrn": [64, LRN, POOL, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL],
    # B: 10 conv + 3 FC = 13 weight layers
    "vgg13": [64, 64, POOL, 128, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL],
    # C: B plus a 1x1 conv ("conv1-256", "conv1-512") at the end of blocks 3, 4 and 5: 16 weight layers
    "vgg16_1x1": [64, 64, POOL, 128, 128, POOL, 256, 256, (256, 1), POOL,
                  512, 512, (512, 1), POOL, 512, 512, (512, 1), POOL],
    # D: 13 conv + 3 FC = 16 weight layers
    "vgg16": [64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL,
              512, 512, 512, POOL, 512, 512, 512, POOL],
    # E: 16 conv + 3 FC = 19 weight layers
    "vgg19": [64, 64, POOL, 128, 128, POOL, 256, 256, 256, 256, POOL,
              512, 512, 512, 512, POOL, 512, 512, 512, 512, POOL],
}

# Column headings of Table 1.
PAPER_NAMES: dict[str, str] = {
    "vgg11": "A", "vgg11_lrn": "A-LRN", "vgg13": "B", "vgg16_1x1": "C", "vgg16": "D", "vgg19": "E",
}

# Table 2: number of parameters in millions, as printed in the paper (A and A-LRN share a column).
TABLE2_PARAMS_MILLIONS: dict[str, int] = {
    "vgg11": 133, "vgg11_lrn": 133, "vgg13": 133, "vgg16_1x1": 134, "vgg16": 138, "vgg19": 144,
}

# Local response normalisation as in AlexNet (Krizhevsky et al., 2012), which the paper reuses (sec. 2.1):
# n = 5 neighbouring channels, alpha = 1e-4, beta = 0.75, k = 2. PyTorch's nn.LocalResponseNorm, like Caffe,
# divides alpha by n inside the sum.
LRN_PARAMS: dict[str, float] = {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}

HEADS = ("imagenet", "cifar")
INITS = ("default", "paper", "kaiming")
NUM_POOLS = 5          # every config halves the resolution five times: 224 -> 7, 32 -> 1
FC_WIDTH = 4096        # width of the two hidden fully connected layers (Table 1)


@dataclass(frozen=True)
class VGGConfig:
    """Everything needed to build one VGG network. Pass it (or its fields) to ``vgg_helpers.build_vgg``."""

    arch: str = "vgg16"         # Table 1 column: vgg11, vgg11_lrn, vgg13, vgg16_1x1, vgg16, vgg19 (or A ... E)
    num_classes: int = 1000     # output units: 1000 for ImageNet, 10 for CIFAR-10
    head: str = "imagenet"      # "imagenet": FC-4096, FC-4096, FC-num_classes; "cifar": one Linear layer
    input_size: int = 224       # input height = width, in pixels; a multiple of 32 (five 2x2 pools)
    batch_norm: bool = False    # BatchNorm2d after every conv (not in the paper: Ioffe & Szegedy, 2015)
    dropout: float = 0.5        # drop probability after FC-4096 layers (imagenet head; paper sec. 3.1)
    softmax: bool = False       # end with nn.Softmax, as a literal reading of Table 1 (never before CrossEntropyLoss)
    init: str = "kaiming"       # "default" (PyTorch's), "paper" (N(0, init_std^2), zero bias), "kaiming" (torchvision's)
    init_std: float = 0.01      # standard deviation of the "paper" init, unitless
    width: float = 1.0          # multiplier on every conv's channel count (1.0 = the paper's 64 ... 512)

    def __post_init__(self) -> None:
        resolve_arch(self.arch)
        if not isinstance(self.num_classes, int) or isinstance(self.num_classes, bool) or self.num_classes < 1:
            raise ValueError(f"num_classes must be a whole number >= 1 (10 for CIFAR-10, 1000 for ImageNet); "
                             f"got {self.num_classes!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}; got {self.head!r}. Use 'cifar' for 32x32 images.")
        if not isinstance(self.input_size, int) or self.input_size < 32 or self.input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32 (the five 2x2 max-pools halve it five times), "
                             f"e.g. 224 for ImageNet or 32 for CIFAR-10; got {self.input_size!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be a probability in [0, 1); got {self.dropout!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}; got {self.init!r}")
        if not self.width > 0:
            raise ValueError(f"width must be a positive multiplier (1.0 = the paper's widths); got {self.width!r}")

    def replace(self, **changes) -> "VGGConfig":
        """Return a copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """Return the fields as a plain dict (for JSON histories and checkpoints)."""
        return asdict(self)


def valid_names() -> str:
    """Return the accepted configuration names as one readable string."""
    readable = ", ".join(CONFIGS)
    letters = ", ".join(PAPER_NAMES.values())
    return f"{readable} (or the paper's column names {letters})"


def resolve_arch(arch: str) -> str:
    """Turn a readable name or a paper letter into the readable name.

    Args:
        arch: e.g. ``"vgg19"``, ``"E"`` or ``"A-LRN"`` (case-insensitive).
    Returns:
        The key of ``CONFIGS``, e.g. ``"vgg19"``.
    Raises:
        ValueError: the name is not one of Table 1's six columns.
    """
    if isinstance(arch, str):
        key = arch.strip().lower().replace("-", "_")
        if key in CONFIGS:
            return key
        for name, letter in PAPER_NAMES.items():
            if arch.strip().upper() == letter:
                return name
    raise ValueError(f"Unknown VGG configuration {arch!r}. Valid names: {valid_names()}.")


def check_layers(layers: Sequence[LayerSpec]) -> list[LayerSpec]:
    """Validate a layer list and return it as a list.

    Args:
        layers: entries as described in the module docstring.
    Returns:
        The same entries, as a list.
    Raises:
        ValueError: an entry is none of a positive int, a ``(channels, kernel_size)`` pair, ``"M"`` or ``"LRN"``.
    """
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        raise ValueError(f"A layer list must be a list such as [64, 'M', 128, 'M']; got {layers!r}")
    out = list(layers)
    for i, v in enumerate(out):
        ok = (
            v in (POOL, LRN)
            or (isinstance(v, int) and not isinstance(v, bool) and v > 0)
            or (isinstance(v, tuple) and len(v) == 2 and all(isinstance(x, int) and not isinstance(x, bool)
                                                              and x > 0 for x in v) and v[1] % 2 == 1)
        )
        if not ok:
            raise ValueError(
                f"Layer list entry {i} is {v!r}: expected a positive int (a 3x3 conv's output channels), "
                f"a (channels, odd kernel_size) pair such as (256, 1), the pool marker 'M' or 'LRN'.")
    if out.count(POOL) != NUM_POOLS:
        raise ValueError(f"A VGG layer list needs exactly {NUM_POOLS} pool markers 'M' (the classifier expects "
                         f"the input halved five times); got {out.count(POOL)} in {out!r}")
    return out


def layers_for(arch: str, width: float = 1.0) -> list[LayerSpec]:
    """Return the layer list of a Table 1 column, with every channel count scaled by ``width``.

    Args:
        arch: configuration name (see ``resolve_arch``).
        width: channel multiplier; 1.0 gives the paper's widths.
    Returns:
        A new layer list.
    """
    def scale(c: int) -> int:
        return max(1, round(c * width))

    out: list[LayerSpec] = []
    for v in CONFIGS[resolve_arch(arch)]:
        if isinstance(v, int):
            out.append(scale(v))
        elif isinstance(v, tuple):
            out.append((scale(v[0]), v[1]))
        else:
            out.append(v)
    return out


def describe(v: LayerSpec) -> str:
    """Name one layer-list entry the way Table 1 does: ``conv3-64``, ``conv1-256``, ``maxpool``, ``LRN``."""
    if v == POOL:
        return "maxpool"
    if v == LRN:
        return "LRN"
    channels, k = (v, 3) if isinstance(v, int) else v
    return f"conv{k}-{channels}"


def table1_blocks(arch: str) -> list[list[str]]:
    """Return one configuration as Table 1 prints it: five blocks of layer names, each ending in 'maxpool'.

    Args:
        arch: configuration name.
    Returns:
        A list of five lists of strings, e.g. ``[["conv3-64", "maxpool"], ...]`` for vgg11.
    """
    blocks: list[list[str]] = [[]]
    for v in CONFIGS[resolve_arch(arch)]:
        blocks[-1].append(describe(v))
        if v == POOL:
            blocks.append([])
    return [b for b in blocks if b]


def weight_layers(arch: str) -> int:
    """Number of weight layers (conv + FC), the depth Table 1 puts in its heading (11, 11, 13, 16, 16, 19)."""
    return sum(1 for v in CONFIGS[resolve_arch(arch)] if v not in (POOL, LRN)) + 3


@dataclass(frozen=True)
class ParamCount:
    """A parameter count split by where the parameters live."""

    conv: int        # convolution weights and biases
    batch_norm: int  # BatchNorm2d scales and shifts (0 without batch norm)
    fc: int          # fully connected (Linear) weights and biases

    @property
    def total(self) -> int:
        return self.conv + self.batch_norm + self.fc


def params_from_config(config: VGGConfig | str = "vgg16", **changes) -> ParamCount:
    """Count parameters from the configuration alone, by arithmetic (no model is built).

    ``models.count_parameters(model)`` counts the parameters of a built model instead.

    Args:
        config: a ``VGGConfig`` or a configuration name.
        **changes: fields of ``VGGConfig`` to override, e.g. ``head="cifar", num_classes=10``.
    Returns:
        A ``ParamCount``; ``.total`` equals ``sum(p.numel() for p in model.parameters())``.
    """
    cfg = config if isinstance(config, VGGConfig) else VGGConfig(arch=config)
    cfg = cfg.replace(**changes) if changes else cfg
    conv = bn = 0
    channels = 3
    for v in layers_for(cfg.arch, cfg.width):
        if v in (POOL, LRN):
            continue
        out, k = (v, 3) if isinstance(v, int) else v
        conv += (k * k * channels + 1) * out      # weights + one bias per output channel
        bn += 2 * out if cfg.batch_norm else 0     # gamma and beta per channel
        channels = out
    side = cfg.input_size // 2 ** NUM_POOLS        # 224 -> 7, 32 -> 1
    flat = channels * side * side                  # 512 * 7 * 7 = 25088 for the paper's setting
    if cfg.head == "imagenet":
        fc = (flat + 1) * FC_WIDTH + (FC_WIDTH + 1) * FC_WIDTH + (FC_WIDTH + 1) * cfg.num_classes
    else:
        fc = (flat + 1) * cfg.num_classes
    return ParamCount(conv=conv, batch_norm=bn, fc=fc)
