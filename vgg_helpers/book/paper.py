"""The runs of the paper's own methods (``vgg_helpers.paper``): its way out of the 10% failure, its testing, its
schedule.

* ``init_runs`` trains every start of ``plans.PAPER_INIT`` (plain nets, several seeds); a rung with ``start_from``
  begins from that rung's trained VGG-11 (``paper.init_from_shallow``, sec. 3.1);
* ``jitter_runs`` trains the batch-norm VGG-11 with scale jittering (``plans.PAPER_JITTER``) and measures every way
  of testing it (``paper.measure_test_methods``: one view, dense, multi-crop, the two combined; sec. 3.2, Table 5);
* ``schedule_runs`` trains the same network with the paper's plateau schedule and with one-cycle
  (``plans.PAPER_SCHEDULE``).

Every run goes through ``store.train_or_load``: a chapter shows the stored histories unless told to retrain.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from torch import nn

from ..data import CIFAR10, make_loaders
from ..models import build_vgg
from ..paper import ScaleJitter, init_from_shallow, measure_test_methods
from ..runtime import pick_device
from ..training import History, evaluate
from .plans import PAPER_INIT, PAPER_JITTER, PAPER_SCHEDULE, Plan, pick
from .store import Data, RunResult, Trained, store_policy, fit, need_data, train_or_load

__all__ = ["STEP_LOSS_EVERY", "init_runs", "jitter_runs", "schedule_runs"]

STEP_LOSS_EVERY = 5      # record the training loss of every 5th step (the loss curves of the init runs)


def _step_losses() -> tuple[list, Callable[[nn.Module, int, float], None]]:
    """A list and an ``on_step`` callback that appends every ``STEP_LOSS_EVERY``-th step's loss to it."""
    losses: list[float] = []

    def on_step(model: nn.Module, step: int, loss: float) -> None:
        if step % STEP_LOSS_EVERY == 0:
            losses.append(loss)
    return losses, on_step


def init_runs(data: Data, budget: str, store: Optional[str] = None, progress: Optional[bool] = None,
              device: torch.device | str | None = None, quiet: bool = True) -> dict[str, list[RunResult]]:
    """Train (or load) every start of the pre-initialisation experiment, each over the plan's seeds.

    Every run: the plain CIFAR VGG of ``plans.PLAIN_CIFAR_MODEL`` at the plan's width, the paper's optimiser
    (``plans.PAPER_RECIPE``), random crop and flip, the plan's images, epochs and batch. A rung with ``start_from``
    is started by ``init_from_shallow`` from that rung's trained net of the same seed (trained in the same call).
    ``history.meta`` holds ``test_acc`` (all test images of the budget), ``step_loss`` (every
    ``STEP_LOSS_EVERY``-th step) and ``copied`` (the layers taken from the trained VGG-11).

    Args:
        data: CIFAR-10 (``None`` will do when every run is stored and ``store="load"``).
        budget: ``"smoke"``, ``"cpu"`` or ``"gpu"``.
        store: ``"train"``, ``"load"`` or ``"record"``.
        progress: passed to ``train``.
        device: default ``pick_device()``.
        quiet: do not print a line for every stored run that is loaded.
    Returns:
        ``{rung name: [one RunResult per seed]}``, in the plan's order.
    """
    plan = pick(PAPER_INIT, budget)
    store = store_policy(plan.store, store)
    device = pick_device(device)
    out: dict[str, list[RunResult]] = {}
    trained: dict[tuple[str, int], nn.Module] = {}
    for rung in plan.rungs:
        out[rung.name] = []
        run_plan = plan.for_rung(rung.name)
        for seed in plan.seeds:
            name = plan.run_name(rung.name, seed)

            def train_run(seed: int = seed, name: str = name, run_plan: Plan = run_plan, rung=rung) -> Trained:
                teacher = trained.get((rung.start_from, seed)) if rung.start_from else None
                if rung.start_from and teacher is None:
                    raise ValueError(f"'{rung.name}' starts from the trained '{rung.start_from}' of seed {seed}: "
                                     f"train that rung in the same call (it comes before '{rung.name}').")
                return _init_run(run_plan, rung.name, rung.what, seed, teacher, need_data(data, name, budget),
                                 progress, device)

            result = train_or_load(name, train_run, budget=budget, store=store, quiet=quiet)
            out[rung.name].append(result)
            if result.trained and result.model is not None:
                trained[(rung.name, seed)] = result.model
    return out


def _init_run(plan: Plan, variant: str, what: str, seed: int, teacher: Optional[nn.Module], data: CIFAR10,
              progress: Optional[bool], device: torch.device) -> Trained:
    loaders = make_loaders(data, plan.run, seed=plan.split_seed, loader_seed=seed, augment=plan.augment,
                           device=device)
    copied: list = []

    def build_model() -> nn.Module:
        torch.manual_seed(seed)
        model = build_vgg(**plan.model).to(device)
        if teacher is not None:
            copied.extend(init_from_shallow(model, teacher))
        return model

    losses, on_step = _step_losses()

    def finish(model: Optional[nn.Module], history: History) -> None:
        history.meta.update(step_loss=losses, step_loss_every=STEP_LOSS_EVERY, copied=copied, seed=seed,
                            variant=variant, what=what, width=plan.width)
        if model is not None:
            history.meta["test_loss"], history.meta["test_acc"] = evaluate(model, loaders.test, device)
            history.meta["test_images"] = len(loaders.test_idx)
        else:
            history.meta["test_acc"] = None

    meta = {"data_source": data.source, "train_images": len(loaders.train_idx)}
    return fit(build_model, loaders.train, loaders.val, plan.train_config(seed), finish=finish,
               allow_divergence=True, device=device, progress=progress, meta=meta, on_step=on_step)


def jitter_runs(data: Data, budget: str, store: Optional[str] = None, progress: Optional[bool] = None,
                device: torch.device | str | None = None, quiet: bool = True,
                seeds: Optional[Sequence[int]] = None) -> list[RunResult]:
    """Train (or load) the batch-norm VGG-11 trained with scale jittering, one run per seed.

    Training: crops of 32x32 from images rescaled to S in ``extra["train_scales"]`` and flipped at random
    (``ScaleJitter``; no other augmentation), the batch-norm recipe. After training, ``measure_test_methods`` runs on
    the first ``extra["eval_images"]`` of a fixed random order of the test set (the same images for every seed and
    method); ``history.meta["test_methods"]`` holds the results.

    Args:
        seeds: only these of the plan's seeds (default: all of them), e.g. to record one more seed alone.
    Returns:
        One ``RunResult`` per seed.
    """
    plan = pick(PAPER_JITTER, budget)
    store = store_policy(plan.store, store)
    dev = pick_device(device)
    x = plan.extra
    results = []
    unknown = sorted(set(seeds or ()) - set(plan.seeds))
    if unknown:
        raise ValueError(f"the {budget} plan of {plan.name} has the seeds {list(plan.seeds)}; not {unknown}")
    for seed in plan.seeds if seeds is None else seeds:
        name = plan.run_name(seed=seed)

        def train_run(seed: int = seed, name: str = name) -> Trained:
            data_ = need_data(data, name, budget)
            s_min, s_max = x["train_scales"]
            loaders = make_loaders(data_, plan.run, seed=plan.split_seed, loader_seed=seed, augment=plan.augment,
                                   device=dev, transform=ScaleJitter(s_min, s_max, crop=32, seed=seed))

            def build_model() -> nn.Module:
                torch.manual_seed(seed)
                return build_vgg(**plan.model).to(dev)

            def finish(model: Optional[nn.Module], history: History) -> None:
                if model is None:
                    history.meta["test_methods"] = None
                    return
                order = torch.randperm(len(data_.test_labels), generator=torch.Generator().manual_seed(0))
                idx = order[:x["eval_images"]].sort().values
                images = loaders.test.normalize(data_.test_images[idx].to(dev))
                history.meta["test_methods"] = measure_test_methods(
                    model, images, data_.test_labels[idx].to(dev), x["test_scales"], x["crop_grid"])
                history.meta.update(eval_images=len(idx), test_scales=list(x["test_scales"]),
                                    train_scales=list(x["train_scales"]), crop_grid=x["crop_grid"], seed=seed)

            meta = {"data_source": data_.source, "train_images": len(loaders.train_idx)}
            return fit(build_model, loaders.train, loaders.val, plan.train_config(seed), finish=finish, device=dev,
                       progress=progress, meta=meta)

        results.append(train_or_load(name, train_run, budget=budget, store=store, quiet=quiet))
    return results


def schedule_runs(data: Data, budget: str, store: Optional[str] = None, progress: Optional[bool] = None,
                  device: torch.device | str | None = None, quiet: bool = True) -> dict[str, list[RunResult]]:
    """Train (or load) the batch-norm VGG-11 with each schedule of ``plans.PAPER_SCHEDULE``, one run per seed.

    Only the schedule changes: same network, data, epochs, peak learning rate (0.1), momentum, weight decay, label
    smoothing, augmentation and seeds. The plateau schedule starts at the peak rate and divides it by 10 after
    ``recipe["patience"]`` epochs without a better validation accuracy.

    Returns:
        ``{schedule: [one RunResult per seed]}``; ``history.meta["test_acc"]`` is measured on the test set.
    """
    plan = pick(PAPER_SCHEDULE, budget)
    store = store_policy(plan.store, store)
    dev = pick_device(device)
    out: dict[str, list[RunResult]] = {}
    for rung in plan.rungs:
        run_plan = plan.for_rung(rung.name)
        out[rung.name] = []
        for seed in plan.seeds:
            name = plan.run_name(rung.name, seed)

            def train_run(seed: int = seed, name: str = name, run_plan: Plan = run_plan) -> Trained:
                data_ = need_data(data, name, budget)
                loaders = make_loaders(data_, run_plan.run, seed=run_plan.split_seed, loader_seed=seed,
                                       augment=run_plan.augment, device=dev)

                def build_model() -> nn.Module:
                    torch.manual_seed(seed)
                    return build_vgg(**run_plan.model).to(dev)

                def finish(model: Optional[nn.Module], history: History) -> None:
                    history.meta["test_loss"], history.meta["test_acc"] = (
                        evaluate(model, loaders.test, dev) if model is not None else (None, None))

                meta = {"data_source": data_.source, "train_images": len(loaders.train_idx),
                        "schedule": run_plan.recipe["schedule"]}
                return fit(build_model, loaders.train, loaders.val, run_plan.train_config(seed), finish=finish,
                           device=dev, progress=progress, meta=meta)

            out[rung.name].append(train_or_load(name, train_run, budget=budget, store=store, quiet=quiet))
    return out
