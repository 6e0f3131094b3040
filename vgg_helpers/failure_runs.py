"""The runs of chapters 5 and 6 on the failing network: the reproduction, the ablation, the depth question and the
isolated fix, over seeds.

* ``failure_run`` trains (or loads) one short run of ``budgets.CHAPTER5``'s network with some settings changed,
  recording every step's loss (and, while it trains, every layer's gradient norm).
* ``reproduction_runs``, ``ablation_runs``, ``depth_runs`` and ``fix_runs`` (chapter 6: batch norm x init, then the
  rest of its recipe one ingredient at a time) repeat the runs over the plan's seeds:
  each seed draws its own initial weights, batch order and dropout masks; the images are the same for all.
* ``batch_norm_runs``: chapter 6's main run (VGG-11 with batch norm) over seeds, seed 0 with its weights.
* ``loss_drop`` and ``summarize`` turn the runs into the chapter's verdicts, with their spread.

Every run is a ``train_or_load`` run: the chapter shows the stored histories unless told to retrain. Maintainers
record them with ``python -m vgg_helpers.failure_runs record --budget cpu`` (about an hour on 2 cores).
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch
from torch import nn

from .budgets import (CHAPTER5, CHAPTER5_ABLATION, CHAPTER5_DEPTH, CHAPTER6, CHAPTER6_FIX, FailurePlan, Rung, pick,
                      split_changes)
from .data import CIFAR10, Loaders, make_loaders
from .diagnostics import GradientRecorder
from .models import build_vgg
from .runs import (RunResult, check_store, mean_sd, recording_setup, run_name, stored_or_check_data,
                   train_or_load, with_stored_weights)
from .runtime import pick_device
from .training import History, TrainConfig, predict

__all__ = ["REPRODUCTION", "LEARNING", "failure_loaders", "failure_run", "train_reproduction",
           "reproduction_runs", "ablation_runs", "depth_runs", "fix_runs", "batch_norm_runs", "step_losses",
           "loss_drop", "RunSummary", "summarize", "mean_sd", "main"]

REPRODUCTION = "ch5-plain-vgg16"   # the stored name of the reproduction (seed 0; chapter 6 loads it)
LEARNING = 0.01    # nats: a run whose loss over its last fifth of steps is this far below ln 10 "is learning"


def failure_loaders(data: CIFAR10, plan: FailurePlan, seed: int = 0,
                    device: torch.device | str | None = None, augment: bool = False) -> Loaders:
    """The chapter's loaders: the plan's fixed subset and split, batches in the order of ``seed``.

    Args:
        data: CIFAR-10 (``load_cifar10``).
        plan: ``pick(CHAPTER5, budget)``.
        seed: seed of the batch order (and of the crops and flips, with ``augment``).
        device: where the batches go (default ``pick_device()``).
        augment: random crop (pad 4) and horizontal flip of the training batches.
    Returns:
        The ``Loaders``.
    """
    return make_loaders(data, plan.run, seed=plan.seed, loader_seed=seed, device=pick_device(device),
                        eval_batch_size=plan.eval_batch_size, augment=augment)


def failure_run(name: str, loaders: Loaders, plan: FailurePlan, budget: str, *, steps: int, width: float,
                seed: int = 0, store: str = "train", device: torch.device | str | None = None,
                data_source: str = "", progress: Optional[bool] = False,
                **changes: Any) -> tuple[RunResult, GradientRecorder]:
    """Train (or load) one short run of the chapter's network, ``changes`` applied.

    Args:
        name: the stored name (see ``run_name``).
        loaders: from ``failure_loaders`` (the same ``seed``).
        plan: ``pick(CHAPTER5, budget)``.
        budget: ``"smoke"``, ``"cpu"`` or ``"gpu"``.
        steps: optimiser steps.
        width: channel multiplier of the network.
        seed: seed of the initial weights and of dropout.
        store: ``"train"``, ``"load"`` or ``"record"`` (``train_or_load``).
        device: default ``pick_device()``.
        data_source: ``data.source``, stored beside the run.
        progress: passed to ``train``.
        changes: model or recipe settings that differ from ``plan.model`` / ``plan.recipe`` (e.g. ``init="kaiming"``);
            ``augment=True`` states that ``loaders`` augment (``failure_loaders(..., augment=True)``).
    Returns:
        ``(result, recorder)``: the run, and the recorder of its step losses and gradient norms (empty when the
        run was loaded: the stored step losses are in ``history.meta["step_losses"]``, see ``step_losses``).
    """
    model_changes, recipe_changes, speed, other = split_changes(changes)
    augment = other.pop("augment", False)
    if speed or other:
        raise ValueError(f"failure_run changes the model or the recipe only; got {', '.join({**speed, **other})}")
    if bool(augment) != bool(getattr(loaders.train, "augment", False)):
        raise ValueError(f"augment={augment} but the loaders were built with augment="
                         f"{getattr(loaders.train, 'augment', False)}: build them with failure_loaders(..., "
                         f"augment={bool(augment)})")
    model_kwargs = {**plan.model, "width": width, **model_changes}

    def build() -> nn.Module:
        torch.manual_seed(seed)          # the same initial weights for the same network and seed
        return build_vgg(**model_kwargs)

    epochs = math.ceil(steps / len(loaders.train))
    config = TrainConfig(**{**plan.recipe, **recipe_changes, "seed": seed}, epochs=epochs, max_steps=steps)
    recorder = GradientRecorder(every=plan.record_every)

    def finish(model: Optional[nn.Module], history: History) -> None:
        history.meta["step_losses"] = [round(x, 6) for x in recorder.losses]

    meta = {"data_source": data_source, "seed": seed, "steps": steps, "width": width,
            "changes": dict(changes), "train_images": len(loaders.train_idx), "val_images": len(loaders.val_idx)}
    result = train_or_load(name, build, loaders.train, loaders.val, config, budget=budget, store=store,
                           finish=finish, allow_divergence=True, device=pick_device(device), progress=progress,
                           on_step=recorder, meta=meta)
    return result, recorder


def train_reproduction(loaders: Loaders, budget: str, store: Optional[str] = None,
                       device: torch.device | str | None = None,
                       data_source: str = "") -> tuple[RunResult, GradientRecorder]:
    """The reproduction (seed 0), always trained by ``train``: the chapter looks inside the trained network.

    Args:
        loaders: ``failure_loaders(data, plan, seed=0)``.
        budget: ``"smoke"``, ``"cpu"`` or ``"gpu"``.
        store: ``"record"`` also stores the history as the reference (maintainers); anything else only trains.
        device: default ``pick_device()``.
        data_source: ``data.source``, stored beside the run.
    Returns:
        ``(result, recorder)`` as ``failure_run``: the run with its trained model, and every step's loss and
        gradient norms.
    """
    plan: FailurePlan = pick(CHAPTER5, budget)
    return failure_run(REPRODUCTION, loaders, plan, budget, steps=plan.main_steps, width=plan.main_width,
                       seed=0, store="record" if store == "record" else "train", device=device,
                       data_source=data_source)


def _repeat(rungs: Sequence[Rung], data: Optional[CIFAR10], budget: str, store: str, steps: int, width: float,
            seeds: Optional[Sequence[int]], device, progress: Optional[bool], quiet: bool,
            who: str) -> dict[str, list[RunResult]]:
    plan: FailurePlan = pick(CHAPTER5, budget)
    check_store(store)
    device = pick_device(device)
    out: dict[str, list[RunResult]] = {}
    for rung in rungs:
        out[rung.what] = []
        for seed in plan.seeds if seeds is None else seeds:
            name = run_name(rung.name, seed)
            stored = stored_or_check_data(name, data, budget, store, quiet, who)
            if stored is None:
                loaders = failure_loaders(data, plan, seed, device, augment=rung.changes.get("augment", False))
                stored, _ = failure_run(name, loaders, plan, budget, steps=steps, width=width, seed=seed,
                                        store=store, device=device, data_source=data.source, progress=progress,
                                        **rung.changes)
            out[rung.what].append(stored)
    return out


def reproduction_runs(data: Optional[CIFAR10], budget: str, store: str = "load",
                      seeds: Optional[Sequence[int]] = None, device: torch.device | str | None = None,
                      progress: Optional[bool] = False, quiet: bool = True) -> list[RunResult]:
    """The reproduction of the failure (the plan's network and recipe, unchanged) over the plan's seeds.

    Args:
        data: CIFAR-10 (``None`` will do when every run is stored and ``store="load"``).
        budget: ``"smoke"``, ``"cpu"`` or ``"gpu"``.
        store: ``"load"`` (stored runs, training what is missing), ``"train"`` or ``"record"``.
        seeds: default: the plan's ``seeds``.
        device: default ``pick_device()``.
        progress: passed to ``train``.
        quiet: do not print a line for every stored run that is loaded.
    Returns:
        One ``RunResult`` per seed.
    """
    plan: FailurePlan = pick(CHAPTER5, budget)
    rung = Rung(REPRODUCTION, "paper recipe (VGG-16), full reproduction", None, {})
    return _repeat([rung], data, budget, store, plan.main_steps, plan.main_width, seeds, device, progress, quiet,
                   "reproduction_runs")[rung.what]


def ablation_runs(data: Optional[CIFAR10], budget: str, store: str = "load", rungs: Optional[Sequence[Rung]] = None,
                  seeds: Optional[Sequence[int]] = None, device: torch.device | str | None = None,
                  progress: Optional[bool] = False, quiet: bool = True) -> dict[str, list[RunResult]]:
    """Every ablation run (``CHAPTER5_ABLATION``) over the plan's seeds, ``ablation_steps`` at ``ablation_width``.

    Arguments as ``reproduction_runs``; ``rungs`` defaults to ``CHAPTER5_ABLATION``.
    Returns:
        ``{rung.what: [one RunResult per seed]}``, in the rungs' order.
    """
    plan: FailurePlan = pick(CHAPTER5, budget)
    return _repeat(CHAPTER5_ABLATION if rungs is None else rungs, data, budget, store, plan.ablation_steps,
                   plan.ablation_width, seeds, device, progress, quiet, "ablation_runs")


def depth_runs(data: Optional[CIFAR10], budget: str, store: str = "load", rungs: Optional[Sequence[Rung]] = None,
               seeds: Optional[Sequence[int]] = None, device: torch.device | str | None = None,
               progress: Optional[bool] = False, quiet: bool = True) -> dict[str, list[RunResult]]:
    """The depth question (``CHAPTER5_DEPTH``) over the plan's seeds, ``depth_steps`` at ``depth_width``.

    Arguments as ``reproduction_runs``; ``rungs`` defaults to ``CHAPTER5_DEPTH``.
    Returns:
        ``{rung.what: [one RunResult per seed]}``, in the rungs' order.
    """
    plan: FailurePlan = pick(CHAPTER5, budget)
    return _repeat(CHAPTER5_DEPTH if rungs is None else rungs, data, budget, store, plan.depth_steps,
                   plan.depth_width, seeds, device, progress, quiet, "depth_runs")


def fix_runs(data: Optional[CIFAR10], budget: str, store: str = "load", rungs: Optional[Sequence[Rung]] = None,
             seeds: Optional[Sequence[int]] = None, device: torch.device | str | None = None,
             progress: Optional[bool] = False, quiet: bool = True) -> dict[str, list[RunResult]]:
    """Chapter 6's fix, isolated on chapter 5's network (``CHAPTER6_FIX``), ``fix_steps`` at ``fix_width``.

    Arguments as ``reproduction_runs``; ``rungs`` defaults to ``CHAPTER6_FIX`` (batch norm x init, then the
    recipe's other ingredients one at a time).
    Returns:
        ``{rung.what: [one RunResult per seed]}``, in the rungs' order.
    """
    plan: FailurePlan = pick(CHAPTER5, budget)
    return _repeat(CHAPTER6_FIX if rungs is None else rungs, data, budget, store, plan.fix_steps, plan.fix_width,
                   seeds, device, progress, quiet, "fix_runs")


def step_losses(result: RunResult) -> list[float]:
    """Every step's training loss of a run (trained or stored), in nats."""
    return list(result.history.meta.get("step_losses") or [])


def loss_drop(losses: Sequence[float]) -> float:
    """How far the mean loss of the last fifth of the steps lies below ln 10 (nats; > ``LEARNING``: learning).

    >>> round(loss_drop([2.302585] * 10), 6)
    0.0
    >>> round(loss_drop([2.3, 2.3, 2.3, 2.3, 1.3]), 3)
    1.003
    """
    if len(losses) == 0:
        raise ValueError("loss_drop needs at least one step's loss")
    tail = losses[-max(1, len(losses) // 5):]
    return math.log(10) - sum(tail) / len(tail)


@dataclass(frozen=True)
class RunSummary:
    """One row of a verdict table: the same run over several seeds."""

    label: str
    seeds: int                 # runs summarised
    diverged: int              # of them, how many ended in a NaN / infinite loss
    drop: list[float]          # loss_drop of each run that did not diverge (nats)
    val_acc: list[float]       # final validation accuracy of each run that did not diverge
    seconds: list[float]       # training wall time of each run that did not diverge

    @property
    def learning(self) -> int:
        """How many of the runs ended more than ``LEARNING`` below ln 10."""
        return sum(d > LEARNING for d in self.drop)

    @property
    def above(self) -> int:
        """How many of the runs ended more than ``LEARNING`` above ln 10 (a loss that grew: too large a signal)."""
        return sum(d < -LEARNING for d in self.drop)

    @property
    def verdict(self) -> str:
        """``"learning"``, ``"stuck at ln 10"``, ``"above ln 10"``, ``"diverged"``, or the count of each.

        >>> RunSummary("x", 3, 0, [0.2, 0.0, 0.3], [0.2, 0.1, 0.2], [1.0] * 3).verdict
        '2 of 3 learning, 1 stuck'
        """
        counts = {"learning": self.learning, "stuck at ln 10": len(self.drop) - self.learning - self.above,
                  "above ln 10": self.above, "diverged": self.diverged}
        present = {k: v for k, v in counts.items() if v}
        if len(present) == 1:
            return next(iter(present))
        return ", ".join(f"{v} of {self.seeds} {k}" if i == 0 else f"{v} {k.split()[0]}"
                         for i, (k, v) in enumerate(present.items()))


def summarize(runs: dict[str, list[RunResult]]) -> list[RunSummary]:
    """One ``RunSummary`` per label of ``{label: [runs over seeds]}`` (``ablation_runs``, ``depth_runs``)."""
    out = []
    for label, results in runs.items():
        ok = [r for r in results if not r.history.meta.get("diverged")]
        out.append(RunSummary(label, len(results), len(results) - len(ok),
                              [loss_drop(step_losses(r)) for r in ok], [r.history.val_acc[-1] for r in ok],
                              [r.history.time[-1] for r in ok]))
    return out


def batch_norm_runs(data: Optional[CIFAR10], budget: str, store: str = "load",
                    seeds: Optional[Sequence[int]] = None, device: torch.device | str | None = None,
                    progress: Optional[bool] = None, quiet: bool = True) -> list[RunResult]:
    """Chapter 6's main run (``budgets.CHAPTER6``: VGG-11 with batch norm and the CIFAR head) over seeds.

    Each seed draws its own initial weights, batch order, crops and flips; the validation split is the plan's
    (``split_seed``) for all. Seed 0 keeps the bare name (``ch6-vgg11-bn``) and is recorded with its weights,
    so that a loaded run comes with its trained network; every run stores its test accuracy
    (``history.meta["test_acc"]``).

    Args:
        data: CIFAR-10 (``None`` will do when every run is stored and ``store="load"``).
        budget: ``"smoke"``, ``"cpu"`` or ``"gpu"``.
        store: ``"load"`` (stored runs, training what is missing), ``"train"`` or ``"record"``.
        seeds: default: the plan's ``seeds``.
        device: default ``pick_device()``.
        progress: passed to ``train`` (a line per epoch).
        quiet: do not print a line for every stored run that is loaded.
    Returns:
        One ``RunResult`` per seed, in the order of ``seeds``.
    """
    plan = pick(CHAPTER6, budget)
    device = pick_device(device)
    base = f"ch6-{plan.model['arch']}-bn"
    out = []
    for seed in plan.seeds if seeds is None else seeds:
        name = run_name(base, seed)

        def build(seed: int = seed) -> nn.Module:
            torch.manual_seed(seed)          # the same initial weights for the same seed
            return build_vgg(**plan.model).to(device)

        stored = stored_or_check_data(name, data, budget, store, quiet, "batch_norm_runs")
        if stored is not None:               # with its network when its weights are stored
            out.append(with_stored_weights(stored, build, budget))
            continue
        loaders = make_loaders(data, plan.run, seed=plan.split_seed, augment=plan.augment, device=device,
                               loader_seed=seed)

        def finish(model: Optional[nn.Module], history: History, loaders: Loaders = loaders) -> None:
            preds, labels = predict(model, loaders.test)
            history.meta.update(test_acc=(preds == labels).float().mean().item(), test_size=len(labels))

        config = TrainConfig(epochs=plan.run.epochs, **{**plan.recipe, "seed": seed})
        meta = {"data_source": data.source, "seed": seed, "split_seed": plan.split_seed,
                "model": dict(plan.model), "budget_detail": str(plan.run)}
        out.append(train_or_load(name, build, loaders.train, loaders.val, config, budget=budget, store=store,
                                 finish=finish, keep_weights=seed == 0, device=device, progress=progress,
                                 meta=meta))
    return out


def main(argv: Optional[list[str]] = None) -> int:
    """Record chapter 5's and 6's stored runs (maintainers): ``python -m vgg_helpers.failure_runs record``.

    Args:
        argv: command-line arguments.
    Returns:
        The exit status.
    """
    rec = recording_setup("python -m vgg_helpers.failure_runs", "chapters 5 and 6's",
                          ["reproduction", "ablation", "depth", "fix", "batch-norm"], argv, match=True)
    args, data, budget, device = rec.args, rec.data, rec.budget, rec.device
    t0 = time.perf_counter()
    for what in args.only:
        if what == "reproduction":
            if args.match not in REPRODUCTION:
                continue
            runs = {"reproduction": reproduction_runs(data, budget, "record", device=device)}
        elif what == "batch-norm":
            plan = pick(CHAPTER6, budget)
            for r in batch_norm_runs(data, budget, "record", seeds=[s for s in plan.seeds
                                                                   if args.match in run_name("ch6", s)],
                                     device=device, progress=True):
                h = r.history
                print(f"{r.name}: val {h.val_acc[-1]:.4f} test {h.meta['test_acc']:.4f} "
                      f"{h.time[-1]:.0f} s  [{time.perf_counter() - t0:.0f} s]", flush=True)
            continue
        else:
            table, repeat = {"ablation": (CHAPTER5_ABLATION, ablation_runs), "depth": (CHAPTER5_DEPTH, depth_runs),
                             "fix": (CHAPTER6_FIX, fix_runs)}[what]
            runs = repeat(data, budget, "record", rungs=[g for g in table if args.match in g.name], device=device)
        for s in summarize(runs):
            print(f"{s.label:<32} drop {[round(d, 4) for d in s.drop]} val {[round(a, 4) for a in s.val_acc]} "
                  f"diverged {s.diverged}  [{time.perf_counter() - t0:.0f} s]", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
