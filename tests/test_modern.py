"""The modern VGG: its layer lists, the network they build, the whitening layer."""
import pytest
import torch
from torch import nn

from vgg_helpers.modern import (MODERN_CONFIGS, ModernConfig, ModernVGG, build_modern_vgg, describe_modern,
                                init_whitening)


@pytest.mark.parametrize("arch", list(MODERN_CONFIGS))
def test_every_config_builds_a_plain_stack_of_3x3_convs(arch):
    torch.manual_seed(0)
    model = build_modern_vgg(arch)
    out = model(torch.randn(4, 3, 32, 32))
    assert out.shape == (4, 10)
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    widths = [v for v in MODERN_CONFIGS[arch] if isinstance(v, int)]
    assert [c.out_channels for c in convs[1:]] == widths
    assert all(c.kernel_size == (3, 3) and c.bias is None for c in convs[1:])
    assert convs[0].kernel_size == (2, 2) and not convs[0].weight.requires_grad
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.features) == MODERN_CONFIGS[arch].count("M")


def test_pool_comes_right_after_the_first_conv_of_a_block():
    model = build_modern_vgg("modern-128")
    kinds = [type(m).__name__ for m in model.features[2:6]]
    assert kinds == ["Conv2d", "MaxPool2d", "_BatchNorm", "GELU"]


def test_convs_start_as_the_identity_on_their_first_channels():
    torch.manual_seed(0)
    model = build_modern_vgg("modern-128")
    conv = model.features[6]                           # 64 -> 64
    w = conv.weight
    for i in range(conv.out_channels):
        expected = torch.zeros(conv.in_channels, 3, 3)
        expected[i, 1, 1] = 1
        assert torch.equal(w[i], expected)
    wider = model.features[9]                          # 64 -> 128: the first 64 filters are the identity
    assert wider.weight[0, 0, 1, 1] == 1 and wider.weight[64:].abs().sum() > 0


def test_batch_norm_learns_only_its_shift():
    model = build_modern_vgg("modern-128")
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(not b.weight.requires_grad and b.bias.requires_grad for b in bns)


def test_whitening_decorrelates_patches():
    torch.manual_seed(0)
    mixing = torch.randn(12, 12)
    patches = (torch.randn(4000, 12) @ mixing)         # correlated 2x2x3 patches
    images = patches.view(4000, 2, 2, 3).permute(0, 3, 1, 2).contiguous()   # one patch per 2x2 image
    model = build_modern_vgg("modern-128")
    eigenvalues = init_whitening(model, images, eps=0.0)
    assert torch.all(eigenvalues[:-1] >= eigenvalues[1:])
    out = model.whiten(images).flatten(1)[:, :12] - model.whiten.bias[:12]   # (4000, 12): one position
    cov = out.T @ out / len(out)
    assert torch.allclose(cov, torch.eye(12), atol=1e-3)
    w = model.whiten.weight
    assert torch.equal(w[12:], -w[:12])


def test_describe_reads_like_table_1():
    assert describe_modern("modern-256") == [
        "whiten2 (frozen, from the data)", "conv3-64, maxpool", "conv3-64", "conv3-256, maxpool", "conv3-256",
        "conv3-256, maxpool", "conv3-256", "global maxpool"]


@pytest.mark.parametrize("layers, match", [
    ([64, "M", "G"], "starts with 'W'"),
    (["W", "M", 64, "G"], "must follow a number"),
    (["W", 64, 0, "G"], "whole numbers >= 1"),
    (["W", "G"], "at least one convolution"),
])
def test_bad_layer_lists_say_what_was_expected(layers, match):
    with pytest.raises(ValueError, match=match):
        ModernVGG(ModernConfig(layers=layers))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="arch must be one of modern-128"):
        build_modern_vgg("vgg11")
    with pytest.raises(ValueError, match="activation must be 'gelu' or 'relu'"):
        build_modern_vgg(activation="tanh")
    assert isinstance(build_modern_vgg(activation="relu").features[1], nn.ReLU)


def test_ladder_switches_turn_one_ingredient_off_each():
    torch.manual_seed(0)
    vgg_order = build_modern_vgg("modern-128", pool_first=False)
    kinds = [type(m).__name__ for m in vgg_order.features[2:6]]
    assert kinds == ["Conv2d", "_BatchNorm", "GELU", "MaxPool2d"]
    x = torch.randn(2, 3, 32, 32)
    assert vgg_order(x).shape == build_modern_vgg("modern-128")(x).shape == (2, 10)
    plain_init = build_modern_vgg("modern-128", identity_init=False)
    assert plain_init.features[6].weight[0, 0, 1, 1] != 1
    learned = build_modern_vgg("modern-128", whiten=False)
    assert learned.whiten.weight.requires_grad
