"""The build-it exercise of the chapter on training fast: the test-time flip (``check_tta``)."""
from __future__ import annotations

import pytest
import torch

from tests.helpers import leaves_the_random_state_alone, solution_source
from vgg_helpers.exercises import ExerciseError, check_tta


# ---- the test-time flip ----

def tta_logits(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Reference: the mean of the logits of each image and of its mirror image (width flipped)."""
    return (model(images) + model(images.flip(3))) / 2


def test_tta_accepts_reference(capsys):
    assert check_tta(tta_logits) is None
    out = capsys.readouterr().out
    assert "correct:" in out and "mirror image" in out


def test_tta_accepts_other_right_forms():
    check_tta(lambda m, x: (m(x) + m(x.flip(-1))) / 2)
    check_tta(lambda m, x: torch.stack([m(x), m(torch.flip(x, dims=[3]))]).mean(0))


def _flip_in_place(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    plain = model(images)
    images[:] = images.flip(3)
    return (plain + model(images)) / 2


@pytest.mark.parametrize("wrong, match", [
    (lambda m, x: (m(x) + m(x.flip(2))) / 2, "flips the height"),
    (lambda m, x: m(x) + m(x.flip(3)), "sum of the two logits.*divide the sum by 2"),
    (lambda m, x: m(x), "plain logits: the mirror image is not used"),
    (lambda m, x: m(x.flip(3)), "only the mirror image's logits"),
    (lambda m, x: (m(x) + m(x.flip(2, 3))) / 2, "flips both height and width"),
    (lambda m, x: (m(x).softmax(1) + m(x.flip(3)).softmax(1)) / 2, "averages probabilities"),
    (lambda m, x: ((m(x) + m(x.flip(3))) / 2).mean(0), r"shape \(10,\)"),
    (lambda m, x: ((m(x) + m(x.flip(3))) / 2).tolist(), "returned a list"),
    (_flip_in_place, "changed the images"),
    (lambda m, x: (m(x) + m(x.flip(3))) / 3, "differs from the book.s test-time flip"),
])
def test_tta_rejects(wrong, match):
    with pytest.raises(ExerciseError, match=match):
        check_tta(wrong)


def test_tta_leaves_the_random_state_alone():
    assert leaves_the_random_state_alone(lambda: check_tta(tta_logits))


def test_the_chapters_solution_passes_its_check():
    namespace: dict = {"torch": torch}          # the chapter imported it earlier
    exec(solution_source("08-training-fast.ipynb", "tta_logits"), namespace)
    check_tta(namespace["tta_logits"])
