"""Check cells of the modern VGG: the whitening layer's filters, and weight averaging."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..modern import ModernConfig, ModernVGG, init_whitening
from ..modern import update_average as average_reference
from .common import correct, expect_function, fail

__all__ = ["check_whitening", "check_weight_average"]


def _whitening_filters(images: torch.Tensor, k: int = 2, eps: float = 5e-4) -> torch.Tensor:
    """The whitening layer's filters, as ``modern.init_whitening`` sets them (what the check compares with)."""
    net = ModernVGG(ModernConfig(layers=["W", 8, "G"], whiten_kernel=k))
    init_whitening(net, images, eps=eps)
    return net.whiten.weight.detach().clone()


def check_whitening(whitening_filters: Callable[..., torch.Tensor]) -> None:
    """Check the build-it exercise ``whitening_filters(images, k=2, eps=5e-4)``: the whitening layer.

    The answer must return the ``2 * 3 * k * k`` filters ``(2 * 3 * k * k, 3, k, k)`` of ``modern.init_whitening``:
    the eigenvectors of the covariance of all k x k patches, largest eigenvalue first, each divided by the square
    root of its eigenvalue plus ``eps``, then the same filters negated.

    Args:
        whitening_filters: the learner's function ``(images, k, eps) -> filters``.
    Raises:
        ExerciseError: wrong shape, missing negatives, wrong order, a missing square root or ``eps``.
    """
    if not expect_function(whitening_filters, "check_whitening", "whitening_filters(images, k=2, eps=5e-4)"):
        return
    gen = torch.Generator().manual_seed(2)
    noise = torch.randn(64, 3, 12, 12, generator=gen)
    mix = torch.tensor([[1.0, 0.6, 0.3], [0.0, 0.8, 0.5], [0.0, 0.0, 0.4]])
    images = torch.einsum("dc,nchw->ndhw", mix, noise)         # correlated colours ...
    images = images + 0.7 * images.roll(1, dims=3)               # ... and neighbouring pixels
    before = images.clone()
    expected = _whitening_filters(images, k=2, eps=0.5)          # a large eps: its effect is visible
    got = whitening_filters(images, k=2, eps=0.5)
    if not torch.equal(images, before):
        fail("whitening_filters changed the images it was given", "work on copies (unfold and reshape do)")
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(expected.shape):
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        fail(f"whitening_filters returned {shape}, not a tensor of shape {tuple(expected.shape)}",
             "12 eigenvectors of a 2x2x3 patch, reshaped to (12, 3, 2, 2), then the same 12 negated: (24, 3, 2, 2)")
    got = got.detach().float()
    half = len(got) // 2
    if not torch.allclose(got[half:], -got[:half], atol=1e-5):
        fail("the second half of the filters is not the first half negated",
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
            fail("the filters come smallest eigenvalue first", "torch.linalg.eigh sorts ascending: flip both")
        lam = torch.linalg.eigvalsh(cov).flip(0)
        if torch.allclose(var, lam / (lam + 0.5) ** 2, rtol=1e-3):
            fail("each filter is divided by its eigenvalue, not by its square root",
                 "divide by torch.sqrt(eigenvalue + eps)")
        if torch.allclose(var, torch.ones_like(var), rtol=1e-3):
            fail("eps is missing: every filter's output has variance exactly 1",
                 "divide by sqrt(eigenvalue + eps): the weakest components are not blown up")
        fail("the filters differ from the principal components of the patches",
             "cov = patches.T @ patches / len(patches); eigh; filters = eigenvectors.T / sqrt(eigenvalues + eps)")
    correct("whitening_filters returns the scaled principal components and their negatives")


def _averaging_subject(seed: int) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """A small network with batch norm (its running statistics are averaged too), and an average of its state that
    differs from it in every entry."""
    with torch.random.fork_rng(devices=[]):        # leave the notebook's random state alone
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
        net.train()(torch.randn(8, 3, 6, 6))       # running statistics away from their start (0 and 1)
        average = {k: v.detach().clone() + torch.randn_like(v) for k, v in net.state_dict().items()
                   if v.is_floating_point()}
    return net, average


def check_weight_average(update_average: Callable[[dict, nn.Module, float], None]) -> None:
    """Check the build-it exercise ``update_average(average, model, decay)``: one step of weight averaging.

    For every entry of ``average`` (the floating-point entries of ``model.state_dict()``: weights, biases and the
    batch-norm running statistics), the answer must set ``average[k]`` to ``decay * average[k] + (1 - decay) *
    model[k]`` and then copy it into the network, as ``modern.update_average`` does (``train_modern`` calls it every
    5 steps). It is called on a small network with batch norm at two decays.

    Args:
        update_average: the learner's function ``(average, model, decay) -> None``, changing both in place.
    Raises:
        ExerciseError: the answer is the package's own function, swaps the two weights, does not copy the
            average into the network, copies the old average in, leaves the batch-norm statistics out, raises an
            error, or differs in another way.
    """
    if not expect_function(update_average, "check_weight_average", "update_average(average, model, decay)"):
        return
    if update_average is average_reference:
        fail("this is vgg_helpers.modern.update_average, imported rather than written",
             "write the averaging step yourself in a new function")
    for decay in (0.8, 0.3):
        call = f"update_average(average, model, decay={decay})"
        net, average = _averaging_subject(seed=4)
        old = {k: v.clone() for k, v in average.items()}
        weights = {k: v.detach().clone() for k, v in net.state_dict().items()}
        expected = {k: v.clone() for k, v in average.items()}
        check_net = _averaging_subject(seed=4)[0]
        average_reference(expected, check_net, decay)
        try:
            update_average(average, net, decay)
        except Exception as err:   # the learner's code: any error, named in the message
            fail(f"{call} raised {type(err).__name__}: {err}",
                 "loop over model.state_dict().items() and update only the names that average holds")
        state = net.state_dict()
        if set(average) != set(old) or any(not isinstance(average[k], torch.Tensor) for k in average):
            fail(f"after {call} the average holds other entries than it was given",
                 "update the tensors of average under their own names; add and remove none")

        def same(values: dict, reference: dict, keys=None) -> bool:
            return all(torch.allclose(values[k].float(), reference[k].float(), rtol=1e-5, atol=1e-6)
                       for k in (keys or reference))

        buffers = [k for k in old if "running" in k]
        if same(average, expected) and same(state, expected):
            continue
        swapped = {k: decay * weights[k] + (1 - decay) * old[k] for k in old}
        if same(average, swapped) or same(state, swapped):
            fail(f"{call}: the weights are swapped: the network gets decay, the old average 1 - decay",
                 "average[k] = decay * average[k] + (1 - decay) * model[k]: the old average keeps the weight decay")
        if same(average, expected) and same(state, weights):
            fail(f"{call} updates the average but does not copy it into the network",
                 "then copy it back: model_value.copy_(average[k]) for every entry (inside torch.no_grad())")
        if same(state, old):
            fail(f"{call} copies the old average into the network, not the new one",
                 "first move the average towards the network, then copy the new average into the network")
        if same(average, expected, [k for k in old if k not in buffers]) and same(average, old, buffers):
            fail(f"{call} leaves out the batch-norm running statistics (running_mean, running_var)",
                 "average every entry of model.state_dict() that average holds, buffers included, not only "
                 "model.parameters()")
        fail(f"{call} gives another average or other network weights than decay * average + (1 - decay) * model",
             "for each name k of average: average[k].lerp_(model_value, 1 - decay), then model_value.copy_(average[k])")
    correct("update_average moves the average towards the network, then copies it back")


# The book's version of this module's pieces, for a student copy's stand-ins (``references``); update_average is
# wrapped: its check refuses the package's own function, passed as it is.
REFERENCES = {"whitening_filters": _whitening_filters,
              "update_average": lambda average, model, decay: average_reference(average, model, decay)}
