"""The paper's own training and testing methods (sec. 3.1-3.2), which a first implementation skips.

* Training with scale jittering (sec. 3.1): every image is rescaled so that its smaller side is its own
  S, drawn from [S_min, S_max], then a random crop of the network's input size is taken and flipped at random:
  ``rescale``, ``scale_jitter`` and ``ScaleJitter``.
* Dense evaluation (sec. 3.2): the fully connected layers become convolutions (the first a 7x7 one, the others
  1x1), so the net runs on a whole image of any size and gives a map of class scores: ``fc_to_conv``,
  ``FullyConvVGG``, ``dense_evaluate``.
* Multi-crop evaluation (sec. 3.2, 4.3): a regular grid of crops and their mirror images, at several scales,
  with the soft-max outputs averaged: ``crop_positions``, ``multi_crop_evaluate``; and the two combined,
  ``combine``. ``measure_test_methods`` measures every way of testing (``TEST_METHODS``) on the same images.
* Pre-initialisation (sec. 3.1): a deeper net starts from a trained shallower one, ``init_from_shallow``.

The paper's learning-rate schedule (divide by 10 when the validation accuracy stops improving) is the
``"plateau"`` schedule of ``vgg_helpers.training.TrainConfig``.

On CIFAR-10 the same methods work at a smaller scale: train on 32x32 crops of images rescaled to S in [32, 48],
test a net built for 32x32 inputs on images rescaled to Q = 40 or 48.
"""
from __future__ import annotations

import contextlib
import copy
import time
from typing import Iterator, Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .checks import describe, flag, whole_number
from .models import check_module

__all__ = ["rescale", "scale_jitter", "ScaleJitter", "FullyConvVGG", "fc_to_conv", "dense_evaluate",
           "crop_positions", "multi_crop_evaluate", "combine", "TEST_METHODS", "measure_test_methods",
           "init_from_shallow"]


def _check_batch(images: object, where: str) -> torch.Tensor:
    """Refuse anything but a batch of images ``(N, C, H, W)``, naming the function."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{where} expects a tensor of images shaped (N, C, H, W); got {describe(images)}.")
    if images.dim() != 4:
        fix = " For one image, add the batch dimension: images.unsqueeze(0)." if images.dim() == 3 else ""
        raise ValueError(f"{where} expects a batch of images shaped (N, C, H, W); got shape "
                         f"{tuple(images.shape)}.{fix}")
    if not (images.dtype == torch.uint8 or images.is_floating_point()):
        raise TypeError(f"{where} expects uint8 or floating-point images; got {images.dtype}.")
    if min(images.shape[-2:]) < 1:
        raise ValueError(f"{where} expects images of at least 1x1 pixels; got shape {tuple(images.shape)}.")
    return images


def _resized(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear resize (antialiased when shrinking) that keeps the dtype; uint8 values are rounded and clipped."""
    if tuple(images.shape[-2:]) == (height, width):
        return images
    x = images.float() if images.dtype == torch.uint8 else images
    x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return x.round().clamp(0, 255).to(torch.uint8) if images.dtype == torch.uint8 else x


def _side_sizes(h: int, w: int, scale: int) -> tuple[int, int]:
    """Height and width of an ``h`` x ``w`` image rescaled isotropically so that its smaller side is ``scale``."""
    if h <= w:
        return scale, max(scale, round(w * scale / h))
    return max(scale, round(h * scale / w)), scale


def rescale(images: torch.Tensor, scale: int) -> torch.Tensor:
    """Rescale images isotropically so that their smaller side is ``scale`` (the paper's S or Q, sec. 3.1-3.2).

    Args:
        images: ``(N, C, H, W)``, uint8 or floating point.
        scale: the new smaller side, in pixels.
    Returns:
        The rescaled images, same dtype (bilinear; antialiased when shrinking).
    Raises:
        TypeError: ``images`` is not a uint8 or float tensor, or ``scale`` not a whole number.
        ValueError: ``images`` is not 4-D, or ``scale`` < 1.
    """
    images = _check_batch(images, "rescale")
    scale = whole_number("scale", scale, 1, "the new smaller side, e.g. 40 for CIFAR-10 images")
    return _resized(images, *_side_sizes(images.shape[-2], images.shape[-1], scale))


def _float_batch(images: object, where: str) -> torch.Tensor:
    """A batch of floating-point images, as a network takes them; uint8 images are refused with the fix."""
    images = _check_batch(images, where)
    if not images.is_floating_point():
        raise TypeError(f"{where} runs a network, which needs floating-point images normalised as in training; got "
                        f"{images.dtype}. Normalise them first, e.g. with TensorLoader.normalize.")
    return images


def _jitter_args(s_min: int, s_max: int, crop: int) -> tuple[int, int, int]:
    s_min = whole_number("s_min", s_min, 1, "the smallest training scale, e.g. 32 for CIFAR-10 or 256")
    s_max = whole_number("s_max", s_max, 1, "the largest training scale, e.g. 48 for CIFAR-10 or 512")
    crop = whole_number("crop", crop, 1, "the network's input size, e.g. 32 or 224")
    if s_min > s_max:
        raise ValueError(f"s_min must be at most s_max (S is drawn from [s_min, s_max]); got s_min={s_min} > "
                         f"s_max={s_max}. Swap them, or pass s_min == s_max for one fixed scale.")
    if crop > s_min:
        raise ValueError(f"crop={crop} is larger than s_min={s_min}: a {crop}x{crop} crop needs a rescaled image "
                         f"whose smaller side is at least {crop} (the paper: S >= 224 for 224 crops). Use "
                         f"s_min >= {crop}.")
    return s_min, s_max, crop


def scale_jitter(images: torch.Tensor, s_min: int, s_max: int, crop: int,
                 generator: Optional[torch.Generator] = None, flip: bool = True,
                 return_params: bool = False) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Training-time scale jittering (sec. 3.1): per image, rescale to S ~ U{s_min..s_max}, random crop, random flip.

    Each image gets its own whole-number S (its smaller side after an isotropic rescale), drawn uniformly from
    ``s_min`` to ``s_max`` inclusive; then a ``crop`` x ``crop`` window at a uniformly random position is cut out,
    and mirrored left-right with probability 1/2. ``s_min == s_max`` is the paper's single-scale training.

    Args:
        images: ``(N, C, H, W)``, uint8 or floating point (the output keeps the dtype).
        s_min: the smallest S, in pixels (>= ``crop``).
        s_max: the largest S, in pixels (>= ``s_min``).
        crop: the side of the square crop, the network's input size.
        generator: the random source (``torch.Generator``, on the CPU); ``None``: torch's global one.
        flip: mirror each crop with probability 1/2.
        return_params: also return what was drawn.
    Returns:
        The crops ``(N, C, crop, crop)``; with ``return_params``, ``(crops, params)`` where ``params`` holds
        int64 tensors of shape ``(N,)``: ``scale`` (S), ``top`` and ``left`` (the crop's corner in the rescaled
        image) and ``flip`` (bool).
    Raises:
        TypeError: ``images`` is not a uint8 or float tensor, a size is not a whole number, or ``generator`` is
            not a ``torch.Generator``.
        ValueError: ``images`` is not 4-D, ``s_min > s_max``, or ``crop > s_min``.

    Example:
        >>> x = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
        >>> scale_jitter(x, 32, 48, 32, torch.Generator().manual_seed(0)).shape
        torch.Size([4, 3, 32, 32])
    """
    images = _check_batch(images, "scale_jitter")
    s_min, s_max, crop = _jitter_args(s_min, s_max, crop)
    flip = flag("flip", flip)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None; got {describe(generator)}. For a seed, pass "
                        "torch.Generator().manual_seed(seed), or use ScaleJitter(s_min, s_max, crop, seed=seed).")
    n, _, h, w = images.shape
    scales = torch.randint(s_min, s_max + 1, (n,), generator=generator)
    u = torch.rand(n, 2, generator=generator, dtype=torch.float64)       # crop position, as fractions
    flips = (torch.rand(n, generator=generator) < 0.5) if flip else torch.zeros(n, dtype=torch.bool)
    out = images.new_empty((n, images.shape[1], crop, crop))
    tops, lefts = torch.empty(n, dtype=torch.int64), torch.empty(n, dtype=torch.int64)
    for s in scales.unique().tolist():            # images that share an S are rescaled together
        idx = (scales == s).nonzero().flatten()
        big = _resized(images[idx.to(images.device)], *_side_sizes(h, w, s))
        bh, bw = big.shape[-2:]
        top = (u[idx, 0] * (bh - crop + 1)).long().clamp(max=bh - crop)
        left = (u[idx, 1] * (bw - crop + 1)).long().clamp(max=bw - crop)
        for j, i in enumerate(idx.tolist()):
            piece = big[j, :, top[j]:top[j] + crop, left[j]:left[j] + crop]
            out[i] = piece.flip(-1) if flips[i] else piece
        tops[idx], lefts[idx] = top, left
    if return_params:
        return out, {"scale": scales, "top": tops, "left": lefts, "flip": flips}
    return out


class ScaleJitter:
    """Scale jittering as a batch transform with its own seeded random source (see ``scale_jitter``).

    Args:
        s_min: the smallest training scale S.
        s_max: the largest training scale S.
        crop: the side of the crops, the network's input size.
        seed: seeds the transform's generator, so a run draws the same scales and crops again.
        flip: mirror each crop with probability 1/2.
    Raises:
        ValueError: ``s_min > s_max`` or ``crop > s_min`` (and the checks of ``scale_jitter``).

    Example:
        >>> jitter = ScaleJitter(32, 48, crop=32, seed=0)
        >>> jitter(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(self, s_min: int, s_max: int, crop: int, seed: int = 0, flip: bool = True) -> None:
        self.s_min, self.s_max, self.crop = _jitter_args(s_min, s_max, crop)
        self.flip = flag("flip", flip)
        self.seed = whole_number("seed", seed, 0)
        self.generator = torch.Generator().manual_seed(self.seed)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Jitter one batch ``(N, C, H, W)`` -> ``(N, C, crop, crop)``."""
        return scale_jitter(images, self.s_min, self.s_max, self.crop, self.generator, self.flip)

    def __repr__(self) -> str:
        return f"ScaleJitter(s_min={self.s_min}, s_max={self.s_max}, crop={self.crop}, seed={self.seed})"


# ---- dense evaluation: the fully connected layers as convolutions ----


class FullyConvVGG(nn.Module):
    """A VGG whose fully connected layers are convolutions: any image size in, a class score map out.

    Built by ``fc_to_conv``. ``features`` is the conv stack; ``classifier`` holds the converted layers (the first
    FC layer as a ``side`` x ``side`` convolution, the others as 1x1 convolutions, with the same ReLU and
    dropout layers between them). There is no adaptive pooling: a larger image gives a larger map.

    Args:
        features: the conv stack (copied from the VGG).
        classifier: the converted head.
        min_size: the smallest input side that leaves a map of at least ``side`` x ``side`` before the head.
    """

    def __init__(self, features: nn.Module, classifier: nn.Sequential, min_size: int) -> None:
        super().__init__()
        self.features = features
        self.classifier = classifier
        self.min_size = min_size
        convs = [m for m in features.modules() if isinstance(m, nn.Conv2d)]
        self.in_channels = convs[0].in_channels if convs else None     # what the images must have

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``(N, 3, H, W)`` -> class score map ``(N, classes, h, w)``; 1x1 at the net's own input size."""
        if x.dim() != 4 or min(x.shape[-2:]) < self.min_size:
            raise ValueError(f"FullyConvVGG expects images (N, 3, H, W) with both sides at least {self.min_size} "
                             f"(the size the net was trained at); got shape {tuple(x.shape)}.")
        if self.in_channels is not None and x.shape[1] != self.in_channels:
            raise ValueError(f"FullyConvVGG expects images with {self.in_channels} channels, as the net was trained "
                             f"on; got shape {tuple(x.shape)}. Check the channel order is (N, C, H, W).")
        return self.classifier(self.features(x))


def _last_conv_channels(features: nn.Module) -> int:
    convs = [m for m in features.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("the model's features stack has no Conv2d layer: pass a VGG from build_vgg.")
    return convs[-1].out_channels


def _linear_to_conv(linear: nn.Linear, in_channels: int, side: int) -> nn.Conv2d:
    """The convolution that computes ``linear`` on a flattened ``(in_channels, side, side)`` map, at each place."""
    conv = nn.Conv2d(in_channels, linear.out_features, kernel_size=side, bias=linear.bias is not None,
                     device=linear.weight.device, dtype=linear.weight.dtype)
    with torch.no_grad():
        # torch.flatten(x, 1) lays a (C, H, W) map out channel by channel, row by row: the same order as view.
        conv.weight.copy_(linear.weight.view(linear.out_features, in_channels, side, side))
        if linear.bias is not None:
            conv.bias.copy_(linear.bias)
    return conv


def fc_to_conv(model: nn.Module, ceil_mode: bool = True) -> FullyConvVGG:
    """Turn a VGG's fully connected layers into convolutions, as the paper does for dense evaluation (sec. 3.2).

    The first FC layer reads the ``C x side x side`` map the features give at the net's input size (512 x 7 x 7
    at 224x224); it becomes a ``Conv2d(C, out, kernel_size=side)`` with the weight matrix reshaped to
    ``(out, C, side, side)``. Every later FC layer becomes a 1x1 convolution. Biases are copied; ReLU, dropout
    (and a final soft-max over the classes) are kept. On an input of the net's own size the score map is 1x1
    and equals the VGG's output; on a larger one it holds a score vector for every window the net can see.

    The max-pools of the copied features round their output sizes up (``ceil_mode``), as Caffe's pooling layers
    do: an image whose side is not a multiple of the total stride (Q = 48 for a net of five pools) then loses no
    row or column of any feature map; the last window of a pool is cut short instead. At sides that are
    multiples of the stride (the net's own input size, 224 or 32, and 256, 384, 512) both roundings agree.

    Args:
        model: a VGG from ``build_vgg`` (imagenet or cifar head), or any module with a conv ``features`` stack
            and an ``nn.Sequential`` ``classifier`` of Linear / ReLU / Dropout / Softmax layers.
        ceil_mode: round the pools' output sizes up (default); ``False`` keeps PyTorch's rounding down, which
            drops the last row and column of a feature map of odd side (at Q = 48: a 3x3 map pooled to 1x1).
    Returns:
        A ``FullyConvVGG`` with copies of the weights, in the model's training / eval mode.
    Raises:
        TypeError: ``model`` has no ``features`` and ``classifier``.
        ValueError: the classifier holds another kind of layer, or its first layer's inputs are not
            ``channels x side x side`` of the last conv's channels.
    """
    features, classifier = getattr(model, "features", None), getattr(model, "classifier", None)
    if isinstance(features, nn.Module) and isinstance(classifier, nn.Linear):
        raise TypeError(f"fc_to_conv converts the fully connected head of a VGG from build_vgg; this "
                        f"{type(model).__name__} pools its features globally before one Linear layer (as "
                        "build_modern_vgg's nets do), so it already takes images of any size and has no head to "
                        "convert. Test it with multi_crop_evaluate, or run it on the whole images.")
    if not isinstance(features, nn.Module) or not isinstance(classifier, nn.Sequential):
        raise TypeError(f"fc_to_conv expects a VGG from build_vgg (with .features and .classifier); got "
                        f"{type(model).__name__}.")
    channels = _last_conv_channels(features)
    layers: list[nn.Module] = []
    in_channels, side = channels, None
    for layer in classifier:
        if isinstance(layer, nn.Linear):
            if side is None:                                 # the first FC layer: side x side kernel
                side = round((layer.in_features / channels) ** 0.5)
                if channels * side * side != layer.in_features:
                    raise ValueError(f"the first Linear layer takes {layer.in_features} inputs, which is not "
                                     f"{channels} channels x side x side: fc_to_conv needs the VGG's own head.")
                layers.append(_linear_to_conv(layer, channels, side))
            else:
                layers.append(_linear_to_conv(layer, in_channels, 1))
            in_channels = layer.out_features
        elif isinstance(layer, (nn.ReLU, nn.Dropout)):
            layers.append(copy.deepcopy(layer))
        elif isinstance(layer, nn.Softmax):
            layers.append(nn.Softmax(dim=1))                 # over the classes, at every place of the map
        else:
            raise ValueError(f"fc_to_conv converts Linear, ReLU, Dropout and Softmax layers; the classifier holds "
                             f"a {type(layer).__name__}.")
    if side is None:
        raise ValueError("the model's classifier has no Linear layer: nothing to convert.")
    pools = sum(isinstance(m, nn.MaxPool2d) for m in features.modules())
    ceil_mode = flag("ceil_mode", ceil_mode)
    copied = copy.deepcopy(features)
    for m in copied.modules():
        if isinstance(m, nn.MaxPool2d):
            m.ceil_mode = ceil_mode
    net = FullyConvVGG(copied, nn.Sequential(*layers), min_size=side * 2 ** pools)
    return net.train(model.training)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Run the block with ``model`` in eval mode and without gradients; restore its mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _scales(scales: Optional[Sequence[int]], name: str = "scales", none_ok: bool = True) -> list[Optional[int]]:
    """The test scales Q as a list of whole numbers (``[None]``: the images as they are, where ``none_ok``)."""
    if scales is None and none_ok:
        return [None]
    expected = f"{name} must be a non-empty list of test scales Q, e.g. [32, 40, 48]"
    if isinstance(scales, (str, bytes)) or not isinstance(scales, Sequence):
        one = f" For one scale, write {name}=[{scales!r}]." if isinstance(scales, int) else ""
        raise TypeError(f"{expected}; got {describe(scales)}.{one}")
    if not len(scales):
        raise ValueError(f"{expected}; got {scales!r}.")
    return [whole_number(name, q, 1, "a test scale Q in pixels") for q in scales]


def dense_evaluate(conv_model: nn.Module, images: torch.Tensor, flip: bool = True,
                   scales: Optional[Sequence[int]] = None) -> torch.Tensor:
    """Dense evaluation (sec. 3.2): class posteriors of whole images from a fully convolutional net.

    For each image (and, with ``flip``, its mirror image), at each test scale Q: the net gives a class score map;
    the scores are averaged over the map's positions (the paper's "spatially averaged (sum-pooled)" map, a sum
    and a mean differing only by a constant factor before the soft-max), and the soft-max turns the averaged
    scores into posteriors. The posteriors of the image and its mirror image, and of every scale, are averaged
    (sec. 3.2 averages the flipped image's soft-max posteriors; sec. 4.2 those of several scales).

    Args:
        conv_model: a fully convolutional net whose output is a score map ``(N, classes, h, w)``, e.g.
            ``fc_to_conv(model)`` (a net built with ``softmax=True`` is refused: its map holds probabilities).
        images: ``(N, 3, H, W)`` floating-point images, normalised as in training.
        flip: also evaluate the mirror images.
        scales: test scales Q; each rescales the images so that their smaller side is Q first (``rescale``).
            ``None``: the images as they are.
    Returns:
        Class posteriors ``(N, classes)``, each row summing to 1.
    Raises:
        TypeError: ``conv_model`` is not a network, or ``images`` not floating-point images.
        ValueError: the net ends in a soft-max, its output is not a 4-D map, ``scales`` is empty or a scale is
            smaller than the net's input size.
    """
    check_module(conv_model, "dense_evaluate")
    images = _float_batch(images, "dense_evaluate")
    flip = flag("flip", flip)
    qs, min_size = _scales(scales), getattr(conv_model, "min_size", 1)
    if any(q is not None and q < min_size for q in qs):
        raise ValueError(f"scales must be at least {min_size}, the smallest image side the net takes (its own input "
                         f"size); got {list(scales)}.")
    last = list(conv_model.modules())[-1]
    if isinstance(last, nn.Softmax):
        raise ValueError("dense_evaluate averages class scores before the soft-max, but this net already ends in "
                         "nn.Softmax: convert a VGG built with softmax=False.")
    posteriors = []
    with _eval_mode(conv_model):
        for q in qs:
            x = images if q is None else rescale(images, q)
            for view in ([x, x.flip(-1)] if flip else [x]):
                scores = conv_model(view)
                if scores.dim() != 4:
                    raise ValueError(f"dense_evaluate needs a class score map (N, classes, h, w) from the net; got "
                                     f"shape {tuple(scores.shape)}. Convert the VGG with fc_to_conv first.")
                posteriors.append(scores.float().mean(dim=(2, 3)).softmax(dim=1))
    return torch.stack(posteriors).mean(0)


# ---- multi-crop evaluation ----


def crop_positions(size: int, crop: int, grid: int) -> list[int]:
    """Distinct offsets of up to ``grid`` crops of side ``crop`` spread evenly over ``size`` pixels, first and last
    at the edges.

    Args:
        size: the image side, in pixels.
        crop: the crop side (at most ``size``).
        grid: crops per side (the paper: 5).
    Returns:
        Increasing offsets from 0 to ``size - crop`` (rounded), each once: ``grid`` of them when the image has room,
        fewer when rounding would repeat one (a single ``[0]`` when the crop is the whole side: ``size == crop``).
    Raises:
        ValueError: ``crop > size`` or ``grid`` < 1.

    Example:
        >>> crop_positions(40, 32, 3)
        [0, 4, 8]
        >>> crop_positions(32, 32, 3)
        [0]
    """
    size = whole_number("size", size, 1)
    crop = whole_number("crop", crop, 1, fix=f" It must be at most the image side, {size}.", maximum=size)
    grid = whole_number("grid", grid, 1, "crops per side, e.g. 5 as in the paper")
    if grid == 1:
        return [(size - crop) // 2]
    return sorted({round(i * (size - crop) / (grid - 1)) for i in range(grid)})


def multi_crop_evaluate(model: nn.Module, images: torch.Tensor, crop: Optional[int] = None, grid: int = 5,
                        flip: bool = True, scales: Optional[Sequence[int]] = None) -> torch.Tensor:
    """Multi-crop evaluation (sec. 3.2, 4.3): the mean soft-max output over a grid of crops, flips and scales.

    The paper takes, at each of three scales, a 5 x 5 regular grid of 224x224 crops and their mirror images
    (50 crops per scale, 150 in all) and averages the soft-max outputs. Here: at each test scale Q (the images
    rescaled so their smaller side is Q), the crops of side ``crop`` at the distinct ``crop_positions`` (up to
    ``grid`` x ``grid``), and with ``flip`` their mirror images, each run through ``model`` once; their posteriors
    are averaged at each scale, and the scales' averages are averaged (every scale counts the same, as the
    paper's 50 crops per scale do). A scale where the crop is the whole image (Q = 32 for a 32x32 net) takes one
    crop and its mirror image, not the same crop ``grid ** 2`` times.
    On CIFAR-10: a net built for 32x32, ``scales=[32, 48, 64]``, ``crop=32``.

    Args:
        model: a classifier of ``crop`` x ``crop`` images returning logits ``(N, classes)`` (e.g. a VGG).
        images: ``(N, 3, H, W)`` floating-point images, normalised as in training.
        crop: the crop side; default the model's ``input_size`` (or the images' smaller side).
        grid: crops per side at each scale.
        flip: also evaluate every crop's mirror image.
        scales: test scales Q; ``None``: the images as they are.
    Returns:
        Class posteriors ``(N, classes)``: at most ``grid ** 2 * (2 if flip else 1) * len(scales)`` network passes,
        one per distinct crop and flip.
    Raises:
        TypeError: ``model`` is not a network, or ``images`` not floating-point images.
        ValueError: a crop larger than a rescaled image, ``grid`` < 1, ``scales`` empty, or the model gives no
            ``(N, classes)`` scores.
    """
    check_module(model, "multi_crop_evaluate")
    images = _float_batch(images, "multi_crop_evaluate")
    flip = flag("flip", flip)
    if crop is None:
        crop = getattr(model, "input_size", None) or min(images.shape[-2:])
    crop = whole_number("crop", crop, 1, "the model's input size, e.g. 32")
    per_scale = []
    with _eval_mode(model):
        for q in _scales(scales):
            x = images if q is None else rescale(images, q)
            h, w = x.shape[-2:]
            if crop > min(h, w):
                raise ValueError(f"crop={crop} is larger than the {h}x{w} images" + (f" at scale {q}" if q else "")
                                 + f": use test scales of at least {crop}.")
            posteriors = []
            for top in crop_positions(h, crop, grid):
                for left in crop_positions(w, crop, grid):
                    piece = x[:, :, top:top + crop, left:left + crop]
                    for view in ([piece, piece.flip(-1)] if flip else [piece]):
                        scores = model(view)
                        if scores.dim() != 2:
                            raise ValueError(f"multi_crop_evaluate needs class scores (N, classes) from the model; "
                                             f"got shape {tuple(scores.shape)}. Pass the VGG itself (a net from "
                                             "fc_to_conv gives score maps: evaluate it with dense_evaluate).")
                        posteriors.append(scores.float().softmax(dim=1))
            per_scale.append(torch.stack(posteriors).mean(0))
    return torch.stack(per_scale).mean(0)


def combine(*posteriors: torch.Tensor) -> torch.Tensor:
    """Combine evaluations by averaging their soft-max outputs (Table 5's "multi-crop & dense", sec. 4.3).

    Args:
        *posteriors: two or more ``(N, classes)`` tensors of class posteriors, e.g. from ``dense_evaluate`` and
            ``multi_crop_evaluate`` (the same images in the same order).
    Returns:
        Their element-wise mean, ``(N, classes)``.
    Raises:
        TypeError: an argument is not a tensor.
        ValueError: fewer than two tensors, or tensors of different shapes.
    """
    if len(posteriors) == 1 and isinstance(posteriors[0], (list, tuple)):
        raise TypeError("combine takes the posteriors as separate arguments, combine(dense, crops); to combine a "
                        "list of them, unpack it: combine(*posteriors).")
    for i, p in enumerate(posteriors):
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"combine averages tensors of class posteriors (N, classes); argument {i + 1} is "
                            f"{describe(p)}. Pass what dense_evaluate or multi_crop_evaluate returned.")
    if len(posteriors) < 2:
        raise ValueError(f"combine averages two or more evaluations' posteriors, e.g. combine(dense, crops); got "
                         f"{len(posteriors)}.")
    shapes = {tuple(p.shape) for p in posteriors}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"combine needs posteriors of one shape (N, classes), for the same images; got shapes "
                         f"{sorted(shapes)}.")
    return torch.stack([p.float() for p in posteriors]).mean(0)


# ---- every way of testing, measured on the same images (sec. 3.2, Table 5) ----

# name -> what it is, in the order the chapter's table shows them
TEST_METHODS = {
    "one view": "the 32x32 test image, no flip (what the book did so far)",
    "dense, Q=48": "dense evaluation at the middle scale Q = 48, image and its mirror image (Table 3's setting)",
    "dense, 3 scales": "dense evaluation at Q = 32, 48, 64, with flips (Table 5, 'dense')",
    "multi-crop, 3 scales": "a grid of 32x32 crops and their mirror images at Q = 32, 48, 64 (Table 5, 'multi-crop')",
    "dense + multi-crop": "the two posteriors averaged (Table 5's last rows)",
}


def _posteriors_in_batches(fn, images: torch.Tensor, batch: int = 250) -> torch.Tensor:
    return torch.cat([fn(images[i:i + batch]) for i in range(0, len(images), batch)])


class _CountedPasses(nn.Module):
    """Runs ``net`` and counts the images it was run on: passes per image = ``images`` / test images."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net, self.images = net, 0
        self.train(net.training)                     # the wrapped net's mode, which _eval_mode restores

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.images += len(x)
        return self.net(x)


def measure_test_methods(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                         test_scales: Sequence[int] = (32, 48, 64), crop_grid: int = 3) -> dict:
    """Accuracy and cost of every way of testing in ``TEST_METHODS`` on the same test images.

    Args:
        model: a trained VGG for 32x32 images (logits out).
        images: normalised float test images ``(N, 3, 32, 32)``.
        labels: their classes ``(N,)``.
        test_scales: the test scales Q (S_min, the middle and S_max, as the paper's Table 5 does).
        crop_grid: crops per side at each Q (the paper: 5).
    Returns:
        ``{method: {"acc": fraction, "seconds": evaluation time, "views": network passes per image}}``; the
        passes are counted as they are made (a repeated crop is never run: ``crop_positions``); "dense +
        multi-crop" reuses the two posteriors (its seconds and passes are their sums).
    Raises:
        TypeError: ``model`` is not a VGG, ``images`` not floating-point images, ``labels`` not a tensor.
        ValueError: no images, ``labels`` not one per image, ``test_scales`` empty, ``crop_grid`` < 1.
    """
    check_module(model, "measure_test_methods")
    images = _float_batch(images, "measure_test_methods")
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels must be a tensor of class indices (N,); got {describe(labels)}. Convert a list "
                        "with torch.tensor(labels).")
    if len(images) == 0:
        raise ValueError(f"measure_test_methods needs at least one test image; got shape {tuple(images.shape)}.")
    if tuple(labels.shape) != (len(images),):
        raise ValueError(f"labels must hold one class per image, shape ({len(images)},) for {len(images)} images; "
                         f"got shape {tuple(labels.shape)}. Pass the labels of the same test images.")
    qs = _scales(test_scales, "test_scales", none_ok=False)
    if min(qs) < 32:
        raise ValueError(f"test_scales must be at least 32, the net's input size (the crops are 32x32); got {qs}.")
    grid = whole_number("crop_grid", crop_grid, 1, "crops per side, e.g. 5 as in the paper")
    model.eval()
    net, conv = _CountedPasses(model), _CountedPasses(fc_to_conv(model).eval())
    runs = {
        "one view": (net, lambda x: net(x).softmax(1)),
        "dense, Q=48": (conv, lambda x: dense_evaluate(conv, x, flip=True, scales=[qs[len(qs) // 2]])),
        "dense, 3 scales": (conv, lambda x: dense_evaluate(conv, x, flip=True, scales=qs)),
        "multi-crop, 3 scales": (net, lambda x: multi_crop_evaluate(net, x, crop=32, grid=grid, flip=True,
                                                                    scales=qs)),
    }
    out, posts = {}, {}
    with torch.no_grad():
        for name, (counted, fn) in runs.items():
            counted.images = 0
            t0 = time.perf_counter()
            posts[name] = _posteriors_in_batches(fn, images)
            out[name] = {"acc": (posts[name].argmax(1) == labels).float().mean().item(),
                         "seconds": time.perf_counter() - t0, "views": counted.images // len(images)}
    both = combine(posts["dense, 3 scales"], posts["multi-crop, 3 scales"])
    out["dense + multi-crop"] = {
        "acc": (both.argmax(1) == labels).float().mean().item(),
        "seconds": out["dense, 3 scales"]["seconds"] + out["multi-crop, 3 scales"]["seconds"],
        "views": out["dense, 3 scales"]["views"] + out["multi-crop, 3 scales"]["views"]}
    return out


# ---- the paper's pre-initialisation (sec. 3.1) ----


def _convs_by_place(features: nn.Module) -> list[tuple[tuple[int, int], str, nn.Conv2d]]:
    """Every conv of a features stack with its place (block, position in the block); blocks end at a max-pool."""
    out, block, pos = [], 0, 0
    for name, m in features.named_children():
        if isinstance(m, nn.MaxPool2d):
            block, pos = block + 1, 0
        elif isinstance(m, nn.Conv2d):
            out.append(((block, pos), name, m))
            pos += 1
    return out


def init_from_shallow(deep: nn.Module, shallow: nn.Module, conv_layers: int = 4) -> list[tuple[str, str]]:
    """Start a deeper VGG from a trained shallower one, as the paper started B-E from A (sec. 3.1), in place.

    The paper copies "the first four convolutional layers and the last three fully-connected layers" of net A.
    A's first four conv layers (64, 128, 256, 256 channels) cannot sit in D's first four (64, 64, 128, 128): each
    is copied to the layer at the same place in D, the same block and the same position in it (A's conv 2, the
    first of block 2, goes to D's first conv of block 2), the only reading under which the shapes agree. The
    fully connected layers are copied one for one, from the last. Every other layer keeps its own init.

    Args:
        deep: the deeper VGG (e.g. VGG-16), already initialised (its other layers stay as they are).
        shallow: the trained shallower VGG (e.g. VGG-11) of the same widths and head.
        conv_layers: how many of the shallow net's first conv layers to copy (the paper: 4).
    Returns:
        ``(shallow layer, deep layer)`` names of every layer copied, in order.
    Raises:
        TypeError: either net is not a VGG (``features`` and ``classifier``), or ``conv_layers`` not a whole
            number.
        ValueError: ``shallow`` has more conv layers than ``deep``, ``conv_layers`` is more than the shallow net
            has, or a copied layer's shape differs.
    """
    for which, net in (("deep", deep), ("shallow", shallow)):
        if not isinstance(getattr(net, "features", None), nn.Module) or not isinstance(
                getattr(net, "classifier", None), nn.Sequential):
            raise TypeError(f"init_from_shallow expects VGGs from build_vgg; {which} is a {type(net).__name__}.")
    small, big = _convs_by_place(shallow.features), dict(
        (place, (name, m)) for place, name, m in _convs_by_place(deep.features))
    if len(small) > len(big):
        raise ValueError(f"shallow has more conv layers ({len(small)}) than deep ({len(big)}): pass the deeper net "
                         "first, init_from_shallow(deep, shallow).")
    conv_layers = whole_number("conv_layers", conv_layers, 0, "the shallow net's conv layers", maximum=len(small))
    pairs: list[tuple[nn.Module, nn.Module, str, str]] = []
    for place, name, m in small[:conv_layers]:
        if place not in big:
            raise ValueError(f"the deep net has no conv layer at block {place[0] + 1}, position {place[1] + 1} "
                             f"(where the shallow net's features.{name} goes)")
        pairs.append((m, big[place][1], f"features.{name}", f"features.{big[place][0]}"))
    fc_small = [(n, m) for n, m in shallow.classifier.named_children() if isinstance(m, nn.Linear)]
    fc_big = [(n, m) for n, m in deep.classifier.named_children() if isinstance(m, nn.Linear)]
    for (ns, ms), (nd, md) in list(zip(reversed(fc_small), reversed(fc_big)))[:3][::-1]:
        pairs.append((ms, md, f"classifier.{ns}", f"classifier.{nd}"))
    for src, dst, ns, nd in pairs:
        if src.weight.shape != dst.weight.shape:
            raise ValueError(f"{ns} {tuple(src.weight.shape)} does not fit {nd} {tuple(dst.weight.shape)}: the two "
                             "nets must have the same widths and head (build both with the same width and head).")
    with torch.no_grad():
        for src, dst, _, _ in pairs:
            dst.weight.copy_(src.weight)
            if dst.bias is not None and src.bias is not None:
                dst.bias.copy_(src.bias)
    return [(ns, nd) for _, _, ns, nd in pairs]
