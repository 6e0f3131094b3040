"""Diagnostics refuse bad input early and accept NumPy numbers (issue 16)."""
import numpy as np
import pytest
import torch

from vgg_helpers import build_vgg
from vgg_helpers.diagnostics import (GradientRecorder, activation_stats, confusion_matrix, format_shape_trace,
                                     gradient_norms, per_class_accuracy, prediction_counts, shape_trace,
                                     weight_layers_in_order)


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return build_vgg("vgg11", head="cifar", input_size=32, num_classes=10, width=0.125)


def test_shape_trace_accepts_numpy_shapes(net):
    assert shape_trace(net, (np.int64(1), 3, 32, 32))[-1].output_shape == (1, 10)
    assert shape_trace(net, np.array([2, 3, 32, 32]))[-1].output_shape == (2, 10)
    assert shape_trace(net, torch.Size([1, 3, 32, 32]))[-1].output_shape == (1, 10)


@pytest.mark.parametrize("bad", [32, (1, 3, 32.0, 32), (), "1,3,32,32", (1, 3, 0, 32)])
def test_shape_trace_input_size_must_be_a_shape(net, bad):
    with pytest.raises(ValueError, match=r"^input_size must be a shape of positive whole numbers, batch dimension "
                                         r"included, such as \(1, 3, 224, 224\); got "):
        shape_trace(net, bad)


@pytest.mark.parametrize("fn", [shape_trace, weight_layers_in_order, gradient_norms])
def test_functions_of_a_model_refuse_other_things(fn):
    with pytest.raises(TypeError, match=r"expects a model \(an nn\.Module\), e\.g\. build_vgg\('vgg11'\); got str"):
        fn("vgg11")


def test_format_shape_trace_wants_rows(net):
    with pytest.raises(TypeError, match=r"format_shape_trace expects the rows of a shape trace, not a model: pass "
                                        r"shape_trace\(model, \(1, 3, 224, 224\)\)"):
        format_shape_trace(net)
    with pytest.raises(TypeError, match=r"row 0 is \(1, 2\), not a ShapeRow"):
        format_shape_trace([(1, 2)])


def test_activation_stats_wants_a_tensor(net):
    with pytest.raises(TypeError, match=r"activation_stats expects x to be a batch of images as a torch\.Tensor"):
        activation_stats(net, np.zeros((2, 3, 32, 32), dtype=np.float32))


def test_recorder_every_accepts_numpy_and_refuses_bool():
    assert GradientRecorder(every=np.int64(5)).every == 5
    with pytest.raises(TypeError, match=r"^every must be a whole number >= 1 \(record gradient norms every this "
                                        r"many steps, e\.g\. 10\); got True \(bool\)\."):
        GradientRecorder(every=True)


def test_prediction_counts_refuses_logits():
    with pytest.raises(ValueError, match=r"^predictions must be 1-D \(one class index per image\); got shape "
                                         r"\(4, 10\): for logits or probabilities \(N, C\) pass output\.argmax\(1\)$"):
        prediction_counts(torch.randn(4, 10))
    with pytest.raises(ValueError, match=r"^predictions must be whole class indices such as \[3, 0, 7\]; got 0\.5 "
                                         r"\(dtype float64\)\. For logits or probabilities pass "
                                         r"output\.argmax\(1\)\.$"):
        prediction_counts([0.5, 1.0])
    assert prediction_counts([1.0, 2.0], num_classes=np.int64(3)) == [0, 1, 1]


@pytest.mark.parametrize("fn", [lambda k: prediction_counts([0], k), lambda k: confusion_matrix([0], [0], k),
                                lambda k: per_class_accuracy([0], [0], k)])
@pytest.mark.parametrize("bad", [0, 2.5, "10"])
def test_num_classes_is_checked(fn, bad):
    error = ValueError if bad == 0 else TypeError          # out of range, or not a whole number at all
    with pytest.raises(error, match=r"^num_classes must be a whole number >= 1 \(10 for CIFAR-10\); got "):
        fn(bad)


def test_metrics_refuse_values_that_are_not_class_indices():
    with pytest.raises(ValueError, match=r"^preds must be whole class indices such as \[3, 0, 7\]; got nan"):
        confusion_matrix([0, float("nan")], [0, 1], 3)
    with pytest.raises(ValueError, match=r"^labels must be whole class indices such as \[3, 0, 7\]; got 'cat'"):
        confusion_matrix([0, 1], ["cat", "dog"], 3)


def test_paired_gains_want_runs_paired_by_seed():
    from vgg_helpers.diagnostics import paired_gains
    with pytest.raises(ValueError, match=r"the runs must be paired by seed: 3 against 2"):
        paired_gains([0.8, 0.81, 0.82], [0.8, 0.8])
    one = paired_gains([0.81], [0.80])
    assert one["gain_sd"] == 0.0 and one["gain_se"] == 0.0 and one["gain"] == pytest.approx(0.01)
