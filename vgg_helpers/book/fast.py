"""The runs of the classic VGG made fast: one run with its test accuracy and timings, and the ladder of ingredients.

* ``fast_run`` trains (or loads) one run of a plan (``plans.FAST``: the batch-norm VGG with the speed settings of
  ``fast.FastModel``) and records its test accuracy with and without the test-time flip and its timings;
* ``run_ladder`` walks ``plans.FAST_LADDER`` from the batch-norm run to the final recipe's ingredients, over
  seeds, measured on the validation split (the test set is for the final runs only).

Every run goes through ``store.train_or_load``: a chapter shows the stored histories unless told to retrain.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, replace
from typing import Any, Iterable, Iterator, Mapping, Optional

import torch
from torch import nn

from ..data import make_loaders, normalize_images
from ..diagnostics import paired_gains
from ..fast import FastModel
from ..models import build_vgg
from ..modern import MODERN_CONFIGS, ModernRecipe, ModernVGG, build_modern_vgg, init_whitening
from ..runtime import pick_device, set_threads
from ..training import History, evaluate
from .plans import FAST_LADDER, Plan, pick
from .store import Data, RunResult, Trained, store_policy, fit, need_data, train_or_load

__all__ = ["TimedLoader", "fast_run", "run_ladder"]


class TimedLoader:
    """A loader wrapper that records how long each full pass over it took (the consumer's work included).

    ``train`` evaluates its validation / test loader once per epoch; wrapping it gives the seconds spent
    evaluating, so they can be subtracted from the training time.
    """

    def __init__(self, loader: Iterable) -> None:
        self.loader = loader
        self.seconds: list[float] = []

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator:
        t0 = time.perf_counter()
        yield from self.loader
        self.seconds.append(time.perf_counter() - t0)


def fast_run(data: Data, plan: Plan, *, budget: str, name: Optional[str] = None, store: Optional[str] = None,
             eval_each_epoch: Optional[str] = None, measure_on: str = "test", progress: Optional[bool] = None,
             device: torch.device | str | None = None, quiet: bool = False) -> RunResult:
    """Train one run of ``plan`` (or load its stored history) and record its final accuracy and timings.

    Args:
        data: CIFAR-10 in memory or a function that loads it (``store.Data``; ``None`` will do when the run is
            stored and ``store="load"``).
        plan: data sizes, network, recipe, speed settings, augmentation, test-time augmentation, seed.
        budget: the budget the run belongs to.
        name: the stored name (default ``plan.run_name()``).
        store: ``"train"``, ``"load"`` or ``"record"`` (``store.train_or_load``).
        eval_each_epoch: ``None``, ``"val"`` (into ``history.val_*``) or ``"test"`` (into ``history.test_*``:
            the benchmark's choice, never used for tuning); its time is excluded from ``train_seconds``.
        measure_on: where the final accuracy is measured: ``"test"`` (a frozen recipe's run) or ``"val"`` (the
            plan's validation images: a run that helps choose a recipe never sees the test set).
        progress: passed to ``train``.
        device: default ``pick_device()``.
        quiet: do not print the line that says a run was loaded rather than trained.
    Returns:
        A ``RunResult``. ``history.meta`` holds ``test_acc`` (at the plan's test-time augmentation),
        ``test_acc_plain``, ``test_acc_flip`` and ``test_images`` (``val_...`` instead with ``measure_on="val"``),
        ``train_seconds`` (per epoch, cumulative, evaluations excluded), ``eval_seconds``,
        ``final_eval_seconds`` and ``eval_set``. A run whose loss became NaN is a result too:
        ``meta["diverged"]`` holds the message and the accuracies are ``None`` (never measured).
    """
    if eval_each_epoch not in (None, "val", "test"):
        raise ValueError(f"eval_each_epoch must be None, 'val' or 'test'; got {eval_each_epoch!r}")
    if measure_on not in ("val", "test"):
        raise ValueError(f"measure_on must be 'val' or 'test'; got {measure_on!r}")
    if measure_on == "val" and (eval_each_epoch == "test" or not plan.run.val_size):
        raise ValueError(f"a run measured on the validation split must hold images out (plan {plan.name!r} has "
                         f"val_size={plan.run.val_size}) and must not evaluate the test set each epoch")
    name = plan.run_name() if name is None else name
    store = store_policy(plan.store, store)

    def train_run() -> Trained:
        data_ = need_data(data, name, budget)
        dev = pick_device(device)
        speed = plan.speed
        threads = set_threads(speed.threads)
        loaders = make_loaders(data_, plan.run, seed=plan.split_seed, loader_seed=plan.seeds[0],
                               augment=plan.augment, device=dev, channels_last=speed.channels_last)
        val = TimedLoader(loaders.val) if eval_each_epoch == "val" and loaders.val is not None else None
        test = TimedLoader(loaders.test) if eval_each_epoch == "test" else None

        def build_model() -> nn.Module:
            torch.manual_seed(plan.seeds[0])
            return FastModel.with_settings(_network(plan.model, loaders.train.images), speed)

        def finish(model: Optional[nn.Module], history: History) -> None:
            timed = val or test
            evals = timed.seconds if timed is not None else [0.0] * len(history.time)
            history.meta["eval_seconds"] = evals
            history.meta["train_seconds"] = [t - sum(evals[:i + 1]) for i, t in enumerate(history.time)]
            if model is None:       # diverged: nothing was measured
                history.meta.update({f"{measure_on}_{k}": None for k in ("acc", "acc_plain", "acc_flip")})
                return
            loader, idx = (loaders.test, loaders.test_idx) if measure_on == "test" else (loaders.val, loaders.val_idx)
            t0 = time.perf_counter()
            acc = evaluate(model, loader, tta=plan.tta)[1]              # the budget's clock counts this one
            history.meta["final_eval_seconds"] = time.perf_counter() - t0
            plain, flip = (acc if level == plan.tta else evaluate(model, loader, tta=level)[1]
                           for level in (0, 1))                          # the other level, outside the clock
            history.meta.update({f"{measure_on}_acc": acc, f"{measure_on}_acc_plain": plain,
                                 f"{measure_on}_acc_flip": flip, f"{measure_on}_images": len(idx)})

        meta = {"data_source": data_.source, "speed": asdict(speed), "augment": plan.augment, "tta": plan.tta,
                "train_images": len(loaders.train_idx), "eval_set": eval_each_epoch, "measured_on": measure_on,
                "threads": threads,
                "model_kwargs": dict(plan.model)}
        return fit(build_model, loaders.train, val, plan.train_config(), finish=finish, allow_divergence=True,
                   device=dev, progress=progress, meta=meta, test_loader=test, tta=plan.tta)

    return train_or_load(name, train_run, budget=budget, store=store, quiet=quiet)


def build_network(model: Mapping[str, Any]) -> nn.Module:
    """A plan's network: a modern VGG when ``model["arch"]`` is in ``MODERN_CONFIGS``, else a VGG from
    ``build_vgg`` (the bridge runs train each with the other's recipe)."""
    if model.get("arch") not in MODERN_CONFIGS:
        return build_vgg(**model)
    return build_modern_vgg(model["arch"], **{k: v for k, v in model.items() if k != "arch"})


def _network(model: Mapping[str, Any], train_images: torch.Tensor) -> nn.Module:
    """``build_network``, a modern VGG's whitening layer set from the training images as ``train_modern`` sets it
    (``train`` does not)."""
    net = build_network(model)
    if isinstance(net, ModernVGG) and net.config.whiten:
        init_whitening(net, normalize_images(train_images[:ModernRecipe().whiten_images]))
    return net


def run_ladder(data: Data, budget: str, store: Optional[str] = None, progress: Optional[bool] = None,
               device: torch.device | str | None = None, quiet: bool = False) -> list[dict]:
    """Train (or load) every rung of ``plans.FAST_LADDER`` over its seeds, measured on the validation split.

    Args:
        data: CIFAR-10 in memory or a function that loads it (``store.Data``; ``None`` will do when every rung is
            stored and ``store="load"``).
        budget: the ladder's budget.
        store: ``"train"``, ``"load"`` or ``"record"``.
        progress: passed to ``train``.
        device: default ``pick_device()``.
        quiet: do not print a line for every stored run that is loaded.
    Returns:
        One row per rung: ``rung`` (its short name), ``names`` (stored, one per seed), ``what``, ``base``,
        ``seeds``, ``accs`` (validation accuracy per seed, at the rung's test-time augmentation; ``None`` for a
        diverged run), ``acc`` and ``acc_sd`` (their mean and sd), ``gains`` (per seed, minus its base rung's run
        of the same seed), ``gain``, ``gain_sd`` and ``gain_se`` (mean, sd, standard error; ``None`` for the first
        rung or when a run diverged), ``train_seconds`` (mean, evaluations excluded), ``diverged`` (the messages)
        and ``histories``.
    """
    ladder = pick(FAST_LADDER, budget)
    rows: dict[str, dict] = {}
    for rung in ladder.rungs:
        plan = ladder.for_rung(rung.name)
        if ladder.retrains(rung.name):
            histories = [fast_run(data, replace(plan, seeds=(seed,)), budget=budget,
                                  name=ladder.run_name(rung.name, seed), store=store, eval_each_epoch="val",
                                  measure_on="val", progress=progress, device=device, quiet=quiet).history
                         for seed in ladder.seeds]
            accs = [h.meta["val_acc"] for h in histories]
        else:
            histories = rows[rung.base]["histories"]
            accs = [h.meta["val_acc_flip" if plan.tta else "val_acc_plain"] for h in histories]
        row = {"rung": rung.name, "names": [ladder.run_name(rung.name, s) for s in ladder.seeds], "what": rung.what,
               "base": rung.base, "seeds": list(ladder.seeds), "accs": accs,
               "train_seconds": statistics.fmean(h.meta["train_seconds"][-1] for h in histories),
               "diverged": [h.meta["diverged"] for h in histories if h.meta.get("diverged")],
               "histories": histories}
        row.update(_spread("acc", accs))
        base = rows.get(rung.base or "")
        row.update(dict(gains=None, gain=None, gain_sd=None, gain_se=None) if base is None
                   else paired_gains(accs, base["accs"]))
        rows[rung.name] = row
    return list(rows.values())


def _spread(key: str, values: list) -> dict:
    """``{key: mean, key_sd: sd}`` of ``values`` (sd 0 for one value); both ``None`` if any value is."""
    if any(v is None for v in values):
        return {key: None, f"{key}_sd": None}
    return {key: statistics.fmean(values), f"{key}_sd": statistics.stdev(values) if len(values) > 1 else 0.0}
