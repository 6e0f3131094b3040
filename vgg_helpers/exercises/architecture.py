"""Check cells of the architecture chapters (the paper's table, the naive and the refactored model): counting
parameters by hand, and writing ``make_layers``."""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch
from torch import nn

from ..configs import CONFIGS, FC_WIDTH, LRN, NUM_POOLS, PAPER_NAMES, POOL, VGGConfig, layers_for, params_from_config
from ..models import make_layers as reference_make_layers
from .common import correct, expect_function, fail

__all__ = ["check_conv_params", "check_param_count", "check_make_layers"]


def _torch_conv_params(in_channels: int, out_channels: int, kernel_size: int) -> int:
    """Parameters of a real ``nn.Conv2d`` (built on the meta device: shapes only, no memory)."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, device="meta")
    return sum(p.numel() for p in conv.parameters())


def _as_count(value: Any, call: str) -> int:
    """The learner's result as an int; an ``ExerciseError`` when it is not a whole number."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    try:
        whole = int(value)
        exact = whole == value
    except (TypeError, ValueError):
        exact = False
    if isinstance(value, bool) or not exact:
        fail(f"{call} returned {value!r}, not a whole number of parameters",
             "return an int: weights plus biases")
    return whole


def check_conv_params(conv_params: Callable[[int, int, int], Any]) -> None:
    """Check the build-it exercise ``conv_params(in_channels, out_channels, kernel_size)``.

    The answer must give the parameters of one convolution, weights and biases, exactly as
    ``nn.Conv2d(in_channels, out_channels, kernel_size)`` has them, for 3x3, 1x1 and 7x7 kernels.

    Args:
        conv_params: the learner's function ``(in_channels, out_channels, kernel_size) -> int``.
    Raises:
        ExerciseError: the answer forgets the biases, counts ``kernel_size`` instead of
            ``kernel_size ** 2`` weights per input channel, gives one bias per input channel or per
            layer, or differs from ``nn.Conv2d`` in another way.
    """
    if not expect_function(conv_params, "check_conv_params", "conv_params(in_channels, out_channels, kernel_size)"):
        return
    for i, o, k in ((3, 64, 3), (64, 128, 3), (256, 256, 1), (512, 512, 3), (3, 64, 7)):
        call = f"conv_params({i}, {o}, {k})"
        got = _as_count(conv_params(i, o, k), call)
        expected = _torch_conv_params(i, o, k)
        if got == expected:
            continue
        weights = k * k * i * o
        if got == weights:
            fail(f"{call} = {got:,} counts the weights only; nn.Conv2d({i}, {o}, {k}) has "
                 f"{expected:,} parameters", f"add the biases: one per output channel, {o} here")
        if got in ((k * i + 1) * o, k * i * o):
            fail(f"{call} = {got:,} counts kernel_size weights per input channel, but a "
                 f"{k}x{k} kernel has {k * k}",
                 "use kernel_size * kernel_size (kernel_size ** 2), not kernel_size")
        if got in ((k * k * o + 1) * i, weights + i):
            fail(f"{call} = {got:,} gives one bias per input channel",
                 f"a convolution has one bias per output channel: + out_channels ({o})")
        if got == weights + 1:
            fail(f"{call} = {got:,} gives the layer a single bias",
                 f"there is one bias per output channel: + out_channels ({o})")
        fail(f"{call} returned {got:,}, but nn.Conv2d({i}, {o}, kernel_size={k}) has "
             f"{expected:,} parameters ({weights:,} weights + {o} biases)",
             "kernel_size * kernel_size * in_channels weights per output channel, plus one bias each")
    return correct("conv_params counts weights and biases as nn.Conv2d does (3x3, 1x1, 7x7)")


def _count_variant(layers: list, conv_bias: bool = True, square: bool = True, chain: bool = True,
                   fc: bool = True, fc_bias: bool = True, spatial: bool = True,
                   flat: Optional[int] = None, pair_as_3x3: bool = False) -> int:
    """Table 2's count of a layer list, or the count with one planted mistake (to name it)."""
    total, channels = 0, 3
    for v in layers:
        if v in (POOL, LRN):
            continue
        out, k = (v, 3) if isinstance(v, int) else (v[0], 3 if pair_as_3x3 else v[1])
        total += ((k * k if square else k) * (channels if chain else 3) + conv_bias) * out
        channels = out
    if not fc:
        return total
    side = VGGConfig().input_size // 2 ** NUM_POOLS       # 224 -> 7
    if flat is None:
        flat = channels * side * side if spatial else channels
    sizes = [(flat, FC_WIDTH), (FC_WIDTH, FC_WIDTH), (FC_WIDTH, VGGConfig().num_classes)]
    return total + sum((n + fc_bias) * m for n, m in sizes)


def check_param_count(vgg_params: Callable[[list], Any]) -> None:
    """Check the build-it exercise ``vgg_params(layers)``: Table 2 from a layer list.

    The answer must count the parameters of the network a layer list describes, with the paper's
    classifier (FC-4096, FC-4096, FC-1000 on 224x224 inputs): for every column of Table 1 it must
    equal ``params_from_config(name).total`` (132,863,336 for VGG-11 ... 143,667,240 for VGG-19),
    and also for a half-width list (``layers_for("vgg11", width=0.5)``), which is not in the paper.

    Args:
        vgg_params: the learner's function ``(layers) -> int``.
    Raises:
        ExerciseError: the answer fails on an entry kind ("M", "LRN", a (channels, kernel_size)
            pair), forgets biases, squares no kernel, does not carry the channels from layer to
            layer, leaves out the classifier or its biases, flattens without the 7x7, hard-codes
            512 channels, or differs from Table 2 in another way.
    """
    if not expect_function(vgg_params, "check_param_count", "vgg_params(layers)"):
        return
    cases = [(f"CONFIGS[{name!r}]", layers_for(name), params_from_config(name))
             for name in CONFIGS]
    cases.append(("layers_for('vgg11', width=0.5)", layers_for("vgg11", 0.5),
                  params_from_config("vgg11", width=0.5)))
    for where, layers, count in cases:
        call = f"vgg_params({where})"
        try:
            result = vgg_params(list(layers))
        except Exception as err:   # the learner's code: any error, named in the message
            fail(f"{call} raised {type(err).__name__}: {err}",
                 "entries are ints (3x3 convs), 'M' (pool), 'LRN' (no parameters) and, in "
                 "configuration C, (channels, kernel_size) pairs such as (256, 1)")
        got = _as_count(result, call)
        if got == count.total:
            continue
        name = where.split("'")[1]
        paper = f" (network {PAPER_NAMES[name]})" if "width" not in where else ""
        book = (f"the book counts {count.total:,} for {where}{paper}: "
                f"{count.conv:,} in convolutions + {count.fc:,} in FC layers")
        variants = [
            (dict(conv_bias=False), "the convolutions' biases are missing",
             "each convolution has one bias per output channel"),
            (dict(square=False), "a kernel counts kernel_size weights per input channel",
             "a k x k kernel has k * k weights per input channel"),
            (dict(chain=False), "every convolution is counted with 3 input channels",
             "a convolution's in_channels are the previous convolution's out_channels: "
             "update the channel count after each conv"),
            (dict(fc=False), "only the convolutions are counted",
             "add the three fully connected layers: 512 * 7 * 7 -> 4096 -> 4096 -> 1000"),
            (dict(fc_bias=False), "the fully connected layers' biases are missing",
             "a Linear(n, m) layer has n * m weights and m biases"),
            (dict(spatial=False), "the first FC layer takes only the channels as inputs",
             "the last map is 7x7 (224 halved five times): channels * 7 * 7 inputs"),
            (dict(flat=512 * 7 * 7), "the first FC layer always takes 512 * 7 * 7 inputs",
             "use the last convolution's out_channels (256 in a half-width VGG), not 512"),
            (dict(pair_as_3x3=True), "a (channels, 1) entry is counted as a 3x3 convolution",
             "(256, 1) in configuration C is a 1x1 convolution: kernel_size 1"),
        ]
        for mistake, what, hint in variants:
            if got == _count_variant(layers, **mistake):
                fail(f"{call} = {got:,}: {what}; {book}", hint)
        fail(f"{call} returned {got:,}; {book}",
             "count each conv with conv_params(in_channels, out, kernel_size), skip 'M' and "
             "'LRN', then add the three FC layers")
    return correct("vgg_params gives the book's counts for all six columns and a half-width VGG")


def check_make_layers(make_layers: Callable[..., Any]) -> None:
    """Check the build-it exercise: ``make_layers(layers, batch_norm=False)``.

    For VGG-11, VGG-13 and VGG-16, with and without batch norm, the answer must build the same
    stack as ``vgg_helpers.models.make_layers``: one flat ``nn.Sequential`` with the same layer
    types in the same order, the same convolution and pool settings and parameter shapes, and,
    with the reference's weights copied in, the same output on a small input.

    Args:
        make_layers: the learner's function ``(layers, batch_norm=False) -> nn.Sequential``.
    Raises:
        ExerciseError: the answer is the package's own function, has no ``batch_norm`` argument,
            leaves out padding (maps shrink), a ReLU or a batch norm, puts batch norm after the
            ReLU, pools with stride 1, does not update the input channels, nests its blocks, or
            computes something else.
    """
    if not expect_function(make_layers, "check_make_layers", "my_make_layers(layers, batch_norm=False)"):
        return
    if make_layers is reference_make_layers:
        fail("this is vgg_helpers' own make_layers, imported rather than written",
             "write the loop yourself in a new function, e.g. my_make_layers")
    name = getattr(make_layers, "__name__", "")
    name = name if name.isidentifier() else "make_layers"
    cases = [(arch, bn) for arch in ("vgg11", "vgg13", "vgg16") for bn in (False, True)]
    with torch.random.fork_rng(devices=[]):        # leave the notebook's random state alone
        for arch, bn in cases:
            call = f"{name}(CONFIGS[{arch!r}], batch_norm={bn})"
            try:
                got = make_layers(list(CONFIGS[arch]), batch_norm=bn)
            except Exception as err:   # the learner's code: any error, named in the message
                hint = ("give the function a batch_norm argument: def ...(layers, batch_norm=False)"
                        if "batch_norm" in str(err) else
                        "a number is a 3x3 conv with that many output channels, 'M' a 2x2 max-pool")
                fail(f"{call} raised {type(err).__name__}: {err}", hint)
            if not isinstance(got, nn.Module):
                fail(f"{call} returned a {type(got).__name__}, not a module",
                     "return nn.Sequential(*modules)")
            ref = reference_make_layers(CONFIGS[arch], batch_norm=bn)
            _compare_stacks(got, ref, call, bn)
    return correct(f"{name} matches make_layers: VGG-11, 13, 16, with and without batch norm")


def _compare_stacks(got: nn.Module, ref: nn.Sequential, call: str, bn: bool) -> None:
    """Compare a learner's features stack with the reference's; ``_fail`` at the first difference."""
    leaves = [m for m in got.modules() if not list(m.children())]
    names = [type(m).__name__ for m in leaves]
    expected = [type(m).__name__ for m in ref]
    for kind, why in (("Conv2d", "one per number in the list"), ("MaxPool2d", "one per 'M'"),
                      ("ReLU", "one after every convolution")):
        if names.count(kind) != expected.count(kind):
            fail(f"{call} has {names.count(kind)} {kind} layers, not {expected.count(kind)}",
                 f"{kind}: {why}")
    if names.count("BatchNorm2d") != expected.count("BatchNorm2d"):
        fail(f"{call} has {names.count('BatchNorm2d')} BatchNorm2d layers, not "
             f"{expected.count('BatchNorm2d')}",
             "with batch_norm=True add one nn.BatchNorm2d(out_channels) after every convolution; "
             "with batch_norm=False none")
    if names != expected:
        i = next(j for j, (a, b) in enumerate(zip(names, expected)) if a != b)
        if bn and names[i - 1:i + 2] == ["Conv2d", "ReLU", "BatchNorm2d"]:
            fail(f"in {call} batch norm comes after the ReLU (layer {i}: ReLU, then BatchNorm2d)",
                 "the order is conv, batch norm, ReLU: BatchNorm2d between the conv and its ReLU")
        fail(f"layer {i} of {call} is a {names[i]}, but the reference has a {expected[i]} there",
             "the order is conv, (batch norm), ReLU for a number and one max-pool for each 'M'")
    previous = 3
    for i, (a, b) in enumerate(zip(leaves, ref)):
        where = f"layer {i} of {call} ({a})"
        if isinstance(b, nn.Conv2d):
            if a.in_channels != b.in_channels:
                hint = (f"the previous conv gives {previous} channels: after each conv set "
                        "in_channels = its out_channels" if a.in_channels != previous else
                        "in_channels is the previous conv's out_channels (3 for the first)")
                fail(f"{where} takes {a.in_channels} input channels, not {b.in_channels}", hint)
            previous = a.out_channels
            if a.out_channels != b.out_channels:
                fail(f"{where} has {a.out_channels} output channels, not {b.out_channels}",
                     "a number in the list is the conv's out_channels")
            if tuple(a.kernel_size) != tuple(b.kernel_size):
                fail(f"{where} has kernel_size {a.kernel_size}", "VGG's convolutions are 3x3")
            if a.padding != b.padding:
                side = 32 + 2 * _first(a.padding) - 2
                fail(f"{where} has padding {a.padding}, so it changes the map's size "
                     f"(32x32 in, {side}x{side} out) and the maps shrink layer by layer",
                     "padding=1 keeps a 3x3 conv's height and width (paper sec. 2.1)")
            if tuple(a.stride) != (1, 1) or tuple(a.dilation) != (1, 1) or a.groups != 1:
                fail(f"{where} has stride {a.stride}", "convolutions use stride 1 (the default)")
            if (a.bias is None) != (b.bias is None):
                fail(f"{where} has no bias", "keep nn.Conv2d's default bias=True")
        elif isinstance(b, nn.MaxPool2d):
            if _first(a.kernel_size) != 2 or _first(a.stride) != 2:
                fail(f"{where} has kernel_size {a.kernel_size} and stride {a.stride}; with stride "
                     "1 a pool shrinks the map by one pixel instead of halving it",
                     "nn.MaxPool2d(kernel_size=2, stride=2) halves height and width")
            if _first(a.padding) != 0 or a.ceil_mode or _first(a.dilation) != 1:
                fail(f"{where} is not a plain 2x2 max-pool", "nn.MaxPool2d(kernel_size=2, stride=2)")
        elif isinstance(b, nn.BatchNorm2d) and a.num_features != b.num_features:
            fail(f"{where} normalises {a.num_features} channels, not {b.num_features}",
                 "nn.BatchNorm2d(out_channels) of the conv before it")
    shapes = [tuple(p.shape) for p in got.parameters()]
    if shapes != [tuple(p.shape) for p in ref.parameters()]:
        fail(f"the parameters of {call} have other shapes than the reference's",
             "use the default nn.Conv2d and nn.BatchNorm2d layers")
    if len(list(got.children())) != len(ref):
        fail(f"{call} nests its layers ({len(list(got.children()))} children, not {len(ref)})",
             "return one flat nn.Sequential, so that layer i is features.i as in torchvision")
    with torch.no_grad():
        for p, q in zip(ref.state_dict().values(), got.state_dict().values()):
            q.copy_(p)
        got.eval()
        ref.eval()
        x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        try:
            out = got(x)
        except Exception as err:   # the learner's code: any error, named in the message
            fail(f"{call} fails on a (2, 3, 32, 32) input: {type(err).__name__}: {err}",
                 "the stack must run on images, like the reference")
        expected_out = ref(x)
    if not isinstance(out, torch.Tensor) or out.shape != expected_out.shape:
        fail(f"{call} maps a (2, 3, 32, 32) input to "
             f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}, "
             f"not {tuple(expected_out.shape)}", "compare your layers with the reference's")
    if not torch.allclose(out, expected_out, rtol=1e-5, atol=1e-6):
        fail(f"with the reference's weights, {call} computes other outputs",
             "check forward: the stack should just run its layers in order")


def _first(value: Any) -> int:
    """The first entry of a PyTorch size argument, which is an int or a tuple (2 or (2, 2))."""
    return value[0] if isinstance(value, (tuple, list)) else value


# The book's version of this module's pieces, for a student copy's stand-ins (``references``).
# (make_layers is wrapped: the check refuses the package's own function, passed as is)
REFERENCES = {"conv_params": _torch_conv_params, "vgg_params": lambda layers: _count_variant(list(layers)),
              "my_make_layers": lambda layers, batch_norm=False: reference_make_layers(layers, batch_norm=batch_norm)}
