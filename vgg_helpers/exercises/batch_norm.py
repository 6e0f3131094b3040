"""Check cells of the batch-norm chapter: recording every layer's output with forward hooks, and the recipe's
one-cycle learning-rate schedule."""
from __future__ import annotations

import math
import numbers
from typing import Callable

import torch
from torch import nn

from ..checks import describe
from ..diagnostics import activation_stats
from ..training import TrainConfig, lr_factor
from .common import correct, expect_function, fail, tiny_convnet, toy_batches

__all__ = ["check_activation_hook", "check_one_cycle"]


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
    if not expect_function(record_stds, "check_activation_hook", "record_stds(model, images)"):
        return
    model = tiny_convnet(seed=7).eval()
    images = toy_batches(seed=8, n_batches=1, batch_size=16)[0][0]
    result = record_stds(model, images)
    left = [name or "(the model)" for name, m in model.named_modules()
            if m._forward_hooks or m._forward_pre_hooks]
    if left:
        fail(f"hooks are still registered on {', '.join(left)} after record_stds returned",
             "keep the handle that register_forward_hook returns and call handle.remove() "
             "(in a finally: block, so it also happens when the forward pass fails)")
    if not isinstance(result, dict):
        fail(f"record_stds returned {type(result).__name__}, not a dict",
             "return {layer name: std}, e.g. {'features.0': 0.41, ...}")
    expected = {row["name"]: row["std"] for row in activation_stats(model, images)}
    missing = [n for n in expected if n not in result]
    extra = [n for n in result if n not in expected]
    if missing:
        kinds = sorted({type(model.get_submodule(n)).__name__ for n in missing})
        fail(f"no value for {', '.join(missing)} ({' and '.join(kinds)})",
             "hook every nn.Conv2d and every nn.Linear: isinstance(module, (nn.Conv2d, nn.Linear))")
    if extra:
        fail(f"values for layers that are not Conv2d or Linear: {', '.join(repr(n) for n in extra)}",
             "key the dict by the names from model.named_modules() of the Conv2d and Linear layers "
             "only")
    not_float = [n for n, v in result.items() if not isinstance(v, numbers.Real)]
    if not_float:
        fail(f"the value for {not_float[0]} is a {type(result[not_float[0]]).__name__}, not a float",
             "store output.std().item() in the hook")
    by_hand = _stds_by_hand(model, images)
    for name, want in expected.items():
        got = float(result[name])
        if any(math.isclose(got, by_hand[name][k], rel_tol=1e-4) for k in ("output", "population")):
            continue
        for what, wrong, hint in (
                ("input", "the std of the layer's input, not of its output",
                 "a forward hook gets (module, inputs, output): record output, not inputs[0]"),
                ("one image", "the std of the first image's output, not of the whole batch's",
                 "take the std over the whole batch, output.std(), not output[0].std()")):
            if math.isclose(got, by_hand[name][what], rel_tol=1e-4):
                fail(f"for {name} you recorded {wrong}", hint)
        fail(f"for {name} you recorded {got:.4g}; the std of its output over the batch is {want:.4g}",
             "record output.std() of each layer in a forward hook (after the layer ran)")
    return correct("record_stds records every Conv2d/Linear output's std and removes its hooks")


def _one_cycle(step: int, total: int, warmup: float = 0.2) -> float:
    """The multiplier of the peak learning rate at ``step`` of ``total`` under the book's one-cycle schedule
    (``training.lr_factor``, what ``check_one_cycle`` compares with)."""
    return lr_factor(TrainConfig(schedule="onecycle", warmup=warmup), step, total)


# The one-cycle mistakes a check can name: (what the answer computes at fraction t of the run, warm-up w; what is
# wrong; the hint).
_ONE_CYCLE_SLIPS = (
    (lambda t, w: max(0.0, 1 - t), "there is no warm-up: the factor starts at 1 and only decays",
     "for the first warmup fraction of the steps, grow linearly from 0: step / (warmup * total)"),
    (lambda t, w: t / w if t < w else max(0.0, 1 - t),
     "after the warm-up the factor is 1 - step/total, so it drops from 1 to 1 - warmup in one step",
     "decay from 1 at the end of the warm-up to 0 at the end: (1 - t) / (1 - warmup), with t = step / total"),
    (lambda t, w: t / w if t < w else 0.5 * (1 + math.cos(math.pi * (t - w) / (1 - w))),
     "the decay is a cosine; the book's one-cycle decays in a straight line",
     "after the warm-up return (1 - t) / (1 - warmup), with t = step / total"),
    (lambda t, w: 0.1 * (t / w if t < w else (1 - t) / (1 - w)),
     "the answer is the learning rate (peak 0.1 times the factor), not the factor",
     "return the multiplier of the peak learning rate: 1 at the end of the warm-up"),
)


def check_one_cycle(one_cycle: Callable[..., float]) -> None:
    """Check the build-it exercise ``one_cycle(step, total, warmup=0.2)``: the recipe's learning-rate schedule.

    The answer must give the multiplier of the peak learning rate at ``step`` (0 to ``total``) as the book's
    ``training.lr_factor`` does for ``schedule="onecycle"``: linear from 0 to 1 over the first ``warmup`` fraction
    of the steps, then linear down to 0 at the end. It is compared on several runs (100 and 7 steps; warm-ups of
    0.2, 0.5 and 0).

    Args:
        one_cycle: the learner's function ``(step, total, warmup=0.2) -> float``.
    Raises:
        ExerciseError: the answer has no warm-up, a decay that jumps or curves, returns the learning rate instead
            of the factor, or differs from ``training.lr_factor`` in another way.
    """
    if not expect_function(one_cycle, "check_one_cycle", "one_cycle(step, total, warmup=0.2)"):
        return
    points = [(step, total, w) for total, w in ((100, 0.2), (100, 0.5), (7, 0.2), (100, 0.0))
              for step in range(total + 1)]
    got = []
    for step, total, w in points:
        value = one_cycle(step, total, warmup=w)
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
            fail(f"one_cycle({step}, {total}, warmup={w}) returned {describe(value)}, not a number",
                 "return the factor as a float, e.g. step / (warmup * total) during the warm-up")
        got.append(float(value))
    want = [_one_cycle(*p) for p in points]
    if all(abs(g - e) <= 1e-6 for g, e in zip(got, want)):
        return correct("one_cycle rises linearly to 1, then falls linearly to 0 (training.lr_factor)")
    warm = [(p, g) for p, g in zip(points, got) if p[2] > 0]
    for formula, what, hint in _ONE_CYCLE_SLIPS:
        if all(abs(g - formula(s / t, w)) <= 1e-6 for (s, t, w), g in warm):
            fail(what, hint)
    for (step, total, w), g, e in zip(points, got, want):
        if abs(g - e) > 1e-6:
            fail(f"one_cycle({step}, {total}, warmup={w}) returned {g:.4g}; the one-cycle factor there is {e:.4g}",
                 "with t = step / total: t / warmup while t < warmup, then (1 - t) / (1 - warmup)")


# The book's versions of this module's pieces, for a student copy's stand-ins (``references``).
REFERENCES = {"record_stds": lambda model, images: {name: stds["output"] for name, stds
                                                     in _stds_by_hand(model, images).items()},
              "one_cycle": _one_cycle}
