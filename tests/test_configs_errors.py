"""VGGConfig and the name lookup refuse bad input clearly, accept NumPy numbers and store canonical values
(issue 16)."""
import json
import math

import numpy as np
import pytest

from vgg_helpers.configs import (CONFIGS, PAPER_NAMES, VGGConfig, check_layers, layers_for, params_from_config,
                                 resolve_arch)


W = "width must be a positive channel multiplier, e.g. 1.0 (the paper's widths) or 0.5; "
D = "dropout must be a probability in [0, 1), e.g. 0.5; "
N = "num_classes must be a whole number >= 1 (10 for CIFAR-10, 1000 for ImageNet); "


@pytest.mark.parametrize("field,value,error,expected", [
    ("width", "a", TypeError, W + "got 'a' (str)."),
    ("dropout", "0.5", TypeError, D + "got '0.5' (str). Write dropout=0.5 (a number, not a string)."),
    ("width", math.inf, ValueError, W + "got inf."),
    ("width", math.nan, ValueError, W + "got nan."),
    ("width", True, TypeError, W + "got True (bool)."),
    ("dropout", math.nan, ValueError, D + "got nan."),
    ("dropout", None, TypeError, D + "got None (NoneType)."),
    ("init_std", -0.1, ValueError, "init_std must be a standard deviation >= 0, e.g. 0.01; got -0.1."),
    ("init_std", math.inf, ValueError, "init_std must be a standard deviation >= 0, e.g. 0.01; got inf."),
    ("num_classes", True, TypeError, N + "got True (bool)."),
    ("num_classes", "10", TypeError, N + "got '10' (str). Write num_classes=10 (a number, not a string)."),
    ("num_classes", 10.0, TypeError, N + "got 10.0 (float). Write num_classes=10."),
    ("input_size", 100, ValueError, "input_size must be a multiple of 32 (the five 2x2 max-pools halve it five "
                                    "times), e.g. 224 for ImageNet or 32 for CIFAR-10; got 100 (the nearest valid "
                                    "sizes: 96 and 128)."),
    ("input_size", True, TypeError, "input_size must be a whole number >= 32; got True (bool). It must be a "
                                    "multiple of 32"),
    ("batch_norm", "no", TypeError, "batch_norm must be True or False; got 'no' (str)."),
    ("softmax", 1, TypeError, "softmax must be True or False; got 1 (int)."),
    ("head", "CIFAR", ValueError, "head must be one of 'imagenet', 'cifar'; got 'CIFAR' (str). Use 'cifar' for "
                                  "32x32 images."),
    ("init", None, ValueError, "init must be one of 'default', 'paper', 'kaiming', 'xavier'; got None (NoneType)."),
])
def test_bad_field_is_named_with_its_value_and_the_fix(field, value, error, expected):
    with pytest.raises(error) as e:
        VGGConfig(**{field: value})
    assert str(e.value).startswith(expected), str(e.value)


def test_numpy_numbers_are_accepted_and_stored_as_plain_python():
    c = VGGConfig(num_classes=np.int64(10), input_size=np.int32(32), width=np.float32(0.5), dropout=np.float64(0.25),
                  batch_norm=np.bool_(True), head="cifar")
    assert (c.num_classes, c.input_size, c.width, c.dropout, c.batch_norm) == (10, 32, 0.5, 0.25, True)
    assert [type(v) for v in (c.num_classes, c.input_size, c.width, c.batch_norm)] == [int, int, float, bool]
    json.dumps(c.to_dict())                     # histories and checkpoints store it as JSON
    assert c == VGGConfig(num_classes=10, input_size=32, width=0.5, dropout=0.25, batch_norm=True, head="cifar")


def test_valid_widths_keep_working():
    assert VGGConfig(width=1).width == 1.0
    assert layers_for("vgg11", VGGConfig(width=0.125).width)[0] == 8
    assert params_from_config("vgg11", width=2).conv > params_from_config("vgg11").conv


@pytest.mark.parametrize("spelling", ["a_lrn", "A_LRN", "A-LRN", "a-lrn", "vgg11-lrn", "VGG11_LRN", "vgg11 lrn",
                                      " A-LRN "])
def test_arch_lookup_ignores_case_and_separators(spelling):
    assert resolve_arch(spelling) == "vgg11_lrn"


@pytest.mark.parametrize("spelling,canonical", [("VGG16", "vgg16"), ("vgg-16", "vgg16"), ("c", "vgg16_1x1"),
                                                ("VGG16-1X1", "vgg16_1x1"), ("E", "vgg19"), ("vgg_13", "vgg13")])
def test_every_alias_resolves(spelling, canonical):
    assert resolve_arch(spelling) == canonical


def test_config_stores_the_canonical_name():
    assert VGGConfig(arch="A-LRN").arch == "vgg11_lrn"
    assert VGGConfig(arch="D").to_dict()["arch"] == "vgg16"
    assert VGGConfig(arch="E") == VGGConfig(arch="vgg19")
    assert all(resolve_arch(letter) == name for name, letter in PAPER_NAMES.items())


@pytest.mark.parametrize("bad", ["vgg20", "", None, 16])
def test_unknown_name_lists_every_valid_name(bad):
    with pytest.raises(ValueError) as e:
        VGGConfig(arch=bad)
    msg = str(e.value)
    assert msg.startswith(f"Unknown VGG configuration {bad!r}. Valid names: ")
    assert all(name in msg for name in [*CONFIGS, *PAPER_NAMES.values()])


def test_torchvision_batch_norm_names_point_to_the_option():
    with pytest.raises(ValueError, match=r"batch norm is a separate option, use arch='vgg16', batch_norm=True"):
        resolve_arch("vgg16_bn")


def test_unknown_field_suggests_the_closest():
    with pytest.raises(TypeError, match=r"'widht' is not a VGGConfig field\. Did you mean 'width'\? Valid fields: "
                                        r"arch, num_classes"):
        VGGConfig().replace(widht=0.5)


def test_layer_lists_accept_numpy_ints_and_json_pairs():
    layers = [np.int64(64), "M", [128, 1], "M", 8, "M", 8, "M", 8, "M"]       # [128, 1]: a pair read back from JSON
    assert check_layers(layers)[:3] == [64, "M", (128, 1)]
    assert type(check_layers(layers)[0]) is int


def test_layers_for_checks_width():
    with pytest.raises(TypeError, match=r"^width must be a positive channel multiplier.*got 'a' \(str\)"):
        layers_for("vgg11", "a")
