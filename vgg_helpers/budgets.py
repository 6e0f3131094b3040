"""How much training each chapter does in each budget (smoke / cpu / gpu), as plain data.

``VGG_BOOK_BUDGET`` picks the column (see ``vgg_helpers.training.current_budget``):

* ``smoke`` -- seconds per notebook on a small subset: what CI runs through nbval;
* ``cpu``   -- a workshop run on a 2-core laptop, at most ~15 minutes per training notebook;
* ``gpu``   -- the full run.

The cpu numbers were chosen by measuring (the chapters print their own wall time).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class RunBudget:
    """The size of one training run."""

    train_size: Optional[int]   # training images used per epoch (None = all left after the validation split)
    val_size: int               # images carved from the training set for validation (model selection)
    epochs: int                 # passes over the training images
    batch_size: int             # images per optimiser step
    test_size: Optional[int] = None  # test images evaluated (None = all 10,000)


def pick(table: dict[str, RunBudget], budget: str | None = None) -> RunBudget:
    """The entry of ``table`` for ``budget`` (default: ``current_budget()``)."""
    from .training import current_budget

    return table[current_budget(budget)]


# ---- chapter 5 (the 10% failure and its ablation) ----


@dataclass(frozen=True)
class FailureBudget:
    """Chapter 5's runs: one reproduction of the failure, then many short ablation runs.

    Every run trains on a random subset (``run.train_size`` images, never the first ones: the image-folder copy
    of CIFAR-10 is sorted by class) for at most ``*_steps`` optimiser steps.
    """

    run: RunBudget          # data sizes and batch size shared by every run of the chapter
    main_steps: int         # optimiser steps of the reproduction (plain VGG at ``main_width``)
    main_width: float       # channel multiplier of the reproduction (1.0 = the paper's 64 ... 512)
    ablation_steps: int     # optimiser steps of each ablation run
    ablation_width: float   # channel multiplier of the ablation runs (narrower = faster)
    record_every: int       # record per-layer gradient norms every this many steps


CHAPTER5 = {
    "smoke": FailureBudget(RunBudget(train_size=256, val_size=200, epochs=1, batch_size=16, test_size=200),
                           main_steps=2, main_width=0.125, ablation_steps=1, ablation_width=0.125,
                           record_every=1),
    "cpu": FailureBudget(RunBudget(train_size=4800, val_size=1000, epochs=1, batch_size=32, test_size=1000),
                         main_steps=60, main_width=1.0, ablation_steps=150, ablation_width=0.25,
                         record_every=10),
    "gpu": FailureBudget(RunBudget(train_size=None, val_size=5000, epochs=2, batch_size=128, test_size=None),
                         main_steps=600, main_width=1.0, ablation_steps=600, ablation_width=1.0,
                         record_every=20),
}
CHAPTER5_SEED = 0           # seed of the split, the subsets, the init and the batch order of every run

# ---- chapter 6 (the batch-norm fix) ----
# The model and recipe are the same in every budget except the width: the cpu run uses half the paper's channels
# so that the whole notebook runs in about 8 minutes on 2 CPU cores (81.3% test accuracy, measured; see
# reference_runs/ch6-vgg11-bn-cpu.json); the gpu run uses the paper's widths (not run for the book yet).
CHAPTER6 = {
    "smoke": RunBudget(train_size=1024, val_size=512, epochs=1, batch_size=128, test_size=1024),
    "cpu": RunBudget(train_size=None, val_size=5000, epochs=6, batch_size=128),   # 4 epochs gave 78.7% test: too few
    "gpu": RunBudget(train_size=None, val_size=5000, epochs=40, batch_size=128),
}

# The network trained in chapter 6 (keyword arguments of build_vgg), per budget.
CHAPTER6_MODEL = {
    "smoke": dict(arch="vgg11", width=0.5),
    "cpu": dict(arch="vgg11", width=0.5),    # half width: ~4x fewer multiply-adds than the paper's widths
    "gpu": dict(arch="vgg11", width=1.0),
}
CHAPTER6_MODEL_COMMON = dict(
    batch_norm=True,       # the fix: BatchNorm2d between every conv and its ReLU
    head="cifar",          # one Linear(512 -> 10) instead of FC-4096, FC-4096, FC-10
    input_size=32,
    num_classes=10,
    init="kaiming",        # He init suits ReLU nets; with batch norm even the paper's init trains (chapter 6 shows it)
)

# How the chapter-6 network is trained (fields of training.TrainConfig), the same in every budget.
CHAPTER6_RECIPE = dict(
    lr=0.1,                # peak learning rate; batch norm tolerates 10x the paper's 0.01
    momentum=0.9,          # as in the paper (sec. 3.1)
    nesterov=True,         # evaluates the gradient one momentum step ahead: a cheap, common refinement
    weight_decay=5e-4,     # the paper's L2 penalty (sec. 3.1); not applied to biases and batch-norm parameters
    schedule="onecycle",   # linear warm-up then linear decay to 0: a standard choice for short runs
    warmup=0.2,            # 20% of the steps warming up: big early steps from a random init can blow up
    label_smoothing=0.1,   # 10% of the target mass spread over all classes: less over-confidence, better test
    seed=0,
)
CHAPTER6_SPLIT_SEED = 0    # seed of split_train_val: the same 5,000 validation images in every run
CHAPTER6_PROBE_STEPS = {"smoke": 3, "cpu": 50, "gpu": 200}   # steps of the plain-vs-batch-norm diagnostic runs

# ---- chapter 7 (going further: training fast) ----
# The cpu-budget target: >= 90% test accuracy within 15 minutes of wall time on a 2-core CPU. Every choice below
# was measured on the 2-core AMD EPYC development machine (torch 2.14.1); bench/README.md has the numbers.


@dataclass(frozen=True)
class SpeedSettings:
    """How the training step is executed: how fast it runs, not what it computes (bfloat16 rounds, slightly)."""

    threads: Optional[int]   # torch.set_num_threads; None = one per core (os.cpu_count())
    channels_last: bool      # NHWC memory layout for images and conv weights
    amp: bool                # bfloat16 autocast, on CUDA and on CPUs with native bfloat16 (else ignored)
    compile: bool            # torch.compile the network (gpu budget only: on 2 CPU cores it does not pay off)


# The final recipe: the network, the data sizes and the speed settings per budget.
CHAPTER7 = {
    "smoke": RunBudget(train_size=512, val_size=0, epochs=2, batch_size=128, test_size=512),
    # why val_size=0: the recipe was chosen in chapter 6 and on the ladder below (which keeps a validation
    # hold-out); the final run trains on all 50,000 images, as the published CIFAR-10 results do.
    # why 16 epochs: with two threads and bfloat16 an epoch of 50,000 images took 47-55 s here, and 18 epochs took
    # 934 s to the final test accuracy (bench/results/time-to-accuracy-cpu-2026-11-26T002951Z.json: over the
    # limit); 16 epochs leave a margin for this machine's run-to-run noise
    "cpu": RunBudget(train_size=None, val_size=0, epochs=16, batch_size=128),
    # why batch 128 everywhere: the recipe's learning rate was set (chapter 6) for batch 128
    "gpu": RunBudget(train_size=None, val_size=0, epochs=40, batch_size=128),
}
CHAPTER7_MODEL = {
    "smoke": dict(arch="vgg11", width=0.125),
    "cpu": dict(arch="vgg11", width=0.5),    # why: chapter 6's network; half width is ~4x cheaper than full width
    "gpu": dict(arch="vgg16", width=1.0),    # the paper's configuration D at its own widths (not measured here)
}
CHAPTER7_SPEED = {
    "smoke": SpeedSettings(threads=None, channels_last=True, amp=True, compile=False),
    # Measured on the idle 2-core machine (bench/results/throughput-2026-11-26T013614Z.json, in-memory ceiling):
    # why one thread per core: 2 threads train 1.6x faster than 1 (1042 vs 651 images/s). If other jobs share the
    # cores, use threads=1: busy cores make two threads wait for each other at every layer.
    # why amp: bfloat16 autocast is 1.8x faster than float32 on this CPU (AVX512-BF16; 1042 vs 582 images/s); on a
    # CPU without native bfloat16 FastModel skips it (bf16_supported): emulated bfloat16 is slower than float32.
    # why channels_last: 1.3x (1042 vs 817 images/s). why no compile: torch.compile was slower (839 images/s).
    "cpu": SpeedSettings(threads=None, channels_last=True, amp=True, compile=False),
    "gpu": SpeedSettings(threads=None, channels_last=True, amp=True, compile=True),
}
# How it is trained (fields of training.TrainConfig): chapter 6's recipe, unchanged; the ablations below
# measure what each of its ingredients buys.
CHAPTER7_RECIPE = dict(
    lr=0.1,                # peak LR; batch norm tolerates 10x the paper's 0.01
    momentum=0.9,
    nesterov=True,
    weight_decay=5e-4,     # the paper's L2 penalty; not on biases and batch-norm parameters
    schedule="onecycle",   # why: linear warm-up then linear decay to 0; the ablation measures its gain
    warmup=0.2,            # 20% of the steps warming up, as in chapter 6
    label_smoothing=0.1,   # why: measured by the ablation without it
    seed=0,
)
CHAPTER7_AUGMENT = True    # random crop (pad 4) + horizontal flip while training
CHAPTER7_TTA_FLIP = True   # test-time flip: average the logits of each test image and its mirror image
CHAPTER7_SPLIT_SEED = 0

# The ladder from chapter 6's run to the final recipe, at a reduced budget (CHAPTER7_LADDER_BUDGET). Each rung is
# (run name, what it changes, the rung it starts from, the changes). Rung 0 is chapter 6's run as it was trained
# there (CHAPTER6_MODEL / CHAPTER6_RECIPE, float32, NCHW layout, one thread per core, no test-time flip, a 5,000-
# image validation hold-out). Changes may name TrainConfig fields, build_vgg arguments (arch, width, batch_norm,
# init), SpeedSettings fields, "augment", "tta_flip" and "val_size". A rung that only turns on the test-time flip
# needs no training: it re-reads its base run's test accuracy with the flip.
CHAPTER7_LADDER = [
    ("ch7-ladder-0-chapter6", "chapter 6's run (float32, NCHW layout, 45,000 images)", None, {}),
    ("ch7-ladder-1-fast-step", "+ channels_last layout and bfloat16 autocast (same recipe)",
     "ch7-ladder-0-chapter6", dict(channels_last=True, amp=True)),
    ("ch7-ladder-2-tta", "+ test-time flip (no retraining)", "ch7-ladder-1-fast-step", dict(tta_flip=True)),
    ("ch7-ladder-3-all-images", "+ all 50,000 training images (no validation hold-out)", "ch7-ladder-2-tta",
     dict(val_size=0)),
    # leave-one-out ablations: each removes one ingredient of the recipe from rung 3
    ("ch7-without-onecycle", "rung 3 without the one-cycle schedule (constant LR 0.1)", "ch7-ladder-3-all-images",
     dict(schedule="constant")),
    ("ch7-without-augment", "rung 3 without random crop and flip", "ch7-ladder-3-all-images",
     dict(augment=False)),
    ("ch7-without-smoothing", "rung 3 without label smoothing", "ch7-ladder-3-all-images",
     dict(label_smoothing=0.0)),
    # the paper's own way out of the 10% failure, measured against batch norm under the same budget
    ("ch7-no-bn-kaiming", "rung 3 without batch norm: Kaiming init, peak LR 0.02",
     "ch7-ladder-3-all-images", dict(batch_norm=False, init="kaiming", lr=0.02)),
]
CHAPTER7_LADDER_BUDGET = {
    "smoke": RunBudget(train_size=256, val_size=512, epochs=1, batch_size=128, test_size=256),
    # why 4 epochs: chapter 6 showed 4 epochs already separate good from bad recipes (78.7% test); the seven
    # trained runs took 28 minutes together on the 2-core machine. Gains at this budget are not the gains at the
    # full one (crop and flip, for one: chapter 7 measures both)
    "cpu": RunBudget(train_size=None, val_size=5000, epochs=4, batch_size=128),
    "gpu": RunBudget(train_size=None, val_size=5000, epochs=10, batch_size=128),
}
