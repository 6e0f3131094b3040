"""vgg_helpers: the helper package behind the book *VGG from Scratch*.

Modules, one per concern (the most used names are re-exported here; the rest are imported from their module):

* ``configs``     -- the paper's tables as plain data (no torch): Tables 1-2 (architecture), 3-5 (results);
* ``models``      -- the config-driven VGG builder (torchvision-compatible names);
* ``settings``    -- the book's ``VGG_*`` environment variables, read in this one place;
* ``runtime``     -- device, budget, threads, bfloat16 support, seeds and the environment facts of a result;
* ``files``       -- the atomic writer (nothing is ever left half-written) and JSON on top of it;
* ``checks``      -- the shared checks of argument values (each refusal names the value, what was expected, the fix);
* ``budgets``     -- every training chapter's plan per budget (smoke / cpu / gpu), as plain data;
* ``data``        -- CIFAR-10 online or offline, in memory, and ``make_loaders``: every chapter's loaders;
* ``training``    -- the engine: ``TrainConfig``, ``train``, ``History``, evaluation, checkpoints;
* ``runs``        -- stored reference runs: ``train_or_load`` trains a run or shows its stored history;
* ``failure_runs`` -- the runs on chapter 5's failing network: the reproduction, the ablation, the depth question
  and chapter 6's isolated fix (batch norm x init, then the recipe one ingredient at a time), over seeds;
* ``diagnostics`` -- looking inside a model: shape traces, activation and gradient statistics, metrics;
* ``plots``       -- the book's figures (matplotlib);
* ``fast``        -- chapter 8's fast-training recipe: ``FastModel``, ``fast_run``, the ladder;
* ``modern``      -- the modern VGG: whitening layer, pool-first blocks, a Table-1-style layer list;
* ``recipes``     -- the modern VGG's training recipe: ``ModernRecipe``, ``train_modern`` (SGD or Muon);
* ``modern_runs`` -- chapter 8's modern-VGG runs: the ladder of ingredients over seeds, the final run;
* ``pipelines``   -- chapter 8's input-pipeline comparison (is data loading the bottleneck?);
* ``distributed`` -- training on several processes (torchrun + DDP, synced batch norm, kill-and-resume);
* ``paper``       -- the paper's own training and testing methods: scale jittering, FC -> conv, dense and
  multi-crop evaluation;
* ``paper_runs``  -- chapter 7's runs of those methods: pre-initialisation from a trained VGG-11, the test methods,
  the paper's schedule against one-cycle;
* ``exercises``   -- the check cells of the build-it exercises (each says "correct" or what is wrong).

Benchmarks that record measurements live outside the package, in the repository's ``bench/`` folder.
"""
from .configs import (CONFIGS, PAPER_NAMES, TABLE2_PARAMS_MILLIONS, ParamCount, VGGConfig, layers_for,
                      params_from_config, resolve_arch, table1_blocks, weight_layers)
from .models import (VGG, build_vgg, count_parameters, init_weights, make_layers, vgg11, vgg11_lrn, vgg13,
                     vgg16, vgg16_1x1, vgg19)
from .diagnostics import (GradientRecorder, ShapeRow, activation_stats, confusion_matrix, format_shape_trace,
                          gradient_norms, per_class_accuracy, prediction_counts, shape_trace)
from .plots import (plot_confusion_matrix, plot_history, plot_misclassified, plot_param_split,
                    plot_per_class_accuracy, plot_receptive_fields, plot_shape_trace)

__version__ = "0.1.0"
