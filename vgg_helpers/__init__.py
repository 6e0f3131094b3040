"""vgg_helpers: the helper package behind the book *VGG from Scratch*.

Modules, one per concern:

* ``configs``     -- Table 1 and Table 2 of the paper as plain data (no torch);
* ``models``      -- the config-driven VGG builder.
* ``diagnostics`` -- looking inside a model (shape trace / layer summary);
* ``plots``       -- the book's figures (matplotlib).
* ``bench``       -- throughput and time-to-accuracy benchmarks, chapter 7's fast-training helpers
                     (``python -m vgg_helpers.bench``; imported on demand, not here).
"""
from .configs import (CONFIGS, PAPER_NAMES, TABLE2_PARAMS_MILLIONS, ParamCount, VGGConfig, count_params,
                      layers_for, resolve_arch, table1_blocks, weight_layers)
from .models import (VGG, build_vgg, count_parameters, init_weights, make_layers, vgg11, vgg11_lrn, vgg13,
                     vgg16, vgg16_1x1, vgg19)
from .diagnostics import ShapeRow, format_shape_trace, shape_trace
from .diagnostics import GradientRecorder, activation_stats, gradient_norms, prediction_counts
from .plots import plot_param_split, plot_receptive_fields, plot_shape_trace
from .plots import (confusion_matrix, per_class_accuracy, plot_confusion_matrix, plot_history,  # chapter 6
                    plot_misclassified, plot_per_class_accuracy)

__version__ = "0.1.0"
