"""The build-it checks of the paper's methods (FC -> conv, LRN from the formula, the learning-rate rule): they
accept right answers and reject each planted mistake with a message that names it."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from vgg_helpers.configs import LRN_PAPER
from vgg_helpers.exercises import ExerciseError, check_fc_to_conv, check_lrn, check_plateau_drops
from vgg_helpers.paper import fc_to_conv as reference_fc_to_conv
from vgg_helpers.training import plateau_drops as reference_plateau_drops
from tests.helpers import leaves_the_random_state_alone


# ---- FC -> conv ----

def _convert(model: nn.Module, first=None, bias: bool = True, first_kernel: int = 7, keep_relu: bool = True,
             flatten: bool = False, avgpool: bool = False) -> nn.Module:
    """A learner-style converter; the keyword arguments plant one mistake each."""
    layers: list[nn.Module] = []
    channels = model.classifier[0].in_features // 49
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    for i, linear in enumerate(linears):
        out = linear.out_features
        if i == 0:
            k, cin = (7, channels) if first_kernel == 7 else (1, channels * 49)
        else:
            k, cin = 1, linear.in_features
        conv = nn.Conv2d(cin, out, k, bias=bias)
        with torch.no_grad():
            w = linear.weight
            if i == 0 and first is not None:
                conv.weight.copy_(first(w, channels))
            else:
                conv.weight.copy_(w.view(out, cin, k, k))
            if bias:
                conv.bias.copy_(linear.bias)
        layers.append(conv)
        if i < 2:
            layers += [nn.ReLU(), nn.Dropout(0.5)] if keep_relu else [nn.Dropout(0.5)]
    stack = [model.features] + ([model.avgpool] if avgpool else []) + layers + ([nn.Flatten()] if flatten else [])
    return nn.Sequential(*stack)


def right(model: nn.Module) -> nn.Module:
    """Reference answer: features, then Conv2d(C, 4096, 7), Conv2d(4096, 4096, 1), Conv2d(4096, classes, 1)."""
    return _convert(model)


def test_fc_to_conv_accepts_right_answers(capsys):
    assert check_fc_to_conv(right) is None
    assert "correct:" in capsys.readouterr().out
    check_fc_to_conv(lambda m: reference_fc_to_conv(m).train(False))   # a wrapper around the book's own is fine


def _replace_classifier(model: nn.Module) -> nn.Module:
    net = _convert(model)
    model.classifier = nn.Sequential(*list(net.children())[1:])
    return net


@pytest.mark.parametrize("wrong, match", [
    (lambda m: _convert(m, first=lambda w, c: w.view(4096, c, 7, 7).transpose(2, 3)), "transposed"),
    (lambda m: _convert(m, first=lambda w, c: w.view(4096, 7, 7, c).permute(0, 3, 1, 2)), "height, width, channels"),
    (lambda m: _convert(m, bias=False), "has no bias"),
    (lambda m: _convert(m, first_kernel=1), "first FC layer became a 1x1 convolution"),
    (lambda m: _convert(m, keep_relu=False), "scores differ from the VGG's"),
    (lambda m: _convert(m, flatten=True), r"shape \(2, 10\)"),
    (lambda m: _convert(m, avgpool=True), "256x256"),
    (lambda m: m, "still holds nn.Linear"),
    (_replace_classifier, "changed the VGG"),
    (reference_fc_to_conv, "imported rather than written"),
    (lambda m: 1 / 0, "raised ZeroDivisionError"),
])
def test_fc_to_conv_rejects(wrong, match):
    with pytest.raises(ExerciseError, match=match):
        check_fc_to_conv(wrong)


def test_fc_to_conv_rejects_a_bias_not_copied():
    def fresh_bias(model: nn.Module) -> nn.Module:
        net = _convert(model)
        with torch.no_grad():
            net[-1].bias.zero_()
        return net

    with pytest.raises(ExerciseError, match="FC layer 3 does not have the FC layer's bias"):
        check_fc_to_conv(fresh_bias)


def test_fc_to_conv_check_leaves_the_random_state_alone():
    assert leaves_the_random_state_alone(lambda: check_fc_to_conv(right))


# ---- LRN from the formula ----

def lrn(a: torch.Tensor, n: int = 5, k: float = 2.0, alpha: float = 1e-4, beta: float = 0.75) -> torch.Tensor:
    """Reference answer: b_i = a_i / (k + alpha * sum of a_j^2 over the n channels around i) ** beta."""
    squares = nn.functional.pad(a * a, (0, 0, 0, 0, n // 2, n // 2))     # zero channels at both edges
    sums = squares.unfold(1, n, 1).sum(-1)                                # (N, C, H, W): each window's sum
    return a / (k + alpha * sums) ** beta


def test_lrn_accepts_right_answers(capsys):
    assert check_lrn(lrn) is None
    assert "correct:" in capsys.readouterr().out
    # nn.LocalResponseNorm with alpha multiplied by n is the same formula
    check_lrn(lambda a, n=5, k=2.0, alpha=1e-4, beta=0.75: nn.LocalResponseNorm(n, alpha * n, beta, k)(a))
    assert LRN_PAPER["alpha"] == 1e-4


def _all_channels(a, n=5, k=2.0, alpha=1e-4, beta=0.75):
    return a / (k + alpha * (a * a).sum(1, keepdim=True)) ** beta


def _in_place(a, n=5, k=2.0, alpha=1e-4, beta=0.75):
    out = lrn(a, n, k, alpha, beta)
    a.mul_(1.0)
    a[0, 0, 0, 0] += 1
    return out


@pytest.mark.parametrize("wrong, match", [
    (lambda a, n=5, k=2.0, alpha=1e-4, beta=0.75: nn.LocalResponseNorm(n, alpha, beta, k)(a), "divides alpha by n|"
     "alpha is divided by n"),
    (_all_channels, "sum runs over all channels"),
    (lambda a, n=5, k=2.0, alpha=1e-4, beta=0.75: lrn(a, n, k, alpha, 1.0), "not raised to the power beta"),
    (lambda a, n=5, k=2.0, alpha=1e-4, beta=0.75: lrn(a, n, 0.0, alpha, beta), "k is left out"),
    (lambda a, n=5, k=2.0, alpha=1e-4, beta=0.75: lrn(a, 5, 2.0, 1e-4, 0.75), r"n=3.*differs from"),
    (lambda a, n=5, k=2.0, alpha=1e-4, beta=0.75: lrn(a, n, k, alpha, beta).sum(1), "returned"),
    (lambda a: lrn(a), r"takes \(a\): it has no n, k, alpha, beta arguments.*def lrn\(a, n=5"),
    (lambda a, n=5, k=2.0, alpha=1e-4, beta=0.75: a.flip(9), "raised IndexError"),
    (_in_place, "changed its input"),
])
def test_lrn_rejects(wrong, match):
    with pytest.raises(ExerciseError, match=match):
        check_lrn(wrong)


# ---- chapter 7's solution cells pass their checks ----

def _solution(defines: str) -> str:
    from pathlib import Path

    import nbformat

    nb = nbformat.read(Path(__file__).resolve().parents[2] / "notebooks" / "07-paper-methods.ipynb", as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and "solution" in c.metadata.get("tags", [])
             and f"def {defines}(" in c.source]
    assert len(cells) == 1, f"expected one solution cell defining {defines}"
    after = nb.cells[nb.cells.index(cells[0]) + 1]
    assert "solution" not in after.metadata.get("tags", []) and f"check_{defines}({defines})" in after.source
    return cells[0].source


def test_the_paper_chapters_solutions_pass_their_checks(capsys):
    namespace: dict = {"torch": torch, "nn": nn}          # the chapter imported them earlier
    exec(_solution("lrn"), namespace)
    check_lrn(namespace["lrn"])
    exec(_solution("fc_to_conv"), namespace)
    check_fc_to_conv(namespace["fc_to_conv"])
    assert capsys.readouterr().out.count("correct:") == 2


# ---- the paper's learning-rate rule ----

def plateau_drops(val_acc: list, patience: int) -> int:
    """A learner's version of the rule: best so far, ``patience`` epochs in a row, at most 3 divisions."""
    best, waiting, drops = float("-inf"), 0, 0
    for acc in val_acc:
        if acc > best:
            best, waiting = acc, 0
        else:
            waiting += 1
            if waiting == patience and drops < 3:
                drops, waiting = drops + 1, 0
    return drops


def _planted(val_acc: list, patience: int, *, vs_previous: bool = False, ties: bool = False, reset: bool = True,
             cap: int = 3, in_a_row: bool = True, at: int = 0) -> int:
    """The rule written with one slip (each keyword plants one)."""
    best, waiting, drops, previous = float("-inf"), 0, 0, float("-inf")
    for acc in val_acc:
        compared = previous if vs_previous else best
        if acc > compared or (ties and acc == compared):
            best = max(best, acc)
            if in_a_row:
                waiting = 0
        else:
            waiting += 1
        previous = acc
        if waiting >= patience + at and drops < cap:
            drops += 1
            if reset:
                waiting = 0
    return drops


def test_plateau_drops_accepts_right_answers(capsys):
    assert check_plateau_drops(plateau_drops) is None
    assert "correct: plateau_drops follows the paper's rule" in capsys.readouterr().out
    check_plateau_drops(lambda val_acc, patience: _planted(val_acc, patience))     # the same rule, other code
    check_plateau_drops(lambda val_acc, patience: reference_plateau_drops(list(val_acc), patience))


@pytest.mark.parametrize("wrong, match", [
    (lambda v, p: _planted(v, p, vs_previous=True), "compared with the epoch before it"),
    (lambda v, p: _planted(v, p, ties=True), "only equals the best accuracy so far counts as an improvement"),
    (lambda v, p: _planted(v, p, reset=False), "not started again, so the rate is divided again"),
    (lambda v, p: _planted(v, p, cap=99), "divided more than 3 times"),
    (lambda v, p: _planted(v, p, in_a_row=False), "counted in total, not in a row"),
    (lambda v, p: _planted(v, p, at=-1), "one epoch too early"),
    (lambda v, p: _planted(v, p, at=1), "one epoch too late"),
    (lambda v, p: 0.1 ** plateau_drops(v, p), r"returns the learning rate's factor"),
    (lambda v, p: plateau_drops(v, p) + (len(v) == 9), r"plateau_drops\(\[0\.3, 0\.2.*returned 4.*divides the rate 3"),
    (lambda v, p: v.sort() or plateau_drops(v, p), "changed the list it was given"),
    (lambda v, p: v[10], r"raised IndexError"),
    (reference_plateau_drops, "vgg_helpers.training.plateau_drops, imported rather than written"),
])
def test_plateau_drops_rejects(wrong, match):
    with pytest.raises(ExerciseError, match=match):
        check_plateau_drops(wrong)


def test_plateau_drops_check_leaves_the_random_state_alone():
    assert leaves_the_random_state_alone(lambda: check_plateau_drops(plateau_drops))


def test_the_paper_chapters_plateau_solution_passes_its_check(capsys):
    exec(_solution("plateau_drops"), namespace := {})
    check_plateau_drops(namespace["plateau_drops"])
    assert capsys.readouterr().out.startswith("correct:")
