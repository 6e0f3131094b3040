"""The runs of the classic VGG made fast: one run with its test accuracy and timings, and the ladder of ingredients.

* ``fast_run`` trains (or loads) one run of a plan (``plans.FAST``: the batch-norm VGG with the speed settings of
  ``fast.FastModel``) and records its test accuracy with and without the test-time flip and its timings;
* ``run_ladder`` walks ``plans.FAST_LADDER`` from the batch-norm run to the final recipe.

Every run goes through ``store.train_or_load``: a chapter shows the stored histories unless told to retrain.
"""
from __future__ import annotations

import time
from dataclasses import asdict
from typing import Iterable, Iterator, Optional

import torch
from torch import nn

from ..data import make_loaders
from ..fast import FastModel
from ..models import build_vgg
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
             eval_each_epoch: Optional[str] = None, progress: Optional[bool] = None,
             device: torch.device | str | None = None, quiet: bool = False) -> RunResult:
    """Train one run of ``plan`` (or load its stored history) and record test accuracy and timings.

    Args:
        data: CIFAR-10 in memory or a function that loads it (``store.Data``; ``None`` will do when the run is
            stored and ``store="load"``).
        plan: data sizes, network, recipe, speed settings, augmentation, test-time augmentation, seed.
        budget: the budget the run belongs to.
        name: the stored name (default ``plan.run_name()``).
        store: ``"train"``, ``"load"`` or ``"record"`` (``store.train_or_load``).
        eval_each_epoch: ``None``, ``"val"`` (into ``history.val_*``) or ``"test"`` (into ``history.test_*``:
            the benchmark's choice, never used for tuning); its time is excluded from ``train_seconds``.
        progress: passed to ``train``.
        device: default ``pick_device()``.
        quiet: do not print the line that says a run was loaded rather than trained.
    Returns:
        A ``RunResult``. ``history.meta`` holds ``test_acc`` (at the plan's test-time augmentation),
        ``test_acc_plain``, ``test_acc_flip``, ``train_seconds`` (per epoch, cumulative, evaluations excluded),
        ``eval_seconds``, ``final_eval_seconds`` and ``eval_set``. A run whose loss became NaN is a result too:
        ``meta["diverged"]`` holds the message and the test accuracies are ``None`` (never measured).
    """
    if eval_each_epoch not in (None, "val", "test"):
        raise ValueError(f"eval_each_epoch must be None, 'val' or 'test'; got {eval_each_epoch!r}")
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
            return FastModel.with_settings(build_vgg(**plan.model), speed)

        def finish(model: Optional[nn.Module], history: History) -> None:
            timed = val or test
            evals = timed.seconds if timed is not None else [0.0] * len(history.time)
            history.meta["eval_seconds"] = evals
            history.meta["train_seconds"] = [t - sum(evals[:i + 1]) for i, t in enumerate(history.time)]
            if model is None:       # diverged: nothing was measured
                history.meta.update(test_acc=None, test_acc_plain=None, test_acc_flip=None)
                return
            t0 = time.perf_counter()
            test_acc = evaluate(model, loaders.test, tta=plan.tta)[1]   # the budget's clock counts this one
            history.meta["final_eval_seconds"] = time.perf_counter() - t0
            plain, flip = (test_acc if level == plan.tta else evaluate(model, loaders.test, tta=level)[1]
                           for level in (0, 1))                          # the other level, outside the clock
            history.meta.update(test_acc=test_acc, test_acc_plain=plain, test_acc_flip=flip,
                                test_images=len(loaders.test_idx))

        meta = {"data_source": data_.source, "speed": asdict(speed), "augment": plan.augment, "tta": plan.tta,
                "train_images": len(loaders.train_idx), "eval_set": eval_each_epoch, "threads": threads,
                "model_kwargs": dict(plan.model)}
        return fit(build_model, loaders.train, val, plan.train_config(), finish=finish, allow_divergence=True,
                   device=dev, progress=progress, meta=meta, test_loader=test, tta=plan.tta)

    return train_or_load(name, train_run, budget=budget, store=store, quiet=quiet)


def run_ladder(data: Data, budget: str, store: Optional[str] = None, progress: Optional[bool] = None,
               device: torch.device | str | None = None, quiet: bool = False) -> list[dict]:
    """Train (or load) every rung of ``plans.FAST_LADDER`` and collect the results.

    Args:
        data: CIFAR-10 in memory or a function that loads it (``store.Data``; ``None`` will do when every rung is
            stored and ``store="load"``).
        budget: the ladder's budget.
        store: ``"train"``, ``"load"`` or ``"record"``.
        progress: passed to ``train``.
        device: default ``pick_device()``.
        quiet: do not print a line for every stored run that is loaded.
    Returns:
        One row per rung: ``rung`` (its short name), ``name`` (stored), ``what``, ``base``, ``test_acc`` (at the
        rung's test-time augmentation; ``None`` if it diverged), ``train_seconds`` (evaluations excluded),
        ``diverged``, ``source`` and ``history``.
    """
    ladder = pick(FAST_LADDER, budget)
    rows: dict[str, dict] = {}
    for rung in ladder.rungs:
        plan = ladder.for_rung(rung.name)
        if ladder.retrains(rung.name):
            result = fast_run(data, plan, budget=budget, name=ladder.run_name(rung.name), store=store,
                              progress=progress, device=device, quiet=quiet)
            history, source = result.history, result.source
            acc = history.meta["test_acc"]
        else:
            base = rows[rung.base]
            history, source = base["history"], base["source"]
            acc = history.meta["test_acc_flip"] if plan.tta else history.meta["test_acc_plain"]
        secs = history.meta["train_seconds"][-1] if history.meta.get("train_seconds") else None
        rows[rung.name] = {"rung": rung.name, "name": ladder.run_name(rung.name), "what": rung.what,
                           "base": rung.base, "test_acc": acc, "train_seconds": secs,
                           "diverged": history.meta.get("diverged"), "source": source, "history": history}
    return list(rows.values())
