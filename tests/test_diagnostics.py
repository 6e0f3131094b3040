"""Diagnostics: shape traces (one row per layer in call order, exact shapes and counts, hooks cleaned up), training
measurements (activation statistics, gradient norms, the recorder, predicted classes) and the metrics."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from vgg_helpers import build_vgg, count_parameters, format_shape_trace, shape_trace
from vgg_helpers.diagnostics import (GradientRecorder, activation_stats, confusion_matrix, gradient_norms,
                                     per_class_accuracy, prediction_counts, weight_layers_in_order)
from vgg_helpers.training import TrainConfig, train


# --- shape trace / layer summary (chapter 4) ---
@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return build_vgg("vgg11", head="cifar", input_size=32, num_classes=10)


def test_rows_follow_the_layers_in_order(small_model):
    rows = shape_trace(small_model, (2, 3, 32, 32))
    leaves = [(n, type(m).__name__) for n, m in small_model.named_modules() if not list(m.children())]
    assert [(r.name, r.type) for r in rows] == leaves
    assert rows[0].output_shape == (2, 64, 32, 32)
    assert rows[-1].output_shape == (2, 10)
    pools = [r.output_shape for r in rows if r.type == "MaxPool2d"]
    assert pools == [(2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4), (2, 512, 2, 2), (2, 512, 1, 1)]


def test_params_per_row_add_up_to_the_model(small_model):
    rows = shape_trace(small_model, (1, 3, 32, 32))
    assert rows[0].params == 3 * 64 * 9 + 64
    assert all(r.params == 0 for r in rows if r.type in ("ReLU", "MaxPool2d"))
    assert sum(r.params for r in rows) == count_parameters(small_model)


def test_containers_are_recorded_after_their_children(small_model):
    rows = shape_trace(small_model, (1, 3, 32, 32), leaves_only=False)
    names = [r.name for r in rows]
    assert names.index("features") > names.index("features.0")
    assert names[-1] == "" and rows[-1].output_shape == (1, 10) and rows[-1].type == "VGG"


def test_hooks_removed_and_mode_restored(small_model):
    small_model.train()
    shape_trace(small_model, (1, 3, 32, 32))
    assert small_model.training
    assert all(not m._forward_hooks for m in small_model.modules())


def test_hooks_removed_when_forward_fails(small_model):
    with pytest.raises(ValueError, match="built for 32x32"):
        shape_trace(small_model, (1, 3, 64, 64))
    assert all(not m._forward_hooks for m in small_model.modules())


def test_wrong_padding_shows_in_the_trace():
    broken = nn.Sequential(nn.Conv2d(3, 8, 3, padding=0), nn.ReLU(), nn.MaxPool2d(2))
    rows = shape_trace(broken, (1, 3, 10, 10))
    assert [r.output_shape for r in rows] == [(1, 8, 8, 8), (1, 8, 8, 8), (1, 8, 4, 4)]


@pytest.mark.parametrize("bad", [(), (1, 0, 3), (1, 3.0, 4)])
def test_bad_input_size(bad, small_model):
    with pytest.raises(ValueError, match="input_size"):
        shape_trace(small_model, bad)


def test_format_has_one_line_per_row_and_the_total(small_model):
    rows = shape_trace(small_model, (1, 3, 32, 32))
    text = format_shape_trace(rows)
    lines = text.splitlines()
    assert len(lines) == len(rows) + 3
    assert lines[2].split() == ["features.0", "Conv2d", "(1,", "64,", "32,", "32)", "1,792"]
    assert lines[-1] == f"total params: {count_parameters(small_model):,}"


def test_shape_trace_partial_shows_where_a_broken_model_fails():
    with torch.device("meta"):
        model = build_vgg("vgg11")
    model.features[0].padding = (0, 0)
    with pytest.raises(ValueError, match="classifier expects 7x7"):
        shape_trace(model, (1, 3, 224, 224))
    rows = shape_trace(model, (1, 3, 224, 224), partial=True)
    assert rows[0].output_shape == (1, 64, 222, 222)
    assert rows[-1].type == "MaxPool2d" and rows[-1].output_shape == (1, 512, 6, 6)


# --- training diagnostics (chapter 5): activation statistics, gradient norms, the recorder ---
def _tiny(**kw):
    torch.manual_seed(0)
    return build_vgg("vgg11", head="cifar", input_size=32, num_classes=10, width=0.125, **kw)


def test_activation_stats_one_row_per_weight_layer_in_depth_order():
    model = _tiny()
    rows = activation_stats(model, torch.randn(4, 3, 32, 32))
    names = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert [r["name"] for r in rows] == names
    assert [r["depth"] for r in rows] == list(range(1, len(names) + 1))
    assert rows[0]["type"] == "Conv2d" and rows[-1]["type"] == "Linear"
    assert math.isnan(rows[-1]["zero_frac"])          # the logits have no ReLU after them
    assert all(0.0 <= r["zero_frac"] <= 1.0 for r in rows[:-1])


def test_activation_stats_match_a_hand_computation():
    conv = nn.Conv2d(3, 4, 3, padding=1)
    model = nn.Sequential(conv, nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(4 * 5 * 5, 2))
    x = torch.randn(3, 3, 5, 5)
    with torch.no_grad():
        out = conv(x)
    row = activation_stats(model, x)[0]
    assert row["mean"] == pytest.approx(out.mean().item(), abs=1e-6)
    assert row["std"] == pytest.approx(out.std().item(), rel=1e-5)
    assert row["zero_frac"] == pytest.approx((out <= 0).float().mean().item())   # inplace ReLU read right
    assert row["relu_mean"] == pytest.approx(out.clamp(min=0).mean().item(), abs=1e-6)


def test_paper_init_activations_shrink_with_depth_and_kaiming_ones_do_not():
    x = torch.randn(8, 3, 32, 32)
    paper = activation_stats(_tiny(init="paper"), x)
    kaiming = activation_stats(_tiny(init="kaiming"), x)
    assert paper[-2]["std"] < 1e-3 * paper[0]["std"]
    conv_k = [r["std"] for r in kaiming if r["type"] == "Conv2d"]
    assert min(conv_k) > 0.1 * max(conv_k)


def test_activation_stats_restore_mode_hooks_and_batchnorm_buffers():
    model = _tiny(batch_norm=True)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = activation_stats(model, torch.randn(4, 3, 32, 32) * 5 + 3, training=True)
    assert not model.training
    assert all(not m._forward_hooks for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    # the ReLU after conv -> batch norm was found: about half the normalised units are switched off
    assert 0.3 < rows[0]["zero_frac"] < 0.7


def test_gradient_norms_in_depth_order_and_correct():
    model = _tiny()
    with pytest.raises(ValueError, match="backward"):
        gradient_norms(model)
    loss = nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    norms = gradient_norms(model)
    assert list(norms) == [n for n, _ in weight_layers_in_order(model)]
    first = model.features[0]
    assert norms["features.0"] == pytest.approx(first.weight.grad.norm().item(), rel=1e-6)
    rel = gradient_norms(model, relative=True)
    assert rel["features.0"] == pytest.approx(norms["features.0"] / first.weight.norm().item(), rel=1e-6)


def test_gradient_recorder_inside_train():
    model = _tiny()
    images = torch.randn(40, 3, 32, 32)
    labels = torch.randint(0, 10, (40,))
    loader = [(images[i:i + 8], labels[i:i + 8]) for i in range(0, 40, 8)]
    recorder = GradientRecorder(every=2)
    train(model, loader, None, TrainConfig(epochs=2, lr=0.01, schedule="constant"), device="cpu",
          progress=False, on_step=recorder)
    assert recorder.loss_steps == list(range(10))
    assert recorder.steps == [0, 2, 4, 6, 8] and len(recorder) == 5
    names, steps, table = recorder.as_array()
    assert names == [n for n, _ in weight_layers_in_order(model)]
    assert table.shape == (5, len(names)) and np.all(table > 0)
    assert steps.tolist() == recorder.steps
    assert recorder.to_dict()["losses"] == recorder.losses
    with pytest.raises(ValueError):
        GradientRecorder(every=0)


def test_prediction_counts():
    assert prediction_counts(torch.tensor([3, 3, 3, 1]), 5) == [0, 1, 0, 3, 0]
    assert sum(prediction_counts([0] * 7, 10)) == 7
    with pytest.raises(ValueError):
        prediction_counts([10], 10)


# --- metrics (chapter 6): confusion matrix and accuracy per class ---
def test_confusion_matrix_counts_true_rows_predicted_columns():
    labels = [0, 0, 0, 1, 1, 2]
    preds = torch.tensor([0, 1, 1, 1, 1, 0])
    m = confusion_matrix(preds, labels, num_classes=3)
    assert m.tolist() == [[1, 2, 0], [0, 2, 0], [1, 0, 0]]
    assert m.sum() == 6
    assert per_class_accuracy(preds, labels, 3).tolist() == pytest.approx([1 / 3, 1.0, 0.0])


def test_per_class_accuracy_is_nan_for_an_absent_class():
    acc = per_class_accuracy([0, 1], [0, 1], num_classes=3)
    assert acc[:2].tolist() == [1.0, 1.0] and math.isnan(acc[2])


def test_confusion_matrix_rejects_bad_input():
    with pytest.raises(ValueError, match="2 predictions but 3 labels"):
        confusion_matrix([0, 1], [0, 1, 2], 3)
    with pytest.raises(ValueError, match="0..2"):
        confusion_matrix([0, 3], [0, 1], 3)


# --- looking inside a trained network: feature maps and Grad-CAM ---
@pytest.fixture
def modern():
    from vgg_helpers.modern import build_modern_vgg

    torch.manual_seed(0)
    return build_modern_vgg("modern-128")


def _no_hooks(model):
    return all(not m._forward_hooks for m in model.modules())


def test_feature_maps_of_a_modern_vgg_are_its_activations(modern):
    from vgg_helpers.diagnostics import feature_maps

    x = torch.randn(2, 3, 32, 32)
    modern.train()
    modern.features[4].eval()                      # a mixed state must come back as it was
    running = modern.features[4].running_mean.clone()
    rng = torch.get_rng_state()
    maps = feature_maps(modern, x)
    assert torch.equal(torch.get_rng_state(), rng)
    activations = [n for n, m in modern.named_modules() if isinstance(m, nn.GELU)]
    assert list(maps) == activations == ["features.1", "features.5", "features.8", "features.12", "features.15",
                                         "features.19", "features.22"]
    expected = {r.name: r.output_shape for r in shape_trace(modern, (2, 3, 32, 32))}   # the shapes, measured
    assert {n: tuple(m.shape) for n, m in maps.items()} == {n: expected[n] for n in activations}
    assert [tuple(m.shape[1:]) for m in maps.values()] == [(24, 31, 31), (64, 15, 15), (64, 15, 15), (128, 7, 7),
                                                           (128, 7, 7), (128, 3, 3), (128, 3, 3)]
    assert all(m.dtype == torch.float32 and m.device.type == "cpu" and not m.requires_grad for m in maps.values())
    modern.eval()
    with torch.no_grad():
        assert torch.allclose(maps["features.22"], modern.features(x), atol=1e-6)
    modern.train()
    modern.features[4].eval()
    assert _no_hooks(modern)
    assert [m.training for m in modern.modules()].count(False) == 1 and not modern.features[4].training
    assert torch.equal(modern.features[4].running_mean, running)


def test_feature_maps_of_chosen_layers_copy_outputs_before_in_place_relus(small_model):
    from vgg_helpers.diagnostics import feature_maps

    x = torch.randn(2, 3, 32, 32)
    small_model.eval()
    maps = feature_maps(small_model, x, ["features.0", "classifier"])   # features.1 is ReLU(inplace=True)
    with torch.no_grad():
        conv = small_model.features[0](x)
        logits = small_model(x)
    assert maps["features.0"].min() < 0 and torch.allclose(maps["features.0"], conv, atol=1e-6)
    assert torch.allclose(maps["classifier"], logits, atol=1e-5)
    assert list(feature_maps(small_model, x, "features.1")) == ["features.1"]
    default = feature_maps(small_model, x)
    assert list(default) == [n for n, m in small_model.features.named_modules(prefix="features")
                             if isinstance(m, nn.ReLU)]


def test_feature_maps_errors_name_valid_layers_and_leave_no_hooks(small_model):
    from vgg_helpers.diagnostics import feature_maps

    small_model.train()
    with pytest.raises(ValueError, match=r"no layer named 'features.99'.*'features.0'"):
        feature_maps(small_model, torch.zeros(1, 3, 32, 32), ["features.99"])
    with pytest.raises(ValueError, match="built for 32x32"):
        feature_maps(small_model, torch.zeros(1, 3, 64, 64))
    assert _no_hooks(small_model) and all(m.training for m in small_model.modules())
    with pytest.raises(ValueError, match=r"unsqueeze\(0\)"):
        feature_maps(small_model, torch.zeros(3, 32, 32))
    with pytest.raises(TypeError, match="float"):
        feature_maps(small_model, torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="no `features`"):
        feature_maps(nn.Sequential(nn.Conv2d(3, 4, 3)), torch.zeros(1, 3, 8, 8))


class _Halves(nn.Module):
    """Channel 0 sees only the left half of the image (its mean over RGB), channel 1 only the right half."""

    def forward(self, x):
        g = x.mean(1, keepdim=True)
        left = torch.zeros_like(g)
        left[..., : x.shape[-1] // 2] = 1
        return torch.cat([g * left, g * (1 - left)], 1)


class _HalvesNet(nn.Module):
    """logit 0 = max(left) - 0.5 max(right): only the left half raises it; logit 1 = max(right).

    Grad-CAM weights each channel by the mean of its gradient (1/(h w) for channel 0, -0.5/(h w) for channel 1 for
    class 0), so the map of class 0 is ReLU(A0 - 0.5 A1) = the left half's brightness, zero on the right half.
    The gradient of a max sits on one pixel: gradient x activation (no spatial mean) would light one pixel only.
    """

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(_Halves(), nn.ReLU(), nn.AvgPool2d(2))
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.classifier = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.classifier.weight.copy_(torch.tensor([[1.0, -0.5], [0.0, 1.0]]))

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


def _halves_batch():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 6, 8) + 0.1           # H=6, W=8: a swapped height and width shows
    x[0, ..., 4:] *= 0.1                        # image 0: bright left half -> class 0
    x[1, ..., :4] *= 0.1                        # image 1: bright right half -> class 1
    return x


def _normalised(m):
    return m / m.flatten(1).amax(1).view(-1, 1, 1)


def test_grad_cam_matches_a_hand_computation():
    from vgg_helpers.diagnostics import grad_cam

    model, x = _HalvesNet(), _halves_batch()
    assert model(x).argmax(1).tolist() == [0, 1]
    g = x.mean(1)
    left, right = g.clone(), g.clone()
    left[..., 4:] = 0
    right[..., :4] = 0
    cam = grad_cam(model, x, "features.1")                       # default: the predicted classes
    assert cam.shape == (2, 6, 8) and cam.dtype == torch.float32
    assert torch.allclose(cam, _normalised(torch.stack([left[0], right[1]])), atol=1e-6)
    cam = grad_cam(model, x, "features.1", target=torch.tensor([0, 0]))
    assert torch.allclose(cam, _normalised(left), atol=1e-6)
    assert (cam[..., 4:] == 0).all() and (cam[..., :4] > 0).all()   # the right half only lowers logit 0
    assert torch.allclose(grad_cam(model, x, "features.1", target=1), _normalised(right), atol=1e-6)
    # a layer at half the resolution: its map is upsampled bilinearly to 6 x 8
    low = nn.functional.avg_pool2d(left[:, None], 2)
    up = nn.functional.interpolate(low, size=(6, 8), mode="bilinear", align_corners=False)[:, 0]
    cam = grad_cam(model, x, "features.2", target=[0, 0])
    assert torch.allclose(cam, _normalised(up), atol=1e-6)
    assert (cam[..., 5:] == 0).all()


def test_grad_cam_with_frozen_parameters_leaves_grads_hooks_and_mode_alone():
    from vgg_helpers.diagnostics import grad_cam

    model, x = _HalvesNet(), _halves_batch()
    model.classifier.weight.grad = torch.ones(2, 2)
    model.train()
    model.features[2].eval()
    expected = grad_cam(model, x, "features.1")
    model.requires_grad_(False)
    assert torch.equal(grad_cam(model, x, "features.1"), expected)
    assert torch.equal(model.classifier.weight.grad, torch.ones(2, 2))
    assert _no_hooks(model) and model.training and not model.features[2].training and model.features[1].training


def test_grad_cam_on_a_modern_vgg(modern):
    from vgg_helpers.diagnostics import grad_cam

    x = torch.randn(3, 3, 32, 32)
    modern.train()
    running = modern.features[4].running_mean.clone()
    cam = grad_cam(modern, x, "features.22")
    assert cam.shape == (3, 32, 32) and cam.dtype == torch.float32 and cam.device.type == "cpu"
    assert cam.min() >= 0 and cam.max() <= 1 and not cam.requires_grad
    assert all(m.amax() in (0.0, 1.0) for m in cam)             # scaled per image (1 at its peak, unless all 0)
    assert all(p.grad is None for p in modern.parameters())
    assert _no_hooks(modern) and all(m.training for m in modern.modules())
    assert torch.equal(modern.features[4].running_mean, running)
    modern.eval()
    predicted = modern(x).argmax(1)
    assert torch.equal(grad_cam(modern, x, "features.22", target=predicted), grad_cam(modern, x, "features.22"))


def test_grad_cam_errors(modern):
    from vgg_helpers.diagnostics import grad_cam

    x = torch.randn(2, 3, 32, 32)
    with pytest.raises(ValueError, match=r"no layer named 'features.99'.*'features.22'"):
        grad_cam(modern, x, "features.99")
    with pytest.raises(ValueError, match=r"spatial output \(N, C, h, w\)"):
        grad_cam(modern, x, "classifier")
    with pytest.raises(ValueError, match="2 images but 3 targets"):
        grad_cam(modern, x, "features.22", target=[0, 1, 2])
    with pytest.raises(ValueError, match=r"0\.\.9"):
        grad_cam(modern, x, "features.22", target=torch.tensor([0, 10]))
    with pytest.raises(TypeError, match="name of one layer"):
        grad_cam(modern, x, modern.features[22])
    assert _no_hooks(modern)
