"""The build-it exercises of the modern VGG: the whitening layer's filters (``check_whitening``) and weight
averaging (``check_weight_average``)."""
from __future__ import annotations

import pytest
import torch

from tests.helpers import leaves_the_random_state_alone, solution_source
from vgg_helpers.exercises import ExerciseError, check_weight_average, check_whitening
from vgg_helpers.modern import update_average as average_reference


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


# ---- weight averaging ----

def update_average(average: dict, model: torch.nn.Module, decay: float) -> None:
    """A learner's averaging step: every entry of the average moves towards the network, then is copied into it."""
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if name in average:
                average[name] = decay * average[name] + (1 - decay) * value
                value.copy_(average[name])


def _planted(*, swap: bool = False, copy_back: bool = True, old_in: bool = False, params_only: bool = False,
             scale: float = 1.0):
    def step(average: dict, model: torch.nn.Module, decay: float) -> None:
        with torch.no_grad():
            entries = dict(model.named_parameters()) if params_only else model.state_dict()
            for name, value in entries.items():
                if name not in average:
                    continue
                old = average[name].clone()
                w = 1 - decay if swap else decay
                average[name] = (w * average[name] + (1 - w) * value) * scale
                if copy_back:
                    value.copy_(old if old_in else average[name])
    return step


def test_weight_average_accepts_right_answers(capsys):
    assert check_weight_average(update_average) is None
    assert "correct: update_average moves the average" in capsys.readouterr().out

    def with_lerp(average, model, decay):
        for name, value in model.state_dict().items():
            if name in average:
                average[name].lerp_(value, 1 - decay)
                value.copy_(average[name])
    check_weight_average(with_lerp)


@pytest.mark.parametrize("wrong, match", [
    (_planted(swap=True), "the weights are swapped"),
    (_planted(copy_back=False), "does not copy it into the network"),
    (_planted(old_in=True), "copies the old average into the network"),
    (_planted(params_only=True), "leaves out the batch-norm running statistics"),
    (_planted(scale=1.01), "gives another average or other network weights"),
    (lambda a, m, d: [a.__setitem__(k, a[k] * d + v * (1 - d)) for k, v in m.state_dict().items()],
     r"raised KeyError"),
    (lambda a, m, d: (update_average(a, m, d), a.update(extra=torch.zeros(1))), "holds other entries"),
    (average_reference, "vgg_helpers.modern.update_average, imported rather than written"),
])
def test_weight_average_rejects(wrong, match):
    with pytest.raises(ExerciseError, match=match):
        check_weight_average(wrong)


def test_weight_average_check_leaves_the_random_state_alone():
    assert leaves_the_random_state_alone(lambda: check_weight_average(update_average))


def test_the_chapters_weight_average_solution_passes_its_check():
    namespace: dict = {"torch": torch}
    exec(solution_source("09-airbench-style-vgg.ipynb", "update_average"), namespace)
    check_weight_average(namespace["update_average"])
