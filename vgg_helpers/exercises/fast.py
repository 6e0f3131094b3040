"""Check cell of the chapter on training fast: the test-time flip."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..training import tta_logits as reference
from .common import correct, expect_function, fail

__all__ = ["check_tta"]


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


# The book's version of this module's piece, for a student copy's stand-in (``references``).
REFERENCES = {"tta_logits": lambda model, images: reference(model, images, 1)}
