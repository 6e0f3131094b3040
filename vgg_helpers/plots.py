"""The book's figures, drawn with matplotlib. Every plotting function draws on new or given axes and returns the
axes or the figure.

Sections, in chapter order:

* architecture plots (chapters 1-4) -- where the parameters live, receptive fields, shapes through the network;
* diagnostic plots (chapter 5) -- the data set, and what a network stuck at chance level does: its loss against
  ln(classes), its predictions, its gradient norms and activation statistics through the depth, an ablation;
* training plots (chapter 6) -- learning curves, confusion matrix, per-class accuracy, misclassified images;
* the paper's results and runs over several seeds (chapter 7) -- Table 3 as a figure, curves with their spread;
* looking inside a trained network -- its first filters, its feature maps, Grad-CAM heat maps.

The numbers behind the batch-norm chapter's plots (``confusion_matrix``, ``per_class_accuracy``) and those of
the look inside a trained network (``feature_maps``, ``grad_cam``) come from ``vgg_helpers.diagnostics``.
"""
from __future__ import annotations

import math as _math
from typing import Any, Mapping, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .checks import real_number, whole_number
from .diagnostics import as_int_array, check_shape_rows, confusion_matrix, per_class_accuracy

__all__ = [
    # architecture plots (chapters 1-4)
    "plot_param_split", "plot_receptive_fields", "plot_shape_trace",
    # diagnostic plots (chapter 5)
    "plot_image_grid", "plot_class_balance", "plot_loss_curves", "plot_prediction_counts", "plot_gradient_norms",
    "plot_activation_stats", "plot_ablation", "moving_average",
    # training plots (chapter 6)
    "plot_history", "plot_confusion_matrix", "plot_per_class_accuracy", "plot_misclassified",
    # the paper's results and runs over several seeds (chapter 7)
    "plot_paper_table3", "plot_seed_spread",
    # looking inside a trained network
    "plot_filters", "plot_feature_maps", "plot_grad_cam",
]


def _mapping(value: Any, name: str, example: str) -> Mapping:
    """``value`` when it is a non-empty dict-like mapping; else an error that shows the expected form."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict such as {example}; got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} is empty: pass a dict such as {example}")
    return value


def _classes(classes: Any) -> list:
    """The class names as a list; an error for a single string or an empty list."""
    if isinstance(classes, (str, bytes)) or not hasattr(classes, "__len__") or len(classes) == 0:
        raise ValueError(f"classes must be a non-empty list of class names, e.g. data.classes; got {classes!r:.80}")
    return list(classes)


def _pair(value: Any, label: Any, what: str) -> tuple:
    """A ``(steps, values)`` pair, or an error naming the entry."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"entry {label!r} must be a pair ({what}), e.g. (recorder.loss_steps, recorder.losses); "
                         f"got {value!r:.80}")
    return tuple(value)


# --- architecture plots (chapters 1-4) ---
# Where the parameters live, which input pixels a stack of convolutions sees, and the shapes through the network.

def plot_param_split(counts: Mapping[str, object], ax: Optional[Axes] = None) -> Axes:
    """Stacked bars: parameters (millions) in convolutions, batch norm and fully connected layers, per model.

    Args:
        counts: label -> ``ParamCount`` (anything with ``conv``, ``batch_norm`` and ``fc`` attributes),
            e.g. ``{"A (vgg11)": params_from_config("vgg11"), ...}``.
        ax: axes to draw on; a new figure when ``None``.
    Returns:
        The axes. Bars are stacked bottom-up conv, (batch norm, only when some model has it), FC; the FC share
        of each model is written above its bar.
    Raises:
        TypeError: ``counts`` is not a dict of ``ParamCount``.
        ValueError: ``counts`` is empty.
    """
    _mapping(counts, "counts", "{'vgg11': params_from_config('vgg11')}")
    for label, c in counts.items():
        if not all(hasattr(c, a) for a in ("conv", "batch_norm", "fc")):
            raise TypeError(f"counts[{label!r}] must be a ParamCount (with conv, batch_norm and fc), e.g. "
                            f"params_from_config('vgg11'); got {type(c).__name__}")
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    labels = list(counts)
    x = np.arange(len(labels))
    parts = [("conv", "convolutions", "tab:blue"), ("batch_norm", "batch norm", "tab:green"),
             ("fc", "fully connected", "tab:orange")]
    bottom = np.zeros(len(labels))
    for attr, label, color in parts:
        values = np.array([getattr(c, attr) for c in counts.values()], dtype=float) / 1e6
        if attr == "batch_norm" and not values.any():
            continue
        ax.bar(x, values, bottom=bottom, label=label, color=color)
        bottom += values
    for i, c in enumerate(counts.values()):
        total = c.conv + c.batch_norm + c.fc
        ax.text(i, bottom[i] + 1, f"FC {c.fc / total:.0%}", ha="center", va="bottom", fontsize=9)
    ax.set_xticks(x)
    ax.set_xticklabels(labels)
    ax.set_ylabel("parameters (millions)")
    ax.set_ylim(0, bottom.max() * 1.3)
    ax.legend(loc="upper left", ncol=3, frameon=False)
    ax.set_title("Where the parameters live")
    return ax


def plot_receptive_fields(masks: Mapping[str, object], axes: Optional[Sequence[Axes]] = None) -> Figure:
    """Show, for each stack of layers, which input pixels one output pixel depends on.

    Args:
        masks: title -> 2-D array (or tensor) that is non-zero where the output depends on the input pixel,
            e.g. the absolute input gradient of one output pixel.
        axes: one axes per mask; a new row of subplots when ``None``.
    Returns:
        The figure. Each panel shows the dependent pixels in dark and gives their bounding box in the title.
    Raises:
        TypeError: ``masks`` is not a dict.
        ValueError: ``masks`` is empty, a mask is not 2-D, or the axes do not match the masks.
    """
    _mapping(masks, "masks", "{'two 3x3 convs': grad}")
    if axes is None:
        fig, axes = plt.subplots(1, len(masks), figsize=(3 * len(masks), 3.2), squeeze=False)
        axes = axes[0]
    if len(axes) != len(masks):
        raise ValueError(f"need one axes per mask: got {len(axes)} axes for {len(masks)} masks")
    for ax, (title, mask) in zip(axes, masks.items()):
        m = np.asarray(mask.detach().cpu() if hasattr(mask, "detach") else mask) != 0
        if m.ndim != 2:
            raise ValueError(f"mask {title!r} must be 2-D (height, width); got shape {m.shape}")
        rows, cols = np.nonzero(m)
        ax.imshow(m, cmap="Greys", vmin=0, vmax=1)
        ax.set_xticks(np.arange(-0.5, m.shape[1], 1), minor=True)
        ax.set_yticks(np.arange(-0.5, m.shape[0], 1), minor=True)
        ax.grid(which="minor", color="lightgrey", linewidth=0.5)
        ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
        size = f"{np.ptp(rows) + 1}x{np.ptp(cols) + 1}" if rows.size else "none"
        ax.set_title(f"{title}\n{size} input pixels", fontsize=10)
    return axes[0].figure


def plot_shape_trace(rows: Sequence[object], axes: Optional[Sequence[Axes]] = None) -> Figure:
    """Plot channels and spatial size of every 4-D output along the network (conv, ReLU, pool, ...).

    Args:
        rows: a shape trace (``vgg_helpers.diagnostics.shape_trace``): items with ``type`` and ``output_shape``.
            Rows whose output is not ``(N, C, H, W)`` (the classifier) are skipped.
        axes: two axes (channels, spatial size); a new figure when ``None``.
    Returns:
        The figure: top panel channels C, bottom panel height H (log scale), one step per layer, with the
        max-pool layers marked.
    Raises:
        TypeError: ``rows`` is not a shape trace (a model, say).
        ValueError: no row has an ``(N, C, H, W)`` output, or ``axes`` is not two axes.
    """
    maps = [r for r in check_shape_rows(rows, "plot_shape_trace") if len(r.output_shape) == 4]
    if not maps:
        raise ValueError("no layer with an (N, C, H, W) output in the trace")
    if axes is None:
        fig, axes = plt.subplots(2, 1, figsize=(9, 4.5), sharex=True)
    if len(axes) != 2:
        raise ValueError(f"need two axes (channels, spatial size); got {len(axes)}")
    x = np.arange(len(maps))
    channels = [r.output_shape[1] for r in maps]
    side = [r.output_shape[2] for r in maps]
    pools = [i for i, r in enumerate(maps) if "MaxPool" in r.type]
    axes[0].step(x, channels, where="post", color="tab:blue")
    axes[0].set_ylabel("channels C")
    axes[1].step(x, side, where="post", color="tab:red")
    axes[1].set_yscale("log", base=2)
    axes[1].set_yticks(sorted(set(side)))
    axes[1].set_yticklabels([str(s) for s in sorted(set(side))])
    axes[1].set_ylabel("height = width")
    for ax in axes:
        for i in pools:
            ax.axvline(i, color="grey", linestyle=":", linewidth=1)
    axes[1].set_xlabel("layer (in call order; dotted lines: max-pool)")
    axes[0].set_title("Feature-map shape through the network")
    return axes[0].figure


# --- diagnostic plots (chapter 5) ---
# The data set, and what a network stuck at chance level does: its loss against ln(classes), its predictions,
# its gradient norms and activation statistics through the depth, and an ablation of the suspected causes.

def moving_average(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing moving average (the first points average over what is there so far).

    Args:
        values: a 1-D sequence, e.g. the loss of every step.
        window: number of points averaged (1 = unchanged).
    Returns:
        An array as long as ``values``.
    Raises:
        TypeError: ``window`` is not a whole number.
        ValueError: ``window`` < 1, or ``values`` is not 1-D.
    """
    window = whole_number("window", window, 1, "1 = unchanged")
    v = np.asarray(values, dtype=float)
    if v.ndim != 1:
        raise ValueError(f"values must be 1-D, e.g. the loss of every step; got shape {v.shape}")
    if v.size == 0 or window == 1:
        return v.copy()
    c = np.cumsum(np.insert(v, 0, 0.0))
    idx = np.arange(1, v.size + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


def plot_image_grid(images, labels: Sequence[int], classes: Sequence[str], ncols: int = 8,
                    fig: Optional[Figure] = None) -> Figure:
    """A grid of images with their class names as titles.

    Args:
        images: uint8 array or tensor ``(N, 3, H, W)`` (or ``(N, H, W, 3)``).
        labels: N class indices.
        classes: class names, indexed by label.
        ncols: images per row.
        fig: figure to draw into; a new one when ``None``.
    Returns:
        The figure (one axes per image, without ticks).
    Raises:
        TypeError: ``ncols`` is not a whole number.
        ValueError: shapes, labels or ``ncols`` that do not fit; the message says which.
    """
    ncols = whole_number("ncols", ncols, 1, "images per row, e.g. 8")
    classes = _classes(classes)
    arr = np.asarray(images.detach().cpu() if hasattr(images, "detach") else images)
    if arr.ndim != 4 or len(arr) == 0:
        raise ValueError(f"images must be (N, 3, H, W) or (N, H, W, 3) with N >= 1; got shape {arr.shape}")
    if arr.shape[1] == 3 and arr.shape[-1] != 3:
        arr = arr.transpose(0, 2, 3, 1)
    labels = as_int_array(labels, "labels").tolist()
    if len(labels) != len(arr):
        raise ValueError(f"{len(arr)} images but {len(labels)} labels")
    if min(labels) < 0 or max(labels) >= len(classes):
        raise ValueError(f"labels must lie in 0..{len(classes) - 1} (one per class name); "
                         f"got {min(labels)}..{max(labels)}")
    nrows = -(-len(arr) // ncols)
    fig = fig or plt.figure(figsize=(1.4 * ncols, 1.55 * nrows))
    for i, (img, lab) in enumerate(zip(arr, labels)):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.imshow(img, interpolation="nearest")
        ax.set_title(classes[lab], fontsize=9)
        ax.axis("off")
    return fig


def plot_class_balance(labels: Sequence[int], classes: Sequence[str], ax: Optional[Axes] = None,
                       title: str = "Images per class") -> Axes:
    """Bar chart of how many images each class has.

    Args:
        labels: class index of every image.
        classes: class names (their number fixes the number of bars).
        ax: axes to draw on; a new figure when ``None``.
        title: the axes title.
    Returns:
        The axes, with one bar per class and its count written on it.
    Raises:
        ValueError: ``classes`` is empty, or ``labels`` are not class indices in ``0 .. len(classes) - 1``.
    """
    classes = _classes(classes)
    labels = as_int_array(labels, "labels")
    if labels.size and labels.min() < 0:
        raise ValueError(f"labels must be class indices >= 0; got {labels.min()}")
    counts = np.bincount(labels, minlength=len(classes))
    if len(counts) != len(classes):
        raise ValueError(f"labels go up to {len(counts) - 1} but there are only {len(classes)} classes")
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3))
    bars = ax.bar(np.arange(len(classes)), counts, color="tab:blue")
    for b, c in zip(bars, counts):
        ax.text(b.get_x() + b.get_width() / 2, c, f"{c:,}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(np.arange(len(classes)))
    ax.set_xticklabels(classes, rotation=30, ha="right")
    ax.set_ylabel("images")
    ax.set_ylim(0, counts.max() * 1.15 if counts.max() else 1)
    ax.set_title(title)
    return ax


def plot_loss_curves(curves: Mapping[str, tuple], num_classes: Optional[int] = 10, smooth: int = 1,
                     ax: Optional[Axes] = None, title: str = "Training loss") -> Axes:
    """Loss against step for one or more runs, with the chance-level loss ln(num_classes) as a dashed line.

    Args:
        curves: label -> ``(steps, losses)``, e.g. ``{"VGG-16": (rec.loss_steps, rec.losses)}``.
        num_classes: draw the line ``ln(num_classes)`` (the loss of a uniform guess); ``None`` to leave it out.
        smooth: moving-average window applied to every curve (1 = raw).
        ax: axes to draw on; a new figure when ``None``.
        title: the axes title.
    Returns:
        The axes: one line per run in the given order, then the chance line (labelled ``ln 10 = 2.303``).
    Raises:
        TypeError: ``curves`` is not a dict.
        ValueError: ``curves`` is empty or holds something other than ``(steps, losses)`` pairs of equal length,
            or ``num_classes`` / ``smooth`` is not a whole number >= 1.
    """
    _mapping(curves, "curves", "{'label': (steps, losses)}")
    if num_classes is not None:
        num_classes = whole_number("num_classes", num_classes, 1, "10 for CIFAR-10, or None for no chance line")
    pairs = {label: _pair(curve, label, "steps, losses") for label, curve in curves.items()}
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    for label, (steps, losses) in pairs.items():
        if len(steps) != len(losses):
            raise ValueError(f"curve {label!r}: {len(steps)} steps but {len(losses)} losses")
        ax.plot(np.asarray(steps), moving_average(losses, smooth), label=label)
    if num_classes:
        chance = _math.log(num_classes)
        ax.axhline(chance, color="black", linestyle="--", linewidth=1,
                   label=f"ln {num_classes} = {chance:.3f} (uniform guess)")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("cross-entropy (nats)" + (f", {smooth}-step average" if smooth > 1 else ""))
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def plot_prediction_counts(counts: Mapping[str, Sequence[int]], classes: Sequence[str],
                           ax: Optional[Axes] = None, title: str = "Predicted classes") -> Axes:
    """Grouped bars: how often each class was predicted, for one or more models (or the true labels).

    Args:
        counts: label -> counts per class, e.g. ``{"true labels": ..., "VGG-16": prediction_counts(pred)}``.
        classes: class names.
        ax: axes to draw on; a new figure when ``None``.
        title: the axes title.
    Returns:
        The axes, one group of bars per class, one colour per entry of ``counts``.
    Raises:
        TypeError: ``counts`` is not a dict.
        ValueError: ``counts`` is empty, ``classes`` is empty, or an entry does not have one count per class.
    """
    _mapping(counts, "counts", "{'true labels': prediction_counts(labels)}")
    classes = _classes(classes)
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.5))
    k = len(counts)
    width = 0.8 / k
    x = np.arange(len(classes))
    for i, (label, c) in enumerate(counts.items()):
        c = np.asarray(c, dtype=float)
        if len(c) != len(classes):
            raise ValueError(f"{label!r} has {len(c)} counts for {len(classes)} classes")
        ax.bar(x - 0.4 + width * (i + 0.5), c, width=width, label=label)
    ax.set_xticks(x)
    ax.set_xticklabels(classes, rotation=30, ha="right")
    ax.set_ylabel("images")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def plot_gradient_norms(norms: Mapping[str, Mapping[str, float]], ax: Optional[Axes] = None,
                        title: str = "Gradient norm of every weight layer") -> Axes:
    """Gradient norm against depth (log scale), one line per entry.

    Args:
        norms: label -> ``{layer name: gradient norm}`` in depth order (``diagnostics.gradient_norms`` or one
            record of a ``GradientRecorder``), e.g. ``{"step 0": rec.norms[0], "step 100": rec.norms[-1]}``.
        ax: axes to draw on; a new figure when ``None``.
        title: the axes title.
    Returns:
        The axes: x is the weight layer's depth (1 = first conv), y the L2 norm of its weight's gradient.
    Raises:
        TypeError: ``norms`` is not a dict of ``{layer name: norm}`` dicts.
        ValueError: ``norms`` is empty.
    """
    _mapping(norms, "norms", "{'step 0': gradient_norms(model)}")
    for label, layer_norms in norms.items():
        if not isinstance(layer_norms, Mapping):
            raise TypeError(f"norms[{label!r}] must be a dict layer name -> norm (gradient_norms(model) or one "
                            f"record of a GradientRecorder); got {type(layer_norms).__name__}")
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    for label, layer_norms in norms.items():
        values = np.asarray(list(layer_norms.values()), dtype=float)
        depth = np.arange(1, len(values) + 1)
        ax.plot(depth, np.where(values > 0, values, np.nan), marker="o", markersize=3, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("weight layer (1 = first conv, last = output layer)")
    ax.set_ylabel("‖gradient of weight‖₂")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax



def _two_axes(axes: Any, what: str, **subplots: Any) -> Any:
    """The caller's pair of axes, or a new figure with two side by side (``subplots``: ``plt.subplots`` options)."""
    if axes is None:
        _, axes = plt.subplots(1, 2, **subplots)
    if len(axes) != 2:
        raise ValueError(f"need two axes{what}; got {len(axes)}")
    return axes


def plot_activation_stats(stats: Mapping[str, Sequence[Mapping]], axes: Optional[Sequence[Axes]] = None) -> Figure:
    """Activation statistics through the depth: the spread of every layer's output, and the share of zeros.

    Args:
        stats: label -> the output of ``diagnostics.activation_stats`` (dicts with ``depth``, ``std``,
            ``zero_frac``), e.g. ``{"paper init": ..., "Kaiming init": ...}``.
        axes: two axes; a new figure when ``None``.
    Returns:
        The figure: left, the standard deviation of each weight layer's output (log scale); right, the
        fraction of units a ReLU switches off (the last layer, without ReLU, is left out).
    Raises:
        TypeError: ``stats`` is not a dict of ``activation_stats`` outputs.
        ValueError: ``stats`` is empty.
    """
    _mapping(stats, "stats", "{'paper init': activation_stats(model, x)}")
    for label, rows in stats.items():
        if isinstance(rows, Mapping) or not all(isinstance(r, Mapping) and {"depth", "std", "zero_frac"} <= set(r)
                                                for r in rows):
            raise TypeError(f"stats[{label!r}] must be the list that activation_stats(model, x) returns (dicts with "
                            f"depth, std and zero_frac)")
    axes = _two_axes(axes, "", figsize=(11, 3.8))
    for label, rows in stats.items():
        depth = np.array([r["depth"] for r in rows])
        std = np.array([r["std"] for r in rows], dtype=float)
        zeros = np.array([r["zero_frac"] for r in rows], dtype=float)
        axes[0].plot(depth, np.where(std > 0, std, np.nan), marker="o", markersize=3, label=label)
        axes[1].plot(depth, zeros, marker="o", markersize=3, label=label)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("std of the layer's output")
    axes[0].set_title("Signal size through the depth")
    axes[1].set_ylim(0, 1.02)
    axes[1].set_ylabel("fraction of zeros after ReLU")
    axes[1].set_title("Units switched off")
    for ax in axes:
        ax.set_xlabel("weight layer (depth)")
        ax.legend(fontsize=8)
    return axes[0].figure


def plot_ablation(curves: Mapping[str, Any], accuracies: Mapping[str, Any], num_classes: int = 10,
                  smooth: int = 10, axes: Optional[Sequence[Axes]] = None, per_seed: bool = False) -> Figure:
    """One comparison figure for an ablation: the loss curves of all runs, and their final accuracies.

    Args:
        curves: run label -> ``(steps, losses)`` (training loss of every step); with ``per_seed``, a list of such
            pairs, one per seed.
        accuracies: run label -> final validation accuracy, a fraction (same labels; same order is nicest); with
            ``per_seed``, a list of fractions, one per seed.
        num_classes: draws chance level: ln(num_classes) on the loss panel, 1/num_classes on the accuracy panel.
        smooth: moving-average window for the loss curves.
        axes: two axes; a new figure when ``None``.
        per_seed: every run was repeated over seeds: the loss panel shows each label's mean curve and the band
            between its lowest and highest seed (``plot_seed_spread``); the bars show the mean accuracy, a dot per
            seed and the standard deviation as an error bar.
    Returns:
        The figure: left, the smoothed losses with the ln(num_classes) line; right, horizontal bars of the
        accuracies (value written beside each bar) with the chance line.
    Raises:
        TypeError: ``curves`` or ``accuracies`` is not a dict.
        ValueError: ``accuracies`` is empty or not fractions in [0, 1] (percentages, say), or ``num_classes`` is
            not a whole number >= 1.
    """
    _mapping(accuracies, "accuracies", "{'paper init': 0.1}")
    num_classes = whole_number("num_classes", num_classes, 1, "10 for CIFAR-10")
    seeds_of = {k: (list(v) if per_seed and isinstance(v, (list, tuple)) else [v]) for k, v in accuracies.items()}
    for label, values in seeds_of.items():
        if not values:
            raise ValueError(f"accuracies[{label!r}] holds no seed")
        for a in values:
            try:
                v = _math.nan if a is None else float(a)
            except (TypeError, ValueError):
                v = -1.0
            if isinstance(a, (bool, str)) or not (_math.isnan(v) or 0 <= v <= 1):
                raise ValueError(f"accuracies are fractions in [0, 1] (nan for a run without one); got {a!r} for "
                                 f"{label!r}. Divide percentages by 100.")
    axes = _two_axes(axes, "", figsize=(13, 4.5), gridspec_kw={"width_ratios": [1.4, 1]})
    if per_seed:
        plot_seed_spread(curves, ax=axes[0], smooth=smooth, chance=_math.log(num_classes),
                         title="Training loss (mean; band: lowest to highest seed)")
    else:
        plot_loss_curves(curves, num_classes=num_classes, smooth=smooth, ax=axes[0], title="Training loss")
    labels = list(accuracies)
    per = [np.array([_math.nan if a is None else float(a) for a in seeds_of[k]], dtype=float) for k in labels]
    acc = np.array([np.nanmean(v) if np.isfinite(v).any() else _math.nan for v in per])
    sd = np.array([np.nanstd(v, ddof=1) if np.isfinite(v).sum() > 1 else 0.0 for v in per])
    y = np.arange(len(labels))[::-1]
    colors = [f"C{list(curves).index(k) % 10}" if k in curves else "tab:grey" for k in labels]
    axes[1].barh(y, np.nan_to_num(acc) * 100, color=colors, xerr=sd * 100 if per_seed else None, capsize=3)
    for yi, a, s, v in zip(y, acc, sd, per):
        if per_seed:
            axes[1].plot(v * 100, np.full(len(v), yi), "k.", markersize=4)
        text = "n/a" if _math.isnan(a) else (f"{a:.1%} ± {s:.1%}" if per_seed and len(v) > 1 else f"{a:.1%}")
        axes[1].text(np.nan_to_num(a + s) * 100 + 0.5, yi, text, va="center", fontsize=8)
    axes[1].axvline(100 / num_classes, color="black", linestyle="--", linewidth=1, label="chance")
    axes[1].set_yticks(y)
    axes[1].set_yticklabels(labels, fontsize=8)
    axes[1].set_xlabel("validation accuracy (%)" + (", mean ± sd over seeds" if per_seed else ""))
    axes[1].set_xlim(0, max(100 / num_classes, np.nanmax(np.nan_to_num(acc + sd)) * 100) * 1.35)
    axes[1].set_title("Accuracy at the end of the run")
    axes[1].legend(fontsize=8, loc="lower right")
    axes[0].figure.tight_layout()
    return axes[0].figure


# --- training plots (chapter 6) ---
# Learning curves of one or several runs, and where a trained classifier goes wrong: confusion matrix, per-class
# accuracy and a grid of misclassified images. Inputs are plain data (histories, label arrays, uint8 images).

def plot_history(histories: Mapping[str, Any], axes: Optional[Sequence[Axes]] = None) -> Figure:
    """Learning curves of one or more runs: loss (left) and accuracy (right) per epoch.

    Args:
        histories: label -> a ``training.History`` (anything with ``epoch``, ``train_loss``, ``train_acc``,
            ``val_loss`` and ``val_acc`` lists), e.g. ``{"plain (chapter 5)": failed, "batch norm": fixed}``.
            Validation values that are ``None`` (a run without a validation set) are left out.
        axes: two axes (loss, accuracy); a new figure when ``None``.
    Returns:
        The figure. Each run has one colour; training curves are solid, validation curves dashed (labels
        ``"<run> train"`` and ``"<run> val"``). Accuracy is in percent; the dotted line is chance (10%).
    Raises:
        TypeError: ``histories`` is not a dict of ``History`` objects.
        ValueError: ``histories`` is empty, or a history has no epochs.
    """
    _mapping(histories, "histories", "{'batch norm': history}")
    needed = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc")
    for label, h in histories.items():
        missing = [a for a in needed if not hasattr(h, a)]
        if missing:
            raise TypeError(f"histories[{label!r}] must be a training.History (or have {', '.join(needed)}); "
                            f"got {type(h).__name__} without {', '.join(missing)}")
    axes = _two_axes(axes, " (loss, accuracy)", figsize=(11, 4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, h) in enumerate(histories.items()):
        if not h.epoch:
            raise ValueError(f"history {label!r} has no epochs")
        color = colors[i % len(colors)]
        for split, style in (("train", "-"), ("val", "--")):
            loss, acc = getattr(h, f"{split}_loss"), getattr(h, f"{split}_acc")
            pts = [(e, lo, a) for e, lo, a in zip(h.epoch, loss, acc) if lo is not None and a is not None]
            if not pts:
                continue
            e, lo, a = (list(v) for v in zip(*pts))
            marker = "o" if len(e) < 30 else None
            axes[0].plot(e, lo, style, color=color, marker=marker, markersize=3, label=f"{label} {split}")
            axes[1].plot(e, [100 * v for v in a], style, color=color, marker=marker, markersize=3,
                         label=f"{label} {split}")
    axes[1].axhline(10, color="grey", linestyle=":", linewidth=1)
    axes[0].set_ylabel("cross-entropy loss (nats)")
    axes[1].set_ylabel("accuracy (%)")
    axes[1].set_ylim(0, 100)
    for ax, title in zip(axes, ("Loss", "Accuracy (dotted: chance)")):
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8, loc="lower right")
    return axes[0].figure


def plot_confusion_matrix(preds: Any, labels: Any, classes: Sequence[str], normalize: bool = True,
                          ax: Optional[Axes] = None) -> Figure:
    """Draw the confusion matrix as a heat map with the value written in every cell.

    Args:
        preds, labels: predicted and true class indices.
        classes: class names, in index order (their number sets ``num_classes``).
        normalize: show each row as percent of its true class (rows sum to 100); ``False`` shows counts.
        ax: axes to draw on; a new figure when ``None``.
    Returns:
        The figure: rows are true classes, columns predicted classes.
    Raises:
        ValueError: ``classes`` is empty, or ``preds`` / ``labels`` are not class indices of it (see
            ``diagnostics.confusion_matrix``).
    """
    m = confusion_matrix(preds, labels, len(_classes(classes)))
    if normalize:
        shown = 100 * m / np.maximum(m.sum(axis=1, keepdims=True), 1)
        fmt, unit = "{:.0f}", "% of the true class"
    else:
        shown, fmt, unit = m, "{:d}", "images"
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 6.5))
    im = ax.imshow(shown, cmap="Blues")
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=unit)
    threshold = shown.max() / 2 if shown.size else 0
    for (t, p), v in np.ndenumerate(shown):
        ax.text(p, t, fmt.format(v), ha="center", va="center", fontsize=8,
                color="white" if v > threshold else "black")
    ax.set_xticks(range(len(classes)))
    ax.set_xticklabels(classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)))
    ax.set_yticklabels(classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"Confusion matrix ({int(m.sum()):,} images)")
    return ax.figure


def plot_per_class_accuracy(preds: Any, labels: Any, classes: Sequence[str], ax: Optional[Axes] = None) -> Figure:
    """Horizontal bars: accuracy of every class, with the overall accuracy as a vertical line.

    Args:
        preds, labels: predicted and true class indices.
        classes: class names, in index order.
        ax: axes to draw on; a new figure when ``None``.
    Returns:
        The figure; bar lengths are percentages, written at the end of each bar; the title gives the overall
        accuracy.
    Raises:
        ValueError: as ``plot_confusion_matrix``.
    """
    acc = 100 * per_class_accuracy(preds, labels, len(_classes(classes)))
    overall = 100 * float(np.mean(as_int_array(preds, "preds") == as_int_array(labels, "labels")))
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    y = np.arange(len(classes))
    ax.barh(y, np.nan_to_num(acc), color="tab:blue")
    for i, a in enumerate(acc):
        ax.text((0 if np.isnan(a) else a) + 1, i, "n/a" if np.isnan(a) else f"{a:.1f}%", va="center", fontsize=8)
    ax.axvline(overall, color="tab:red", linestyle="--", linewidth=1, label=f"overall {overall:.1f}%")
    ax.set_yticks(y)
    ax.set_yticklabels(classes)
    ax.invert_yaxis()
    ax.set_xlim(0, 105)
    ax.set_xlabel("accuracy (%)")
    ax.set_title(f"Accuracy per class (dashed line: overall, {overall:.1f}%)")
    return ax.figure


def plot_misclassified(images: Any, preds: Any, labels: Any, classes: Sequence[str], n: int = 24,
                       ncols: int = 8, seed: Optional[int] = None) -> Figure:
    """A grid of ``n`` images whose prediction is wrong, titled with the true and predicted class.

    Args:
        images: uint8 images ``(N, 3, H, W)`` (tensor or array), in the same order as ``preds`` / ``labels``
            (e.g. ``data.test_images``); float images in ``[0, 1]`` are accepted too.
        preds, labels: predicted and true class indices.
        classes: class names, in index order.
        n: at most this many images are shown.
        ncols: images per row.
        seed: show ``n`` mistakes drawn at random with this seed (in their original order) instead of the first
            ``n``; useful when the images are sorted by class.
    Returns:
        The figure; each panel's title reads ``"true\\n→ predicted"``. With no mistakes it says so.
    Raises:
        TypeError: ``n`` / ``ncols`` / ``seed`` that are not whole numbers.
        ValueError: shapes or lengths that do not match, class indices outside ``classes``, or ``n`` /
            ``ncols`` / ``seed`` below 1, 1, 0.
    """
    n = whole_number("n", n, 1, "images shown, e.g. 24")
    ncols = whole_number("ncols", ncols, 1, "images per row, e.g. 8")
    if seed is not None:
        seed = whole_number("seed", seed, 0, "e.g. 0, or None for the first n mistakes")
    classes = _classes(classes)
    p, t = as_int_array(preds, "preds"), as_int_array(labels, "labels")
    for name, arr in (("preds", p), ("labels", t)):
        if arr.size and (arr.min() < 0 or arr.max() >= len(classes)):
            raise ValueError(f"{name} must lie in 0..{len(classes) - 1} (one per class name); "
                             f"got {arr.min()}..{arr.max()}")
    imgs = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
    if imgs.ndim != 4 or imgs.shape[1] not in (1, 3):
        raise ValueError(f"images must be shaped (N, 3, H, W); got {imgs.shape}")
    if not len(imgs) == len(p) == len(t):
        raise ValueError(f"{len(imgs)} images, {len(p)} predictions and {len(t)} labels: they must match")
    wrong = np.flatnonzero(p != t)
    if seed is not None and len(wrong) > n:
        wrong = np.sort(np.random.default_rng(seed).choice(wrong, size=n, replace=False))
    wrong = wrong[:n]
    if len(wrong) == 0:
        fig, ax = plt.subplots(figsize=(4, 1))
        ax.axis("off")
        ax.text(0.5, 0.5, "no misclassified images", ha="center", va="center")
        return fig
    rows = -(-len(wrong) // ncols)
    fig, axes = plt.subplots(rows, ncols, figsize=(1.4 * ncols, 1.75 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong):
        img = imgs[i].transpose(1, 2, 0)
        ax.imshow(img if img.shape[2] == 3 else img[..., 0], cmap=None if img.shape[2] == 3 else "gray")
        ax.set_title(f"{classes[t[i]]}\n→ {classes[p[i]]}", fontsize=8)
    which = "first" if seed is None else "a random"
    fig.suptitle(f"Misclassified images ({which} {len(wrong)} of {int((p != t).sum())}): true → predicted",
                 fontsize=10)
    fig.tight_layout()
    return fig


# ---- the paper's results and runs over several seeds (chapter 7) ----


def plot_paper_table3(rows: Sequence[Any], ax: Optional[Axes] = None) -> Axes:
    """The paper's Table 3 as a figure: top-1 validation error of each configuration, per training scale S.

    Args:
        rows: ``vgg_helpers.configs.TABLE3`` (``PaperResult`` rows: ``paper_name``, ``train_label()``,
            ``top1``).
        ax: axes to draw on; a new figure when ``None``.
    Returns:
        The axes: one marker style per training scale, configurations A ... E along the x axis in the table's
        order, one point per row (A and A-LRN were trained at S = 256 only).
    Raises:
        ValueError: ``rows`` is empty or holds something other than ``PaperResult`` rows.
    """
    rows = list(rows)
    if not rows or not all(hasattr(r, "paper_name") and hasattr(r, "top1") for r in rows):
        raise ValueError("rows must be a non-empty sequence of PaperResult rows, e.g. configs.TABLE3")
    configs = list(dict.fromkeys(r.paper_name for r in rows))
    scales = list(dict.fromkeys(r.train_label() for r in rows))
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.6))
    markers = "osD^v"
    for i, scale in enumerate(scales):
        pts = [(configs.index(r.paper_name), r.top1) for r in rows if r.train_label() == scale]
        xs, ys = zip(*pts)
        ax.plot(xs, ys, marker=markers[i % len(markers)], linestyle="-" if len(pts) > 1 else "none",
                label=f"train S = {scale}")
    ax.set_xticks(range(len(configs)), configs)
    ax.set_xlabel("configuration (Table 1): A = VGG-11 ... D = VGG-16, E = VGG-19")
    ax.set_ylabel("top-1 val. error (%)")
    ax.set_title("The paper's Table 3: one test scale (ILSVRC-2012 validation set)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax


def plot_seed_spread(curves: Mapping[str, Sequence[tuple]], ax: Optional[Axes] = None, smooth: int = 1,
                     chance: Optional[float] = None, ylabel: str = "training loss (nats)",
                     xlabel: str = "optimiser step", title: str = "") -> Axes:
    """Runs repeated over several seeds: the mean curve of each, with the band from the lowest to the highest seed.

    Args:
        curves: label -> one ``(xs, ys)`` pair per seed, e.g. ``{"VGG-16, Xavier": [(steps, losses), ...]}``;
            a seed whose curve is shorter (a run that diverged) is drawn as far as it goes, dotted.
        ax: axes to draw on; a new figure when ``None``.
        smooth: moving-average window applied to every seed's curve first (1 = raw).
        chance: draw this value as a dashed line (e.g. ln 10 for a loss, 0.1 for an accuracy).
        ylabel, xlabel, title: axis labels and title.
    Returns:
        The axes, one colour per label; the legend says how many seeds each label has.
    Raises:
        TypeError: ``curves`` is not a dict.
        ValueError: ``curves`` is empty, a label has no seed, or a pair's lengths differ.
    """
    _mapping(curves, "curves", "{'label': [(steps, losses) for each seed]}")
    smooth = whole_number("smooth", smooth, 1)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    for label, seeds in curves.items():
        seeds = [_pair(c, label, "xs, ys") for c in seeds]
        if not seeds:
            raise ValueError(f"curve {label!r} has no seed")
        for xs, ys in seeds:
            if len(xs) != len(ys):
                raise ValueError(f"curve {label!r}: {len(xs)} x values but {len(ys)} y values")
        n = min(len(ys) for _, ys in seeds)
        full = [np.asarray(moving_average(ys, smooth)[:n], dtype=float) for _, ys in seeds]
        xs = np.asarray(seeds[0][0][:n], dtype=float)
        stack = np.vstack(full) if n else np.zeros((len(seeds), 0))
        line, = ax.plot(xs, stack.mean(0), label=f"{label} ({len(seeds)} seeds)")
        if len(seeds) > 1:
            ax.fill_between(xs, stack.min(0), stack.max(0), color=line.get_color(), alpha=0.2, linewidth=0)
        for sx, sy in seeds:
            if len(sy) > n:
                ax.plot(np.asarray(sx, dtype=float), moving_average(sy, smooth), color=line.get_color(), linestyle=":")
    if chance is not None:
        ax.axhline(chance, color="black", linestyle="--", linewidth=1, label=f"chance: {chance:.3g}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


# ---- looking inside a trained network ----
# The first layer's filters, the feature maps of a few layers (from diagnostics.feature_maps) and Grad-CAM heat maps
# over the images (from diagnostics.grad_cam).

def _numpy(value: Any) -> np.ndarray:
    """A NumPy array from an array, a list or a (CPU or GPU, any float dtype) tensor."""
    if hasattr(value, "detach"):
        t = value.detach().cpu()
        return (t.float() if t.is_floating_point() else t).numpy()
    return np.asarray(value)


def _unit_range(arr: np.ndarray, name: str) -> np.ndarray:
    """Images as floats in [0, 1]: uint8 divided by 255, floats checked (normalised images are refused)."""
    if arr.dtype == np.uint8:
        return arr.astype(float) / 255
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be uint8 or float images; got dtype {arr.dtype}")
    arr = arr.astype(float)
    if arr.size and not (np.isfinite(arr).all() and arr.min() >= -1e-3 and arr.max() <= 1 + 1e-3):
        raise ValueError(f"{name} must be uint8 or float in [0, 1]; got values from {np.nanmin(arr):.3g} to "
                         f"{np.nanmax(arr):.3g}: undo the normalisation first (x * std + mean), or pass the uint8 "
                         f"images (e.g. data.test_images)")
    return np.clip(arr, 0.0, 1.0)


def _images_hwc(images: Any, name: str) -> np.ndarray:
    """A batch ``(N, 3, H, W)`` or ``(N, H, W, 3)`` as ``(N, H, W, 3)`` floats in [0, 1]."""
    arr = _numpy(images)
    if arr.ndim != 4 or len(arr) == 0 or 3 not in (arr.shape[1], arr.shape[-1]):
        raise ValueError(f"{name} must be a batch of RGB images (N, 3, H, W) with N >= 1; got shape {arr.shape}")
    if arr.shape[1] == 3 and arr.shape[-1] != 3:
        arr = arr.transpose(0, 2, 3, 1)
    return _unit_range(arr, name)


def plot_filters(weight: Any, ncols: int = 8, ax_size: float = 1.0) -> Figure:
    """Show a convolution's filters, one panel each, titled with the filter's index.

    Filters over 3 input channels (a first layer, e.g. the modern VGG's whitening layer) are shown as RGB
    images, each filter min-max scaled to [0, 1] on its own; filters over any other number of channels are shown
    as their mean over the input channels, in a diverging colour map (red > 0 > blue) symmetric about 0, each
    filter on its own scale.

    Args:
        weight: the weight ``(out_channels, in_channels, k, k)`` as a tensor or array, e.g.
            ``model.features[0].weight`` (a ``Conv2d`` itself is accepted too); slice it, e.g. ``weight[:32]``,
            to show fewer filters.
        ncols: panels per row.
        ax_size: width of one panel in inches.
    Returns:
        The figure, one axes per filter.
    Raises:
        TypeError: ``ncols`` is not a whole number or ``ax_size`` not a number.
        ValueError: ``weight`` is not ``(out, in, k, k)`` with at least one filter, or ``ncols`` / ``ax_size``
            are below 1 / not positive.
    """
    ncols = whole_number("ncols", ncols, 1, "panels per row, e.g. 8")
    ax_size = real_number("ax_size", ax_size, 0.0, low_ok=False, expected="inches per panel, a number > 0, e.g. 1.0")
    if not hasattr(weight, "shape") and hasattr(weight, "weight"):
        weight = weight.weight                       # a Conv2d
    w = _numpy(weight)
    if w.ndim != 4 or 0 in w.shape:
        raise ValueError(f"weight must be a convolution's weight (out_channels, in_channels, k, k), e.g. "
                         f"model.features[0].weight; got shape {w.shape}")
    w = w.astype(float)
    out, cin, kh, kw = w.shape
    ncols = min(ncols, out)
    nrows = -(-out // ncols)
    fig = plt.figure(figsize=(ax_size * ncols, ax_size * 1.2 * nrows + 0.4))
    for i, f in enumerate(w):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        if cin == 3:
            img = f.transpose(1, 2, 0)
            lo, hi = img.min(), img.max()
            ax.imshow((img - lo) / (hi - lo) if hi > lo else np.full_like(img, 0.5), interpolation="nearest")
        else:
            mean = f.mean(axis=0)
            lim = float(np.abs(mean).max()) or 1.0
            ax.imshow(mean, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_title(str(i), fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    how = "RGB, each scaled to [0, 1]" if cin == 3 else f"mean over the {cin} input channels, red > 0 > blue"
    fig.suptitle(f"{out} filters of {cin}x{kh}x{kw} ({how})", fontsize=10)
    return fig


def plot_feature_maps(maps: Mapping[str, Any], image: Any = None, n_channels: int = 6) -> Figure:
    """The first few channels of each layer's feature maps for the first image of the batch, one row per layer.

    Args:
        maps: layer name -> its output ``(N, C, h, w)``, e.g. ``feature_maps(model, x)``; only image 0 is shown.
        image: shown alone in a first row when given, e.g. the input image before normalisation: ``(3, H, W)``
            (or ``(H, W, 3)``), uint8 or float in ``[0, 1]``.
        n_channels: at most this many channels per layer (the first ones), each on its own colour scale.
    Returns:
        The figure, one axes per panel shown (a layer with fewer channels has fewer panels); each row is labelled
        with the layer's name and its maps' size ``h x w``, each panel titled with its channel.
    Raises:
        TypeError: ``maps`` is not a dict, or ``n_channels`` not a whole number.
        ValueError: ``maps`` is empty, a map is not ``(N, C, h, w)``, ``image`` is not one RGB image in
            ``[0, 1]`` or uint8, or ``n_channels`` < 1.
    """
    _mapping(maps, "maps", "feature_maps(model, x)")
    n_channels = whole_number("n_channels", n_channels, 1, "channels per layer, e.g. 6")
    rows = {}
    for name, m in maps.items():
        a = _numpy(m)
        if a.ndim != 4 or 0 in a.shape:
            raise ValueError(f"maps[{name!r}] must be a batch of feature maps (N, C, h, w), as feature_maps "
                             f"returns; got shape {a.shape}")
        rows[name] = a[0, :n_channels].astype(float)
    img = None
    if image is not None:
        arr = _numpy(image)
        if arr.ndim == 4 and len(arr) == 1:
            arr = arr[0]
        if arr.ndim != 3 or 3 not in (arr.shape[0], arr.shape[-1]):
            raise ValueError(f"image must be one RGB image (3, H, W), e.g. images[0]; got shape {arr.shape}")
        img = _images_hwc(arr[None], "image")[0]
    ncols = max(len(a) for a in rows.values())
    nrows = len(rows) + (img is not None)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.5 * ncols + 0.8, 1.55 * nrows), squeeze=False)
    r = 0
    if img is not None:
        axes[0, 0].imshow(img, interpolation="nearest")
        axes[0, 0].set_ylabel(f"input\n{img.shape[0]}x{img.shape[1]}", fontsize=8)
        for ax in axes[0, 1:]:
            fig.delaxes(ax)
        r = 1
    for name, a in rows.items():
        for c, ax in enumerate(axes[r]):
            if c >= len(a):
                fig.delaxes(ax)
                continue
            ax.imshow(a[c], cmap="viridis", interpolation="nearest")
            ax.set_title(f"channel {c}", fontsize=7)
        axes[r, 0].set_ylabel(f"{name}\n{a.shape[1]}x{a.shape[2]}", fontsize=8)
        r += 1
    for ax in fig.axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_grad_cam(images: Any, cams: Any, titles: Optional[Sequence[str]] = None, ncols: int = 4,
                  alpha: float = 0.5) -> Figure:
    """Each image with its Grad-CAM heat map laid over it (jet colour map: red where the class's evidence is).

    Args:
        images: ``(N, 3, H, W)`` (or ``(N, H, W, 3)``), uint8 or float in ``[0, 1]``: the images before
            normalisation, e.g. ``data.test_images[:8]``.
        cams: the maps ``(N, H, W)`` in ``[0, 1]``, e.g. ``grad_cam(model, x, layer)`` for the same images.
        titles: one title per image (e.g. ``"cat (p = 0.93)"``), shown over it; ``None`` for none.
        ncols: panels per row.
        alpha: opacity of the heat map (0: the image alone, 1: the map alone).
    Returns:
        The figure, one axes per image (without ticks).
    Raises:
        TypeError: ``ncols`` is not a whole number or ``alpha`` not a number.
        ValueError: shapes that do not match (the message shows both), ``titles`` of the wrong length, images
            outside ``[0, 1]``, ``ncols`` < 1 or ``alpha`` outside ``[0, 1]``.
    """
    ncols = whole_number("ncols", ncols, 1, "panels per row, e.g. 4")
    alpha = real_number("alpha", alpha, 0.0, 1.0, expected="the heat map's opacity, a number in [0, 1], e.g. 0.5")
    imgs = _images_hwc(images, "images")
    c = _numpy(cams)
    if c.ndim == 4 and c.shape[1] == 1:
        raise ValueError(f"cams must be (N, H, W), as grad_cam returns; got shape {c.shape}: pass cams[:, 0]")
    if c.ndim != 3 or c.shape != imgs.shape[:3]:
        raise ValueError(f"cams must be (N, H, W) = {imgs.shape[:3]}, one map of the images' size per image, as "
                         f"grad_cam(model, x, layer) returns for the same images; got shape {c.shape}")
    if titles is not None:
        if isinstance(titles, (str, bytes)) or not hasattr(titles, "__len__") or len(titles) != len(imgs):
            raise ValueError(f"titles must be a list of {len(imgs)} strings, one per image (or None); "
                             f"got {titles!r:.80}")
    ncols = min(ncols, len(imgs))
    nrows = -(-len(imgs) // ncols)
    fig = plt.figure(figsize=(2.2 * ncols, 2.4 * nrows))
    for i, (img, cam) in enumerate(zip(imgs, c.astype(float))):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.imshow(img, interpolation="nearest")
        ax.imshow(cam, cmap="jet", alpha=alpha, vmin=0.0, vmax=1.0, interpolation="bilinear")
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=9)
        ax.axis("off")
    return fig
