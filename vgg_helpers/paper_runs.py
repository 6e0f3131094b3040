"""The runs of the chapter on the paper's own methods: its way out of the 10% failure, its testing, its schedule.

* ``init_from_shallow`` copies a trained VGG-11's first conv layers and FC layer into a deeper VGG (sec. 3.1), and
  ``init_runs`` trains every start of ``budgets.PAPER_INIT_VARIANTS`` (plain nets, several seeds).
* ``jitter_runs`` trains the batch-norm VGG-11 with scale jittering and ``measure_test_methods`` measures what each way
  of testing it (one view, dense, multi-crop, the two combined; sec. 3.2 and Table 5) gives on it.
* ``schedule_runs`` trains the same network with the paper's plateau schedule and with one-cycle.

Every run is a ``train_or_load`` run: a chapter shows the stored histories unless told to retrain. Maintainers
record them with ``python -m vgg_helpers.paper_runs record --budget cpu`` (about an hour on 2 cores).
"""
from __future__ import annotations

import time
from typing import Callable, Optional, Sequence

import torch
from torch import nn

from .budgets import (BATCH_NORM_RECIPE, CIFAR_BN_MODEL, PAPER_INIT_VARIANTS, PAPER_METHODS, PAPER_RECIPE,
                      PLAIN_CIFAR_MODEL, InitVariant, PaperPlan, pick)
from .data import CIFAR10, make_loaders
from .models import build_vgg
from .paper import ScaleJitter, combine, dense_evaluate, fc_to_conv, multi_crop_evaluate
from .runs import RunResult, recording_setup, stored_or_check_data, train_or_load
from .runtime import pick_device
from .training import History, TrainConfig, evaluate

__all__ = ["init_from_shallow", "init_run_name", "init_runs", "jitter_run_name", "jitter_runs", "measure_test_methods",
           "TEST_METHODS", "schedule_run_name", "schedule_runs", "SCHEDULES_COMPARED", "main"]

STEP_LOSS_EVERY = 5      # record the training loss of every 5th step (the loss curves of the init runs)


# ---- the paper's pre-initialisation (sec. 3.1) ----


def _convs_by_place(features: nn.Module) -> list[tuple[tuple[int, int], str, nn.Conv2d]]:
    """Every conv of a features stack with its place (block, position in the block); blocks end at a max-pool."""
    out, block, pos = [], 0, 0
    for name, m in features.named_children():
        if isinstance(m, nn.MaxPool2d):
            block, pos = block + 1, 0
        elif isinstance(m, nn.Conv2d):
            out.append(((block, pos), name, m))
            pos += 1
    return out


def init_from_shallow(deep: nn.Module, shallow: nn.Module, conv_layers: int = 4) -> list[tuple[str, str]]:
    """Start a deeper VGG from a trained shallower one, as the paper started B-E from A (sec. 3.1), in place.

    The paper copies "the first four convolutional layers and the last three fully-connected layers" of net A.
    A's first four conv layers (64, 128, 256, 256 channels) cannot sit in D's first four (64, 64, 128, 128): each
    is copied to the layer at the same place in D, the same block and the same position in it (A's conv 2, the
    first of block 2, goes to D's first conv of block 2), the only reading under which the shapes agree. The
    fully connected layers are copied one for one, from the last. Every other layer keeps its own init.

    Args:
        deep: the deeper VGG (e.g. VGG-16), already initialised (its other layers stay as they are).
        shallow: the trained shallower VGG (e.g. VGG-11) of the same widths and head.
        conv_layers: how many of the shallow net's first conv layers to copy (the paper: 4).
    Returns:
        ``(shallow layer, deep layer)`` names of every layer copied, in order.
    Raises:
        TypeError: either net is not a VGG (``features`` and ``classifier``).
        ValueError: ``conv_layers`` is more than the shallow net has, or a copied layer's shape differs.
    """
    for which, net in (("deep", deep), ("shallow", shallow)):
        if not isinstance(getattr(net, "features", None), nn.Module) or not isinstance(
                getattr(net, "classifier", None), nn.Sequential):
            raise TypeError(f"init_from_shallow expects VGGs from build_vgg; {which} is a {type(net).__name__}.")
    small, big = _convs_by_place(shallow.features), dict(
        (place, (name, m)) for place, name, m in _convs_by_place(deep.features))
    if not isinstance(conv_layers, int) or isinstance(conv_layers, bool) or not 0 <= conv_layers <= len(small):
        raise ValueError(f"conv_layers must be a whole number from 0 to {len(small)} (the shallow net's conv "
                         f"layers); got {conv_layers!r}")
    pairs: list[tuple[nn.Module, nn.Module, str, str]] = []
    for place, name, m in small[:conv_layers]:
        if place not in big:
            raise ValueError(f"the deep net has no conv layer at block {place[0] + 1}, position {place[1] + 1} "
                             f"(where the shallow net's features.{name} goes)")
        pairs.append((m, big[place][1], f"features.{name}", f"features.{big[place][0]}"))
    fc_small = [(n, m) for n, m in shallow.classifier.named_children() if isinstance(m, nn.Linear)]
    fc_big = [(n, m) for n, m in deep.classifier.named_children() if isinstance(m, nn.Linear)]
    for (ns, ms), (nd, md) in list(zip(reversed(fc_small), reversed(fc_big)))[:3][::-1]:
        pairs.append((ms, md, f"classifier.{ns}", f"classifier.{nd}"))
    for src, dst, ns, nd in pairs:
        if src.weight.shape != dst.weight.shape:
            raise ValueError(f"{ns} {tuple(src.weight.shape)} does not fit {nd} {tuple(dst.weight.shape)}: the two "
                             "nets must have the same widths and head (build both with the same width and head).")
    with torch.no_grad():
        for src, dst, _, _ in pairs:
            dst.weight.copy_(src.weight)
            if dst.bias is not None and src.bias is not None:
                dst.bias.copy_(src.bias)
    return [(ns, nd) for _, _, ns, nd in pairs]


def init_run_name(variant: str, seed: int) -> str:
    """The stored name of one pre-initialisation run, e.g. ``paper-init-D-xavier-s0``."""
    return f"paper-init-{variant}-s{seed}"


def _step_losses() -> tuple[list, Callable[[nn.Module, int, float], None]]:
    """A list and an ``on_step`` callback that appends every ``STEP_LOSS_EVERY``-th step's loss to it."""
    losses: list[float] = []

    def on_step(model: nn.Module, step: int, loss: float) -> None:
        if step % STEP_LOSS_EVERY == 0:
            losses.append(loss)
    return losses, on_step


def init_runs(data: Optional[CIFAR10], budget: str, store: str = "train",
              variants: Optional[Sequence[InitVariant]] = None, progress: Optional[bool] = None,
              device: torch.device | str | None = None, quiet: bool = True) -> dict[str, list[RunResult]]:
    """Train (or load) every start of the pre-initialisation experiment, each over the plan's seeds.

    Every run: the plain CIFAR VGG of ``PLAIN_CIFAR_MODEL`` at ``plan.init_width``, the paper's optimiser
    (``PAPER_RECIPE``), random crop and flip, ``plan.init_run``'s images, epochs and batch. A variant with a
    ``teacher`` is started by ``init_from_shallow`` from that variant's trained net of the same seed (trained in
    the same call). ``history.meta`` holds ``test_acc`` (all test images of the budget), ``step_loss`` (every
    ``STEP_LOSS_EVERY``-th step) and ``copied`` (the layers taken from the teacher).

    Args:
        data: CIFAR-10 (``None`` will do when every run is stored and ``store="load"``).
        budget: ``"smoke"``, ``"cpu"`` or ``"gpu"``.
        store: ``"train"``, ``"load"`` or ``"record"``.
        variants: default ``PAPER_INIT_VARIANTS``.
        progress: passed to ``train``.
        device: default ``pick_device()``.
        quiet: do not print a line for every stored run that is loaded.
    Returns:
        ``{variant name: [one RunResult per seed]}``, in the plan's order.
    """
    plan: PaperPlan = pick(PAPER_METHODS, budget)
    variants = list(PAPER_INIT_VARIANTS if variants is None else variants)
    out: dict[str, list[RunResult]] = {}
    models: dict[tuple[str, int], nn.Module] = {}
    for v in variants:
        out[v.name] = []
        for seed in plan.init_seeds:
            name = init_run_name(v.name, seed)
            stored = stored_or_check_data(name, data, budget, store, quiet, "init_runs")
            if stored is not None:
                out[v.name].append(stored)
                continue
            teacher = models.get((v.teacher, seed)) if v.teacher else None
            if v.teacher and teacher is None:
                raise ValueError(f"'{v.name}' starts from the trained '{v.teacher}' of seed {seed}: train that "
                                 f"variant in the same call (list it before '{v.name}').")
            out[v.name].append(_init_run(name, v, seed, teacher, data, plan, budget, store, progress, device))
            if out[v.name][-1].trained and out[v.name][-1].model is not None:
                models[(v.name, seed)] = out[v.name][-1].model
    return out


def _init_run(name: str, v: InitVariant, seed: int, teacher: Optional[nn.Module], data: CIFAR10, plan: PaperPlan,
              budget: str, store: str, progress: Optional[bool], device) -> RunResult:
    device = pick_device(device)
    loaders = make_loaders(data, plan.init_run, seed=0, loader_seed=seed, augment=True, device=device)
    copied: list = []

    def build_model() -> nn.Module:
        torch.manual_seed(seed)
        model = build_vgg(**{**PLAIN_CIFAR_MODEL, **v.model, "width": plan.init_width}).to(device)
        if teacher is not None:
            copied.extend(init_from_shallow(model, teacher))
        return model

    losses, on_step = _step_losses()

    def finish(model: Optional[nn.Module], history: History) -> None:
        history.meta.update(step_loss=losses, step_loss_every=STEP_LOSS_EVERY, copied=copied, seed=seed,
                            variant=v.name, what=v.what, width=plan.init_width)
        if model is not None:
            history.meta["test_loss"], history.meta["test_acc"] = evaluate(model, loaders.test, device)
            history.meta["test_images"] = len(loaders.test_idx)
        else:
            history.meta["test_acc"] = None

    config = TrainConfig(epochs=plan.init_run.epochs, **{**PAPER_RECIPE, "seed": seed})
    meta = {"data_source": data.source, "train_images": len(loaders.train_idx)}
    return train_or_load(name, build_model, loaders.train, loaders.val, config, budget=budget, store=store,
                         finish=finish, allow_divergence=True, device=device, progress=progress, meta=meta,
                         on_step=on_step)


# ---- scale jittering and the ways of testing (sec. 3.1-3.2, Table 5) ----

# name -> what it is, in the order the chapter's table shows them
TEST_METHODS = {
    "one view": "the 32x32 test image, no flip (what the book did so far)",
    "dense, Q=48": "dense evaluation at the middle scale Q = 48, image and its mirror image (Table 3's setting)",
    "dense, 3 scales": "dense evaluation at Q = 32, 48, 64, with flips (Table 5, 'dense')",
    "multi-crop, 3 scales": "a grid of 32x32 crops and their mirror images at Q = 32, 48, 64 (Table 5, 'multi-crop')",
    "dense + multi-crop": "the two posteriors averaged (Table 5's last rows)",
}


def jitter_run_name(seed: int) -> str:
    """The stored name of one scale-jittered run, e.g. ``paper-jitter-s0``."""
    return f"paper-jitter-s{seed}"


def _posteriors_in_batches(fn, images: torch.Tensor, batch: int = 250) -> torch.Tensor:
    return torch.cat([fn(images[i:i + batch]) for i in range(0, len(images), batch)])


def measure_test_methods(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, plan: PaperPlan) -> dict:
    """Accuracy and cost of every way of testing in ``TEST_METHODS`` on the same test images.

    Args:
        model: a trained VGG for 32x32 images (logits out).
        images: normalised float test images ``(N, 3, 32, 32)``.
        labels: their classes ``(N,)``.
        plan: gives the test scales and the crop grid.
    Returns:
        ``{method: {"acc": fraction, "seconds": evaluation time, "views": network passes per image}}``;
        "dense + multi-crop" reuses the two posteriors (its seconds are their sum).
    """
    model.eval()
    conv = fc_to_conv(model).eval()
    qs, grid = list(plan.test_scales), plan.crop_grid
    runs = {
        "one view": (lambda x: model(x).softmax(1), 1),
        "dense, Q=48": (lambda x: dense_evaluate(conv, x, flip=True, scales=[qs[len(qs) // 2]]), 2),
        "dense, 3 scales": (lambda x: dense_evaluate(conv, x, flip=True, scales=qs), 2 * len(qs)),
        "multi-crop, 3 scales": (lambda x: multi_crop_evaluate(model, x, crop=32, grid=grid, flip=True,
                                                               scales=qs), 2 * grid * grid * len(qs)),
    }
    out, posts = {}, {}
    with torch.no_grad():
        for name, (fn, views) in runs.items():
            t0 = time.perf_counter()
            posts[name] = _posteriors_in_batches(fn, images)
            out[name] = {"acc": (posts[name].argmax(1) == labels).float().mean().item(),
                         "seconds": time.perf_counter() - t0, "views": views}
    both = combine(posts["dense, 3 scales"], posts["multi-crop, 3 scales"])
    out["dense + multi-crop"] = {
        "acc": (both.argmax(1) == labels).float().mean().item(),
        "seconds": out["dense, 3 scales"]["seconds"] + out["multi-crop, 3 scales"]["seconds"],
        "views": out["dense, 3 scales"]["views"] + out["multi-crop, 3 scales"]["views"]}
    return out


def jitter_runs(data: Optional[CIFAR10], budget: str, store: str = "train", progress: Optional[bool] = None,
                device: torch.device | str | None = None, quiet: bool = True) -> list[RunResult]:
    """Train (or load) chapter 6's batch-norm VGG-11 trained with scale jittering, one run per seed.

    Training: crops of 32x32 from images rescaled to S in ``plan.train_scales`` and flipped at random
    (``ScaleJitter``; no other augmentation), chapter 6's recipe (``BATCH_NORM_RECIPE``). After training,
    ``test_methods`` runs on the first ``plan.eval_images`` of a fixed random order of the test set (the same
    images for every seed and method); ``history.meta["test_methods"]`` holds the results.

    Returns:
        One ``RunResult`` per seed of ``plan.jitter_seeds``.
    """
    plan: PaperPlan = pick(PAPER_METHODS, budget)
    results = []
    for seed in plan.jitter_seeds:
        name = jitter_run_name(seed)
        stored = stored_or_check_data(name, data, budget, store, quiet, "jitter_runs")
        if stored is not None:
            results.append(stored)
            continue
        dev = pick_device(device)
        s_min, s_max = plan.train_scales
        loaders = make_loaders(data, plan.jitter_run, seed=0, loader_seed=seed, augment=False, device=dev,
                               transform=ScaleJitter(s_min, s_max, crop=32, seed=seed))

        def build_model(seed: int = seed) -> nn.Module:
            torch.manual_seed(seed)
            return build_vgg(**{**CIFAR_BN_MODEL, "arch": "vgg11", "width": plan.jitter_width}).to(dev)

        def finish(model: Optional[nn.Module], history: History, loaders=loaders) -> None:
            if model is None:
                history.meta["test_methods"] = None
                return
            order = torch.randperm(len(data.test_labels), generator=torch.Generator().manual_seed(0))
            idx = order[:plan.eval_images].sort().values
            images = loaders.test.normalize(data.test_images[idx].to(dev))
            history.meta["test_methods"] = measure_test_methods(model, images, data.test_labels[idx].to(dev), plan)
            history.meta.update(eval_images=len(idx), test_scales=list(plan.test_scales),
                                train_scales=list(plan.train_scales), crop_grid=plan.crop_grid, seed=seed)

        config = TrainConfig(epochs=plan.jitter_run.epochs, **{**BATCH_NORM_RECIPE, "seed": seed})
        meta = {"data_source": data.source, "train_images": len(loaders.train_idx)}
        results.append(train_or_load(name, build_model, loaders.train, loaders.val, config, budget=budget,
                                     store=store, finish=finish, device=dev, progress=progress, meta=meta))
    return results


# ---- the paper's schedule next to one-cycle ----

SCHEDULES_COMPARED = {
    "plateau": "the paper's: lr / 10 when the validation accuracy stops improving (sec. 3.1)",
    "onecycle": "chapter 6's: linear warm-up over 20% of the steps, then linear decay to 0",
}


def schedule_run_name(schedule: str, seed: int) -> str:
    """The stored name of one schedule run, e.g. ``paper-schedule-plateau-s0``."""
    return f"paper-schedule-{schedule}-s{seed}"


def schedule_runs(data: Optional[CIFAR10], budget: str, store: str = "train", progress: Optional[bool] = None,
                  device: torch.device | str | None = None, quiet: bool = True) -> dict[str, list[RunResult]]:
    """Train (or load) the batch-norm VGG-11 with each schedule of ``SCHEDULES_COMPARED``, one run per seed.

    Only the schedule changes: same network (``plan.schedule_width``), data, epochs, peak learning rate (0.1),
    momentum, weight decay, label smoothing, augmentation and seeds. The plateau schedule starts at the peak
    rate and divides it by 10 after ``plan.plateau_patience`` epochs without a better validation accuracy.

    Returns:
        ``{schedule: [one RunResult per seed]}``; ``history.meta["test_acc"]`` is measured on the test set.
    """
    plan: PaperPlan = pick(PAPER_METHODS, budget)
    out: dict[str, list[RunResult]] = {}
    for schedule in SCHEDULES_COMPARED:
        out[schedule] = []
        for seed in plan.schedule_seeds:
            name = schedule_run_name(schedule, seed)
            stored = stored_or_check_data(name, data, budget, store, quiet, "schedule_runs")
            if stored is not None:
                out[schedule].append(stored)
                continue
            dev = pick_device(device)
            loaders = make_loaders(data, plan.schedule_run, seed=0, loader_seed=seed, augment=True, device=dev)

            def build_model(seed: int = seed) -> nn.Module:
                torch.manual_seed(seed)
                return build_vgg(**{**CIFAR_BN_MODEL, "arch": "vgg11", "width": plan.schedule_width}).to(dev)

            def finish(model: Optional[nn.Module], history: History, loaders=loaders) -> None:
                    history.meta["test_loss"], history.meta["test_acc"] = (
                    evaluate(model, loaders.test, dev) if model is not None else (None, None))

            config = TrainConfig(epochs=plan.schedule_run.epochs, **{
                **BATCH_NORM_RECIPE, "seed": seed, "schedule": schedule, "patience": plan.plateau_patience})
            meta = {"data_source": data.source, "train_images": len(loaders.train_idx), "schedule": schedule}
            out[schedule].append(train_or_load(name, build_model, loaders.train, loaders.val, config,
                                               budget=budget, store=store, finish=finish, device=dev,
                                               progress=progress, meta=meta))
    return out


def main(argv: Optional[list[str]] = None) -> int:
    """Record the paper chapter's stored runs (maintainers): ``python -m vgg_helpers.paper_runs record``.

    Args:
        argv: command-line arguments.
    Returns:
        The exit status.
    """
    rec = recording_setup("python -m vgg_helpers.paper_runs", "the paper chapter's", ["init", "schedule", "jitter"],
                          argv)
    data, budget, device, progress = rec.data, rec.budget, rec.device, rec.settings.progress
    t0 = time.perf_counter()
    for what in rec.args.only:
        if what == "init":
            for name, runs in init_runs(data, budget, "record", progress=progress, device=device).items():
                print(f"{name:<14} test acc " + " ".join(f"{r.history.meta['test_acc']}" for r in runs)
                      + f"  [{time.perf_counter() - t0:.0f} s]", flush=True)
        elif what == "schedule":
            for name, runs in schedule_runs(data, budget, "record", progress=progress, device=device).items():
                print(f"{name:<14} test acc " + " ".join(f"{r.history.meta['test_acc']}" for r in runs)
                      + f"  [{time.perf_counter() - t0:.0f} s]", flush=True)
        else:
            for run in jitter_runs(data, budget, "record", progress=progress, device=device):
                print(run.name, {k: round(v["acc"], 4) for k, v in run.history.meta["test_methods"].items()},
                      f"[{time.perf_counter() - t0:.0f} s]", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
