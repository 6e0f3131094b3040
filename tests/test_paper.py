"""The paper's own methods (sec. 3.1-3.2): scale jittering, FC -> conv and dense evaluation, multi-crop evaluation
and their combination, and the plateau learning-rate schedule."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.helpers import tiny_model, toy_loaders
from vgg_helpers.models import build_vgg
from vgg_helpers.paper import (TEST_METHODS, ScaleJitter, combine, crop_positions, dense_evaluate, fc_to_conv,
                               init_from_shallow, measure_test_methods, multi_crop_evaluate,
                               rescale, scale_jitter)
from vgg_helpers.training import PLATEAU_MAX_DROPS, TrainConfig, lr_factor, plateau_drops, train


def _positions(n: int = 3, h: int = 32, w: int = 40) -> torch.Tensor:
    """Float images whose pixel (y, x) holds y * 1000 + x (and the image index in channel 2)."""
    y = torch.arange(h, dtype=torch.float64).view(h, 1) * 1000
    x = torch.arange(w, dtype=torch.float64).view(1, w)
    grid = (y + x).expand(n, 2, h, w)
    return torch.cat([grid, torch.arange(n, dtype=torch.float64).view(n, 1, 1, 1).expand(n, 1, h, w)], 1)


# ---- rescale and scale jittering ----

def test_rescale_sets_the_smaller_side():
    x = torch.rand(2, 3, 32, 48)
    assert rescale(x, 40).shape == (2, 3, 40, 60)
    assert rescale(x.transpose(2, 3), 40).shape == (2, 3, 60, 40)
    u8 = (torch.rand(1, 3, 32, 32) * 255).to(torch.uint8)
    assert rescale(u8, 48).dtype == torch.uint8 and rescale(u8, 32).equal(u8)


def test_scale_jitter_shapes_dtypes_and_ranges():
    gen = torch.Generator().manual_seed(0)
    u8 = (torch.rand(64, 3, 32, 32, generator=gen) * 255).to(torch.uint8)
    out, p = scale_jitter(u8, 32, 48, 32, generator=gen, return_params=True)
    assert out.shape == (64, 3, 32, 32) and out.dtype == torch.uint8
    assert p["scale"].min() >= 32 and p["scale"].max() <= 48 and len(p["scale"].unique()) > 5
    assert (p["top"] >= 0).all() and (p["top"] <= p["scale"] - 32).all()
    assert (p["left"] >= 0).all() and (p["left"] <= p["scale"] - 32).all()
    assert 10 < int(p["flip"].sum()) < 54
    f = scale_jitter(torch.rand(4, 3, 40, 50), 224, 256, 224, torch.Generator().manual_seed(1))
    assert f.shape == (4, 3, 224, 224) and f.dtype == torch.float32


def test_scale_jitter_crops_the_drawn_window():
    x = _positions()                                     # 32 x 40: smaller side 32
    out, p = scale_jitter(x, 32, 32, 24, torch.Generator().manual_seed(3), return_params=True)
    for i in range(len(x)):                              # S = 32: no rescale, so the crop is a window of x
        window = x[i, :, p["top"][i]:p["top"][i] + 24, p["left"][i]:p["left"][i] + 24]
        assert torch.equal(out[i], window.flip(-1) if p["flip"][i] else window)
        assert out[i, 2].eq(i).all()                     # each image keeps its own crop
    out, p = scale_jitter(x, 48, 48, 24, torch.Generator().manual_seed(3), return_params=True, flip=False)
    big = rescale(x, 48)                                 # S = 48: a window of the rescaled image
    assert big.shape[-2:] == (48, 60) and not p["flip"].any()
    for i in range(len(x)):
        assert torch.equal(out[i], big[i, :, p["top"][i]:p["top"][i] + 24, p["left"][i]:p["left"][i] + 24])


def test_scale_jitter_is_reproducible_with_a_seed():
    x = torch.rand(8, 3, 32, 32)
    a = scale_jitter(x, 32, 48, 32, torch.Generator().manual_seed(7))
    b = scale_jitter(x, 32, 48, 32, torch.Generator().manual_seed(7))
    c = scale_jitter(x, 32, 48, 32, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    j1, j2 = ScaleJitter(32, 48, 32, seed=7), ScaleJitter(32, 48, 32, seed=7)
    first = j1(x)
    assert torch.equal(first, j2(x)) and not torch.equal(first, j1(x))   # one stream: the next batch differs
    assert "s_min=32" in repr(j1)


@pytest.mark.parametrize("args, error, match", [
    ((48, 32, 32), ValueError, "s_min must be at most s_max"),
    ((24, 48, 32), ValueError, "crop=32 is larger than s_min=24"),
    ((32.5, 48, 32), TypeError, "s_min must be a whole number"),
    ((0, 48, 1), ValueError, "s_min must be"),
])
def test_scale_jitter_refuses_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        scale_jitter(torch.rand(2, 3, 32, 32), *args)
    with pytest.raises(error, match=match):
        ScaleJitter(*args)


def test_scale_jitter_refuses_bad_images():
    with pytest.raises(ValueError, match="unsqueeze"):
        scale_jitter(torch.rand(3, 32, 32), 32, 48, 32)
    with pytest.raises(TypeError, match="tensor of images"):
        scale_jitter([[1.0]], 32, 48, 32)
    with pytest.raises(TypeError, match="uint8 or floating"):
        scale_jitter(torch.zeros(1, 3, 32, 32, dtype=torch.int64), 32, 48, 32)


# ---- FC -> conv and dense evaluation ----

def _imagenet_vgg(width: float = 1 / 16, seed: int = 0, **kw) -> nn.Module:
    torch.manual_seed(seed)
    return build_vgg("vgg11", width=width, **kw).eval()


def test_fc_to_conv_matches_the_fc_net_at_224():
    model = _imagenet_vgg()
    conv = fc_to_conv(model)
    assert not conv.training
    first, second, third = [m for m in conv.classifier if isinstance(m, nn.Conv2d)]
    assert first.kernel_size == (7, 7) and first.in_channels == 32 and first.out_channels == 4096
    assert second.kernel_size == third.kernel_size == (1, 1) and third.out_channels == 1000
    assert not any(isinstance(m, (nn.Linear, nn.AdaptiveAvgPool2d)) for m in conv.modules())
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        scores, expected = conv(x), model(x)
    assert scores.shape == (2, 1000, 1, 1)
    assert torch.allclose(scores.flatten(1), expected, rtol=1e-4, atol=1e-5)
    # the converted net holds copies: changing it leaves the VGG alone
    with torch.no_grad():
        first.bias.add_(1)
    assert not torch.equal(first.bias, model.classifier[0].bias)


def test_fc_to_conv_at_full_vgg11_width():
    model = _imagenet_vgg(width=1.0)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.allclose(fc_to_conv(model)(x).flatten(1), model(x), rtol=1e-4, atol=1e-4)


def test_larger_images_give_a_score_map():
    conv = fc_to_conv(_imagenet_vgg())
    with torch.no_grad():
        assert conv(torch.randn(1, 3, 256, 256)).shape == (1, 1000, 2, 2)
        assert conv(torch.randn(1, 3, 384, 288)).shape == (1, 1000, 6, 3)
    with pytest.raises(ValueError, match="at least 224"):
        conv(torch.randn(1, 3, 192, 256))


def test_dense_evaluation_at_q48_drops_no_feature():
    # at Q = 48 a net of five pools has a 3x3 map before its last pool: rounding down pools its top-left 2x2 to
    # a 1x1 map and drops the last row and column; the converted net rounds up (ceil_mode), a 2x2 score map
    torch.manual_seed(0)
    cifar = build_vgg("vgg11", head="cifar", input_size=32, num_classes=10, width=0.125).eval()
    up, down = fc_to_conv(cifar), fc_to_conv(cifar, ceil_mode=False)
    x = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        assert up(x).shape == (1, 10, 2, 2) and down(x).shape == (1, 10, 1, 1)
        maps = up.features[:-1](x)                       # before the last pool: 3x3
        assert maps.shape[-2:] == (3, 3)
        changed = maps.clone()
        changed[..., 2, :] += 5.0                        # the last row of the 3x3 map
        changed[..., :, 2] += 5.0                        # ... and its last column
        head_up = up.classifier(up.features[-1](changed))
        head_down = down.classifier(down.features[-1](changed))
        assert not torch.allclose(head_up, up.classifier(up.features[-1](maps)))     # seen
        assert torch.equal(head_down, down.classifier(down.features[-1](maps)))      # dropped
        for side in (32, 64):                            # multiples of 32: both roundings agree
            y = torch.randn(2, 3, side, side)
            assert torch.equal(up(y), down(y))
    assert all(m.ceil_mode for m in up.features if isinstance(m, nn.MaxPool2d))
    assert not any(m.ceil_mode for m in cifar.features if isinstance(m, nn.MaxPool2d))   # the VGG is untouched


def test_a_map_position_sees_more_than_its_crop():
    # sec. 3.2: a crop is zero-padded at its borders, while in dense evaluation the same window's borders are
    # real neighbouring pixels, so the score at a map position differs from the score of the crop alone
    model = _imagenet_vgg(seed=3)
    x = torch.randn(1, 3, 256, 224, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        scores = fc_to_conv(model)(x)                         # 256 rows -> 8 feature rows -> 2 positions
        assert scores.shape[-2:] == (2, 1)
        crop = model(x[:, :, :224])                           # the window of position 0 (one cell = 32 px)
    assert not torch.allclose(scores[..., 0, 0], crop, rtol=1e-3, atol=1e-6)


def test_fc_to_conv_cifar_head_and_softmax():
    torch.manual_seed(0)
    cifar = build_vgg("vgg11", head="cifar", input_size=32, num_classes=10, width=0.125).eval()
    conv = fc_to_conv(cifar)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(conv(x).flatten(1), cifar(x), rtol=1e-4, atol=1e-5)
        assert conv(torch.randn(1, 3, 64, 64)).shape == (1, 10, 2, 2)
    soft = fc_to_conv(_imagenet_vgg(softmax=True))
    assert isinstance(soft.classifier[-1], nn.Softmax) and soft.classifier[-1].dim == 1
    with pytest.raises(ValueError, match="ends in nn.Softmax"):
        dense_evaluate(soft, torch.randn(1, 3, 224, 224))


def test_fc_to_conv_refuses_other_models():
    with pytest.raises(TypeError, match="with .features and .classifier"):
        fc_to_conv(nn.Linear(2, 2))
    model = _imagenet_vgg()
    model.classifier = nn.Sequential(nn.Linear(999, 10))
    with pytest.raises(ValueError, match="999 inputs"):
        fc_to_conv(model)


class _MapNet(nn.Module):
    """A fixed score map: class 0 scores a, class 1 scores b at each place (left half and right half differ)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        left = x[:, 0, :, : w // 2].mean((1, 2))
        right = x[:, 0, :, w // 2:].mean((1, 2))
        maps = torch.zeros(n, 2, 1, 2)
        maps[:, 0, 0, 0], maps[:, 0, 0, 1] = left, right   # class 0: left then right
        return maps


def test_dense_evaluate_averages_the_map_then_softmax_then_flip():
    x = torch.zeros(2, 3, 4, 4)
    x[:, 0, :, :2] = torch.tensor([1.0, 3.0]).view(2, 1, 1)   # left half
    x[:, 0, :, 2:] = torch.tensor([2.0, 0.0]).view(2, 1, 1)   # right half
    net = _MapNet()
    mean_scores = torch.stack([(x[:, 0, :, :2].mean((1, 2)) + x[:, 0, :, 2:].mean((1, 2))) / 2,
                               torch.zeros(2)], 1)
    expected = mean_scores.softmax(1)            # the flip swaps left and right: the same mean scores
    assert torch.allclose(dense_evaluate(net, x, flip=False), expected)
    assert torch.allclose(dense_evaluate(net, x), expected)
    # averaging soft-max maps instead, or taking one position, gives other numbers: the test can fail
    assert not torch.allclose(net(x).softmax(1).mean((2, 3)), expected)


def test_dense_evaluate_flip_and_scales():
    torch.manual_seed(0)
    cifar = build_vgg("vgg11", head="cifar", input_size=32, num_classes=10, width=0.125).eval()
    conv = fc_to_conv(cifar)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        plain = cifar(x).softmax(1)
        mirrored = cifar(x.flip(3)).softmax(1)
        expected_64 = conv(rescale(x, 64)).mean((2, 3)).softmax(1)
    assert torch.allclose(dense_evaluate(conv, x, flip=False), plain, atol=1e-6)
    assert torch.allclose(dense_evaluate(conv, x), (plain + mirrored) / 2, atol=1e-6)
    both = dense_evaluate(conv, x, flip=False, scales=[32, 64])
    assert torch.allclose(both, (plain + expected_64) / 2, atol=1e-6)
    assert torch.allclose(both.sum(1), torch.ones(3))
    conv.train()
    dense_evaluate(conv, x)
    assert conv.training                          # the mode is restored
    with pytest.raises(ValueError, match="non-empty list"):
        dense_evaluate(conv, x, scales=[])
    with pytest.raises(ValueError, match="score map"):
        dense_evaluate(cifar, x)
    with pytest.raises(TypeError, match="floating-point"):
        dense_evaluate(conv, torch.zeros(1, 3, 32, 32, dtype=torch.uint8))


# ---- multi-crop evaluation and the combination ----

def test_crop_positions():
    assert crop_positions(40, 32, 3) == [0, 4, 8]
    assert crop_positions(256, 224, 5) == [0, 8, 16, 24, 32]
    assert crop_positions(32, 32, 5) == [0]                     # the crop is the whole side: one position
    assert crop_positions(33, 32, 3) == [0, 1]                  # rounding would repeat 0
    assert crop_positions(48, 32, 3) == [0, 8, 16]


@pytest.mark.parametrize("size, crop, grid", [(32, 32, 3), (32, 32, 5), (33, 32, 3), (34, 32, 5), (40, 32, 3),
                                              (48, 32, 3), (64, 32, 3), (256, 224, 5), (230, 224, 5)])
def test_crop_positions_never_repeat_a_crop(size, crop, grid):
    pos = crop_positions(size, crop, grid)
    assert len(pos) == len(set(pos)) and pos == sorted(pos)
    assert pos[0] == 0 and pos[-1] == size - crop and len(pos) == min(grid, size - crop + 1)
    assert crop_positions(40, 32, 1) == [4]                     # one crop: the centre
    with pytest.raises(ValueError, match="at most the image side"):
        crop_positions(32, 40, 3)


class _Recorder(nn.Module):
    """Logits that identify the crop: class 0 scores the crop's top-left pixel; records every crop's corner."""

    input_size = 8

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[float, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x[0, 0, 0, :2].tolist()))
        return torch.stack([x[:, 0, 0, 0] / 1000, torch.zeros(len(x))], 1)


def test_multi_crop_takes_the_grid_and_flips():
    x = _positions(n=2, h=12, w=12)                    # pixel (y, x) holds y * 1000 + x
    rec = _Recorder()
    out = multi_crop_evaluate(rec, x, grid=3)          # crop 8 from the model's input_size
    assert len(rec.seen) == 3 * 3 * 2
    corners = [(top * 1000 + left) for top in (0, 2, 4) for left in (0, 2, 4)]
    assert [s[0] for s in rec.seen[::2]] == corners                      # the crops, row by row
    assert [s[0] for s in rec.seen[1::2]] == [c + 7 for c in corners]    # their mirror images start at the right
    expected = torch.stack([torch.stack([torch.tensor(v / 1000), torch.tensor(0.0)]).softmax(0)
                            for v in corners + [c + 7 for c in corners]]).mean(0)
    assert torch.allclose(out[0], expected.float(), atol=1e-6)
    rec.seen.clear()
    multi_crop_evaluate(rec, x, grid=2, flip=False, scales=[8, 12])
    assert len(rec.seen) == 1 + 2 * 2              # at Q = 8 the crop is the whole image: one crop, once


def test_multi_crop_runs_each_distinct_crop_once_and_weighs_the_scales_equally():
    x = _positions(n=2, h=8, w=8)
    rec = _Recorder()
    out = multi_crop_evaluate(rec, x, grid=3)          # an 8x8 image, 8x8 crops: one crop and its mirror
    assert len(rec.seen) == 2 and len(set(rec.seen)) == 2
    rec.seen.clear()
    both = multi_crop_evaluate(rec, x, grid=3, scales=[8, 12])
    assert len(rec.seen) == 2 + 3 * 3 * 2 and len(set(rec.seen)) == len(rec.seen)      # no crop twice
    at_12 = multi_crop_evaluate(rec, x, grid=3, scales=[12])
    assert torch.allclose(both, (out + at_12) / 2, atol=1e-6)   # each scale's mean counts the same


def test_multi_crop_on_a_vgg_matches_a_loop_by_hand():
    torch.manual_seed(0)
    cifar = build_vgg("vgg11", head="cifar", input_size=32, num_classes=10, width=0.125).eval()
    x = torch.randn(2, 3, 40, 40)
    with torch.no_grad():
        probs = [cifar(v).softmax(1) for t in (0, 4, 8) for left in (0, 4, 8)
                 for c in [x[:, :, t:t + 32, left:left + 32]] for v in (c, c.flip(3))]
    assert torch.allclose(multi_crop_evaluate(cifar, x, grid=3), torch.stack(probs).mean(0), atol=1e-6)
    with pytest.raises(ValueError, match="larger than the 24x24"):
        multi_crop_evaluate(cifar, x, scales=[24])


def test_combine_averages_posteriors():
    a = torch.tensor([[0.2, 0.8], [0.5, 0.5]])
    b = torch.tensor([[0.6, 0.4], [0.1, 0.9]])
    assert torch.allclose(combine(a, b), torch.tensor([[0.4, 0.6], [0.3, 0.7]]))
    with pytest.raises(ValueError, match="two or more"):
        combine(a)
    with pytest.raises(ValueError, match="one shape"):
        combine(a, b[:1])


# ---- the paper's learning-rate schedule ----

def test_plateau_divides_after_patience_epochs_without_improvement():
    history = [0.50, 0.60, 0.60, 0.59, 0.70, 0.71, 0.71, 0.71]
    drops = [plateau_drops(history[:e], patience=2) for e in range(len(history) + 1)]
    # epochs 3 and 4 do not beat 0.60 -> divided after epoch 4; epochs 7 and 8 do not beat 0.71 -> after epoch 8
    assert drops == [0, 0, 0, 0, 1, 1, 1, 1, 2]
    assert [plateau_drops(history[:e], patience=1) for e in range(len(history) + 1)] == [0, 0, 0, 1, 2, 2, 2, 3, 3]
    cfg = TrainConfig(schedule="plateau", patience=2)
    assert lr_factor(cfg, 0, 100, history) == pytest.approx(0.01)
    assert lr_factor(cfg, 0, 100, []) == 1.0


def test_plateau_divides_at_most_three_times():
    assert PLATEAU_MAX_DROPS == 3
    flat = [0.5] * 30
    assert plateau_drops(flat, patience=1) == 3 and plateau_drops(flat, patience=2) == 3
    assert lr_factor(TrainConfig(schedule="plateau", patience=1), 0, 1, flat) == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="needs a val_loader"):
        plateau_drops([0.5, None], patience=1)


def test_plateau_in_training():
    train_loader, val_loader = toy_loaders(n=64, batch_size=32)
    h = train(tiny_model(), train_loader, val_loader, TrainConfig(epochs=4, lr=0.05, schedule="plateau", patience=1),
              device="cpu", progress=False)
    expected = [0.05 * 0.1 ** plateau_drops(h.val_acc[:e], 1) for e in range(4)]
    assert h.lr == pytest.approx(expected)
    with pytest.raises(ValueError, match="needs a val_loader"):
        train(tiny_model(), train_loader, None, TrainConfig(epochs=1, schedule="plateau"), device="cpu")
    with pytest.raises(ValueError, match="patience"):
        TrainConfig(schedule="plateau", patience=0)


def test_other_schedules_unchanged():
    cfg = TrainConfig(schedule="onecycle", warmup=0.25)
    assert [round(lr_factor(cfg, s, 100), 2) for s in (0, 25, 100)] == [0.0, 1.0, 0.0]
    assert lr_factor(TrainConfig(schedule="constant"), 5, 10, [0.1, 0.1, 0.1]) == 1.0


# ---- every way of testing, on the same images (Table 5) ----


def test_measure_test_methods_on_a_small_net():
    torch.manual_seed(0)
    model = build_vgg("vgg11", batch_norm=True, **KW).eval()
    images, labels = torch.randn(12, 3, 32, 32), torch.arange(12) % 10
    scales, grid = (32, 48, 64), 2
    res = measure_test_methods(model, images, labels, scales, grid)
    assert list(res) == list(TEST_METHODS)
    assert all(0 <= r["acc"] <= 1 and r["seconds"] >= 0 for r in res.values())
    # passes as made: dense 2 per scale; multi-crop 2 at Q = 32 (the crop is the whole image), 2 x 2 x 2 at 48, 64
    assert res["one view"]["views"] == 1 and res["dense, Q=48"]["views"] == 2
    assert res["dense, 3 scales"]["views"] == 6
    assert res["multi-crop, 3 scales"]["views"] == 2 + 8 + 8
    assert res["dense + multi-crop"]["views"] == 6 + 18
    assert measure_test_methods(model, images, labels, scales, 3)["multi-crop, 3 scales"]["views"] == 2 + 18 + 18
    with torch.no_grad():   # "one view" is the plain forward pass
        assert res["one view"]["acc"] == (model(images).argmax(1) == labels).float().mean().item()


# ---- pre-initialisation from a trained shallow net (sec. 3.1) ----

KW = dict(head="cifar", input_size=32, num_classes=10, width=0.125)


def _convs(model: nn.Module) -> list[nn.Conv2d]:
    return [m for m in model.features if isinstance(m, nn.Conv2d)]


def test_init_from_shallow_copies_by_block_and_position():
    torch.manual_seed(0)
    shallow, deep = build_vgg("vgg11", **KW), build_vgg("vgg16", **KW)
    before = [c.weight.clone() for c in _convs(deep)]
    pairs = init_from_shallow(deep, shallow)
    assert pairs == [("features.0", "features.0"), ("features.3", "features.5"), ("features.6", "features.10"),
                     ("features.8", "features.12"), ("classifier.0", "classifier.0")]
    s, d = _convs(shallow), _convs(deep)
    # A: conv1 | conv2 | conv3 conv4 ...  ->  D: conv1_1 | conv2_1 | conv3_1 conv3_2 (indices 0, 2, 4, 5)
    for i, j in ((0, 0), (1, 2), (2, 4), (3, 5)):
        assert torch.equal(d[j].weight, s[i].weight) and torch.equal(d[j].bias, s[i].bias)
    for j in (1, 3, 6, 7, 8, 9, 10, 11, 12):            # every other conv keeps its own init
        assert torch.equal(d[j].weight, before[j])
    assert torch.equal(deep.classifier[0].weight, shallow.classifier[0].weight)


def test_init_from_shallow_copies_the_three_fc_layers_of_the_paper_head():
    torch.manual_seed(0)
    kw = dict(num_classes=10, width=1 / 16)
    shallow, deep = build_vgg("vgg11", **kw), build_vgg("vgg19", **kw)
    pairs = init_from_shallow(deep, shallow)
    assert [p for p in pairs if p[0].startswith("classifier")] == [
        ("classifier.0", "classifier.0"), ("classifier.3", "classifier.3"), ("classifier.6", "classifier.6")]
    x = torch.randn(1, 3, 224, 224)
    deep.eval(), shallow.eval()
    with torch.no_grad():   # same first conv: same first-layer output
        assert torch.equal(deep.features[0](x), shallow.features[0](x))


def test_init_from_shallow_refuses_mismatched_nets():
    shallow = build_vgg("vgg11", **KW)
    with pytest.raises(ValueError, match="same widths and head"):
        init_from_shallow(build_vgg("vgg16", **{**KW, "width": 0.25}), shallow)
    with pytest.raises(ValueError, match="conv_layers must be a whole number from 0 to 8"):
        init_from_shallow(build_vgg("vgg16", **KW), shallow, conv_layers=9)
    with pytest.raises(TypeError, match="expects VGGs"):
        init_from_shallow(nn.Linear(2, 2), shallow)
