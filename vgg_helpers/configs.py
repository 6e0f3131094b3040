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

The results of sec. 4 are here too: ``TABLE3`` (one test scale), ``TABLE4`` (several test scales) and ``TABLE5``
(dense evaluation vs multi-crop), one ``PaperResult`` per printed row; ``result_rows`` lays a table out for display.
"""
from __future__ import annotations

import numbers
import re
from dataclasses import asdict, dataclass, replace
from typing import Any, Optional, Sequence, Union

from .checks import choice, flag, known_fields, real_number, whole_number

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

# Local response normalisation (sec. 2.1): the paper prints no constants, it follows Krizhevsky et al. (2012),
# whose AlexNet paper (sec. 3.3) gives n = 5 neighbouring channels, alpha = 1e-4, beta = 0.75, k = 2 in
#     b_i = a_i / (k + alpha * sum_{j = max(0, i - n/2)}^{min(N - 1, i + n/2)} a_j^2) ** beta.
LRN_PAPER: dict[str, float] = {"n": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0}

# The same layer as keyword arguments of nn.LocalResponseNorm. PyTorch (like Caffe) divides its alpha by the
# window size n before multiplying the sum, b_i = a_i / (k + alpha / n * sum ...) ** beta, so passing the
# paper's alpha = 1e-4 would make the normalisation five times weaker. Multiplying by n gives the formula above.
LRN_PARAMS: dict[str, float] = {"size": int(LRN_PAPER["n"]), "alpha": LRN_PAPER["alpha"] * LRN_PAPER["n"],
                                "beta": LRN_PAPER["beta"], "k": LRN_PAPER["k"]}

HEADS = ("imagenet", "cifar")
INITS = ("default", "paper", "kaiming", "xavier")
NUM_POOLS = 5          # every config halves the resolution five times: 224 -> 7, 32 -> 1
FC_WIDTH = 4096        # width of the two hidden fully connected layers (Table 1)
_WIDTH = "a positive channel multiplier, e.g. 1.0 (the paper's widths) or 0.5"   # what width must be


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
    init: str = "kaiming"       # "default" (PyTorch's), "paper" (N(0, init_std^2), zero bias), "kaiming"
    #                             (torchvision's) or "xavier" (Glorot & Bengio 2010, the paper's added note)
    init_std: float = 0.01      # standard deviation of the "paper" init, unitless
    width: float = 1.0          # multiplier on every conv's channel count (1.0 = the paper's 64 ... 512)

    def __post_init__(self) -> None:
        # Store plain, canonical values (the key of CONFIGS; int / float / bool, also for NumPy scalars), so that
        # ``to_dict`` is JSON-ready and two configs that mean the same network compare equal.
        checked = {
            "arch": resolve_arch(self.arch),
            "num_classes": whole_number("num_classes", self.num_classes, 1, "10 for CIFAR-10, 1000 for ImageNet"),
            "head": choice("head", self.head, HEADS, " Use 'cifar' for 32x32 images."),
            "input_size": _input_size(self.input_size),
            "batch_norm": flag("batch_norm", self.batch_norm),
            "dropout": real_number("dropout", self.dropout, 0.0, 1.0, high_ok=False,
                                   expected="a probability in [0, 1), e.g. 0.5"),
            "softmax": flag("softmax", self.softmax),
            "init": choice("init", self.init, INITS),
            "init_std": real_number("init_std", self.init_std, 0.0, expected="a standard deviation >= 0, e.g. 0.01"),
            "width": real_number("width", self.width, 0.0, low_ok=False, expected=_WIDTH),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def replace(self, **changes) -> "VGGConfig":
        """Return a copy with some fields changed (validated again).

        Raises:
            TypeError: a keyword is not a field of ``VGGConfig``.
            ValueError: a new value is invalid.
        """
        check_fields(changes)
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """Return the fields as a plain dict (for JSON histories and checkpoints)."""
        return asdict(self)


def check_fields(changes: dict) -> None:
    """Refuse keyword arguments that are not fields of ``VGGConfig`` (``checks.known_fields``)."""
    known_fields(VGGConfig, changes)


def sizes_around(n: int) -> list[int]:
    """The valid input sizes (multiples of 32) next to ``n``: ``[32, 64]`` for 40, ``[32]`` for 28, ``[64]`` for 64.

    Args:
        n: an image side, in pixels.
    Returns:
        ``[n]`` when ``n`` is valid, else the multiples of 32 just below and above it (only those >= 32).
    """
    below = n // 32 * 32
    if below == n and n >= 32:
        return [n]
    return [s for s in (below, below + 32) if s >= 32]


def _input_size(value: Any) -> int:
    expected = ("a multiple of 32 (the five 2x2 max-pools halve it five times), e.g. 224 for ImageNet or 32 for "
                "CIFAR-10")
    size = whole_number("input_size", value, 32, fix=f" It must be {expected}.")
    if size % 32:
        raise ValueError(f"input_size must be {expected}; got {size} (the nearest valid sizes: "
                         + " and ".join(map(str, sizes_around(size))) + ").")
    return size


def valid_names() -> str:
    """Return the accepted configuration names as one readable string."""
    readable = ", ".join(CONFIGS)
    letters = ", ".join(PAPER_NAMES.values())
    return f"{readable} (or the paper's column names {letters})"


def _squash(name: str) -> str:
    """A name without case, spaces, '-' and '_': 'A-LRN', 'a_lrn' and 'A LRN' all become 'alrn'."""
    return re.sub(r"[\s_-]+", "", name).lower()


# Every accepted spelling, squashed: the readable names and the paper's letters.
_ALIASES: dict[str, str] = {**{_squash(n): n for n in CONFIGS}, **{_squash(l): n for n, l in PAPER_NAMES.items()}}


def resolve_arch(arch: str) -> str:
    """Turn a readable name or a paper letter into the readable name.

    Case, spaces, ``-`` and ``_`` do not matter: ``"A-LRN"``, ``"a_lrn"`` and ``"vgg11-lrn"`` are all
    ``"vgg11_lrn"``.

    Args:
        arch: e.g. ``"vgg19"``, ``"E"`` or ``"A-LRN"``.
    Returns:
        The key of ``CONFIGS``, e.g. ``"vgg19"``.
    Raises:
        ValueError: the name is not one of Table 1's six columns.

    Example:
        >>> resolve_arch("A_LRN"), resolve_arch("VGG-16"), resolve_arch("e")
        ('vgg11_lrn', 'vgg16', 'vgg19')
    """
    if isinstance(arch, str):
        key = _squash(arch)
        if key in _ALIASES:
            return _ALIASES[key]
        if key.endswith("bn") and key[:-2] in _ALIASES:      # torchvision's vgg16_bn
            raise ValueError(f"Unknown VGG configuration {arch!r}: batch norm is a separate option, use "
                             f"arch={_ALIASES[key[:-2]]!r}, batch_norm=True.")
    raise ValueError(f"Unknown VGG configuration {arch!r}. Valid names: {valid_names()}; case, '-' and '_' "
                     f"do not matter.")


def _positive_int(x: Any) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool) and x > 0


def _entry(v: Any) -> Union[LayerSpec, None]:
    """A layer-list entry in plain form (int, (int, int) pair, "M", "LRN"), or None when it is none of them."""
    if isinstance(v, str):
        return v if v in (POOL, LRN) else None
    if _positive_int(v):
        return int(v)
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(_positive_int(x) for x in v) and v[1] % 2 == 1:
        return (int(v[0]), int(v[1]))            # a list pair too: layer lists read back from JSON
    return None


def check_layers(layers: Sequence[LayerSpec]) -> list[LayerSpec]:
    """Validate a layer list and return it as a list of plain entries.

    Args:
        layers: entries as described in the module docstring (NumPy integers and ``[channels, kernel_size]``
            lists, as read back from JSON, are accepted too).
    Returns:
        The same entries, as a list of ints, ``(channels, kernel_size)`` tuples, ``"M"`` and ``"LRN"``.
    Raises:
        ValueError: an entry is none of a positive int, a ``(channels, kernel_size)`` pair, ``"M"`` or ``"LRN"``.
    """
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        raise ValueError(f"A layer list must be a list such as [64, 'M', 128, 'M']; got {layers!r}")
    out = []
    for i, v in enumerate(layers):
        entry = _entry(v)
        if entry is None:
            raise ValueError(
                f"Layer list entry {i} is {v!r}: expected a positive int (a 3x3 conv's output channels), "
                f"a (channels, odd kernel_size) pair such as (256, 1), the pool marker 'M' or 'LRN'.")
        out.append(entry)
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
    Raises:
        TypeError: ``width`` is not a number.
        ValueError: an unknown ``arch``, or a ``width`` that is not positive and finite.
    """
    width = real_number("width", width, 0.0, low_ok=False, expected=_WIDTH)

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


# --------------------------------------------------------------------------------------------------
# The results tables of sec. 4 (ILSVRC-2012 validation set, errors in %)
# --------------------------------------------------------------------------------------------------
EVALUATIONS = ("dense", "multi-crop", "multi-crop & dense")


@dataclass(frozen=True)
class PaperResult:
    """One row of the paper's Tables 3-5: a network, how it was trained and tested, and its validation errors."""

    arch: str                        # Table 1 column, as a key of CONFIGS ("vgg16" is the paper's D)
    train_scale: tuple[int, int]     # (S_min, S_max), the smaller image side in training; S_min == S_max: fixed S
    test_scales: tuple[int, ...]     # the test scales Q (smaller image side at test time); several: multi-scale
    top1: float                      # top-1 error on the ILSVRC-2012 validation set, %
    top5: float                      # top-5 error on the ILSVRC-2012 validation set, %
    evaluation: Optional[str] = None  # Table 5 only: "dense", "multi-crop" or "multi-crop & dense"

    @property
    def paper_name(self) -> str:
        """The column name the paper prints, e.g. ``"D"`` for ``"vgg16"``."""
        return PAPER_NAMES[self.arch]

    @property
    def jittered(self) -> bool:
        """Whether training used scale jittering (S drawn from [S_min, S_max] per image, sec. 3.1)."""
        return self.train_scale[0] != self.train_scale[1]

    def train_label(self) -> str:
        """The training scale as the paper prints it: ``"256"`` or ``"[256;512]"``."""
        lo, hi = self.train_scale
        return f"[{lo};{hi}]" if lo != hi else str(lo)

    def test_label(self) -> str:
        """The test scales as the paper prints them: ``"384"`` or ``"224,256,288"``."""
        return ",".join(map(str, self.test_scales))


def _rows(rows: Sequence[tuple]) -> tuple[PaperResult, ...]:
    """``PaperResult`` rows from ``(letter, S or (S_min, S_max), Q or (Q, ...), top-1, top-5[, evaluation])``."""
    out = []
    for letter, s, q, top1, top5, *rest in rows:
        out.append(PaperResult(arch=resolve_arch(letter), train_scale=(s, s) if isinstance(s, int) else tuple(s),
                               test_scales=(q,) if isinstance(q, int) else tuple(q), top1=top1, top5=top5,
                               evaluation=rest[0] if rest else None))
    return tuple(out)


_JITTER = (256, 512)          # S_min, S_max of the multi-scale training runs (sec. 3.1)

# Table 3 (sec. 4.1): one test scale, Q = S for fixed S and Q = 0.5 (S_min + S_max) = 384 for jittered S.
# (One of the copies checked labels the last two E rows "D"; every other copy says E.)
TABLE3: tuple[PaperResult, ...] = _rows([
    ("A", 256, 256, 29.6, 10.4),
    ("A-LRN", 256, 256, 29.7, 10.5),
    ("B", 256, 256, 28.7, 9.9),
    ("C", 256, 256, 28.1, 9.4),
    ("C", 384, 384, 28.1, 9.3),
    ("C", _JITTER, 384, 27.3, 8.8),
    ("D", 256, 256, 27.0, 8.8),
    ("D", 384, 384, 26.8, 8.7),
    ("D", _JITTER, 384, 25.6, 8.1),
    ("E", 256, 256, 27.3, 9.0),
    ("E", 384, 384, 26.9, 8.7),
    ("E", _JITTER, 384, 25.5, 8.0),
])

# Table 4 (sec. 4.2): several test scales, whose soft-max outputs are averaged: Q = {S - 32, S, S + 32} for
# fixed S, Q = {S_min, 0.5 (S_min + S_max), S_max} for jittered S. (A and A-LRN are not in this table.)
TABLE4: tuple[PaperResult, ...] = _rows([
    ("B", 256, (224, 256, 288), 28.2, 9.6),
    ("C", 256, (224, 256, 288), 27.7, 9.2),
    ("C", 384, (352, 384, 416), 27.8, 9.2),
    ("C", _JITTER, (256, 384, 512), 26.3, 8.2),
    ("D", 256, (224, 256, 288), 26.6, 8.6),
    ("D", 384, (352, 384, 416), 26.5, 8.6),
    ("D", _JITTER, (256, 384, 512), 24.8, 7.5),
    ("E", 256, (224, 256, 288), 26.9, 8.7),
    ("E", 384, (352, 384, 416), 26.7, 8.6),
    ("E", _JITTER, (256, 384, 512), 24.8, 7.5),
])

# Table 5 (sec. 4.3): dense evaluation vs multi-crop (150 crops: a 5 x 5 grid x 2 flips x 3 scales) vs both
# (their soft-max outputs averaged); every net trained with S in [256;512], tested at Q in {256, 384, 512}.
TABLE5: tuple[PaperResult, ...] = _rows([
    ("D", _JITTER, (256, 384, 512), 24.8, 7.5, "dense"),
    ("D", _JITTER, (256, 384, 512), 24.6, 7.5, "multi-crop"),
    ("D", _JITTER, (256, 384, 512), 24.4, 7.2, "multi-crop & dense"),
    ("E", _JITTER, (256, 384, 512), 24.8, 7.5, "dense"),
    ("E", _JITTER, (256, 384, 512), 24.6, 7.4, "multi-crop"),
    ("E", _JITTER, (256, 384, 512), 24.4, 7.1, "multi-crop & dense"),
])
# Every number of Tables 3-5 was read in at least two independent copies of the paper.

RESULT_TABLES: dict[str, tuple[PaperResult, ...]] = {"Table 3": TABLE3, "Table 4": TABLE4, "Table 5": TABLE5}


def result_rows(table: str | Sequence[PaperResult]) -> list[dict[str, Any]]:
    """One table of results as plain rows, labelled as the paper prints them (for a DataFrame or a figure).

    Args:
        table: ``"Table 3"``, ``"Table 4"``, ``"Table 5"`` or a sequence of ``PaperResult``.
    Returns:
        One dict per row: ``config`` (the paper's letter), ``train S``, ``test Q``, ``evaluation`` (Table 5
        only), ``top-1`` and ``top-5`` (validation errors, %).
    Raises:
        ValueError: an unknown table name.
    """
    if isinstance(table, str):
        if table not in RESULT_TABLES:
            raise ValueError(f"table must be one of {', '.join(map(repr, RESULT_TABLES))}; got {table!r}.")
        table = RESULT_TABLES[table]
    rows = []
    for r in table:
        row: dict[str, Any] = {"config": r.paper_name, "train S": r.train_label(), "test Q": r.test_label()}
        if r.evaluation is not None:
            row["evaluation"] = r.evaluation
        rows.append({**row, "top-1": r.top1, "top-5": r.top5})
    return rows
