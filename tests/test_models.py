"""The config-driven builder: exact counts, torchvision parity, shapes, torchinfo, init and clear errors."""
import math

import pytest
import torch
import torchvision
from torch import nn

from vgg_helpers import CONFIGS, TABLE2_PARAMS_MILLIONS, build_vgg, count_parameters, init_weights, params_from_config
from vgg_helpers.models import make_layers

ALL = list(CONFIGS)
# Exact counts of torchvision's models (torchvision.models.vgg*): ours must be the same number.
TORCHVISION_COUNTS = {
    "vgg11": 132_863_336, "vgg13": 133_047_848, "vgg16": 138_357_544, "vgg19": 143_667_240,
    "vgg11_bn": 132_868_840, "vgg13_bn": 133_053_736, "vgg16_bn": 138_365_992, "vgg19_bn": 143_678_248,
}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# Counts, layer lists and output shapes need no numbers: networks built on PyTorch's "meta" device have every
# parameter's shape and run every layer's shape rule, without allocating or initialising 138 million weights
# (seconds per full-size network on a 2-core CPU).
META = torch.device("meta")


@pytest.mark.parametrize("tv_name", list(TORCHVISION_COUNTS))
def test_exact_count_equals_torchvision(tv_name):
    arch, bn = tv_name.removesuffix("_bn"), tv_name.endswith("_bn")
    with META:
        ours = count_parameters(build_vgg(arch, batch_norm=bn))
        theirs = count_parameters(getattr(torchvision.models, tv_name)(weights=None))
    assert ours == theirs == TORCHVISION_COUNTS[tv_name]


@pytest.mark.parametrize("bn", [False, True])
@pytest.mark.parametrize("name", ALL)
def test_every_config_rounds_to_table2_and_matches_arithmetic(name, bn):
    with META:
        n = count_parameters(build_vgg(name, batch_norm=bn))
    assert round(n / 1e6) == TABLE2_PARAMS_MILLIONS[name]
    assert n == params_from_config(name, batch_norm=bn).total


@pytest.mark.parametrize("tv_name", ["vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg16_bn"])
def test_parity_with_torchvision(tv_name):
    """minGPT-style: load torchvision's random weights into ours and compare outputs."""
    arch, bn = tv_name.removesuffix("_bn"), tv_name.endswith("_bn")
    reference = getattr(torchvision.models, tv_name)(weights=None).eval()
    with META:                                          # shapes only: its weights come from the reference
        ours = build_vgg(arch, batch_norm=bn, init="default").eval()
    ours.load_state_dict(reference.state_dict(), strict=True, assign=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=0)


def test_parity_detects_a_different_network():
    reference = torchvision.models.vgg11(weights=None).eval()
    ours = build_vgg("vgg11").eval()     # same shapes, independent weights
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert not torch.allclose(ours(x), reference(x))


@pytest.mark.parametrize("name", ALL)
def test_imagenet_shape(name):
    with META:
        model = build_vgg(name).eval()
        assert model(torch.empty(1, 3, 224, 224)).shape == (1, 1000)


@pytest.mark.parametrize("bn", [False, True])
@pytest.mark.parametrize("name", ALL)
def test_cifar_shape(name, bn):
    model = build_vgg(name, head="cifar", input_size=32, num_classes=10, batch_norm=bn).eval()
    with torch.no_grad():
        assert model(torch.randn(4, 3, 32, 32)).shape == (4, 10)
    assert not any(isinstance(m, nn.Linear) and m.out_features == 4096 for m in model.modules())


def test_submodule_names_and_layers():
    with META:
        model = build_vgg("vgg11_lrn")
        assert [n for n, _ in model.named_children()] == ["features", "avgpool", "classifier"]
        lrn = [m for m in model.features if isinstance(m, nn.LocalResponseNorm)]
        assert len(lrn) == 1 and (lrn[0].size, lrn[0].alpha, lrn[0].beta, lrn[0].k) == (5, 5e-4, 0.75, 2.0)
        # 5e-4 = the paper's alpha 1e-4 times the size: PyTorch divides its alpha by the size (configs.LRN_PARAMS)
        assert isinstance(model.features[2], nn.LocalResponseNorm)     # conv, ReLU, LRN, pool
        c = build_vgg("vgg16_1x1")
        assert sum(1 for m in c.features if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)) == 3
        bn = build_vgg("vgg11", batch_norm=True)
        assert sum(isinstance(m, nn.BatchNorm2d) for m in bn.features) == 8
        drop = [m.p for m in build_vgg("vgg11").classifier if isinstance(m, nn.Dropout)]
        assert drop == [0.5, 0.5]


def test_softmax_option_outputs_probabilities():
    model = build_vgg("vgg11", softmax=True).eval()
    assert isinstance(model.classifier[-1], nn.Softmax)
    with torch.no_grad():
        p = model(torch.randn(2, 3, 224, 224))
    torch.testing.assert_close(p.sum(1), torch.ones(2))
    assert (p >= 0).all()


def test_torchinfo_summary_of_config_e_matches_blog_post():
    torchinfo = pytest.importorskip("torchinfo")
    stats = torchinfo.summary(build_vgg("vgg19", softmax=True), input_size=(1, 3, 224, 224), verbose=0)
    assert stats.total_params == 143_667_240
    assert stats.trainable_params == 143_667_240
    assert round(stats.total_mult_adds / 1e9, 2) == 19.65


def _conv_weights(model):
    return torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, nn.Conv2d)])


def test_init_schemes():
    paper = build_vgg("vgg11", head="cifar", input_size=32, num_classes=10, init="paper")
    w = _conv_weights(paper)
    assert abs(w.std().item() - 0.01) < 1e-3
    assert all((m.bias == 0).all() for m in paper.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    wide = build_vgg("vgg11", head="cifar", input_size=32, num_classes=10, init="paper", init_std=0.1)
    assert abs(_conv_weights(wide).std().item() - 0.1) < 1e-2
    kaiming = build_vgg("vgg11", head="cifar", input_size=32, num_classes=10, init="kaiming")
    last = [m for m in kaiming.modules() if isinstance(m, nn.Conv2d)][-1]
    expected = math.sqrt(2.0 / (512 * 9))       # He normal, fan_out = out_channels * 3 * 3
    assert abs(last.weight.std().item() - expected) / expected < 0.05
    default = build_vgg("vgg11", head="cifar", input_size=32, num_classes=10, init="default")
    first = [m for m in default.modules() if isinstance(m, nn.Conv2d)][0]
    bound = 1 / math.sqrt(3 * 9)                  # PyTorch default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert first.weight.abs().max().item() <= bound + 1e-6 and (first.bias != 0).any()
    with pytest.raises(ValueError, match="init scheme"):
        init_weights(default, "glorot-ish")


def test_unknown_config_name_lists_valid_names():
    with pytest.raises(ValueError, match=r"Unknown VGG configuration 'vgg21'.*vgg11.*vgg19"):
        build_vgg("vgg21")


def test_cifar_image_into_imagenet_head_gives_a_clear_error():
    model = build_vgg("vgg11")
    with pytest.raises(ValueError) as e:
        model(torch.randn(2, 3, 32, 32))
    msg = str(e.value)
    assert "224x224" in msg and "32x32" in msg and "head='cifar'" in msg and "Resize(224)" in msg


def test_other_bad_inputs_are_explained():
    model = build_vgg("vgg11", head="cifar", input_size=32, num_classes=10)
    with pytest.raises(ValueError, match="unsqueeze"):
        model(torch.randn(3, 32, 32))
    with pytest.raises(ValueError, match="3 input channels"):
        model(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match="built for 32x32"):
        model(torch.randn(1, 3, 64, 64))


def test_a_layer_that_changes_the_spatial_size_is_caught():
    model = build_vgg("vgg11").eval()
    model.features[0].padding = (0, 0)                  # the classic bug: nn.Conv2d's default padding
    with pytest.raises(ValueError, match=r"222x222|6x6 maps.*expects 7x7.*padding"):
        with torch.no_grad():
            model(torch.randn(1, 3, 224, 224))


@pytest.mark.parametrize("n", [0, -5])
def test_num_classes_must_be_positive(n):
    with pytest.raises(ValueError, match="num_classes must be a whole number >= 1"):
        build_vgg("vgg11", num_classes=n)


def test_bad_layer_list_entry():
    with pytest.raises(ValueError, match="entry 2 is 'pool'"):
        make_layers([64, "M", "pool", 128])


def test_xavier_init_is_glorot_uniform_with_zero_biases():
    torch.manual_seed(0)
    model = build_vgg("vgg11", head="cifar", input_size=32, num_classes=10, width=0.25, init="xavier")
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            fan_out = m.weight.shape[0] * m.weight[0, 0].numel()
            bound = (6 / (fan_in + fan_out)) ** 0.5
            assert m.weight.abs().max() <= bound
            assert m.weight.abs().max() > 0.9 * bound          # uniform: it reaches close to the bound
            assert abs(m.weight.var().item() - bound ** 2 / 3) < 0.15 * bound ** 2 / 3
            assert torch.count_nonzero(m.bias) == 0
    with pytest.raises(ValueError, match="'xavier'"):
        init_weights(model, "glorot")
