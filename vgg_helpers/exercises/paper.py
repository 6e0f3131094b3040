"""Check cells of the chapter on the paper's methods: local response normalisation, the fully connected layers
as convolutions, and the paper's learning-rate rule."""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from ..models import build_vgg
from ..paper import fc_to_conv as reference
from ..training import PLATEAU_MAX_DROPS
from ..training import plateau_drops as plateau_reference
from .common import correct, expect_function, fail

__all__ = ["check_lrn", "check_fc_to_conv", "check_plateau_drops"]


def _small_imagenet_vgg(seed: int = 0) -> nn.Module:
    """A VGG-11 at 1/16 width with the paper's head (FC-4096, FC-4096, FC-10), random biases, in eval mode."""
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
    if not expect_function(fc_to_conv, "check_fc_to_conv", "fc_to_conv(model)"):
        return
    if fc_to_conv is reference:
        fail("this is vgg_helpers.paper.fc_to_conv, imported rather than written",
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
        fail(f"fc_to_conv(model) raised {type(err).__name__}: {err}",
             "build nn.Conv2d layers and copy into them the Linear weights, reshaped with .view(...)")
    if not isinstance(net, nn.Module):
        fail(f"fc_to_conv returned a {type(net).__name__}, not a module",
             "return an nn.Sequential (or a module) holding model.features and the converted layers")
    if any(isinstance(m, nn.Linear) for m in net.modules()):
        fail("the converted net still holds nn.Linear layers",
             "replace every Linear layer of model.classifier by an nn.Conv2d")
    head = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.out_channels in (4096, 10)]
    if len(head) != 3:
        fail(f"the converted net has {len(head)} convolutions with 4096 or 10 outputs, not 3 (one per FC layer)",
             "convert all three Linear layers: 7x7 for the first, 1x1 for the other two")
    first = head[0]
    if tuple(first.kernel_size) != (7, 7):
        fail(f"the first FC layer became a {first.kernel_size[0]}x{first.kernel_size[1]} convolution; it reads the "
             f"whole {channels} x 7 x 7 map the features give at 224x224, so it must be a 7x7 convolution",
             f"nn.Conv2d({channels}, 4096, kernel_size=7) with the weight viewed as (4096, {channels}, 7, 7)")
    for i, conv in enumerate(head[1:], 2):
        if tuple(conv.kernel_size) != (1, 1):
            fail(f"FC layer {i} became a {conv.kernel_size[0]}x{conv.kernel_size[1]} convolution",
                 "the FC layers after the first read one 4096-vector per place: 1x1 convolutions")
    weight = linears[0].weight
    want = weight.view(4096, channels, 7, 7)
    got = first.weight.detach()
    if tuple(got.shape) == tuple(want.shape) and not torch.equal(got, want):
        if torch.equal(got, want.transpose(2, 3)):
            fail("the 7x7 kernels are transposed (height and width swapped)",
                 "torch.flatten(x, 1) lays the map out channel, then row, then column: "
                 f"weight.view(4096, {channels}, 7, 7) with no transpose")
        if torch.equal(got, weight.view(4096, 7, 7, channels).permute(0, 3, 1, 2)):
            fail("the weights are read as if the map had been flattened as (height, width, channels)",
                 f"PyTorch flattens (channels, height, width): weight.view(4096, {channels}, 7, 7)")
        fail("the 7x7 convolution's weights are not the first FC layer's weights reshaped",
             f"copy linear.weight.view(4096, {channels}, 7, 7) into conv.weight")
    for i, (conv, linear) in enumerate(zip(head, linears), 1):
        if conv.bias is None:
            fail(f"the convolution made from FC layer {i} has no bias",
                 "keep bias=True and copy linear.bias into conv.bias")
        if conv.bias.shape == linear.bias.shape and not torch.equal(conv.bias.detach(), linear.bias):
            fail(f"the convolution made from FC layer {i} does not have the FC layer's bias",
                 "copy it: conv.bias.copy_(linear.bias) (inside torch.no_grad())")
    net.eval()
    with torch.no_grad():
        try:
            out224, out256 = net(x224), net(x256)
        except Exception as err:   # the learner's code: any error, named in the message
            fail(f"the converted net fails on (2, 3, 224, 224) images: {type(err).__name__}: {err}",
                 "run the features, then the converted layers; no flatten and no adaptive pooling")
        try:
            unchanged = torch.allclose(model(x224), expected224)
        except Exception:          # e.g. its classifier was replaced by the convolutions
            unchanged = False
        if not unchanged:
            fail("fc_to_conv changed the VGG it was given", "build new layers; leave model's own layers as they are")
    if tuple(out224.shape) != (2, 10, 1, 1):
        fail(f"on 224x224 images the net gives shape {tuple(out224.shape)}, not the 1x1 score map (2, 10, 1, 1)",
             "return the map itself: no flatten at the end, no adaptive pooling before the 7x7 convolution")
    if not torch.allclose(out224.flatten(1), expected224, rtol=1e-4, atol=1e-5):
        fail("on 224x224 images the converted net's scores differ from the VGG's",
             "keep the ReLU (and dropout) layers between the converted layers, in the classifier's order")
    if tuple(out256.shape) != tuple(expected256.shape) or not torch.allclose(out256, expected256, rtol=1e-4,
                                                                                atol=1e-5):
        fail(f"on 256x256 images the net gives shape {tuple(out256.shape)}, not the 2x2 map "
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
    if not expect_function(lrn, "check_lrn", "lrn(a, n=5, k=2.0, alpha=1e-4, beta=0.75)"):
        return
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(2, 7, 3, 3, generator=gen, dtype=torch.float64) * 40   # alpha * sum a^2 is about k
    for n, k, alpha, beta in ((5, 2.0, 1e-4, 0.75), (3, 1.0, 1e-3, 0.5)):
        call = f"lrn(a, n={n}, k={k}, alpha={alpha}, beta={beta})"
        before = a.clone()
        try:
            got = lrn(a, n=n, k=k, alpha=alpha, beta=beta)
        except Exception as err:   # the learner's code: any error, named in the message
            fail(f"{call} raised {type(err).__name__}: {err}",
                 "give the function the arguments (a, n=5, k=2.0, alpha=1e-4, beta=0.75)")
        if not torch.equal(a, before):
            fail(f"{call} changed its input a", "compute b in a new tensor")
        if not isinstance(got, torch.Tensor) or got.shape != a.shape:
            shown = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            fail(f"{call} returned {shown} for an input of shape {tuple(a.shape)}",
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
                fail(f"{call}: {what}", hint)
        fail(f"{call} differs from b_i = a_i / (k + alpha * sum_j a_j^2) ** beta",
             "for channel i, sum a_j ** 2 over j = max(0, i - n // 2) ... min(C - 1, i + n // 2)")
    return correct("lrn computes Krizhevsky's formula, with the paper's constants and with others")


def _plateau_variant(val_acc: list, patience: int, *, vs_previous: bool = False, ties_improve: bool = False,
                     no_reset: bool = False, no_cap: bool = False, not_in_a_row: bool = False, late: int = 0) -> int:
    """The paper's rule (``training.plateau_drops``) with one planted mistake, to name it."""
    best, bad, drops = -math.inf, 0, 0
    for acc in val_acc:
        if acc > best or (ties_improve and acc == best):
            best = acc
            if not not_in_a_row:
                bad = 0
        else:
            bad += 1
        if vs_previous:
            best = acc
        if bad >= patience + late and (no_cap or drops < PLATEAU_MAX_DROPS):
            drops += 1
            if not no_reset:
                bad = 0
    return drops


# (validation accuracies, patience): together they tell every planted mistake from the rule
_PLATEAU_CASES = (
    ([0.5, 0.6, 0.6, 0.6, 0.7], 2),
    ([0.5, 0.5, 0.5], 1),
    ([0.6, 0.5, 0.55, 0.58], 2),
    ([0.5, 0.4, 0.4, 0.4, 0.4], 2),
    ([0.5, 0.4, 0.6, 0.5, 0.7, 0.6], 2),
    ([0.3] + [0.2] * 8, 1),
    ([0.2, 0.3, 0.4, 0.5], 1),
    ([], 2),
)
_PLATEAU_MISTAKES = (
    (dict(vs_previous=True), "an epoch is compared with the epoch before it, not with the best accuracy so far",
     "keep the best validation accuracy so far; an epoch that does not beat it counts as one without improvement"),
    (dict(ties_improve=True), "an epoch that only equals the best accuracy so far counts as an improvement",
     "improving means beating the best so far: acc > best"),
    (dict(no_reset=True), "after a division the count of epochs without improvement is not started again, so the "
     "rate is divided again at the very next epoch", "set the count back to 0 after every division"),
    (dict(no_cap=True), f"the rate is divided more than {PLATEAU_MAX_DROPS} times",
     f"the paper divided it {PLATEAU_MAX_DROPS} times in all: stop counting divisions at {PLATEAU_MAX_DROPS}"),
    (dict(not_in_a_row=True), "epochs without improvement are counted in total, not in a row",
     "set the count back to 0 whenever an epoch beats the best so far"),
    (dict(late=-1), "the rate is divided one epoch too early (after patience - 1 epochs without improvement)",
     "divide when the count of epochs without improvement reaches patience: count >= patience"),
    (dict(late=1), "the rate is divided one epoch too late (after patience + 1 epochs without improvement)",
     "divide when the count of epochs without improvement reaches patience: count >= patience"),
)


def check_plateau_drops(plateau_drops: Callable[[list, int], int]) -> None:
    """Check the build-it exercise ``plateau_drops(val_acc, patience)``: the paper's learning-rate rule (sec. 3.1).

    The answer must return how often the rate has been divided by 10 after the epochs whose validation
    accuracies are ``val_acc``, as ``training.plateau_drops`` does: an epoch that does not beat the best accuracy so
    far counts as one without improvement; after ``patience`` of them in a row the rate is divided and the count
    starts again; at most 3 divisions in all. It is called on a few short histories.

    Args:
        plateau_drops: the learner's function ``(val_acc, patience) -> number of divisions``.
    Raises:
        ExerciseError: the answer is the package's own function, compares with the previous epoch instead of the
            best, counts a tie as an improvement, does not start the count again after a division or after an
            improvement, divides more than 3 times, divides one epoch early or late, returns the learning rate's
            factor instead of the count, changes the list it was given, or differs in another way.
    """
    if not expect_function(plateau_drops, "check_plateau_drops", "plateau_drops(val_acc, patience)"):
        return
    if plateau_drops is plateau_reference:
        fail("this is vgg_helpers.training.plateau_drops, imported rather than written",
             "write the rule yourself in a new function")
    answers = []
    for val_acc, patience in _PLATEAU_CASES:
        call = f"plateau_drops({val_acc}, patience={patience})"
        given = list(val_acc)
        try:
            got = plateau_drops(given, patience)
        except Exception as err:   # the learner's code: any error, named in the message
            fail(f"{call} raised {type(err).__name__}: {err}",
                 "loop over the accuracies, keeping the best so far, the count without improvement and the divisions")
        if given != list(val_acc):
            fail(f"{call} changed the list it was given", "read val_acc; do not sort or change it")
        answers.append(got)
    want = [plateau_reference(v, p) for v, p in _PLATEAU_CASES]
    if answers == want:
        return correct("plateau_drops follows the paper's rule: best so far, patience, 3 at most")
    if all(isinstance(a, (int, float)) and not isinstance(a, bool) and math.isclose(a, 0.1 ** w)
           for a, w in zip(answers, want)):
        fail("plateau_drops returns the learning rate's factor (0.1 ** divisions), not the number of divisions",
             "return the count of divisions; the training loop computes lr * 0.1 ** count")
    for changes, what, hint in _PLATEAU_MISTAKES:
        if answers == [_plateau_variant(v, p, **changes) for v, p in _PLATEAU_CASES]:
            fail(what, hint)
    at = next(i for i, (a, w) in enumerate(zip(answers, want)) if a != w)
    val_acc, patience = _PLATEAU_CASES[at]
    fail(f"plateau_drops({val_acc}, patience={patience}) returned {answers[at]!r}; the paper's rule divides the "
         f"rate {want[at]} time(s) there",
         "go through the epochs: beat the best so far -> count = 0; else count += 1; when count reaches patience "
         "and fewer than 3 divisions were made, divide once more and set count = 0")


# The book's version of this module's pieces, for a student copy's stand-ins (``references``); fc_to_conv and
# plateau_drops are wrapped: their checks refuse the package's own functions, passed as they are.
REFERENCES = {"lrn": lambda a, n=5, k=2.0, alpha=1e-4, beta=0.75: _lrn_formula(a, n, k, alpha, beta),
              "fc_to_conv": lambda model: reference(model),
              "plateau_drops": lambda val_acc, patience: plateau_reference(val_acc, patience)}
