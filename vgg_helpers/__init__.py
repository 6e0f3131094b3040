"""vgg_helpers: the helper package behind the book *VGG from Scratch*.

Two parts. **The library** is what the chapters teach, one module per concept, each readable beside its chapter
(the most used names are re-exported here; the rest are imported from their module):

* ``configs``     -- the paper's tables as plain data (no torch): Tables 1-2 (architecture), 3-5 (results);
* ``models``      -- the config-driven VGG builder (torchvision-compatible names);
* ``data``        -- CIFAR-10 online or offline, in memory; the one data path: ``make_loaders``, the normalisation,
  the crops and flips;
* ``training``    -- the engine: ``TrainConfig``, ``train``, ``History``, evaluation, test-time augmentation,
  checkpoints;
* ``diagnostics`` -- looking inside a model: shape traces, activation and gradient statistics, metrics;
* ``plots``       -- the book's figures (matplotlib);
* ``paper``       -- the paper's own methods: pre-initialisation, scale jittering, FC -> conv, dense and multi-crop
  evaluation;
* ``fast``        -- training fast: the speed settings of a training step (``SpeedSettings``, ``FastModel``);
* ``modern``      -- the modern VGG and its recipe: whitening layer, pool-first blocks, ``train_modern``;
* ``distributed`` -- training on several processes (torchrun + DDP, synced batch norm, kill-and-resume);
* ``exercises``   -- the check cells of the build-it exercises, one module per topic;
* ``settings``, ``runtime``, ``files``, ``checks`` -- the plumbing: the ``VGG_*`` environment variables, device,
  budget, threads and bfloat16, atomic writes, the checks of argument values;
* ``install_check`` -- is this machine ready for the book? (``python -m vgg_helpers.install_check``).

**The harness**, ``vgg_helpers.book``, is how the book records and replays its own experiments: the plans of every
run per budget, the stored runs and the drivers that train or load them, and one record command. The library never
imports it; a new chapter's driver goes there, a concept the learner reads goes in the library.

Benchmarks that record measurements live outside the package, in the repository's ``bench/`` folder.
"""
from .configs import (CONFIGS, PAPER_NAMES, TABLE2_PARAMS_MILLIONS, ParamCount, VGGConfig, layers_for,
                      params_from_config, resolve_arch, table1_blocks, weight_layers)
from .models import (VGG, build_vgg, count_parameters, init_weights, make_layers, vgg11, vgg11_lrn, vgg13,
                     vgg16, vgg16_1x1, vgg19)
from .diagnostics import (GradientRecorder, ShapeRow, activation_stats, confusion_matrix, format_shape_trace,
                          gradient_norms, per_class_accuracy, prediction_counts, shape_trace)
__version__ = "0.1.0"

# The figures load matplotlib (a third of a second) only when one is first asked for: a script that only trains,
# such as each process torchrun starts, does not pay for it.
_PLOTS = ("plot_confusion_matrix", "plot_history", "plot_misclassified", "plot_param_split",
          "plot_per_class_accuracy", "plot_receptive_fields", "plot_shape_trace")


def __getattr__(name: str):
    if name in _PLOTS:
        from . import plots
        return getattr(plots, name)
    raise AttributeError(f"module 'vgg_helpers' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PLOTS])
