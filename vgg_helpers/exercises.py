"""Check cells for the book's build-it exercises: each ``check_*`` says "correct" or points at what is wrong.

A build-it exercise asks the learner to *write* a piece (a function, a hook, a computation); the cell after it
calls one of these checks on the learner's answer. A check prints one line starting with ``correct:`` when the
answer is right, and raises ``ExerciseError`` (an ``AssertionError``) whose message names what is wrong and
what to look at, when it is not. Checks return nothing, so a cell that ends with one shows only that line.
``tests/test_exercises_*.py`` prove that every check accepts the reference solution and rejects planted
mistakes.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch
from torch import nn

__all__ = ["ExerciseError", "correct",
           "check_conv_params", "check_param_count", "check_make_layers",
           "check_tta", "check_whitening", "check_shard", "check_batch_stats",
           "check_train_step", "check_train_loop", "check_activation_hook",
           "check_fc_to_conv", "check_lrn"]


class ExerciseError(AssertionError):
    """An exercise answer is not right yet; the message says what is wrong and where to look."""


def correct(message: str) -> None:
    """Print the line a check prints for a right answer, ``"correct: " + message``.

    Checks return nothing, so that a notebook cell ending with a check shows only this line.

    Args:
        message: what was checked (``"make_layers builds Table 1's VGG-11"``).
    """
    print(f"correct: {message}")


def _fail(what: str, hint: str) -> None:
    """Raise the error a check raises for a wrong answer (``what`` is wrong; ``hint`` says where to look)."""
    raise ExerciseError(f"not yet: {what}. Hint: {hint}")


# ---- chapters 1-4 (architecture, naive model, refactor, shapes) ----


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
        _fail(f"{call} returned {value!r}, not a whole number of parameters",
              "return an int: weights plus biases")
    return whole


def check_conv_params(conv_params: Callable[[int, int, int], Any]) -> None:
    """Check chapter 1's build-it exercise ``conv_params(in_channels, out_channels, kernel_size)``.

    The answer must give the parameters of one convolution, weights and biases, exactly as
    ``nn.Conv2d(in_channels, out_channels, kernel_size)`` has them, for 3x3, 1x1 and 7x7 kernels.

    Args:
        conv_params: the learner's function ``(in_channels, out_channels, kernel_size) -> int``.
    Raises:
        ExerciseError: the answer forgets the biases, counts ``kernel_size`` instead of
            ``kernel_size ** 2`` weights per input channel, gives one bias per input channel or per
            layer, or differs from ``nn.Conv2d`` in another way.
    """
    for i, o, k in ((3, 64, 3), (64, 128, 3), (256, 256, 1), (512, 512, 3), (3, 64, 7)):
        call = f"conv_params({i}, {o}, {k})"
        got = _as_count(conv_params(i, o, k), call)
        expected = _torch_conv_params(i, o, k)
        if got == expected:
            continue
        weights = k * k * i * o
        if got == weights:
            _fail(f"{call} = {got:,} counts the weights only; nn.Conv2d({i}, {o}, {k}) has "
                  f"{expected:,} parameters", f"add the biases: one per output channel, {o} here")
        if got in ((k * i + 1) * o, k * i * o):
            _fail(f"{call} = {got:,} counts kernel_size weights per input channel, but a "
                  f"{k}x{k} kernel has {k * k}",
                  "use kernel_size * kernel_size (kernel_size ** 2), not kernel_size")
        if got in ((k * k * o + 1) * i, weights + i):
            _fail(f"{call} = {got:,} gives one bias per input channel",
                  f"a convolution has one bias per output channel: + out_channels ({o})")
        if got == weights + 1:
            _fail(f"{call} = {got:,} gives the layer a single bias",
                  f"there is one bias per output channel: + out_channels ({o})")
        _fail(f"{call} returned {got:,}, but nn.Conv2d({i}, {o}, kernel_size={k}) has "
              f"{expected:,} parameters ({weights:,} weights + {o} biases)",
              "kernel_size * kernel_size * in_channels weights per output channel, plus one bias each")
    return correct("conv_params counts weights and biases as nn.Conv2d does (3x3, 1x1, 7x7)")


def _count_variant(layers: list, conv_bias: bool = True, square: bool = True, chain: bool = True,
                   fc: bool = True, fc_bias: bool = True, spatial: bool = True,
                   flat: Optional[int] = None, pair_as_3x3: bool = False) -> int:
    """Table 2's count of a layer list, or the count with one planted mistake (to name it)."""
    from .configs import FC_WIDTH, LRN, NUM_POOLS, POOL, VGGConfig

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
    """Check chapter 1's build-it exercise ``vgg_params(layers)``: Table 2 from a layer list.

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
    from .configs import CONFIGS, PAPER_NAMES, layers_for, params_from_config

    cases = [(f"CONFIGS[{name!r}]", layers_for(name), params_from_config(name))
             for name in CONFIGS]
    cases.append(("layers_for('vgg11', width=0.5)", layers_for("vgg11", 0.5),
                  params_from_config("vgg11", width=0.5)))
    for where, layers, count in cases:
        call = f"vgg_params({where})"
        try:
            result = vgg_params(list(layers))
        except Exception as err:   # the learner's code: any error, named in the message
            _fail(f"{call} raised {type(err).__name__}: {err}",
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
                _fail(f"{call} = {got:,}: {what}; {book}", hint)
        _fail(f"{call} returned {got:,}; {book}",
              "count each conv with conv_params(in_channels, out, kernel_size), skip 'M' and "
              "'LRN', then add the three FC layers")
    return correct("vgg_params gives the book's counts for all six columns and a half-width VGG")


def check_make_layers(make_layers: Callable[..., Any]) -> None:
    """Check chapter 3's build-it exercise: ``make_layers(layers, batch_norm=False)``.

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
    from .configs import CONFIGS
    from .models import make_layers as reference_make_layers

    if make_layers is reference_make_layers:
        _fail("this is vgg_helpers' own make_layers, imported rather than written",
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
                _fail(f"{call} raised {type(err).__name__}: {err}", hint)
            if not isinstance(got, nn.Module):
                _fail(f"{call} returned a {type(got).__name__}, not a module",
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
            _fail(f"{call} has {names.count(kind)} {kind} layers, not {expected.count(kind)}",
                  f"{kind}: {why}")
    if names.count("BatchNorm2d") != expected.count("BatchNorm2d"):
        _fail(f"{call} has {names.count('BatchNorm2d')} BatchNorm2d layers, not "
              f"{expected.count('BatchNorm2d')}",
              "with batch_norm=True add one nn.BatchNorm2d(out_channels) after every convolution; "
              "with batch_norm=False none")
    if names != expected:
        i = next(j for j, (a, b) in enumerate(zip(names, expected)) if a != b)
        if bn and names[i - 1:i + 2] == ["Conv2d", "ReLU", "BatchNorm2d"]:
            _fail(f"in {call} batch norm comes after the ReLU (layer {i}: ReLU, then BatchNorm2d)",
                  "the order is conv, batch norm, ReLU: BatchNorm2d between the conv and its ReLU")
        _fail(f"layer {i} of {call} is a {names[i]}, but the reference has a {expected[i]} there",
              "the order is conv, (batch norm), ReLU for a number and one max-pool for each 'M'")
    previous = 3
    for i, (a, b) in enumerate(zip(leaves, ref)):
        where = f"layer {i} of {call} ({a})"
        if isinstance(b, nn.Conv2d):
            if a.in_channels != b.in_channels:
                hint = (f"the previous conv gives {previous} channels: after each conv set "
                        "in_channels = its out_channels" if a.in_channels != previous else
                        "in_channels is the previous conv's out_channels (3 for the first)")
                _fail(f"{where} takes {a.in_channels} input channels, not {b.in_channels}", hint)
            previous = a.out_channels
            if a.out_channels != b.out_channels:
                _fail(f"{where} has {a.out_channels} output channels, not {b.out_channels}",
                      "a number in the list is the conv's out_channels")
            if tuple(a.kernel_size) != tuple(b.kernel_size):
                _fail(f"{where} has kernel_size {a.kernel_size}", "VGG's convolutions are 3x3")
            if a.padding != b.padding:
                side = 32 + 2 * _first(a.padding) - 2
                _fail(f"{where} has padding {a.padding}, so it changes the map's size "
                      f"(32x32 in, {side}x{side} out) and the maps shrink layer by layer",
                      "padding=1 keeps a 3x3 conv's height and width (paper sec. 2.1)")
            if tuple(a.stride) != (1, 1) or tuple(a.dilation) != (1, 1) or a.groups != 1:
                _fail(f"{where} has stride {a.stride}", "convolutions use stride 1 (the default)")
            if (a.bias is None) != (b.bias is None):
                _fail(f"{where} has no bias", "keep nn.Conv2d's default bias=True")
        elif isinstance(b, nn.MaxPool2d):
            if _first(a.kernel_size) != 2 or _first(a.stride) != 2:
                _fail(f"{where} has kernel_size {a.kernel_size} and stride {a.stride}; with stride "
                      "1 a pool shrinks the map by one pixel instead of halving it",
                      "nn.MaxPool2d(kernel_size=2, stride=2) halves height and width")
            if _first(a.padding) != 0 or a.ceil_mode or _first(a.dilation) != 1:
                _fail(f"{where} is not a plain 2x2 max-pool", "nn.MaxPool2d(kernel_size=2, stride=2)")
        elif isinstance(b, nn.BatchNorm2d) and a.num_features != b.num_features:
            _fail(f"{where} normalises {a.num_features} channels, not {b.num_features}",
                  "nn.BatchNorm2d(out_channels) of the conv before it")
    shapes = [tuple(p.shape) for p in got.parameters()]
    if shapes != [tuple(p.shape) for p in ref.parameters()]:
        _fail(f"the parameters of {call} have other shapes than the reference's",
              "use the default nn.Conv2d and nn.BatchNorm2d layers")
    if len(list(got.children())) != len(ref):
        _fail(f"{call} nests its layers ({len(list(got.children()))} children, not {len(ref)})",
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
            _fail(f"{call} fails on a (2, 3, 32, 32) input: {type(err).__name__}: {err}",
                  "the stack must run on images, like the reference")
        expected_out = ref(x)
    if not isinstance(out, torch.Tensor) or out.shape != expected_out.shape:
        _fail(f"{call} maps a (2, 3, 32, 32) input to "
              f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}, "
              f"not {tuple(expected_out.shape)}", "compare your layers with the reference's")
    if not torch.allclose(out, expected_out, rtol=1e-5, atol=1e-6):
        _fail(f"with the reference's weights, {call} computes other outputs",
              "check forward: the stack should just run its layers in order")


def _first(value: Any) -> int:
    """The first entry of a PyTorch size argument, which is an int or a tuple (2 or (2, 2))."""
    return value[0] if isinstance(value, (tuple, list)) else value


# ---- chapters 5-6 (training, the failure, batch norm) ----
# A tiny classifier and a few seeded batches stand in for VGG and CIFAR-10: the checks run in well under a
# second, and they draw their random numbers inside ``torch.random.fork_rng``, so calling a check does not
# change what the notebook's next cells draw.

import copy as _copy
import math as _math
import numbers as _numbers
from collections import OrderedDict as _OrderedDict


def _tiny_convnet(seed: int) -> nn.Module:
    """A VGG-shaped toy (``features``, ``flatten``, ``classifier``) without dropout or batch norm, seeded."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        classifier = nn.Sequential(nn.Linear(16 * 2 * 2, 32), nn.ReLU(), nn.Linear(32, 4))
        return nn.Sequential(_OrderedDict(features=features, flatten=nn.Flatten(),
                                           classifier=classifier))


def _toy_batches(seed: int, n_batches: int, batch_size: int = 8) -> list:
    """``n_batches`` seeded ``(images, labels)`` pairs of 3x8x8 images in 4 classes."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch_size, 3, 8, 8, generator=g),
             torch.randint(0, 4, (batch_size,), generator=g)) for _ in range(n_batches)]


class _WatchedLoss:
    """Wraps a loss function and counts its calls and the backward passes through its result."""

    def __init__(self, loss_fn: Callable) -> None:
        self.loss_fn, self.calls, self.backwards = loss_fn, 0, 0

    def __call__(self, *args, **kwargs):
        out = self.loss_fn(*args, **kwargs)
        self.calls += 1
        if isinstance(out, torch.Tensor) and out.requires_grad:
            out.register_hook(self._seen)
        return out

    def _seen(self, grad: torch.Tensor) -> None:
        self.backwards += 1


def _reference_train_step(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Callable,
                          images: torch.Tensor, labels: torch.Tensor) -> float:
    """The training step the exercise asks for (what ``check_train_step`` compares with)."""
    optimizer.zero_grad()
    loss = loss_fn(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def _same(a: list, b: list, tol: float = 1e-6) -> bool:
    """Whether two lists of tensors are equal up to ``tol`` (relative to their size)."""
    return all(torch.allclose(x, y, rtol=tol, atol=tol) for x, y in zip(a, b))


def check_train_step(train_step: Callable) -> None:
    """Check a learner's ``train_step(model, optimizer, loss_fn, images, labels) -> float``.

    Runs it for four steps on a tiny network with SGD (momentum 0.9) beside a correct step that starts
    from the same weights, and compares the returned losses and the weights after every step.

    Args:
        train_step: the learner's function. It must do one optimiser step on one batch and return the
            batch's loss, computed before the step, as a Python float.
    Raises:
        ExerciseError: the step leaves the weights unchanged (no ``backward``, no ``optimizer.step()``, or
            ``zero_grad`` between them), lets gradients pile up across steps (no ``zero_grad``), updates
            the weights differently from SGD's step, or returns something other than the loss as a float.
    """
    if not callable(train_step):
        _fail(f"check_train_step expects your function, got {type(train_step).__name__}",
              "pass the function itself: check_train_step(train_step)")
    model = _tiny_convnet(seed=5)
    reference = _copy.deepcopy(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    ref_optimizer = torch.optim.SGD(reference.parameters(), lr=0.05, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    steps_taken = []
    optimizer.register_step_post_hook(lambda opt, args, kwargs: steps_taken.append(1))
    grad_sum = [torch.zeros_like(p) for p in reference.parameters()]
    for step, (images, labels) in enumerate(_toy_batches(seed=6, n_batches=4)):
        ref_loss = _reference_train_step(reference, ref_optimizer, loss_fn, images, labels)
        grad_sum = [s + p.grad for s, p in zip(grad_sum, reference.parameters())]
        before = [p.detach().clone() for p in model.parameters()]
        watched = _WatchedLoss(loss_fn)
        steps_taken.clear()
        result = train_step(model, optimizer, watched, images, labels)
        after = [p.detach().clone() for p in model.parameters()]
        grads = [p.grad for p in model.parameters()]
        if watched.calls == 0:
            _fail("train_step never called loss_fn",
                  "compute the loss with loss = loss_fn(model(images), labels)")
        if _same(before, after, tol=0.0):
            if watched.backwards == 0:
                _fail("the weights did not change, and loss.backward() was never called",
                      "call loss.backward() to compute the gradients, then optimizer.step()")
            if not steps_taken:
                _fail("the weights did not change: optimizer.step() was never called",
                      "after loss.backward(), call optimizer.step() to move the weights")
            if all(g is None or not g.any() for g in grads):
                _fail("the weights did not change: the gradients were cleared between "
                      "loss.backward() and optimizer.step()",
                      "call optimizer.zero_grad() first, before the forward pass, not after "
                      "backward()")
            _fail("the weights did not change: optimizer.step() ran before loss.backward()",
                  "the order is zero_grad(), forward, loss, backward(), step()")
        if not _same(after, [p.detach() for p in reference.parameters()]):
            piled_up = all(g is not None for g in grads) and _same(grads, grad_sum, tol=1e-5)
            if step > 0 and piled_up:
                _fail(f"from step {step + 1} on the weights differ from a correct step's: the "
                      f"gradients of all steps so far were added up",
                      "backward() adds to .grad; call optimizer.zero_grad() once per step, "
                      "before loss.backward()")
            _fail(f"after step {step + 1} the weights differ from one SGD step on this batch",
                  "use the optimizer you are given, and the order zero_grad(), forward, loss, "
                  "backward(), step()")
        if isinstance(result, torch.Tensor):
            graph = (" that still holds the autograd graph (and every activation of the batch)"
                     if result.requires_grad else "")
            _fail(f"train_step returned a tensor{graph}, not a Python float",
                  "return loss.item()")
        if not isinstance(result, float):
            shown = "None" if result is None else f"{type(result).__name__} {result!r:.60}"
            _fail(f"train_step returned {shown}, not the loss as a float", "return loss.item()")
        if not _math.isclose(result, ref_loss, rel_tol=1e-5, abs_tol=1e-6):
            _fail(f"at step {step + 1} train_step returned {result:.6f}, but the batch's loss "
                  f"was {ref_loss:.6f}",
                  "return the loss you called backward() on, computed before the step")
    return correct("train_step: zero_grad, forward, loss, backward, step, and the loss as a float")


class _ToyLoader:
    """A fixed list of batches with a length: what ``train`` needs of a loader."""

    def __init__(self, batches: list) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


def check_train_loop(train_loop: Callable) -> None:
    """Check a learner's ``train_loop(model, train_loader, optimizer, steps) -> (losses, accuracy)``.

    Runs it for 7 steps over a loader of 3 batches (so the loop must start a new pass over the data twice) on a
    tiny network, beside ``vgg_helpers.training.train`` from the same weights with the same SGD settings, and
    compares every step's loss, the weights at the end and the running accuracy.

    Args:
        train_loop: the learner's loop. It must put the model in training mode, take exactly ``steps``
            optimiser steps (starting a new pass over ``train_loader`` when one ends), and return the list of
            every step's loss (Python floats, computed before the step) and the fraction of the training
            images seen that were classified correctly (before each step).
    Raises:
        ExerciseError: the losses or weights differ from ``train``'s (a missing ``zero_grad``, a wrong order),
            the number of steps is wrong, the loop stops at the end of the loader, or the results are not
            floats.
    """
    from .training import TrainConfig, train      # here: the exercises module stays importable on its own

    if not callable(train_loop):
        _fail(f"check_train_loop expects your function, got {type(train_loop).__name__}",
              "pass the function itself: check_train_loop(train_loop)")
    steps, batches = 7, _toy_batches(seed=7, n_batches=3)
    model, reference = _tiny_convnet(seed=8), _tiny_convnet(seed=8)
    ref_losses: list[float] = []
    config = TrainConfig(epochs=3, lr=0.05, momentum=0.9, nesterov=False, weight_decay=0.0,
                         schedule="constant", max_steps=steps)
    with torch.random.fork_rng(devices=[]):
        history = train(reference, _ToyLoader(batches), None, config, device="cpu", progress=False,
                        on_step=lambda m, step, loss: ref_losses.append(loss))
    # train() reports the accuracy per pass over the data: weigh each pass by the images it saw
    seen = [min(len(batches), steps - e * len(batches)) * len(batches[0][1]) for e in range(len(history.epoch))]
    ref_acc = sum(a * n for a, n in zip(history.train_acc, seen)) / sum(seen)
    loader = _ToyLoader(batches)
    model.eval()                          # the loop must switch it back to training mode
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    result = train_loop(model, loader, optimizer, steps)
    if not (isinstance(result, tuple) and len(result) == 2):
        _fail(f"train_loop returned {type(result).__name__}, not (losses, accuracy)",
              "end with: return losses, correct / seen")
    losses, accuracy = result
    if not model.training:
        _fail("the model was left in evaluation mode", "call model.train() before the first step")
    if not isinstance(losses, list) or not all(isinstance(x, float) for x in losses):
        _fail("losses must be a list of Python floats, one per step", "append loss.item() after every step")
    if len(losses) != steps:
        hint = ("when the loader runs out, start a new pass over it (an outer loop over epochs)"
                if len(losses) == len(batches) else "stop after exactly `steps` optimiser steps")
        _fail(f"train_loop took {len(losses)} steps, not the {steps} it was asked for", hint)
    for i, (got, ref) in enumerate(zip(losses, ref_losses)):
        if not _math.isclose(got, ref, rel_tol=1e-5, abs_tol=1e-6):
            _fail(f"at step {i + 1} the loss was {got:.6f}, but train() had {ref:.6f} from the same weights",
                  "each step: forward, loss, optimizer.zero_grad(), loss.backward(), optimizer.step(); "
                  "record loss.item(), the loss before the step")
    if not _same([p.detach() for p in model.parameters()], [p.detach() for p in reference.parameters()]):
        _fail("the losses agree but the final weights differ from train()'s",
              "take one optimizer.step() per batch, with the optimizer you are given")
    if not isinstance(accuracy, float) or not _math.isclose(accuracy, ref_acc, abs_tol=1e-9):
        _fail(f"the running accuracy was {accuracy!r}, expected {ref_acc:.4f} (correct predictions before each "
              "step, over every image seen)",
              "count (outputs.argmax(1) == labels).sum().item() and len(labels) at every step; return a float")
    return correct(f"train_loop: {steps} steps over 3 passes, the same losses and weights as train()")


def _stds_by_hand(model: nn.Module, images: torch.Tensor) -> dict[str, dict[str, float]]:
    """Per weight layer: std of the output (batch, and population), of the input, of sample 0's output."""
    found: dict[str, dict[str, float]] = {}

    def hook_for(name: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            out, inp = output.detach().float(), inputs[0].detach().float()
            found[name] = {"output": out.std().item(), "population": out.std(unbiased=False).item(),
                           "input": inp.std().item(), "one image": out[0].std().item()}
        return hook

    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    handles = [m.register_forward_hook(hook_for(n)) for n, m in layers]
    try:
        with torch.no_grad():
            model(images)
    finally:
        for h in handles:
            h.remove()
    return found


def check_activation_hook(record_stds: Callable) -> None:
    """Check a learner's ``record_stds(model, images) -> {layer name: std of its output}``.

    Runs it on a small VGG-shaped network (two convolutions, two linear layers) and compares with
    ``vgg_helpers.diagnostics.activation_stats``.

    Args:
        record_stds: the learner's function. It must hook every ``Conv2d`` and ``Linear`` layer, run one
            forward pass, remove its hooks and return each layer's output standard deviation over the whole
            batch, keyed by the layer's name in ``model.named_modules()`` (``"features.0"``, ...).
    Raises:
        ExerciseError: hooks are left on the model, a layer is missing (a ``Linear``, say) or extra, the
            values are not floats, or they are the std of the layer's input or of one image instead of
            the batch's output.
    """
    from .diagnostics import activation_stats

    if not callable(record_stds):
        _fail(f"check_activation_hook expects your function, got {type(record_stds).__name__}",
              "pass the function itself: check_activation_hook(record_stds)")
    model = _tiny_convnet(seed=7).eval()
    images = _toy_batches(seed=8, n_batches=1, batch_size=16)[0][0]
    result = record_stds(model, images)
    left = [name or "(the model)" for name, m in model.named_modules()
            if m._forward_hooks or m._forward_pre_hooks]
    if left:
        _fail(f"hooks are still registered on {', '.join(left)} after record_stds returned",
              "keep the handle that register_forward_hook returns and call handle.remove() "
              "(in a finally: block, so it also happens when the forward pass fails)")
    if not isinstance(result, dict):
        _fail(f"record_stds returned {type(result).__name__}, not a dict",
              "return {layer name: std}, e.g. {'features.0': 0.41, ...}")
    expected = {row["name"]: row["std"] for row in activation_stats(model, images)}
    missing = [n for n in expected if n not in result]
    extra = [n for n in result if n not in expected]
    if missing:
        kinds = sorted({type(model.get_submodule(n)).__name__ for n in missing})
        _fail(f"no value for {', '.join(missing)} ({' and '.join(kinds)})",
              "hook every nn.Conv2d and every nn.Linear: isinstance(module, (nn.Conv2d, nn.Linear))")
    if extra:
        _fail(f"values for layers that are not Conv2d or Linear: {', '.join(repr(n) for n in extra)}",
              "key the dict by the names from model.named_modules() of the Conv2d and Linear layers "
              "only")
    not_float = [n for n, v in result.items() if not isinstance(v, _numbers.Real)]
    if not_float:
        _fail(f"the value for {not_float[0]} is a {type(result[not_float[0]]).__name__}, not a float",
              "store output.std().item() in the hook")
    by_hand = _stds_by_hand(model, images)
    for name, want in expected.items():
        got = float(result[name])
        if any(_math.isclose(got, by_hand[name][k], rel_tol=1e-4) for k in ("output", "population")):
            continue
        for what, wrong, hint in (
                ("input", "the std of the layer's input, not of its output",
                 "a forward hook gets (module, inputs, output): record output, not inputs[0]"),
                ("one image", "the std of the first image's output, not of the whole batch's",
                 "take the std over the whole batch, output.std(), not output[0].std()")):
            if _math.isclose(got, by_hand[name][what], rel_tol=1e-4):
                _fail(f"for {name} you recorded {wrong}", hint)
        _fail(f"for {name} you recorded {got:.4g}; the std of its output over the batch is {want:.4g}",
              "record output.std() of each layer in a forward hook (after the layer ran)")
    return correct("record_stds records every Conv2d/Linear output's std and removes its hooks")


# ---- chapters 8-9 (training fast, many GPUs) ----


def _tiny_net(seed: int = 0) -> nn.Module:
    """A small network whose logits change when its input is mirrored (a check's test subject)."""
    with torch.random.fork_rng(devices=[]):        # leave the notebook's random state alone
        torch.manual_seed(seed)
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 8, 10))


def check_tta(tta_logits: Callable[[nn.Module, torch.Tensor], torch.Tensor]) -> None:
    """Check chapter 8's build-it exercise ``tta_logits(model, images)``: the test-time flip.

    The answer must give, for every image, the mean of the model's logits for the image and for its mirror image
    (flipped left-right, along the width), as ``FastModel(net, tta_flip=True)`` does in eval mode.

    Args:
        tta_logits: the learner's function ``(model, images) -> logits``.
    Raises:
        ExerciseError: the answer flips the wrong axis, sums instead of averaging, averages probabilities, or
            differs from ``FastModel``'s flip in another way.
    """
    from .fast import FastModel

    net = _tiny_net().eval()
    gen = torch.Generator().manual_seed(1)
    images = torch.randn(5, 3, 6, 8, generator=gen)   # height 6 != width 8, so a wrong flip cannot hide
    before = images.clone()
    with torch.no_grad():
        expected = FastModel(net, tta_flip=True).eval()(images)
        got = tta_logits(net, images)
        plain, mirror = net(images), net(images.flip(3))
        upside_down = net(images.flip(2))
    if not torch.equal(images, before):
        _fail("tta_logits changed the images it was given", "flip a copy (images.flip(3) returns a new tensor)")
    if not isinstance(got, torch.Tensor):
        _fail(f"tta_logits returned a {type(got).__name__}, not a tensor of logits",
              "return one (N, classes) tensor: the mean of the two forward passes")
    if tuple(got.shape) != tuple(expected.shape):
        _fail(f"tta_logits returned shape {tuple(got.shape)} for 5 images and 10 classes, not {tuple(expected.shape)}",
              "average the two (N, classes) logit tensors element by element, not over the batch or the classes")
    got = got.detach().float()

    def close(other: torch.Tensor) -> bool:
        return torch.allclose(got, other, rtol=1e-4, atol=1e-5)

    if close(expected):
        return correct("tta_logits averages the logits of each image and its mirror image")
    if close(plain + mirror):
        _fail("tta_logits returns the sum of the two logits, twice the average", "divide the sum by 2")
    if close(plain):
        _fail("tta_logits returns the plain logits: the mirror image is not used", "add model(images.flip(3))")
    if close(mirror):
        _fail("tta_logits returns only the mirror image's logits", "average them with model(images)")
    if close((plain + upside_down) / 2) or close((mirror + net(images.flip(2))) / 2):
        _fail("tta_logits flips the height (dim 2): the image is turned upside down, not mirrored",
              "images are (N, C, H, W); a mirror image flips the width, the last dim: images.flip(3)")
    if close((plain + net(images.flip(2, 3))) / 2):
        _fail("tta_logits flips both height and width (a half turn), not only the width",
              "flip dim 3 only: images.flip(3)")
    probs = (plain.softmax(1) + mirror.softmax(1)) / 2
    if close(probs) or close(probs.log()):
        _fail("tta_logits averages probabilities (softmax), but FastModel averages the logits",
              "average the raw outputs of the model: (model(images) + model(images.flip(3))) / 2")
    _fail("tta_logits differs from FastModel(tta_flip=True)",
          "return (model(images) + model(images.flip(3))) / 2, the model in eval mode")


def check_whitening(whitening_filters: Callable[..., torch.Tensor]) -> None:
    """Check chapter 8's build-it exercise ``whitening_filters(images, k=2, eps=5e-4)``: the whitening layer.

    The answer must return the ``2 * 3 * k * k`` filters ``(2 * 3 * k * k, 3, k, k)`` of ``modern.init_whitening``:
    the eigenvectors of the covariance of all k x k patches, largest eigenvalue first, each divided by the square
    root of its eigenvalue plus ``eps``, then the same filters negated.

    Args:
        whitening_filters: the learner's function ``(images, k, eps) -> filters``.
    Raises:
        ExerciseError: wrong shape, missing negatives, wrong order, a missing square root or ``eps``.
    """
    from .modern import ModernConfig, ModernVGG, init_whitening

    gen = torch.Generator().manual_seed(2)
    noise = torch.randn(64, 3, 12, 12, generator=gen)
    mix = torch.tensor([[1.0, 0.6, 0.3], [0.0, 0.8, 0.5], [0.0, 0.0, 0.4]])
    images = torch.einsum("dc,nchw->ndhw", mix, noise)         # correlated colours ...
    images = images + 0.7 * images.roll(1, dims=3)               # ... and neighbouring pixels
    before = images.clone()
    ref = ModernVGG(ModernConfig(layers=["W", 8, "G"]))
    init_whitening(ref, images, eps=0.5)                          # a large eps: its effect is visible
    expected = ref.whiten.weight.detach()
    got = whitening_filters(images, k=2, eps=0.5)
    if not torch.equal(images, before):
        _fail("whitening_filters changed the images it was given", "work on copies (unfold and reshape do)")
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(expected.shape):
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        _fail(f"whitening_filters returned {shape}, not a tensor of shape {tuple(expected.shape)}",
              "12 eigenvectors of a 2x2x3 patch, reshaped to (12, 3, 2, 2), then the same 12 negated: (24, 3, 2, 2)")
    got = got.detach().float()
    half = len(got) // 2
    if not torch.allclose(got[half:], -got[:half], atol=1e-5):
        _fail("the second half of the filters is not the first half negated",
              "return torch.cat([filters, -filters]): the activation after the layer keeps both signs")
    patches = images.unfold(2, 2, 1).unfold(3, 2, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, 12)
    cov = patches.T @ patches / len(patches)

    def response(filters: torch.Tensor) -> torch.Tensor:        # the variance of each filter's output
        w = filters[:half].reshape(half, -1)
        return torch.diagonal(w @ cov @ w.T)

    g, e = got[:half].reshape(half, -1), expected[:half].reshape(half, -1)
    sign = torch.sign((g * e).sum(1, keepdim=True))              # an eigenvector's sign is arbitrary
    if not torch.allclose(g * sign, e, rtol=1e-3, atol=1e-4):
        var = response(got)
        if torch.allclose(var.flip(0), response(expected), rtol=1e-3):
            _fail("the filters come smallest eigenvalue first", "torch.linalg.eigh sorts ascending: flip both")
        lam = torch.linalg.eigvalsh(cov).flip(0)
        if torch.allclose(var, lam / (lam + 0.5) ** 2, rtol=1e-3):
            _fail("each filter is divided by its eigenvalue, not by its square root",
                  "divide by torch.sqrt(eigenvalue + eps)")
        if torch.allclose(var, torch.ones_like(var), rtol=1e-3):
            _fail("eps is missing: every filter's output has variance exactly 1",
                  "divide by sqrt(eigenvalue + eps): the weakest components are not blown up")
        _fail("the filters differ from the principal components of the patches",
              "cov = patches.T @ patches / len(patches); eigh; filters = eigenvectors.T / sqrt(eigenvalues + eps)")
    correct("whitening_filters returns the scaled principal components and their negatives")


def _loader_shares(n: int, world_size: int) -> list[list[int]]:
    """Which items of a global batch of ``n`` the book's sharded ``TensorLoader`` gives each process."""
    from .data import TensorLoader

    shares = []
    for rank in range(world_size):
        loader = TensorLoader(torch.zeros(n, 3, 1, 1, dtype=torch.uint8), torch.arange(n), batch_size=n,
                              rank=rank, world_size=world_size)
        _, labels = next(iter(loader))             # the labels are the items' positions in the batch
        shares.append(labels.tolist())
    return shares


def check_shard(shard: Callable[[torch.Tensor, int, int], torch.Tensor]) -> None:
    """Check chapter 9's build-it exercise ``shard(batch, rank, world_size)`` against the book's loader.

    For several batch sizes and process counts (some that do not divide evenly) the parts of ranks
    ``0 ... world_size - 1`` must be exactly the slices the sharded ``TensorLoader`` gives those processes:
    contiguous, in rank order, together the whole batch, sizes differing by at most one.

    Args:
        shard: the learner's function ``(batch, rank, world_size) -> part of batch``.
    Raises:
        ExerciseError: the parts are not tensors, overlap, leave items out, are strided instead of contiguous,
            are unbalanced, or are balanced but split differently from the loader.
    """
    for n, world_size in ((10, 3), (128, 2), (7, 4), (12, 4), (6, 1)):
        batch = torch.stack([torch.arange(n), -torch.arange(n)], 1)   # (n, 2): row i holds item i
        before = batch.clone()
        parts = [shard(batch, rank, world_size) for rank in range(world_size)]
        where = f"a batch of {n} on {world_size} processes"
        if not torch.equal(batch, before):
            _fail(f"shard changed the batch it was given ({where})", "return a slice of it, do not modify it")
        for rank, part in enumerate(parts):
            if not isinstance(part, torch.Tensor):
                _fail(f"shard(batch, {rank}, {world_size}) returned a {type(part).__name__}, not a tensor",
                      "return batch[start:stop], a slice along the first (batch) dimension")
            if part.dim() != 2 or part.shape[1] != 2:
                _fail(f"shard(batch, {rank}, {world_size}) of a batch of shape {tuple(batch.shape)} has shape "
                      f"{tuple(part.shape)}", "slice the first dimension only: batch[start:stop]")
        items = [part[:, 0].tolist() for part in parts]
        owner: dict[int, int] = {}
        for rank, part in enumerate(items):
            for item in part:
                if item in owner:
                    _fail(f"the parts overlap: item {item} of {where} is in the parts of ranks {owner[item]} and "
                          f"{rank}", "rank r's part must stop where rank r + 1's starts")
                owner[item] = rank
        missing = sorted(set(range(n)) - set(owner))
        if missing:
            _fail(f"the parts of {where} hold {len(owner)} of the {n} items: items {missing} are in no part",
                  f"n // world_size = {n // world_size} per rank drops the remainder; start rank r at "
                  "r * n // world_size and stop at (r + 1) * n // world_size")
        sizes = [len(part) for part in items]
        if any(part != list(range(part[0], part[0] + len(part))) for part in items if part) or \
                sum(items, []) != list(range(n)):
            _fail(f"the parts of {where} are not consecutive slices in rank order (rank 0 got {items[0]})",
                  "the loader gives each process a contiguous slice, batch[start:stop], not every "
                  "world_size-th item (batch[rank::world_size])")
        if max(sizes) - min(sizes) > 1:
            _fail(f"the parts of {where} are unbalanced: sizes {sizes}",
                  "sizes may differ by at most one (torch.chunk rounds up and can leave the last rank short)")
        expected = _loader_shares(n, world_size)
        if items != expected:
            _fail(f"the parts of {where} have sizes {sizes}, the loader's have {[len(p) for p in expected]}",
                  "the loader gives rank r the items r * n // world_size to (r + 1) * n // world_size, so the "
                  "larger parts come last")
    return correct(f"shard splits like the book's loader: 10 items on 3 processes -> "
                   f"{[len(p) for p in _loader_shares(10, 3)]}")


def _stats_shares(seed: int = 0) -> list[torch.Tensor]:
    """Three shares of a batch with unequal sizes and different means: (N_r, C, H, W) with N_r = 1, 2, 5."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(k, 3, 2, 2, generator=gen) * (1 + r) + 2.0 * r for r, k in enumerate((1, 2, 5))]


def check_batch_stats(batch_stats: Callable[[list, list, list], Any], parts: Optional[list] = None,
                      dims: tuple[int, ...] = (0, 2, 3)) -> None:
    """Check chapter 9's build-it exercise ``batch_stats(counts, sums, squares) -> (mean, var)``.

    The answer must turn each process's per-channel count, sum and sum of squares into the whole batch's
    per-channel mean and *biased* variance (divided by n), as synced batch norm does. The check builds shares of
    unequal sizes and different means; given ``parts`` (the notebook's shares) it also compares with them.

    Args:
        batch_stats: the learner's function ``(counts, sums, squares) -> (mean, var)``; ``counts`` is a list of
            numbers, ``sums`` and ``squares`` lists of (C,) tensors, one entry per process.
        parts: optional shares (tensors) of a real batch, e.g. the notebook's ``halves``.
        dims: the dimensions a channel's statistics run over (batch, height, width).
    Raises:
        ExerciseError: the answer returns the unbiased variance (n - 1), the mean of the processes' variances,
            the mean of the processes' means (wrong with unequal counts), or another wrong value or shape.
    """
    def inputs(shares: list) -> tuple[list, list, list]:
        return ([s[:, 0].numel() for s in shares], [s.sum(dims) for s in shares],
                [(s * s).sum(dims) for s in shares])

    def call(counts: list, sums: list, squares: list) -> tuple[torch.Tensor, torch.Tensor]:
        result = batch_stats(counts, sums, squares)
        if not (isinstance(result, tuple) and len(result) == 2):
            _fail(f"batch_stats returned {type(result).__name__}, not a (mean, var) pair", "return mean, var")
        mean, var = (torch.as_tensor(v).detach().double() for v in result)
        channels = sums[0].shape
        for name, value in (("mean", mean), ("var", var)):
            if value.shape != channels:
                _fail(f"{name} has shape {tuple(value.shape)}, not one value per channel {tuple(channels)}",
                      "add the processes' (C,) tensors element by element (sum(sums)); do not sum over channels")
        return mean, var

    shares = _stats_shares()
    counts, sums, squares = inputs(shares)
    mean, var = call(counts, sums, squares)
    whole = torch.cat(shares).double()
    n = sum(counts)
    true_mean, true_var = whole.mean(dims), whole.var(dims, unbiased=False)
    own_means = [s.double().mean(dims) for s in shares]
    own_vars = [s.double().var(dims, unbiased=False) for s in shares]

    def close(a: torch.Tensor, b: torch.Tensor) -> bool:
        return torch.allclose(a, b, rtol=1e-4, atol=1e-5)

    if not close(mean, true_mean):
        if close(mean, sum(own_means) / len(own_means)):
            _fail(f"mean averages the processes' own means; with unequal counts {counts} that weighs a small share "
                  "as much as a large one", "divide the total of the sums by the total count: sum(sums) / sum(counts)")
        _fail("mean is not the whole batch's per-channel mean", "sum(sums) / sum(counts)")
    if not close(var, true_var):
        if close(var, whole.var(dims, unbiased=True)):
            _fail(f"var is the unbiased variance (divided by n - 1 = {n - 1}); batch norm divides by n",
                  "E[x^2] - E[x]^2 with E[x^2] = sum(squares) / n")
        per_process = (sum(own_vars) / len(own_vars), sum(c * v for c, v in zip(counts, own_vars)) / n)
        if any(close(var, v) for v in per_process):
            _fail("var averages the processes' own variances: that leaves out how far the shares' means are from "
                  "the whole batch's mean", "use the totals: sum(squares) / n - mean ** 2")
        if close(var, sum(squares[i].double() for i in range(len(shares))) / n):
            _fail("var is the mean of the squares, E[x^2]; the variance subtracts the squared mean",
                  "sum(squares) / n - mean ** 2")
        _fail("var is not the whole batch's per-channel (biased) variance", "sum(squares) / n - mean ** 2")
    if parts is not None:
        counts, sums, squares = inputs(list(parts))
        mean, var = call(counts, sums, squares)
        whole = torch.cat(list(parts)).double()
        if not torch.allclose(mean, whole.mean(dims), atol=1e-5):
            _fail("mean differs from the mean of the notebook's whole batch", "sum(sums) / sum(counts)")
        if not torch.allclose(var, whole.var(dims, unbiased=False), rtol=1e-3, atol=1e-6):
            _fail("var differs from the (biased) variance of the notebook's whole batch",
                  "sum(squares) / n - mean ** 2")
    return correct("batch_stats gives the mean and biased variance of the whole batch")


# ---- the paper's methods ----


def _small_imagenet_vgg(seed: int = 0) -> nn.Module:
    """A VGG-11 at 1/16 width with the paper's head (FC-4096, FC-4096, FC-10), random biases, in eval mode."""
    from .models import build_vgg

    with torch.random.fork_rng(devices=[]):        # leave the notebook's random state alone
        torch.manual_seed(seed)
        model = build_vgg("vgg11", width=1 / 16, num_classes=10).eval()
        with torch.no_grad():                      # non-zero biases, so that a dropped bias shows
            for m in model.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    m.bias.normal_(0.0, 0.1)
    return model


def check_fc_to_conv(fc_to_conv: Callable[[nn.Module], nn.Module]) -> None:
    """Check the build-it exercise ``fc_to_conv(model)``: a VGG's FC layers as convolutions (sec. 3.2).

    On a small VGG-11 (1/16 width, the paper's FC-4096, FC-4096 head, 10 classes) the answer must give a net
    whose first converted layer is a 7x7 convolution holding the first FC layer's weights reshaped to
    ``(4096, channels, 7, 7)``, whose other two are 1x1 convolutions, with every bias copied; on 224x224 images
    its 1x1 score map must equal the VGG's output, and on 256x256 images it must give a 2x2 map equal to
    ``vgg_helpers.paper.fc_to_conv``'s.

    Args:
        fc_to_conv: the learner's function ``(model) -> nn.Module`` returning a fully convolutional net.
    Raises:
        ExerciseError: the answer is the package's own function, keeps a Linear layer, converts the first FC
            layer to a 1x1 convolution, reshapes the weights in another order (7x7 transposed, or flattened as
            height, width, channels), drops or does not copy a bias, changes the VGG it was given, flattens the
            score map, or computes other scores.
    """
    from .paper import fc_to_conv as reference

    if fc_to_conv is reference:
        _fail("this is vgg_helpers.paper.fc_to_conv, imported rather than written",
              "write the conversion yourself in a new function")
    with torch.random.fork_rng(devices=[]):        # new layers draw their initial weights: not from the notebook's
        _check_fc_to_conv(fc_to_conv, reference)   # random stream
    return correct("fc_to_conv: 7x7 then 1x1 convolutions; the same scores at 224, a 2x2 map at 256")


def _check_fc_to_conv(fc_to_conv: Callable[[nn.Module], nn.Module], reference: Callable) -> None:
    """The body of ``check_fc_to_conv``: ``_fail`` at the first difference from ``reference``."""
    model = _small_imagenet_vgg()
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    channels = model.classifier[0].in_features // 49
    gen = torch.Generator().manual_seed(1)
    x224, x256 = torch.randn(2, 3, 224, 224, generator=gen), torch.randn(1, 3, 256, 256, generator=gen)
    with torch.no_grad():
        expected224 = model(x224)
        expected256 = reference(model)(x256)
    try:
        net = fc_to_conv(model)
    except Exception as err:   # the learner's code: any error, named in the message
        _fail(f"fc_to_conv(model) raised {type(err).__name__}: {err}",
              "build nn.Conv2d layers and copy into them the Linear weights, reshaped with .view(...)")
    if not isinstance(net, nn.Module):
        _fail(f"fc_to_conv returned a {type(net).__name__}, not a module",
              "return an nn.Sequential (or a module) holding model.features and the converted layers")
    if any(isinstance(m, nn.Linear) for m in net.modules()):
        _fail("the converted net still holds nn.Linear layers",
              "replace every Linear layer of model.classifier by an nn.Conv2d")
    head = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.out_channels in (4096, 10)]
    if len(head) != 3:
        _fail(f"the converted net has {len(head)} convolutions with 4096 or 10 outputs, not 3 (one per FC layer)",
              "convert all three Linear layers: 7x7 for the first, 1x1 for the other two")
    first = head[0]
    if tuple(first.kernel_size) != (7, 7):
        _fail(f"the first FC layer became a {first.kernel_size[0]}x{first.kernel_size[1]} convolution; it reads the "
              f"whole {channels} x 7 x 7 map the features give at 224x224, so it must be a 7x7 convolution",
              f"nn.Conv2d({channels}, 4096, kernel_size=7) with the weight viewed as (4096, {channels}, 7, 7)")
    for i, conv in enumerate(head[1:], 2):
        if tuple(conv.kernel_size) != (1, 1):
            _fail(f"FC layer {i} became a {conv.kernel_size[0]}x{conv.kernel_size[1]} convolution",
                  "the FC layers after the first read one 4096-vector per place: 1x1 convolutions")
    weight = linears[0].weight
    want = weight.view(4096, channels, 7, 7)
    got = first.weight.detach()
    if tuple(got.shape) == tuple(want.shape) and not torch.equal(got, want):
        if torch.equal(got, want.transpose(2, 3)):
            _fail("the 7x7 kernels are transposed (height and width swapped)",
                  "torch.flatten(x, 1) lays the map out channel, then row, then column: "
                  f"weight.view(4096, {channels}, 7, 7) with no transpose")
        if torch.equal(got, weight.view(4096, 7, 7, channels).permute(0, 3, 1, 2)):
            _fail("the weights are read as if the map had been flattened as (height, width, channels)",
                  f"PyTorch flattens (channels, height, width): weight.view(4096, {channels}, 7, 7)")
        _fail("the 7x7 convolution's weights are not the first FC layer's weights reshaped",
              f"copy linear.weight.view(4096, {channels}, 7, 7) into conv.weight")
    for i, (conv, linear) in enumerate(zip(head, linears), 1):
        if conv.bias is None:
            _fail(f"the convolution made from FC layer {i} has no bias",
                  "keep bias=True and copy linear.bias into conv.bias")
        if conv.bias.shape == linear.bias.shape and not torch.equal(conv.bias.detach(), linear.bias):
            _fail(f"the convolution made from FC layer {i} does not have the FC layer's bias",
                  "copy it: conv.bias.copy_(linear.bias) (inside torch.no_grad())")
    net.eval()
    with torch.no_grad():
        try:
            out224, out256 = net(x224), net(x256)
        except Exception as err:   # the learner's code: any error, named in the message
            _fail(f"the converted net fails on (2, 3, 224, 224) images: {type(err).__name__}: {err}",
                  "run the features, then the converted layers; no flatten and no adaptive pooling")
        try:
            unchanged = torch.allclose(model(x224), expected224)
        except Exception:          # e.g. its classifier was replaced by the convolutions
            unchanged = False
        if not unchanged:
            _fail("fc_to_conv changed the VGG it was given", "build new layers; leave model's own layers as they are")
    if tuple(out224.shape) != (2, 10, 1, 1):
        _fail(f"on 224x224 images the net gives shape {tuple(out224.shape)}, not the 1x1 score map (2, 10, 1, 1)",
              "return the map itself: no flatten at the end, no adaptive pooling before the 7x7 convolution")
    if not torch.allclose(out224.flatten(1), expected224, rtol=1e-4, atol=1e-5):
        _fail("on 224x224 images the converted net's scores differ from the VGG's",
              "keep the ReLU (and dropout) layers between the converted layers, in the classifier's order")
    if tuple(out256.shape) != tuple(expected256.shape) or not torch.allclose(out256, expected256, rtol=1e-4,
                                                                                atol=1e-5):
        _fail(f"on 256x256 images the net gives shape {tuple(out256.shape)}, not the 2x2 map "
              f"{tuple(expected256.shape)} of the reference, or other scores",
              "leave out model.avgpool: it would shrink every map to 7x7")


def _lrn_formula(a: torch.Tensor, n: int, k: float, alpha: float, beta: float, per_n: bool = False,
                 all_channels: bool = False, power: bool = True, plus_k: bool = True) -> torch.Tensor:
    """Krizhevsky's LRN computed channel by channel, or with one planted mistake (to name it)."""
    channels = a.shape[1]
    out = torch.empty_like(a)
    for i in range(channels):
        lo, hi = (0, channels - 1) if all_channels else (max(0, i - n // 2), min(channels - 1, i + n // 2))
        total = (a[:, lo:hi + 1] ** 2).sum(1) * (alpha / n if per_n else alpha)
        denom = total + k if plus_k else total
        out[:, i] = a[:, i] / (denom ** beta if power else denom)
    return out


def check_lrn(lrn: Callable[..., torch.Tensor]) -> None:
    """Check the build-it exercise ``lrn(a, n=5, k=2.0, alpha=1e-4, beta=0.75)``: LRN from the paper's formula.

    The answer must compute, for every channel ``i`` of ``a`` ``(N, C, H, W)``,
    ``b_i = a_i / (k + alpha * sum_j a_j ** 2) ** beta`` with ``j`` from ``max(0, i - n // 2)`` to
    ``min(C - 1, i + n // 2)`` (Krizhevsky et al., 2012, whose constants the paper reuses, sec. 2.1). It is called
    with the paper's constants and with others.

    Args:
        lrn: the learner's function ``(a, n, k, alpha, beta) -> b``, same shape as ``a``.
    Raises:
        ExerciseError: the answer divides alpha by n (PyTorch's convention), sums over all channels, leaves out
            beta or k, returns another shape, or computes something else.
    """
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(2, 7, 3, 3, generator=gen, dtype=torch.float64) * 40   # alpha * sum a^2 is about k
    for n, k, alpha, beta in ((5, 2.0, 1e-4, 0.75), (3, 1.0, 1e-3, 0.5)):
        call = f"lrn(a, n={n}, k={k}, alpha={alpha}, beta={beta})"
        before = a.clone()
        try:
            got = lrn(a, n=n, k=k, alpha=alpha, beta=beta)
        except Exception as err:   # the learner's code: any error, named in the message
            _fail(f"{call} raised {type(err).__name__}: {err}",
                  "give the function the arguments (a, n=5, k=2.0, alpha=1e-4, beta=0.75)")
        if not torch.equal(a, before):
            _fail(f"{call} changed its input a", "compute b in a new tensor")
        if not isinstance(got, torch.Tensor) or got.shape != a.shape:
            shown = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            _fail(f"{call} returned {shown} for an input of shape {tuple(a.shape)}",
                  "return b with the shape of a: one value per activation")
        got = got.detach().double()

        def same(**mistake: bool) -> bool:
            return torch.allclose(got, _lrn_formula(a, n, k, alpha, beta, **mistake), rtol=1e-6, atol=1e-9)

        if same():
            continue
        for mistake, what, hint in (
                (dict(per_n=True), "alpha is divided by n, as nn.LocalResponseNorm does; the paper's formula "
                 "multiplies the sum by alpha itself", "k + alpha * sum, not k + alpha / n * sum (to get the paper's "
                 "LRN from nn.LocalResponseNorm, pass alpha * n)"),
                (dict(all_channels=True), "the sum runs over all channels", "sum only the n adjacent channels: j "
                 "from max(0, i - n // 2) to min(C - 1, i + n // 2)"),
                (dict(power=False), "the denominator is not raised to the power beta", "(k + alpha * sum) ** beta"),
                (dict(plus_k=False), "k is left out of the denominator", "(k + alpha * sum) ** beta, with k = 2"),
        ):
            if same(**mistake):
                _fail(f"{call}: {what}", hint)
        _fail(f"{call} differs from b_i = a_i / (k + alpha * sum_j a_j^2) ** beta",
              "for channel i, sum a_j ** 2 over j = max(0, i - n // 2) ... min(C - 1, i + n // 2)")
    return correct("lrn computes Krizhevsky's formula, with the paper's constants and with others")
