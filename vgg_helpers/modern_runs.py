"""Chapter 8's runs of the modern VGG: the ladder of ingredients and the final run, stored or trained.

* ``ladder_runs`` walks ``budgets.MODERN_LADDER`` (one ingredient per rung, each rung adding its change to the one
  before) over seeds, at the ladder's reduced budget (``budgets.MODERN_LADDER_RUN``), on a subset of the book's
  45,000 / 5,000 hold-out split. A rung that only turns on test-time augmentation re-reads its base run.
* ``final_runs`` loads the final runs that ``bench/modern_vgg.py --store ch8-modern`` recorded (all 50,000 training
  images, measured on the test set), seed 0 with its trained weights; or trains seed 0 when told to.
* ``split_modern_changes`` sorts a rung's settings into the network's (``ModernConfig``) and the recipe's.

Every run's history holds the accuracy after each epoch (no test-time augmentation) and, in ``meta["acc_by_tta"]``,
the final accuracy at each test-time augmentation level with the seconds it took. Maintainers record the ladder
with ``python -m vgg_helpers.modern_runs record --budget cpu`` (about 45 minutes on 2 cores).
"""
from __future__ import annotations

import statistics
import time
from dataclasses import fields
from typing import Any, Optional, Sequence

import torch

from .budgets import MODERN_FINAL, MODERN_LADDER, MODERN_LADDER_RUN, MODERN_SHORT, Rung, pick
from .data import CIFAR10, random_subset, split_train_val
from .modern import ModernConfig, ModernVGG, build_modern_vgg
from .recipes import ModernRecipe, evaluate_modern, normalize_images, train_modern
from .runs import (RunResult, load_run, recording_setup, run_name, save_reference, stored_or_check_data,
                   with_stored_weights)
from .runtime import pick_device
from .training import History

__all__ = ["FINAL", "SHORT", "split_modern_changes", "ladder_runs", "ladder_table", "final_runs",
           "build_final_model", "main"]

FINAL = "ch8-modern"     # the stored name of the final run (seed 0; seed S is "ch8-modern-sS")
SHORT = "ch8-modern-short"   # the schedule built for the blog post's 88.2% (no stored weights)
_PLANS = {FINAL: MODERN_FINAL, SHORT: MODERN_SHORT}

_MODEL_KEYS = {f.name for f in fields(ModernConfig)} - {"layers"}
_RECIPE_KEYS = {f.name for f in fields(ModernRecipe)}


def split_modern_changes(changes: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sort settings into the network's (``ModernConfig`` fields) and the recipe's (``ModernRecipe`` fields).

    Raises:
        ValueError: a setting that is neither (the message lists both).
    """
    unknown = sorted(set(changes) - _MODEL_KEYS - _RECIPE_KEYS)
    if unknown:
        raise ValueError(f"unknown modern-VGG settings {unknown}: the network takes {sorted(_MODEL_KEYS)}, the "
                         f"recipe {sorted(_RECIPE_KEYS)}")
    return ({k: v for k, v in changes.items() if k in _MODEL_KEYS},
            {k: v for k, v in changes.items() if k in _RECIPE_KEYS})


def _train(name: str, arch: str, model_kwargs: dict, recipe: ModernRecipe, x: torch.Tensor, y: torch.Tensor,
           xv: torch.Tensor, yv: torch.Tensor, device: torch.device, progress: bool) -> tuple[ModernVGG, History]:
    torch.manual_seed(recipe.seed)
    model = build_modern_vgg(arch, **model_kwargs)

    def show(row: dict) -> None:
        if progress:
            print(f"{name} epoch {row['epoch']}: train acc {row['train_acc']:.4f} acc {row['val_acc']:.4f} "
                  f"| {row['time']:.0f} s", flush=True)

    history = train_modern(model, x, y, recipe, val_images=xv, val_labels=yv, device=device,
                           eval_every_epoch=True, on_epoch=show)
    xv_n, yv_d = normalize_images(xv, device), yv.to(device)
    by_tta = {}
    for level in (0, 1, 2):          # the final accuracy at every test-time augmentation level, timed
        t0 = time.perf_counter()
        acc = evaluate_modern(model, xv_n, yv_d, level=level)
        by_tta[str(level)] = dict(acc=acc, seconds=time.perf_counter() - t0)
    history.meta.update(run=name, arch=arch, model_changes=model_kwargs, acc_by_tta=by_tta)
    return model, history


def ladder_runs(data: Optional[CIFAR10], budget: str, store: str = "train",
                rungs: Optional[Sequence[Rung]] = None, seeds: Optional[Sequence[int]] = None,
                device: torch.device | str | None = None, progress: bool = False) -> dict[str, list[RunResult]]:
    """Every rung of the modern ladder over seeds: ``{rung name: [one RunResult per seed]}``.

    Args:
        data: CIFAR-10 in memory (``None`` is fine when every run is stored and ``store="load"``).
        budget: picks ``MODERN_LADDER_RUN[budget]``.
        store: ``"load"`` shows stored runs, ``"train"`` trains, ``"record"`` trains and stores.
        rungs: default ``MODERN_LADDER``.
        seeds: default the budget's seeds.
        device: default ``pick_device()``.
        progress: print every epoch.
    Returns:
        The runs, in ladder order. A rung that only sets ``tta_level`` shares its base run's history (and
        network); read its accuracy from ``meta["acc_by_tta"]``.
    """
    plan = pick(MODERN_LADDER_RUN, budget)
    rungs = list(MODERN_LADDER if rungs is None else rungs)
    seeds = list(plan["seeds"] if seeds is None else seeds)
    device = pick_device(device)
    subsets = None
    out: dict[str, list[RunResult]] = {}
    for rung in rungs:
        base = next((r for r in rungs if r.name == rung.base), None)
        if base is not None and base.name in out and \
                {k: v for k, v in rung.changes.items() if k != "tta_level"} == \
                {k: v for k, v in base.changes.items() if k != "tta_level"}:
            out[rung.name] = out[base.name]           # the same training, read with another test-time level
            continue
        model_kwargs, recipe_kwargs = split_modern_changes(dict(rung.changes))
        results = []
        for seed in seeds:
            name = run_name(rung.name, seed)
            stored = stored_or_check_data(name, data, budget, store, quiet=True, who="ladder_runs")
            if stored is not None:
                results.append(stored)
                continue
            if subsets is None:
                train_idx, val_idx = split_train_val(len(data.train_labels), plan["val_size"], seed=0)
                train_idx = random_subset(train_idx, plan["train_size"])   # (never the first N: sorted by class)
                subsets = (data.train_images[train_idx], data.train_labels[train_idx],
                           data.train_images[val_idx], data.train_labels[val_idx])
            recipe = ModernRecipe(**{**plan["recipe"], **recipe_kwargs, "seed": seed})
            model, history = _train(name, plan["arch"], model_kwargs, recipe, *subsets, device, progress)
            history.meta.update(budget=budget, data_source=data.source, measured_on="validation")
            if store == "record":
                save_reference(history, name, budget)
            results.append(RunResult(name, history, trained=True, _model=model))
        out[rung.name] = results
    return out


def ladder_table(runs: dict[str, list[RunResult]], rungs: Optional[Sequence[Rung]] = None) -> list[dict]:
    """One row per rung of ``ladder_runs``'s result: its accuracy and seconds over seeds, and its gain over the
    rung before it, seed by seed (the same seed draws the same batches in both, so the paired difference is the
    ingredient's doing plus less noise than two independent runs).

    Args:
        runs: from ``ladder_runs``.
        rungs: the rungs, in order (default ``MODERN_LADDER``).
    Returns:
        Dicts with ``name``, ``what``, ``accs`` (one per seed, at the rung's test-time augmentation level),
        ``acc`` and ``acc_sd`` (mean and sd), ``gain`` and ``gain_sd`` (``None`` for the first rung) and
        ``seconds`` (mean: training plus the final evaluation at the rung's level).
    """
    rows: list[dict] = []
    for rung in (MODERN_LADDER if rungs is None else rungs):
        if rung.name not in runs:
            continue
        level = str(dict(rung.changes).get("tta_level", ModernRecipe.tta_level))
        metas = [r.history.meta for r in runs[rung.name]]
        accs = [m["acc_by_tta"][level]["acc"] for m in metas]
        seconds = [m["train_seconds"] + m["acc_by_tta"][level]["seconds"] for m in metas]
        row = dict(name=rung.name, what=rung.what, accs=accs, acc=statistics.fmean(accs),
                   acc_sd=statistics.stdev(accs) if len(accs) > 1 else 0.0, seconds=statistics.fmean(seconds),
                   gain=None, gain_sd=None)
        if rows and len(rows[-1]["accs"]) == len(accs):
            gains = [a - b for a, b in zip(accs, rows[-1]["accs"])]
            row.update(gain=statistics.fmean(gains), gain_sd=statistics.stdev(gains) if len(gains) > 1 else 0.0)
        rows.append(row)
    return rows


def _plan(name: str, budget: str) -> dict:
    if name not in _PLANS:
        raise ValueError(f"no final-run plan named {name!r}; choose one of {', '.join(_PLANS)}")
    return pick(_PLANS[name], budget)


def build_final_model(budget: str, name: str = FINAL) -> ModernVGG:
    """A fresh network of a final run's architecture (e.g. ``MODERN_FINAL[budget]``), for its stored weights."""
    return build_modern_vgg(_plan(name, budget)["arch"])


def final_runs(data: Optional[CIFAR10], budget: str, store: str = "load", seeds: Sequence[int] = (0, 1, 2),
               device: torch.device | str | None = None, progress: bool = False,
               name: str = FINAL) -> list[RunResult]:
    """The final runs (all training images, measured on the test set), one per seed; seed 0 with its network
    where its weights are stored.

    ``store="load"`` reads what ``bench/modern_vgg.py --store NAME`` recorded; a seed that is not stored is
    left out (the smoke budget stores none: it trains seed 0 on its small subset). ``store="train"`` trains seed 0
    only (about 14 minutes on 2 cores in the cpu budget for ``FINAL``).

    Args:
        data: CIFAR-10 in memory (``None`` is fine when loading).
        budget: picks the plan's entry (``MODERN_FINAL[budget]`` for ``FINAL``, ``MODERN_SHORT`` for ``SHORT``).
        store: ``"load"`` or ``"train"`` (recording is the benchmark's job).
        seeds: the seeds to load.
        device: default ``pick_device()``.
        progress: print every epoch while training.
        name: ``FINAL`` (the full 15 minutes) or ``SHORT`` (the schedule built for the blog post's 88.2%).
    Returns:
        The runs, seed 0 first.
    """
    plan = _plan(name, budget)
    if store == "record":
        raise ValueError("the final runs are recorded by the benchmark: python -m bench.modern_vgg --arch "
                         f"{plan['arch']} --epochs {plan['recipe']['epochs']} --seeds 0 1 2 "
                         f"--eval-every-epoch --store {name}")
    if store == "load" and budget != "smoke":
        found = [load_run(run_name(name, s), budget, quiet=s != 0) for s in seeds]
        found = [r for r in found if r is not None]
        if found:
            found[0] = with_stored_weights(found[0], lambda: build_final_model(budget, name), budget)
            return found
    if data is None:
        raise TypeError(f"final_runs needs the data set to train '{name}' (no stored {budget}-budget run was "
                        "found). Pass data=load_cifar10(...).")
    i = random_subset(torch.arange(len(data.train_labels)), plan["train_size"])
    j = random_subset(torch.arange(len(data.test_labels)), plan["test_size"])
    recipe = ModernRecipe(**{**plan["recipe"], "seed": 0})
    model, history = _train(name, plan["arch"], {}, recipe, data.train_images[i], data.train_labels[i],
                            data.test_images[j], data.test_labels[j], pick_device(device), progress)
    history.meta.update(budget=budget, data_source=data.source, measured_on="test",
                        final_acc=history.meta["acc_by_tta"][str(recipe.tta_level)]["acc"])
    return [RunResult(name, history, trained=True, _model=model)]


def main(argv: Optional[list[str]] = None) -> int:
    """Record chapter 8's ladder (maintainers): ``python -m vgg_helpers.modern_runs record``.

    Args:
        argv: command-line arguments.
    Returns:
        The exit status.
    """
    rec = recording_setup("python -m vgg_helpers.modern_runs", "chapter 8's modern-VGG", ["ladder"], argv,
                          match=True)
    t0 = time.perf_counter()
    wanted = rec.args.match.split(",")    # e.g. --match modern-0-,modern-1- (two recordings, a thread each)
    rungs = [r for r in MODERN_LADDER if any(w in r.name for w in wanted)]
    runs = ladder_runs(rec.data, rec.budget, "record", rungs=rungs, device=rec.device, progress=True)
    for name, results in runs.items():
        accs = [r.history.meta["acc_by_tta"]["0"]["acc"] for r in results]
        print(f"{name}: {[round(a, 4) for a in accs]} {[round(r.history.time[-1]) for r in results]} s "
              f"[{time.perf_counter() - t0:.0f} s]", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
