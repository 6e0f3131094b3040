"""Check cell of the batch-norm chapter: recording every layer's output with forward hooks."""
from __future__ import annotations

import math
import numbers
from typing import Callable

import torch
from torch import nn

from ..diagnostics import activation_stats
from .common import correct, expect_function, fail, tiny_convnet, toy_batches

__all__ = ["check_activation_hook"]


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


# The book's version of this module's piece, for a student copy's stand-in (``references``).
REFERENCES = {"record_stds": lambda model, images: {name: stds["output"] for name, stds
                                                     in _stds_by_hand(model, images).items()}}
