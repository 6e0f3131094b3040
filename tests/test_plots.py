"""The book's figures: bar heights, lines, panels and titles carry the numbers they claim to show."""
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from vgg_helpers import params_from_config  # noqa: E402
from vgg_helpers.diagnostics import ShapeRow  # noqa: E402
from vgg_helpers.plots import (moving_average, plot_ablation, plot_activation_stats, plot_class_balance,  # noqa: E402
                               plot_confusion_matrix, plot_gradient_norms, plot_history, plot_image_grid,
                               plot_loss_curves, plot_misclassified, plot_param_split, plot_per_class_accuracy,
                               plot_prediction_counts, plot_receptive_fields, plot_shape_trace)
from vgg_helpers.training import History  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _heights(ax, label):
    container = next(c for c, h in zip(ax.containers, ax.get_legend_handles_labels()[1]) if h == label)
    return [p.get_height() for p in container.patches], [p.get_y() for p in container.patches]


def test_param_split_stacks_conv_under_fc():
    counts = {"A": params_from_config("vgg11"), "E": params_from_config("vgg19")}
    ax = plot_param_split(counts)
    conv, conv_bottom = _heights(ax, "convolutions")
    fc, fc_bottom = _heights(ax, "fully connected")
    assert conv == pytest.approx([counts["A"].conv / 1e6, counts["E"].conv / 1e6])
    assert fc == pytest.approx([counts["A"].fc / 1e6, counts["E"].fc / 1e6])
    assert conv_bottom == [0, 0] and fc_bottom == pytest.approx(conv)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["A", "E"]
    shares = [t.get_text() for t in ax.texts]
    assert shares == ["FC 93%", "FC 86%"]
    assert "batch norm" not in ax.get_legend_handles_labels()[1]


def test_param_split_shows_batch_norm_when_present():
    ax = plot_param_split({"E-bn": params_from_config("vgg19", batch_norm=True)})
    bn, _ = _heights(ax, "batch norm")
    assert bn == pytest.approx([params_from_config("vgg19", batch_norm=True).batch_norm / 1e6])


def test_param_split_needs_counts():
    with pytest.raises(ValueError, match="empty"):
        plot_param_split({})


def test_receptive_fields_titles_give_the_box():
    five = np.zeros((9, 9))
    five[2:7, 2:7] = 1.0
    seven = torch.zeros(9, 9)
    seven[1:8, 1:8] = 0.5
    fig = plot_receptive_fields({"two": five, "three": seven})
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["two\n5x5 input pixels", "three\n7x7 input pixels"]


def test_receptive_fields_reject_non_2d():
    with pytest.raises(ValueError, match="2-D"):
        plot_receptive_fields({"bad": np.ones((2, 3, 3))})


def test_shape_trace_plot_skips_the_classifier():
    rows = [ShapeRow("c", "Conv2d", (1, 64, 32, 32), 1), ShapeRow("p", "MaxPool2d", (1, 64, 16, 16), 0),
            ShapeRow("c2", "Conv2d", (1, 128, 16, 16), 1), ShapeRow("a", "AdaptiveAvgPool2d", (1, 128, 16, 16), 0),
            ShapeRow("fc", "Linear", (1, 10), 1)]
    fig = plot_shape_trace(rows)
    top, bottom = fig.axes
    assert list(top.lines[0].get_ydata()) == [64, 64, 128, 128]
    assert list(bottom.lines[0].get_ydata()) == [32, 16, 16, 16]
    pool_lines = [ln for ln in top.lines[1:] if ln.get_linestyle() == ":"]
    assert [ln.get_xdata()[0] for ln in pool_lines] == [1]


def test_shape_trace_plot_needs_feature_maps():
    with pytest.raises(ValueError, match="N, C, H, W"):
        plot_shape_trace([ShapeRow("fc", "Linear", (1, 10), 1)])


# --- diagnostic plots (chapter 5): the lines and bars carry the measured numbers ---
CLASSES10 = tuple("abcdefghij")


def test_moving_average():
    assert moving_average([1, 3, 5, 7], 2).tolist() == [1, 2, 4, 6]
    assert moving_average([2, 4], 1).tolist() == [2, 4]
    with pytest.raises(ValueError):
        moving_average([1], 0)


def test_image_grid_one_titled_panel_per_image():
    images = torch.zeros(5, 3, 32, 32, dtype=torch.uint8)
    fig = plot_image_grid(images, [0, 1, 2, 3, 9], CLASSES10, ncols=3)
    assert [ax.get_title() for ax in fig.axes] == ["a", "b", "c", "d", "j"]
    assert fig.axes[0].images[0].get_array().shape == (32, 32, 3)
    with pytest.raises(ValueError, match="labels"):
        plot_image_grid(images, [0, 1], CLASSES10)


def test_class_balance_bars_are_the_counts():
    ax = plot_class_balance([0, 0, 1, 9, 9, 9], CLASSES10)
    assert [p.get_height() for p in ax.patches] == [2, 1, 0, 0, 0, 0, 0, 0, 0, 3]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(CLASSES10)


def test_loss_curves_draw_the_chance_line_at_ln10():
    ax = plot_loss_curves({"run": ([0, 1, 2], [2.3, 2.0, 1.0])}, smooth=1)
    run, chance = ax.get_lines()
    assert run.get_ydata().tolist() == [2.3, 2.0, 1.0]
    assert chance.get_ydata()[0] == pytest.approx(math.log(10))
    assert "2.303" in ax.get_legend_handles_labels()[1][1]
    smoothed = plot_loss_curves({"run": ([0, 1], [2.0, 4.0])}, smooth=2, num_classes=None).get_lines()
    assert len(smoothed) == 1 and smoothed[0].get_ydata().tolist() == [2.0, 3.0]
    with pytest.raises(ValueError):
        plot_loss_curves({"bad": ([0, 1], [1.0])})


def test_prediction_counts_groups():
    ax = plot_prediction_counts({"true": [1] * 10, "model": [10] + [0] * 9}, CLASSES10)
    heights = [p.get_height() for p in ax.patches]
    assert heights[:10] == [1] * 10 and heights[10:] == [10] + [0] * 9


def test_gradient_norms_plot_in_depth_order_on_log_axis():
    ax = plot_gradient_norms({"step 0": {"features.0": 1e-6, "features.2": 1e-3, "classifier.6": 0.5}})
    line = ax.get_lines()[0]
    assert line.get_xdata().tolist() == [1, 2, 3]
    assert line.get_ydata().tolist() == [1e-6, 1e-3, 0.5]
    assert ax.get_yscale() == "log"


def test_activation_stats_plot_two_panels():
    rows = [{"depth": 1, "std": 0.5, "zero_frac": 0.5}, {"depth": 2, "std": 1e-4, "zero_frac": float("nan")}]
    fig = plot_activation_stats({"paper": rows})
    left, right = fig.axes
    assert left.get_lines()[0].get_ydata().tolist() == [0.5, 1e-4]
    assert right.get_lines()[0].get_ydata()[0] == 0.5
    assert left.get_yscale() == "log"


def test_ablation_bars_are_the_accuracies():
    curves = {"stuck": ([0, 1], [2.3, 2.3]), "learns": ([0, 1], [2.3, 1.5])}
    fig = plot_ablation(curves, {"stuck": 0.1, "learns": 0.42}, smooth=1)
    loss_ax, acc_ax = fig.axes
    widths = [p.get_width() for p in acc_ax.patches]
    assert widths == pytest.approx([10.0, 42.0])
    ticks = dict(zip([t.get_text() for t in acc_ax.get_yticklabels()], acc_ax.get_yticks()))
    assert ticks["stuck"] > ticks["learns"]                                          # first run on top
    assert any("42.0%" == t.get_text() for t in acc_ax.texts)
    assert len(loss_ax.get_lines()) == 3


# --- training plots (chapter 6): curves, confusion matrix, per-class bars and the error grid carry the data ---
def _history(train_acc, val_acc):
    n = len(train_acc)
    return History(epoch=list(range(1, n + 1)), train_loss=[2.0 - 0.1 * i for i in range(n)], train_acc=train_acc,
                   val_loss=[2.1 - 0.1 * i for i in range(n)], val_acc=val_acc, lr=[0.1] * n, time=[1.0] * n)


def test_history_plot_draws_train_and_val_of_every_run():
    failed = _history([0.1, 0.1], [0.1, 0.1])
    fixed = _history([0.4, 0.6, 0.8], [0.45, 0.62, 0.79])
    fig = plot_history({"plain": failed, "batch norm": fixed})
    loss_ax, acc_ax = fig.axes
    labels = [ln.get_label() for ln in acc_ax.lines if not ln.get_label().startswith("_")]
    assert labels == ["plain train", "plain val", "batch norm train", "batch norm val"]
    bn_val = next(ln for ln in acc_ax.lines if ln.get_label() == "batch norm val")
    assert list(bn_val.get_xdata()) == [1, 2, 3]
    assert list(bn_val.get_ydata()) == pytest.approx([45, 62, 79])
    assert bn_val.get_linestyle() == "--"
    bn_train_loss = next(ln for ln in loss_ax.lines if ln.get_label() == "batch norm train")
    assert list(bn_train_loss.get_ydata()) == pytest.approx([2.0, 1.9, 1.8])
    # one colour per run, shared by its train and val curves
    colour = {ln.get_label(): ln.get_color() for ln in acc_ax.lines}
    assert colour["plain train"] == colour["plain val"] != colour["batch norm train"]


def test_history_plot_skips_missing_validation():
    h = _history([0.3, 0.5], [None, None])
    h.val_loss = [None, None]
    fig = plot_history({"run": h})
    assert [ln.get_label() for ln in fig.axes[1].lines if not ln.get_label().startswith("_")] == ["run train"]


def test_history_plot_needs_runs():
    with pytest.raises(ValueError, match="empty"):
        plot_history({})
    with pytest.raises(ValueError, match="no epochs"):
        plot_history({"x": History()})


def test_confusion_matrix_plot_shows_row_percentages():
    labels = [0, 0, 0, 0, 1, 1]
    preds = [0, 0, 0, 1, 1, 1]
    fig = plot_confusion_matrix(preds, labels, ["cat", "dog"])
    ax = fig.axes[0]
    assert np.asarray(ax.images[0].get_array()).ravel().tolist() == pytest.approx([75, 25, 0, 100])
    assert [t.get_text() for t in ax.texts] == ["75", "25", "0", "100"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog"]
    assert "6 images" in ax.get_title()
    counts = plot_confusion_matrix(preds, labels, ["cat", "dog"], normalize=False).axes[0]
    assert [t.get_text() for t in counts.texts] == ["3", "1", "0", "2"]


def test_per_class_plot_bars_are_the_accuracies():
    labels = [0, 0, 1, 1, 2, 2, 2, 2]
    preds = [0, 1, 1, 1, 2, 2, 0, 0]
    ax = plot_per_class_accuracy(preds, labels, ["a", "b", "c"]).axes[0]
    assert [p.get_width() for p in ax.patches] == pytest.approx([50, 100, 50])
    overall = next(ln for ln in ax.lines if ln.get_label().startswith("overall"))
    assert overall.get_xdata()[0] == pytest.approx(62.5)
    assert "overall, 62.5%" in ax.get_title()
    assert [t.get_text() for t in ax.texts] == ["50.0%", "100.0%", "50.0%"]


def test_misclassified_grid_shows_only_the_mistakes():
    images = torch.arange(5, dtype=torch.uint8).view(5, 1, 1, 1).expand(5, 3, 4, 4).contiguous()
    labels = [0, 1, 2, 1, 0]
    preds = [0, 2, 2, 0, 1]                      # images 1, 3 and 4 are wrong
    fig = plot_misclassified(images, preds, labels, ["a", "b", "c"], n=2, ncols=4)
    shown = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in shown] == ["b\n→ c", "b\n→ a"]
    assert [int(ax.images[0].get_array()[0, 0, 0]) for ax in shown] == [1, 3]
    assert "first 2 of 3" in fig._suptitle.get_text()


def test_misclassified_grid_random_pick_is_seeded_and_only_mistakes():
    images = torch.arange(40, dtype=torch.uint8).view(40, 1, 1, 1).expand(40, 3, 2, 2).contiguous()
    labels = [i % 4 for i in range(40)]
    preds = [(i + 1) % 4 if i % 2 else i % 4 for i in range(40)]          # the odd images are wrong

    def shown(seed):
        fig = plot_misclassified(images, preds, labels, ["a", "b", "c", "d"], n=5, seed=seed)
        return [int(ax.images[0].get_array()[0, 0, 0]) for ax in fig.axes if ax.images], fig

    picked, fig = shown(3)
    assert len(picked) == 5 and all(i % 2 == 1 for i in picked) and picked == sorted(picked)
    assert picked != [1, 3, 5, 7, 9] and shown(3)[0] == picked
    assert "a random 5 of 20" in fig._suptitle.get_text()


def test_misclassified_grid_without_mistakes_and_bad_shapes():
    images = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    fig = plot_misclassified(images, [0, 1], [0, 1], ["a", "b"])
    assert "no misclassified" in fig.axes[0].texts[0].get_text()
    with pytest.raises(ValueError, match="must match"):
        plot_misclassified(images, [0], [0], ["a", "b"])
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        plot_misclassified(torch.zeros(2, 4, 4), [0, 1], [0, 1], ["a", "b"])


def test_plot_paper_table3_draws_one_series_per_training_scale():
    from vgg_helpers.configs import TABLE3
    from vgg_helpers.plots import plot_paper_table3

    ax = plot_paper_table3(TABLE3)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["train S = 256", "train S = 384", "train S = [256;512]"]
    xs, ys = ax.get_lines()[0].get_data()
    assert list(ys) == [r.top1 for r in TABLE3 if r.train_label() == "256"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["A", "A-LRN", "B", "C", "D", "E"]
    with pytest.raises(ValueError, match="PaperResult"):
        plot_paper_table3([])
    plt.close("all")


def test_plot_seed_spread_draws_the_mean_and_the_band():
    from vgg_helpers.plots import plot_seed_spread

    runs = [([0, 1, 2], [3.0, 2.0, 1.0]), ([0, 1, 2], [1.0, 2.0, 3.0]), ([0, 1], [2.0, 2.0])]
    ax = plot_seed_spread({"a": runs}, chance=2.3)
    mean = ax.get_lines()[0]
    assert list(mean.get_ydata()) == [2.0, 2.0]              # over the common length
    assert len(ax.collections) == 1                            # the min-max band
    assert any(line.get_linestyle() == ":" for line in ax.get_lines())   # the longer seeds go on, dotted
    assert "3 seeds" in mean.get_label()
    with pytest.raises(ValueError, match="no seed"):
        plot_seed_spread({"a": []})
    with pytest.raises(ValueError, match="2 x values but 1 y values"):
        plot_seed_spread({"a": [([0, 1], [1.0])]})
    plt.close("all")


# --- looking inside a trained network: filters, feature maps, Grad-CAM ---
def test_plot_filters_rgb_and_mean_over_channels():
    from vgg_helpers.plots import plot_filters

    torch.manual_seed(0)
    fig = plot_filters(torch.randn(5, 3, 2, 2), ncols=4)
    assert len(fig.axes) == 5 and [ax.get_title() for ax in fig.axes] == ["0", "1", "2", "3", "4"]
    rgb = [np.asarray(ax.get_images()[0].get_array()) for ax in fig.axes]
    assert all(a.shape == (2, 2, 3) and a.min() == pytest.approx(0) and a.max() == pytest.approx(1) for a in rgb)
    w = torch.randn(3, 8, 3, 3)
    fig = plot_filters(w)
    assert len(fig.axes) == 3
    image = fig.axes[1].get_images()[0]
    assert np.allclose(image.get_array(), w[1].mean(0).numpy(), atol=1e-6)
    low, high = image.get_clim()
    assert low == pytest.approx(-high) and high == pytest.approx(w[1].mean(0).abs().max().item())
    assert len(plot_filters(torch.nn.Conv2d(3, 2, 3)).axes) == 2          # the layer itself is accepted
    with pytest.raises(ValueError, match=r"\(out_channels, in_channels, k, k\)"):
        plot_filters(torch.zeros(3, 3, 3))
    with pytest.raises(ValueError, match="ncols"):
        plot_filters(torch.zeros(2, 3, 3, 3), ncols=0)


def test_plot_feature_maps_one_row_per_layer_of_the_first_image():
    from vgg_helpers.plots import plot_feature_maps

    maps = {"features.1": torch.arange(2 * 4 * 25, dtype=torch.float32).view(2, 4, 5, 5),
            "features.5": torch.rand(2, 10, 3, 3)}
    image = torch.zeros(3, 8, 8, dtype=torch.uint8)
    fig = plot_feature_maps(maps, image=image, n_channels=6)
    assert len(fig.axes) == 1 + 4 + 6
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert labels == ["input\n8x8", "features.1\n5x5", "features.5\n3x3"]
    assert np.array_equal(fig.axes[1 + 2].get_images()[0].get_array(), maps["features.1"][0, 2].numpy())
    assert fig.axes[1 + 2].get_title() == "channel 2"
    assert len(plot_feature_maps(maps, n_channels=2).axes) == 4
    with pytest.raises(ValueError, match=r"\(N, C, h, w\)"):
        plot_feature_maps({"a": torch.zeros(4, 5, 5)})
    with pytest.raises(ValueError, match="normalisation"):
        plot_feature_maps(maps, image=torch.full((3, 8, 8), -1.5))
    with pytest.raises(ValueError, match="one RGB image"):
        plot_feature_maps(maps, image=torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="empty"):
        plot_feature_maps({})


def test_plot_grad_cam_overlays_each_map_on_its_image():
    from vgg_helpers.plots import plot_grad_cam

    images = torch.randint(0, 256, (3, 3, 6, 8), dtype=torch.uint8)
    cams = torch.rand(3, 6, 8)
    fig = plot_grad_cam(images, cams, titles=["a", "b", "c"], ncols=2, alpha=0.4)
    assert len(fig.axes) == 3 and [ax.get_title() for ax in fig.axes] == ["a", "b", "c"]
    picture, heat = fig.axes[2].get_images()
    assert np.allclose(picture.get_array(), images[2].permute(1, 2, 0).numpy() / 255)
    assert np.allclose(heat.get_array(), cams[2].numpy()) and heat.get_cmap().name == "jet"
    assert heat.get_alpha() == 0.4 and heat.get_clim() == (0.0, 1.0)
    assert len(plot_grad_cam(images.float() / 255, cams).axes) == 3          # float images in [0, 1]
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        plot_grad_cam(images, torch.rand(3, 3, 4))
    with pytest.raises(ValueError, match=r"cams\[:, 0\]"):
        plot_grad_cam(images, cams[:, None])
    with pytest.raises(ValueError, match="3 strings"):
        plot_grad_cam(images, cams, titles=["a"])
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        plot_grad_cam(images[0], cams)
    with pytest.raises(ValueError, match="alpha"):
        plot_grad_cam(images, cams, alpha=2)
