"""Plots refuse input they would draw wrongly (or crash on) with a message that names it (issue 16)."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from torch import nn  # noqa: E402

from vgg_helpers import params_from_config  # noqa: E402
from vgg_helpers.plots import (moving_average, plot_ablation, plot_activation_stats, plot_class_balance,  # noqa: E402
                               plot_confusion_matrix, plot_gradient_norms, plot_history, plot_image_grid,
                               plot_loss_curves, plot_misclassified, plot_param_split, plot_per_class_accuracy,
                               plot_prediction_counts, plot_shape_trace)

CLASSES = ["cat", "dog"]


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_moving_average_window_and_shape():
    with pytest.raises(TypeError, match=r"^window must be a whole number >= 1 \(1 = unchanged\); got 2\.5"):
        moving_average([1.0, 2.0, 3.0], 2.5)
    with pytest.raises(ValueError, match=r"^values must be 1-D, e\.g\. the loss of every step; got shape \(2, 2\)"):
        moving_average([[1.0, 2.0], [3.0, 4.0]], 2)
    assert moving_average([1.0, 3.0], np.int64(2)).tolist() == [1.0, 2.0]


def test_dicts_must_be_dicts():
    with pytest.raises(TypeError, match=r"^counts must be a dict such as \{'vgg11': params_from_config\('vgg11'\)\}; "
                                        r"got list"):
        plot_param_split([params_from_config("vgg11")])
    with pytest.raises(TypeError, match=r"counts\['A'\] must be a ParamCount"):
        plot_param_split({"A": 133})


def test_image_grid_checks_ncols_and_labels():
    images = np.zeros((2, 3, 4, 4), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"^ncols must be a whole number >= 1 \(images per row, e\.g\. 8\); got 0"):
        plot_image_grid(images, [0, 1], CLASSES, ncols=0)
    with pytest.raises(ValueError, match=r"^labels must lie in 0\.\.1 \(one per class name\); got 0\.\.5"):
        plot_image_grid(images, [0, 5], CLASSES)


def test_class_balance_refuses_negative_labels():
    with pytest.raises(ValueError, match=r"^labels must be class indices >= 0; got -1"):
        plot_class_balance([0, -1], CLASSES)


def test_loss_curves_need_pairs_and_a_sensible_num_classes():
    with pytest.raises(ValueError, match=r"^entry 'run' must be a pair \(steps, losses\)"):
        plot_loss_curves({"run": [2.3, 2.2, 2.1]})
    with pytest.raises(ValueError, match=r"^num_classes must be a whole number >= 1"):
        plot_loss_curves({"run": ([0, 1], [2.3, 2.2])}, num_classes=-1)


def test_ablation_refuses_percentages_and_zero_classes():
    curves = {"a": ([0, 1], [2.3, 2.2])}
    with pytest.raises(ValueError, match=r"^accuracies are fractions in \[0, 1\] \(nan for a run without one\); got "
                                         r"85\.0 for 'a'\. Divide percentages by 100\.$"):
        plot_ablation(curves, {"a": 85.0}, smooth=1)
    with pytest.raises(ValueError, match=r"^num_classes must be a whole number >= 1"):
        plot_ablation(curves, {"a": 0.5}, num_classes=0, smooth=1)
    plot_ablation(curves, {"a": float("nan")}, smooth=1)          # a run that diverged


def test_history_plot_names_what_a_history_needs():
    with pytest.raises(TypeError, match=r"^histories\['run'\] must be a training\.History .* got dict without "
                                        r"epoch, train_loss"):
        plot_history({"run": {"acc": [0.5]}})


def test_class_names_must_be_a_list():
    with pytest.raises(ValueError, match=r"^classes must be a non-empty list of class names, e\.g\. data\.classes"):
        plot_confusion_matrix([0, 1], [0, 1], [])
    with pytest.raises(ValueError, match=r"^classes must be a non-empty list of class names"):
        plot_per_class_accuracy([0, 1], [0, 1], "cat dog")
    with pytest.raises(ValueError, match=r"^classes must be a non-empty list of class names"):
        plot_prediction_counts({"model": [1, 1]}, "ab")


def test_misclassified_checks_n_seed_and_labels():
    images = np.zeros((2, 3, 4, 4), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"^n must be a whole number >= 1 \(images shown, e\.g\. 24\); got 0"):
        plot_misclassified(images, [1, 0], [0, 1], CLASSES, n=0)
    with pytest.raises(TypeError, match=r"^seed must be a whole number >= 0"):
        plot_misclassified(images, [1, 0], [0, 1], CLASSES, seed="a")
    with pytest.raises(ValueError, match=r"^preds must lie in 0\.\.1 \(one per class name\); got 0\.\.2"):
        plot_misclassified(images, [2, 0], [0, 1], CLASSES)


def test_shape_trace_plot_wants_rows_not_a_model():
    with pytest.raises(TypeError, match=r"^plot_shape_trace expects the rows of a shape trace, not a model"):
        plot_shape_trace(nn.Sequential(nn.Conv2d(3, 4, 3)))


def test_diagnostic_plots_name_the_expected_data():
    with pytest.raises(TypeError, match=r"^norms\['step 0'\] must be a dict layer name -> norm"):
        plot_gradient_norms({"step 0": [0.1, 0.2]})
    with pytest.raises(TypeError, match=r"^stats\['init'\] must be the list that activation_stats\(model, x\) "
                                        r"returns"):
        plot_activation_stats({"init": [{"mean": 0.0}]})
