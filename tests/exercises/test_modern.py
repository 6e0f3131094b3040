"""The build-it exercise of the modern VGG: the whitening layer's filters (``check_whitening``)."""
from __future__ import annotations

import pytest
import torch

from tests.helpers import solution_source
from vgg_helpers.exercises import ExerciseError, check_whitening


# ---- the whitening layer ----

def _patch_cov(images: torch.Tensor, k: int, order=(0, 2, 3, 1, 4, 5)) -> torch.Tensor:
    p = images.unfold(2, k, 1).unfold(3, k, 1).permute(*order).reshape(-1, 3 * k * k)
    return p.T @ p / len(p)


def whitening_filters(images: torch.Tensor, k: int = 2, eps: float = 5e-4, *, ascending: bool = False,
                      power: float = 0.5, use_eps: bool = True, negatives: bool = True,
                      order=(0, 2, 3, 1, 4, 5)) -> torch.Tensor:
    """Reference (the keyword-only switches plant the mistakes the check must name)."""
    lam, vec = torch.linalg.eigh(_patch_cov(images, k, order))
    if not ascending:
        lam, vec = lam.flip(0), vec.flip(1)
    f = (vec.T / ((lam + (eps if use_eps else 0.0)) ** power)[:, None]).reshape(-1, 3, k, k)
    return torch.cat([f, -f]) if negatives else torch.cat([f, f])


def test_whitening_accepts_reference_and_either_sign(capsys):
    assert check_whitening(whitening_filters) is None
    assert "correct:" in capsys.readouterr().out

    def flipped_signs(images, k=2, eps=5e-4):
        f = whitening_filters(images, k, eps)[:12] * torch.tensor([1.0, -1.0] * 6).view(12, 1, 1, 1)
        return torch.cat([f, -f])
    check_whitening(flipped_signs)


@pytest.mark.parametrize("wrong, match", [
    (lambda x, k, eps: whitening_filters(x, k, eps, ascending=True), "smallest eigenvalue first"),
    (lambda x, k, eps: whitening_filters(x, k, eps, power=1.0), "divided by its eigenvalue, not by its square"),
    (lambda x, k, eps: whitening_filters(x, k, eps, use_eps=False), "eps is missing"),
    (lambda x, k, eps: whitening_filters(x, k, eps, negatives=False), "not the first half negated"),
    (lambda x, k, eps: whitening_filters(x, k, eps, order=(0, 2, 3, 4, 5, 1)), "differ from the principal"),
    (lambda x, k, eps: whitening_filters(x, k, eps)[:12], r"returned \(12, 3, 2, 2\)"),
])
def test_whitening_rejects(wrong, match):
    with pytest.raises(ExerciseError, match=match):
        check_whitening(wrong)


def test_the_chapters_solution_passes_its_check():
    namespace: dict = {"torch": torch}
    exec(solution_source("09-airbench-style-vgg.ipynb", "whitening_filters"), namespace)
    check_whitening(namespace["whitening_filters"])
