"""Check cells of the chapter on training fast: the test-time flip, and label smoothing."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from ..training import tta_logits as reference
from .common import correct, expect_function, fail

__all__ = ["check_tta", "check_label_smoothing"]


def _tiny_net(seed: int = 0) -> nn.Module:
    """A small network whose logits change when its input is mirrored (a check's test subject)."""
    with torch.random.fork_rng(devices=[]):        # leave the notebook's random state alone
        torch.manual_seed(seed)
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 8, 10))


def check_tta(tta_logits: Callable[[nn.Module, torch.Tensor], torch.Tensor]) -> None:
    """Check the build-it exercise ``tta_logits(model, images)``: the test-time flip.

    The answer must give, for every image, the mean of the model's logits for the image and for its mirror image
    (flipped left-right, along the width), as ``training.tta_logits(net, images, level=1)`` does.

    Args:
        tta_logits: the learner's function ``(model, images) -> logits``.
    Raises:
        ExerciseError: the answer flips the wrong axis, sums instead of averaging, averages probabilities, or
            differs from ``training.tta_logits`` in another way.
    """
    if not expect_function(tta_logits, "check_tta", "tta_logits(model, images)"):
        return
    net = _tiny_net().eval()
    gen = torch.Generator().manual_seed(1)
    images = torch.randn(5, 3, 6, 8, generator=gen)   # height 6 != width 8, so a wrong flip cannot hide
    before = images.clone()
    with torch.no_grad():
        expected = reference(net, images, 1)
        got = tta_logits(net, images)
        plain, mirror = net(images), net(images.flip(3))
        upside_down = net(images.flip(2))
    if not torch.equal(images, before):
        fail("tta_logits changed the images it was given", "flip a copy (images.flip(3) returns a new tensor)")
    if not isinstance(got, torch.Tensor):
        fail(f"tta_logits returned a {type(got).__name__}, not a tensor of logits",
             "return one (N, classes) tensor: the mean of the two forward passes")
    if tuple(got.shape) != tuple(expected.shape):
        fail(f"tta_logits returned shape {tuple(got.shape)} for 5 images and 10 classes, not {tuple(expected.shape)}",
             "average the two (N, classes) logit tensors element by element, not over the batch or the classes")
    got = got.detach().float()

    def close(other: torch.Tensor) -> bool:
        return torch.allclose(got, other, rtol=1e-4, atol=1e-5)

    if close(expected):
        return correct("tta_logits averages the logits of each image and its mirror image")
    if close(plain + mirror):
        fail("tta_logits returns the sum of the two logits, twice the average", "divide the sum by 2")
    if close(plain):
        fail("tta_logits returns the plain logits: the mirror image is not used", "add model(images.flip(3))")
    if close(mirror):
        fail("tta_logits returns only the mirror image's logits", "average them with model(images)")
    if close((plain + upside_down) / 2) or close((mirror + net(images.flip(2))) / 2):
        fail("tta_logits flips the height (dim 2): the image is turned upside down, not mirrored",
             "images are (N, C, H, W); a mirror image flips the width, the last dim: images.flip(3)")
    if close((plain + net(images.flip(2, 3))) / 2):
        fail("tta_logits flips both height and width (a half turn), not only the width",
             "flip dim 3 only: images.flip(3)")
    probs = (plain.softmax(1) + mirror.softmax(1)) / 2
    if close(probs) or close(probs.log()):
        fail("tta_logits averages probabilities (softmax), but the book averages the logits",
             "average the raw outputs of the model: (model(images) + model(images.flip(3))) / 2")
    fail("tta_logits differs from the book's test-time flip (training.tta_logits, level 1)",
         "return (model(images) + model(images.flip(3))) / 2, the model in eval mode")


def _smoothed_targets(labels: torch.Tensor, classes: int, on_true: float, on_others: float) -> torch.Tensor:
    """Target distributions with ``on_true`` on each label's class and ``on_others`` on every other class."""
    targets = torch.full((len(labels), classes), on_others, dtype=torch.float64)
    targets[torch.arange(len(labels)), labels] = on_true
    return targets


def _smoothing_mistakes(logits: torch.Tensor, labels: torch.Tensor, s: float) -> list[tuple[torch.Tensor, str, str]]:
    """The losses of the usual slips, each with what it is and the fix (to name a wrong answer)."""
    k = logits.shape[1]
    logp = logits.log_softmax(1)
    book = _smoothed_targets(labels, k, 1 - s + s / k, s / k)
    others = _smoothed_targets(labels, k, 1 - s, s / (k - 1))
    return [
        ((-(others * logp).sum(1)).mean(), "the smoothing is spread over the other classes only (smoothing / (K - 1) "
         "each)", "PyTorch and the book spread it over all K classes: (1 - smoothing) on the label, plus smoothing / "
         "K on every class, the label's included"),
        (F.cross_entropy(logits, labels), "the loss is the plain cross-entropy: the smoothing is not used",
         "mix the one-hot target with the uniform one: (1 - smoothing) * one_hot + smoothing / K"),
        ((-(book * logp).sum(1)).sum(), "the loss is summed over the batch, not averaged",
         "take the mean over the images: the learning rate was set for a mean loss"),
        ((-(_smoothed_targets(labels, k, s + (1 - s) / k, (1 - s) / k) * logp).sum(1)).mean(),
         "the two weights are swapped: the label gets smoothing, the uniform part 1 - smoothing",
         "target = (1 - smoothing) * one_hot + smoothing / K"),
        ((-(book * logits.softmax(1)).sum(1)).mean(), "the loss uses the probabilities (softmax), not their logarithm",
         "cross-entropy is -sum(target * log_softmax(logits)): use logits.log_softmax(dim=1)"),
        ((-(book * logits.log_softmax(0)).sum(1)).mean(), "log_softmax is taken over the batch (dim 0), not over "
         "the classes", "each image's classes are along dim 1: logits.log_softmax(dim=1)"),
        (((book * logp).sum(1)).mean(), "the loss has the wrong sign: it is negative, and training would make the "
         "model worse", "cross-entropy is MINUS sum(target * log p)"),
    ]


def check_label_smoothing(smoothed_cross_entropy: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
                          ) -> None:
    """Check the build-it exercise ``smoothed_cross_entropy(logits, labels, smoothing)``: label smoothing.

    The answer must return the mean over the batch of the cross-entropy between each image's predicted
    distribution (``log_softmax`` of its logits) and the smoothed target, ``(1 - smoothing)`` on the label plus
    ``smoothing / K`` on each of the K classes, as ``nn.CrossEntropyLoss(label_smoothing=smoothing)`` computes it
    (the recipe's ``label_smoothing=0.1``). It must be a tensor that gradients flow through.

    Args:
        smoothed_cross_entropy: the learner's function ``(logits, labels, smoothing) -> loss``.
    Raises:
        ExerciseError: the answer spreads the smoothing over the other classes only, ignores it, sums over the batch,
            swaps the two weights, uses probabilities instead of log-probabilities, normalises over the batch, has the
            wrong sign, returns a number gradients cannot flow through, changes its inputs, or differs in another
            way.
    """
    if not expect_function(smoothed_cross_entropy, "check_label_smoothing",
                           "smoothed_cross_entropy(logits, labels, smoothing)"):
        return
    gen = torch.Generator().manual_seed(3)
    for smoothing in (0.1, 0.3):
        logits = (torch.randn(6, 5, generator=gen, dtype=torch.float64) * 2).requires_grad_()
        labels = torch.randint(0, 5, (6,), generator=gen)
        before = logits.detach().clone(), labels.clone()
        call = f"smoothed_cross_entropy(logits, labels, smoothing={smoothing})"
        try:
            got = smoothed_cross_entropy(logits, labels, smoothing)
        except Exception as err:   # the learner's code: any error, named in the message
            fail(f"{call} raised {type(err).__name__}: {err}",
                 "build the targets with F.one_hot(labels, K), then -(targets * logits.log_softmax(1)).sum(1).mean()")
        if not (torch.equal(logits.detach(), before[0]) and torch.equal(labels, before[1])):
            fail(f"{call} changed its logits or labels", "compute the loss in new tensors")
        if not isinstance(got, torch.Tensor):
            fail(f"{call} returned {type(got).__name__}, not a tensor: training cannot take its gradient",
                 "return the loss tensor itself, without .item() or float()")
        if got.numel() != 1:
            fail(f"{call} returned shape {tuple(got.shape)}, not one number for the batch",
                 "average the per-image losses over the batch: .mean()")
        if not got.requires_grad:
            fail(f"{call} returned a loss that gradients do not flow through",
                 "compute it from the logits with torch operations, without .detach(), .item() or numpy")
        expected = F.cross_entropy(logits, labels, label_smoothing=smoothing)
        value = got.detach().double().reshape(())
        with torch.no_grad():
            if torch.allclose(value, expected, rtol=1e-5, atol=1e-7):
                continue
            for loss, what, hint in _smoothing_mistakes(logits, labels, smoothing):
                if torch.allclose(value, loss, rtol=1e-5, atol=1e-7):
                    fail(f"{call}: {what}", hint)
        fail(f"{call} is {value.item():.4f}; label smoothing gives {expected.item():.4f}",
             "loss = mean over images of -sum_k target_k * log_softmax(logits)_k, with target = (1 - smoothing) * "
             "one_hot + smoothing / K")
    return correct("smoothed_cross_entropy matches the book's label-smoothed loss at two smoothings")


def _smoothed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, smoothing: float) -> torch.Tensor:
    """The book's label-smoothed cross-entropy (what ``train`` uses, ``nn.CrossEntropyLoss(label_smoothing=...)``)."""
    return F.cross_entropy(logits, labels, label_smoothing=smoothing)


# The book's version of this module's pieces, for a student copy's stand-ins (``references``).
REFERENCES = {"tta_logits": lambda model, images: reference(model, images, 1),
              "smoothed_cross_entropy": _smoothed_cross_entropy}
