"""The runs of the modern VGG (``vgg_helpers.modern``): the ladder of ingredients and the final runs.

* ``modern_run`` trains (or loads) one run of a plan with ``modern.train_modern``, on the plan's data
  (``data.make_loaders``), and measures its final accuracy at every test-time augmentation level;
* ``ladder_runs`` walks ``plans.MODERN_LADDER`` (one ingredient per rung, each rung adding its change to the one
  before) over seeds, on a subset of the book's 45,000 / 5,000 hold-out split; a rung that only turns on test-time
  augmentation re-reads its base run (``Plan.retrains``); ``ladder_table`` turns them into gains over seeds;
* ``bridge_runs`` trains each network (the classic fast VGG, the modern VGG) with each recipe on the hold-out, and
  ``bridge_effects`` says how much of the gap is the network and how much the recipe;
* ``final_runs`` gives the final runs (``plans.MODERN``, or ``plans.MODERN_SHORT``: all 50,000 training images,
  measured on the test set), the plan's first seed with its trained weights.

Every run's history holds the accuracy after each epoch (no test-time augmentation) and, in ``meta["acc_by_tta"]``,
the final accuracy at each test-time augmentation level with the seconds it took. Every run goes through
``store.train_or_load``.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import replace
from typing import Mapping, Optional, Sequence

import torch

from ..data import CIFAR10, make_loaders
from ..diagnostics import paired_gains
from ..modern import ModernVGG, evaluate_modern, train_modern
from ..runtime import pick_device
from ..training import TTA_LEVELS
from .fast import build_network, fast_run
from .plans import BRIDGE_CLASSIC, BRIDGE_MODERN, FAST_LADDER, MODERN, MODERN_LADDER, MODERN_SHORT, Plan, pick
from .store import Data, RunResult, Trained, store_policy, need_data, train_or_load

__all__ = ["EVAL_BATCH", "FINAL_PLANS", "modern_run", "ladder_runs", "ladder_table", "bridge_runs",
           "bridge_effects", "final_runs", "build_final_model"]

EVAL_BATCH = 2000        # images per evaluation batch
FINAL_PLANS = {"modern-final": MODERN, "modern-short": MODERN_SHORT}   # the final runs' plans, by stored name


def modern_run(data: CIFAR10, plan: Plan, *, name: str, seed: int, measure_on: str,
               device: torch.device | str | None = None, progress: bool = False,
               eval_every_epoch: bool = True) -> Trained:
    """Train one run of ``plan`` with the modern recipe (its ``model`` holds the ``arch`` and ``ModernConfig``
    fields, or ``build_vgg``'s arguments for a classic VGG: the bridge runs).

    Args:
        data: CIFAR-10 in memory.
        plan: the run's complete plan (``Plan.for_rung`` for a rung).
        name: the run's name (printed and stored).
        seed: the run's seed (initial weights, batch order, flips and shifts).
        measure_on: ``"val"`` (the plan's hold-out) or ``"test"`` (a final run).
        device: default ``pick_device()``.
        progress: print every epoch.
        eval_every_epoch: measure the accuracy after every epoch (not counted in the training time).
    Returns:
        ``(model, history)``; ``history.meta["acc_by_tta"]`` holds the final accuracy at every level.
    """
    device = pick_device(device)
    loaders = make_loaders(data, plan.run, seed=plan.split_seed, loader_seed=seed, device=device,
                           eval_batch_size=EVAL_BATCH)
    model_kwargs = {k: v for k, v in plan.model.items() if k != "arch"}
    recipe = plan.modern_recipe(seed)
    torch.manual_seed(recipe.seed)
    model = build_network(plan.model)       # a classic VGG (the bridge runs) trains with the same recipe

    def show(row: dict) -> None:
        if progress:
            print(f"{name} epoch {row['epoch']}: train acc {row['train_acc']:.4f} acc {row['val_acc']:.4f} "
                  f"| {row['time']:.0f} s", flush=True)

    history = train_modern(model, loaders, recipe, measure_on=measure_on, device=device,
                           eval_every_epoch=eval_every_epoch, on_epoch=show)
    measured = loaders.val if measure_on == "val" else loaders.test
    by_tta = {}
    for level in TTA_LEVELS:          # the final accuracy at every test-time augmentation level, timed
        if level == recipe.tta_level:     # train_modern measured this one: the last seconds on its clock
            acc, seconds = history.meta["final_acc"], history.meta["total_seconds"] - history.meta["train_seconds"]
        else:
            t0 = time.perf_counter()
            acc = evaluate_modern(model, measured, level=level)
            seconds = time.perf_counter() - t0
        by_tta[str(level)] = dict(acc=acc, seconds=seconds)
    history.meta.update(arch=plan.model["arch"], model_changes=model_kwargs, acc_by_tta=by_tta,
                        data_source=data.source, measured_on="validation" if measure_on == "val" else "test")
    return model, history


def ladder_runs(data: Data, budget: str, store: Optional[str] = None, rungs: Optional[Sequence[str]] = None,
                seeds: Optional[Sequence[int]] = None, device: torch.device | str | None = None,
                progress: bool = False) -> dict[str, list[RunResult]]:
    """Every rung of the modern ladder over seeds: ``{rung name: [one RunResult per seed]}``.

    Args:
        data: CIFAR-10 in memory or a function that loads it (``store.Data``; ``None`` is fine when every run is
            stored and ``store="load"``).
        budget: picks ``MODERN_LADDER[budget]``.
        store: ``"load"`` shows stored runs, ``"train"`` trains, ``"record"`` trains and stores.
        rungs: names of the rungs to run (default: all of them).
        seeds: default the plan's seeds.
        device: default ``pick_device()``.
        progress: print every epoch.
    Returns:
        The runs, in ladder order. A rung that only changes the test-time augmentation shares its base run's
        history (and network); read its accuracy from ``meta["acc_by_tta"]``.
    """
    ladder = pick(MODERN_LADDER, budget)
    store = store_policy(ladder.store, store)
    wanted = [r.name for r in ladder.rungs] if rungs is None else list(rungs)
    out: dict[str, list[RunResult]] = {}
    for name in wanted:
        rung = ladder.rung(name)
        if not ladder.retrains(name) and rung.base in out:
            out[name] = out[rung.base]           # the same training, read at another test-time level
            continue
        plan = ladder.for_rung(name)
        results = []
        for seed in ladder.seeds if seeds is None else seeds:
            run = ladder.run_name(name, seed)

            def train_run(seed: int = seed, run: str = run, plan: Plan = plan) -> Trained:
                return modern_run(need_data(data, run, budget), plan, name=run, seed=seed, measure_on="val",
                                  device=device, progress=progress)

            results.append(train_or_load(run, train_run, budget=budget, store=store))
        out[name] = results
    return out


def ladder_table(runs: Mapping[str, list[RunResult]], budget: str) -> list[dict]:
    """One row per rung of ``ladder_runs``'s result: its accuracy and seconds over seeds, and its gain over the
    rung before it, seed by seed (the same seed draws the same batches in both, so the paired difference is the
    ingredient's doing plus less noise than two independent runs).

    Args:
        runs: from ``ladder_runs``.
        budget: the ladder's budget (its plan says each rung's test-time augmentation level).
    Returns:
        Dicts with ``name`` (the rung's), ``what``, ``accs`` (one per seed, at the rung's test-time augmentation
        level), ``acc`` and ``acc_sd`` (mean and sd), ``gain``, ``gain_sd`` and ``gain_se`` (its standard error,
        sd / sqrt(seeds); ``None`` for the first rung) and
        ``seconds`` (mean: training plus the final evaluation at the rung's level).
    """
    ladder = pick(MODERN_LADDER, budget)
    rows: list[dict] = []
    for rung in ladder.rungs:
        if rung.name not in runs:
            continue
        level = str(ladder.for_rung(rung.name).tta)
        metas = [r.history.meta for r in runs[rung.name]]
        accs = [m["acc_by_tta"][level]["acc"] for m in metas]
        seconds = [m["train_seconds"] + m["acc_by_tta"][level]["seconds"] for m in metas]
        row = dict(name=rung.name, what=rung.what, accs=accs, acc=statistics.fmean(accs),
                   acc_sd=statistics.stdev(accs) if len(accs) > 1 else 0.0, seconds=statistics.fmean(seconds),
                   gain=None, gain_sd=None, gain_se=None)
        if rows and len(rows[-1]["accs"]) == len(accs):
            row.update(paired_gains(accs, rows[-1]["accs"]))
        rows.append(row)
    return rows


def bridge_runs(data: Data, budget: str, store: Optional[str] = None, device: torch.device | str | None = None,
                progress: bool = False, quiet: bool = False, match: str = "") -> list[dict]:
    """Each network trained with each recipe under one budget, over the same seeds, measured on the validation
    images (``plans.BRIDGE_MODERN``, ``plans.BRIDGE_CLASSIC``; the classic network with the classic recipe is the
    classic ladder's rung ``1-fast-step``).

    Args:
        data: CIFAR-10 in memory or a function that loads it (``store.Data``; ``None`` is fine when every run is
            stored and ``store="load"``).
        budget: picks the plans' entries.
        store: ``"load"``, ``"train"`` or ``"record"``.
        device: default ``pick_device()``.
        progress: print every epoch.
        quiet: do not print a line for every stored run that is loaded.
        match: with ``store="record"``, record only the runs whose stored name contains this text (load the rest).
    Returns:
        Five dicts, one per network and recipe: ``network`` ("classic" or "modern"), ``recipe`` ("classic",
        "modern", or "modern, head lr" for the classic VGG with the modern recipe's lr scaled for its head),
        ``names`` (stored, one per seed), ``seeds``, ``accs`` (validation accuracy with the test-time flip, which
        both recipes have), ``own_accs`` (at the recipe's own test-time augmentation) and ``seconds`` (training,
        per seed).
    """
    ladder, classic, modern = (pick(t, budget) for t in (FAST_LADDER, BRIDGE_CLASSIC, BRIDGE_MODERN))
    seeds = list(modern.seeds)
    rows = []
    store = store_policy(modern.store, store)

    def how(run: str, ours: bool = True) -> str:
        """Record only this topic's runs (the classic ladder records its own) and those ``match`` names."""
        return "load" if store == "record" and not (ours and match in run) else store

    for network, plan, name_of, ours in (("classic", ladder.for_rung("1-fast-step"),
                                          lambda s: ladder.run_name("1-fast-step", s), False),
                                         ("modern", classic, lambda s: classic.run_name(seed=s), True)):
        metas = [fast_run(data, replace(plan, seeds=(seed,)), budget=budget, name=name_of(seed),
                          store=how(name_of(seed), ours),
                          eval_each_epoch="val", measure_on="val", progress=progress, device=device,
                          quiet=quiet).history.meta for seed in seeds]
        rows.append(dict(network=network, recipe="classic", names=[name_of(s) for s in seeds], seeds=seeds,
                         accs=[m["val_acc_flip"] for m in metas], own_accs=[m["val_acc"] for m in metas],
                         seconds=[m["train_seconds"][-1] for m in metas]))
    for network, rung, recipe in (("classic", "classic-vgg", "modern"), ("classic", "classic-vgg-head-lr",
                                                                         "modern, head lr"),
                                  ("modern", "modern-vgg", "modern")):
        plan, metas = modern.for_rung(rung), []
        for seed in seeds:
            run = modern.run_name(rung, seed)

            def train_run(seed: int = seed, run: str = run, plan: Plan = plan) -> Trained:
                return modern_run(need_data(data, run, budget), plan, name=run, seed=seed, measure_on="val",
                                  device=device, progress=progress)

            metas.append(train_or_load(run, train_run, budget=budget, store=how(run), quiet=quiet).history.meta)
        rows.append(dict(network=network, recipe=recipe, names=[modern.run_name(rung, s) for s in seeds],
                         seeds=seeds, accs=[m["acc_by_tta"]["1"]["acc"] for m in metas],
                         own_accs=[m["acc_by_tta"][str(plan.tta)]["acc"] for m in metas],
                         seconds=[m["train_seconds"] for m in metas]))
    return rows


def bridge_effects(rows: Sequence[dict]) -> list[dict]:
    """What ``bridge_runs``'s cells say, seed by seed: the network's effect under each recipe and the recipe's
    effect on each network (paired differences of the flip accuracies); an effect whose cells are missing is left
    out.

    Returns:
        Dicts with ``what`` (e.g. "network, classic recipe": the modern network minus the classic one, both with
        the classic recipe), ``gains`` (per seed), ``gain``, ``gain_sd`` and ``gain_se`` (mean, sd, standard
        error).
    """
    cell = {(r["network"], r["recipe"]): r["accs"] for r in rows}
    out = []
    head = ("classic", "modern, head lr")
    for what, new, old in (("network, classic recipe", ("modern", "classic"), ("classic", "classic")),
                           ("network, modern recipe", ("modern", "modern"), ("classic", "modern")),
                           ("network, modern recipe (VGG: head lr)", ("modern", "modern"), head),
                           ("recipe, classic VGG", ("classic", "modern"), ("classic", "classic")),
                           ("recipe (head lr), classic VGG", head, ("classic", "classic")),
                           ("recipe, modern VGG", ("modern", "modern"), ("modern", "classic"))):
        if new not in cell or old not in cell:
            continue
        out.append(dict(what=what, **paired_gains(cell[new], cell[old])))
    return out


def _final_plan(name: str, budget: str) -> Plan:
    if name not in FINAL_PLANS:
        raise ValueError(f"no final-run plan named {name!r}; choose one of {', '.join(FINAL_PLANS)}")
    return pick(FINAL_PLANS[name], budget)


def build_final_model(budget: str, name: str = "modern-final") -> ModernVGG:
    """A fresh network of a final run's architecture (``plans.MODERN``, ``MODERN_SHORT``), for its stored weights."""
    plan = _final_plan(name, budget)
    return build_network(plan.model)


def final_runs(data: Data, budget: str, store: Optional[str] = None, seeds: Optional[Sequence[int]] = None,
               device: torch.device | str | None = None, progress: bool = False,
               name: str = "modern-final", quiet: bool = False) -> list[RunResult]:
    """The final runs (all training images, measured on the test set), one per seed (the plan's first seed first);
    the plan's first seed with its network where its weights are stored.

    ``store="load"`` reads the stored runs (a seed that is not stored is trained); ``store="train"`` trains the
    seeds (about 14 minutes each on 2 cores in the cpu budget for ``modern-final``); ``store="record"`` trains and
    stores them, the first seed of ``modern-final`` with its weights (the short schedule's runs are shown by their
    histories alone).

    Args:
        data: CIFAR-10 in memory or a function that loads it (``store.Data``; ``None`` is fine when loading).
        budget: picks the plan's entry (``MODERN[budget]`` for ``modern-final``, ``MODERN_SHORT`` for
            ``modern-short``).
        store: ``"load"``, ``"train"`` or ``"record"``.
        seeds: default: the plan's seeds when loading, its first seed alone when training.
        device: default ``pick_device()``.
        progress: print every epoch while training.
        name: ``"modern-final"`` (the full 15 minutes) or ``"modern-short"`` (the schedule built for the blog
            post's 88.2%).
        quiet: do not print the line that says the first seed's run was loaded rather than trained.
    Returns:
        The runs, in the order of ``seeds``.
    """
    plan = _final_plan(name, budget)
    store = store_policy(plan.store, store)
    if seeds is None:
        seeds = plan.seeds if store != "train" else plan.seeds[:1]
    out = []
    for seed in seeds:
        run = plan.run_name(seed=seed)

        def train_run(seed: int = seed, run: str = run) -> Trained:     # final_acc: train_modern's, at plan.tta
            return modern_run(need_data(data, run, budget), plan, name=run, seed=seed, measure_on="test",
                              device=device, progress=progress)

        out.append(train_or_load(run, train_run, budget=budget, store=store, quiet=quiet or seed != seeds[0],
                                 build_model=lambda: build_final_model(budget, name),
                                 keep_weights=FINAL_PLANS[name] is MODERN and seed == plan.seeds[0]))
    return out
