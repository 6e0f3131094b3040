"""Issue 34: the paper's methods (vgg_helpers.paper) refuse bad input early, with a message that says what to do."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from vgg_helpers.models import build_vgg
from vgg_helpers.modern import build_modern_vgg
from vgg_helpers.paper import (combine, dense_evaluate, fc_to_conv, init_from_shallow, measure_test_methods,
                               multi_crop_evaluate, rescale, scale_jitter)

KW = dict(head="cifar", input_size=32, num_classes=10, width=0.125)


@pytest.fixture(scope="module")
def net() -> nn.Module:
    torch.manual_seed(0)
    return build_vgg("vgg11", **KW).eval()


@pytest.fixture(scope="module")
def conv(net) -> nn.Module:
    return fc_to_conv(net).eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(4, 3, 32, 32)


# ---- rescale and scale jittering ----

def test_rescale_refuses_images_without_pixels():
    with pytest.raises(ValueError, match=r"^rescale expects images of at least 1x1 pixels; got shape \(1, 3, 0, 32\)"):
        rescale(torch.zeros(1, 3, 0, 32), 40)


@pytest.mark.parametrize("generator", [0, "seed"])
def test_scale_jitter_wants_a_torch_generator(images, generator):
    with pytest.raises(TypeError, match=r"^generator must be a torch\.Generator or None; got .*For a seed, pass "
                                        r"torch\.Generator\(\)\.manual_seed\(seed\), or use ScaleJitter"):
        scale_jitter(images, 32, 40, 32, generator=generator)


# ---- fc_to_conv and dense evaluation ----

def test_fc_to_conv_explains_why_a_modern_vgg_has_nothing_to_convert():
    with pytest.raises(TypeError, match=r"^fc_to_conv converts the fully connected head of a VGG from build_vgg; "
                                        r"this ModernVGG pools its features globally.*multi_crop_evaluate"):
        fc_to_conv(build_modern_vgg(num_classes=10))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(scales=48), TypeError, (r"^scales must be a non-empty list of test scales Q.*got 48 \(int\)\. For one "
                                  r"scale, write scales=\[48\]\.$")),
    (dict(scales="48"), TypeError, r"^scales must be a non-empty list of test scales Q.*got '48' \(str\)"),
    (dict(scales=[16, 48]), ValueError, r"^scales must be at least 32, the smallest image side the net takes"),
])
def test_dense_evaluate_names_bad_scales(conv, images, kwargs, error, match):
    with pytest.raises(error, match=match):
        dense_evaluate(conv, images, **kwargs)


def test_dense_evaluate_refuses_what_is_not_a_network_and_images_of_other_channels(conv, images):
    with pytest.raises(TypeError, match=r"^dense_evaluate expects a model \(an nn\.Module\).*got str 'net'"):
        dense_evaluate("net", images)
    with pytest.raises(ValueError, match=r"^FullyConvVGG expects images with 3 channels, as the net was trained on; "
                                         r"got shape \(4, 1, 32, 32\)\. Check the channel order"):
        dense_evaluate(conv, images[:, :1])


# ---- multi-crop evaluation and the combination ----

def test_multi_crop_evaluate_refuses_what_is_not_a_classifier(conv, images):
    with pytest.raises(TypeError, match=r"^multi_crop_evaluate expects a model \(an nn\.Module\)"):
        multi_crop_evaluate("net", images)
    with pytest.raises(ValueError, match=r"^multi_crop_evaluate needs class scores \(N, classes\) from the model; "
                                         r"got shape \(4, 10, 1, 1\)\..*evaluate it with dense_evaluate"):
        multi_crop_evaluate(conv, images, crop=32)


def test_combine_names_what_is_not_a_tensor():
    a = torch.rand(4, 10).softmax(1)
    with pytest.raises(TypeError, match=r"^combine takes the posteriors as separate arguments.*unpack it: "
                                        r"combine\(\*posteriors\)\.$"):
        combine([a, a])
    with pytest.raises(TypeError, match=r"^combine averages tensors of class posteriors \(N, classes\); argument 2 "
                                        r"is a ndarray of shape \(4, 10\)"):
        combine(a, a.numpy())
    with pytest.raises(TypeError, match=r"argument 1 is \[\[.*\(list\)"):
        combine(a.tolist(), a)


# ---- measure_test_methods: refused before anything is evaluated ----

@pytest.mark.parametrize("change, error, match", [
    (dict(labels=torch.arange(3)), ValueError, (r"^labels must hold one class per image, shape \(4,\) for 4 "
                                                r"images; got shape \(3,\)\. Pass the labels of the same test "
                                                r"images\.$")),
    (dict(labels=torch.zeros(2, 2, dtype=torch.long)), ValueError, r"^labels must hold one class per image.*\(2, 2\)"),
    (dict(labels=[0, 1, 2, 3]), TypeError, r"^labels must be a tensor of class indices.*torch\.tensor\(labels\)"),
    (dict(model="net"), TypeError, r"^measure_test_methods expects a model \(an nn\.Module\)"),
    (dict(images=torch.zeros(4, 3, 32, 32, dtype=torch.uint8)), TypeError,
     r"^measure_test_methods runs a network, which needs floating-point images"),
    (dict(images=torch.zeros(0, 3, 32, 32), labels=torch.zeros(0, dtype=torch.long)), ValueError,
     r"^measure_test_methods needs at least one test image; got shape \(0, 3, 32, 32\)"),
    (dict(test_scales=()), ValueError, r"^test_scales must be a non-empty list of test scales Q"),
    (dict(test_scales=48), TypeError, r"^test_scales must be a non-empty list.*write test_scales=\[48\]"),
    (dict(test_scales=[16, 48]), ValueError, r"^test_scales must be at least 32, the net's input size"),
    (dict(crop_grid=0), ValueError, r"^crop_grid must be a whole number >= 1"),
])
def test_measure_test_methods_names_a_bad_argument(net, images, change, error, match):
    kwargs = dict(model=net, images=images, labels=torch.arange(4), test_scales=(32, 48), crop_grid=2)
    with pytest.raises(error, match=match):
        measure_test_methods(**{**kwargs, **change})


# ---- pre-initialisation from a shallower net ----

def test_init_from_shallow_says_to_pass_the_deeper_net_first():
    shallow, deep = build_vgg("vgg11", **KW), build_vgg("vgg16", **KW)
    before = {k: v.clone() for k, v in shallow.state_dict().items()}
    with pytest.raises(ValueError, match=r"^shallow has more conv layers \(13\) than deep \(8\): pass the deeper net "
                                         r"first, init_from_shallow\(deep, shallow\)\.$"):
        init_from_shallow(shallow, deep)
    assert all(torch.equal(v, before[k]) for k, v in shallow.state_dict().items())     # nothing was copied


@pytest.mark.parametrize("conv_layers, match", [
    ("4", (r"^conv_layers must be a whole number from 0 to 8 \(the shallow net's conv layers\); got '4' "
           r"\(str\)\. Write conv_layers=4")),
    (4.0, r"^conv_layers must be a whole number from 0 to 8.*got 4\.0 \(float\)\. Write conv_layers=4\.$"),
    (True, r"^conv_layers must be a whole number.*got True \(bool\)"),
])
def test_init_from_shallow_wants_a_whole_number_of_layers(conv_layers, match):
    with pytest.raises(TypeError, match=match):
        init_from_shallow(build_vgg("vgg16", **KW), build_vgg("vgg11", **KW), conv_layers=conv_layers)
