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
