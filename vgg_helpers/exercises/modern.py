"""Check cell of the modern VGG: the whitening layer's filters."""
from __future__ import annotations

from typing import Callable

import torch

from ..modern import ModernConfig, ModernVGG, init_whitening
from .common import correct, expect_function, fail

__all__ = ["check_whitening"]


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


# The book's version of this module's piece, for a student copy's stand-in (``references``).
REFERENCES = {"whitening_filters": _whitening_filters}
