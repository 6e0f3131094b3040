"""The build-it exercises of the chapter on training fast: the test-time flip (``check_tta``) and label smoothing
(``check_label_smoothing``)."""
from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from tests.helpers import leaves_the_random_state_alone, solution_source
from vgg_helpers.exercises import ExerciseError, check_label_smoothing, check_tta


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


# ---- label smoothing ----

def smoothed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, smoothing: float) -> torch.Tensor:
    """A learner's label smoothing: (1 - s) on the label plus s / K on every class, the batch's mean."""
    k = logits.shape[1]
    targets = (1 - smoothing) * F.one_hot(labels, k) + smoothing / k
    return -(targets * logits.log_softmax(1)).sum(1).mean()


def _targets(labels: torch.Tensor, k: int, on_true: float, on_others: float) -> torch.Tensor:
    return on_others + (on_true - on_others) * F.one_hot(labels, k)


def test_label_smoothing_accepts_right_answers(capsys):
    assert check_label_smoothing(smoothed_cross_entropy) is None
    assert "correct: smoothed_cross_entropy matches" in capsys.readouterr().out
    check_label_smoothing(lambda z, y, s: F.cross_entropy(z, y, label_smoothing=s))
    check_label_smoothing(lambda z, y, s: (1 - s) * F.cross_entropy(z, y) - s * z.log_softmax(1).mean(1).mean())


def _wrong(on_true, on_others, log=True, dim=1, reduce="mean", sign=-1.0):
    def loss(z, y, s):
        k = z.shape[1]
        t = _targets(y, k, on_true(s, k), on_others(s, k))
        logp = z.log_softmax(dim) if log else z.softmax(dim)
        per_image = sign * (t * logp).sum(1)
        return per_image.mean() if reduce == "mean" else per_image.sum()
    return loss


RIGHT_TRUE, RIGHT_OTHERS = (lambda s, k: 1 - s + s / k), (lambda s, k: s / k)


@pytest.mark.parametrize("wrong, match", [
    (_wrong(lambda s, k: 1 - s, lambda s, k: s / (k - 1)), "spread over the other classes only"),
    (lambda z, y, s: F.cross_entropy(z, y), "plain cross-entropy: the smoothing is not used"),
    (_wrong(RIGHT_TRUE, RIGHT_OTHERS, reduce="sum"), "summed over the batch, not averaged"),
    (_wrong(lambda s, k: s + (1 - s) / k, lambda s, k: (1 - s) / k), "the two weights are swapped"),
    (_wrong(RIGHT_TRUE, RIGHT_OTHERS, log=False), r"uses the probabilities \(softmax\)"),
    (_wrong(RIGHT_TRUE, RIGHT_OTHERS, dim=0), r"over the batch \(dim 0\)"),
    (_wrong(RIGHT_TRUE, RIGHT_OTHERS, sign=1.0), "the wrong sign"),
    (lambda z, y, s: smoothed_cross_entropy(z, y, s).item(), "returned float, not a tensor"),
    (lambda z, y, s: smoothed_cross_entropy(z, y, s).detach(), "gradients do not flow through"),
    (lambda z, y, s: -(((1 - s) * F.one_hot(y, 5) + s / 5) * z.log_softmax(1)).sum(1), r"shape \(6,\)"),
    (lambda z, y, s: smoothed_cross_entropy(z, y, s) * 1.01, "label smoothing gives"),
    (lambda z, y, s: smoothed_cross_entropy(z, y.clamp_(max=3), s), "changed its logits or labels"),
    (lambda z, y, s: z @ z, r"raised RuntimeError"),
])
def test_label_smoothing_rejects(wrong, match):
    with pytest.raises(ExerciseError, match=match):
        check_label_smoothing(wrong)


def test_label_smoothing_check_leaves_the_random_state_alone():
    assert leaves_the_random_state_alone(lambda: check_label_smoothing(smoothed_cross_entropy))


def test_the_chapters_label_smoothing_solution_passes_its_check():
    namespace: dict = {"torch": torch}          # the chapter imported it earlier
    exec(solution_source("08-training-fast.ipynb", "smoothed_cross_entropy"), namespace)
    check_label_smoothing(namespace["smoothed_cross_entropy"])
