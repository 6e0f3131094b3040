"""The builder and the model refuse bad input early, with a message that says what to do (issue 16)."""
import numpy as np
import pytest
import torch
from torch import nn

from vgg_helpers import build_vgg, count_parameters, init_weights
from vgg_helpers.models import VGG, make_layers

SMALL = dict(head="cifar", input_size=32, num_classes=10, width=0.125)


@pytest.fixture(scope="module")
def cifar_net():
    torch.manual_seed(0)
    return build_vgg("vgg11", **SMALL).eval()


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(width="a"), TypeError, r"^width must be a positive channel multiplier.*got 'a' \(str\)"),
    (dict(dropout="0.5"), TypeError, r"^dropout must be a probability in \[0, 1\).*Write dropout=0\.5"),
    (dict(width=float("inf")), ValueError, r"^width must be a positive channel multiplier.*got inf"),
    (dict(width=float("nan")), ValueError, r"^width must be .*got nan"),
    (dict(num_classes=True), TypeError, r"^num_classes must be a whole number >= 1"),
])
def test_build_vgg_names_the_bad_field(kwargs, error, match):
    with pytest.raises(error, match=match):
        build_vgg("vgg11", **kwargs)


def test_build_vgg_accepts_numpy_integers_and_stores_the_canonical_name():
    model = build_vgg("a_lrn", **{**SMALL, "num_classes": np.int64(10)})
    assert model.config.arch == "vgg11_lrn" and model.config.num_classes == 10
    assert model.classifier[-1].out_features == 10
    assert isinstance(model.features[2], nn.LocalResponseNorm)


def test_build_vgg_unknown_keyword_suggests_the_field():
    with pytest.raises(TypeError, match=r"'num_class' is not a VGGConfig field\. Did you mean 'num_classes'\?"):
        build_vgg("vgg11", num_class=10)


def test_non_square_input_asks_for_square_images(cifar_net):
    with pytest.raises(ValueError) as e:
        cifar_net(torch.randn(1, 3, 32, 64))
    assert str(e.value) == (
        "This VGG was built for 32x32 inputs (its classifier expects 64 features); got 32x64. VGG needs square "
        "inputs: resize or crop them to 32x32 (torchvision.transforms.Resize((32, 32)) or CenterCrop(32)).")


def test_invalid_square_size_suggests_valid_sizes(cifar_net):
    with pytest.raises(ValueError) as e:
        cifar_net(torch.randn(1, 3, 40, 40))
    assert str(e.value) == (
        "This VGG was built for 32x32 inputs (its classifier expects 64 features); got 40x40. 40 is not a valid "
        "input size (a multiple of 32: the five max-pools halve it five times). Either resize the images to 32x32 "
        "(torchvision.transforms.Resize(32)), or resize them to 64x64 and build the network with input_size=64.")
    with pytest.raises(ValueError) as e:
        cifar_net(torch.randn(1, 3, 28, 28))
    assert "input_size=" not in str(e.value) and "Resize the images to 32x32" in str(e.value)


def test_valid_other_size_suggests_building_for_it(cifar_net):
    with pytest.raises(ValueError, match=r"got 64x64\. Either resize the images to 32x32 .* or build the network "
                                         r"with input_size=64\.$"):
        cifar_net(torch.randn(1, 3, 64, 64))
    imagenet = build_vgg("vgg11", width=0.125)
    with pytest.raises(ValueError, match=r"got 200x200\. 200 is not a valid input size .* resize them to 192x192 "
                                         r"and build the network with input_size=192\.$"):
        imagenet(torch.randn(1, 3, 200, 200))


def test_numpy_and_uint8_inputs_are_explained(cifar_net):
    with pytest.raises(TypeError, match=r"got ndarray\. Convert it with torch\.as_tensor\(x, dtype=torch\.float32\)"):
        cifar_net(np.zeros((1, 3, 32, 32), dtype=np.float32))
    with pytest.raises(TypeError, match=r"got dtype torch\.uint8\. Convert uint8 images with x\.float\(\) / 255"):
        cifar_net(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))


def test_vgg_needs_a_module_as_features():
    with pytest.raises(TypeError, match="features must be an nn.Module such as make_layers"):
        VGG([64, "M"], head="cifar", input_size=32, num_classes=10)


def test_make_layers_checks_its_options():
    layers = [8, "M", 8, "M", 8, "M", 8, "M", 8, "M"]
    with pytest.raises(ValueError, match=r"in_channels must be a whole number >= 1 \(3 for RGB images\); got 0"):
        make_layers(layers, in_channels=0)
    with pytest.raises(TypeError, match="batch_norm must be True or False; got 'yes'"):
        make_layers(layers, batch_norm="yes")
    assert make_layers(layers, in_channels=np.int64(1))[0].in_channels == 1


def test_init_weights_checks_model_and_std(cifar_net):
    with pytest.raises(ValueError, match=r"std must be a standard deviation >= 0, e\.g\. 0\.01; got -0\.1"):
        init_weights(cifar_net, "paper", std=-0.1)
    with pytest.raises(TypeError, match=r"init_weights expects a model \(an nn\.Module\)"):
        init_weights("vgg11")


def test_count_parameters_of_a_name_points_to_params_from_config():
    with pytest.raises(TypeError, match=r"got str 'vgg16'\. For a configuration name use "
                                        r"params_from_config\('vgg16'\)\.total\."):
        count_parameters("vgg16")
    assert count_parameters(build_vgg("vgg11", **SMALL)) > 0
