"""The runs on the failing network: the reproduction of the 10% failure, the ablation, the depth question and the
batch-norm fix isolated on the same network, over seeds; and the batch-norm network's main run.

* ``failure_run`` trains (or loads) one short run of a plan (``plans.FAILURE`` and its kin), recording every step's
  loss (and, while it trains, every layer's gradient norm);
* ``runs_over_seeds`` repeats the runs of such a plan over its seeds: each seed draws its own initial weights,
  batch order and dropout masks; the images are the same for all. ``reproduction_runs``, ``ablation_runs``,
  ``depth_runs`` and ``fix_runs`` are it for ``FAILURE``, ``FAILURE_ABLATION``, ``FAILURE_DEPTH`` and
  ``BATCH_NORM_FIX``;
* ``batch_norm_runs``: the batch-norm network's main run (``plans.BATCH_NORM``) over seeds, seed 0 with its weights;
* ``summarize`` turns the runs into verdicts, with their spread (``diagnostics.loss_drop``).

Every run goes through ``store.train_or_load``: a chapter shows the stored histories unless told to retrain.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import torch
from torch import nn

from ..data import CIFAR10, Loaders, make_loaders
from ..diagnostics import LEARNING, GradientRecorder, loss_drop
from ..models import build_vgg
from ..runtime import pick_device
from ..training import History, predict
from .plans import BATCH_NORM, BATCH_NORM_FIX, FAILURE, FAILURE_ABLATION, FAILURE_DEPTH, Plan, pick
from .store import Data, RunResult, Trained, store_policy, fit, need_data, train_or_load

__all__ = ["failure_loaders", "failure_run", "train_reproduction", "runs_over_seeds", "reproduction_runs",
           "ablation_runs",
           "depth_runs", "fix_runs", "batch_norm_runs", "step_losses", "RunSummary", "summarize", "seed_table"]


def failure_loaders(data: CIFAR10, plan: Plan, seed: int = 0, device: torch.device | str | None = None) -> Loaders:
    """A failure plan's loaders: its fixed subset and split, batches in the order of ``seed``.

    Args:
        data: CIFAR-10 (``load_cifar10``).
        plan: ``pick(FAILURE, budget)`` or a plan of the same family (its ``augment`` says whether the training
            batches are randomly cropped and flipped).
        seed: seed of the batch order (and of the crops and flips).
        device: where the batches go (default ``pick_device()``).
    Returns:
        The ``Loaders``.
    """
    return make_loaders(data, plan.run, seed=plan.split_seed, loader_seed=seed, device=pick_device(device),
                        eval_batch_size=plan.extra["eval_batch_size"], augment=plan.augment)


def _fit(plan: Plan, loaders: Loaders, seed: int, device: torch.device, progress: Optional[bool],
         recorder: GradientRecorder, meta: dict) -> Trained:
    if bool(plan.augment) != bool(getattr(loaders.train, "augment", False)):
        raise ValueError(f"the plan has augment={plan.augment} but the loaders were built with augment="
                         f"{getattr(loaders.train, 'augment', False)}: build them with failure_loaders(data, plan)")

    def build() -> nn.Module:
        torch.manual_seed(seed)          # the same initial weights for the same network and seed
        return build_vgg(**plan.model)

    def finish(model: Optional[nn.Module], history: History) -> None:
        history.meta["step_losses"] = [round(x, 6) for x in recorder.losses]

    epochs = math.ceil(plan.steps / len(loaders.train))
    meta = {**meta, "seed": seed, "steps": plan.steps, "width": plan.width, "train_images": len(loaders.train_idx),
            "val_images": len(loaders.val_idx)}
    return fit(build, loaders.train, loaders.val, plan.train_config(seed, epochs=epochs), finish=finish,
               allow_divergence=True, device=device, progress=progress, on_step=recorder, meta=meta)


def failure_run(plan: Plan, loaders: Loaders, budget: str, *, name: str, seed: int = 0, store: str = "train",
                device: torch.device | str | None = None, data_source: str = "",
                progress: Optional[bool] = False) -> tuple[RunResult, GradientRecorder]:
    """Train (or load) one short run of ``plan`` on ``loaders``.

    Args:
        plan: the run's complete plan (``Plan.for_rung`` for a rung).
        loaders: from ``failure_loaders`` (the same ``seed``).
        budget: ``"smoke"``, ``"cpu"`` or ``"gpu"``.
        name: the stored name (``Plan.run_name``).
        seed: seed of the initial weights and of dropout.
        store: ``"train"``, ``"load"`` or ``"record"`` (``train_or_load``).
        device: default ``pick_device()``.
        data_source: ``data.source``, stored beside the run.
        progress: passed to ``train``.
    Returns:
        ``(result, recorder)``: the run, and the recorder of its step losses and gradient norms (empty when the
        run was loaded: the stored step losses are in ``history.meta["step_losses"]``, see ``step_losses``).
    """
    device = pick_device(device)
    recorder = GradientRecorder(every=plan.extra["record_every"])
    result = train_or_load(name, lambda: _fit(plan, loaders, seed, device, progress, recorder,
                                              {"data_source": data_source}), budget=budget, store=store)
    return result, recorder


def train_reproduction(loaders: Loaders, budget: str, store: Optional[str] = None,
                       device: torch.device | str | None = None,
                       data_source: str = "") -> tuple[RunResult, GradientRecorder]:
    """The reproduction (seed 0), always trained by ``train``: the chapter looks inside the trained network.

    Args:
        loaders: ``failure_loaders(data, pick(FAILURE, budget), seed=0)``.
        budget: ``"smoke"``, ``"cpu"`` or ``"gpu"``.
        store: ``"record"`` also stores the history as the reference (maintainers); anything else only trains.
            Default ``store_policy``: the environment's choice (the chapter passes nothing).
        device: default ``pick_device()``.
        data_source: ``data.source``, stored beside the run.
    Returns:
        ``(result, recorder)`` as ``failure_run``: the run with its trained model, and every step's loss and
        gradient norms.
    """
    plan = pick(FAILURE, budget)
    record = store_policy(plan.store, store) == "record"
    return failure_run(plan, loaders, budget, name=plan.run_name(), seed=0,
                       store="record" if record else "train", device=device, data_source=data_source)


def runs_over_seeds(table: Mapping[str, Plan], data: Data, budget: str, store: Optional[str] = None,
                    rungs: Optional[Sequence[str]] = None, seeds: Optional[Sequence[int]] = None,
                    device: torch.device | str | None = None, progress: Optional[bool] = False,
                    quiet: bool = True) -> dict[str, list[RunResult]]:
    """Every run of a failure plan (each of its rungs, or the plan itself) over its seeds.

    Args:
        table: a plan table of the failing network (``FAILURE``, ``FAILURE_ABLATION``, ``FAILURE_DEPTH``,
            ``BATCH_NORM_FIX``).
        data: CIFAR-10 (``None`` will do when every run is stored and ``store="load"``).
        budget: ``"smoke"``, ``"cpu"`` or ``"gpu"``.
        store: ``"load"`` (stored runs, training what is missing), ``"train"`` or ``"record"``; default
            ``store_policy``: the environment's choice, else the plan's.
        rungs: the names of the rungs to run (default: all of the plan's).
        seeds: default: the plan's ``seeds``.
        device: default ``pick_device()``.
        progress: passed to ``train``.
        quiet: do not print a line for every stored run that is loaded.
    Returns:
        ``{rung.what: [one RunResult per seed]}`` in the rungs' order (``{"reproduction": [...]}`` for a plan
        without rungs).
    """
    plan = pick(table, budget)
    store = store_policy(plan.store, store)
    device = pick_device(device)
    out: dict[str, list[RunResult]] = {}
    for rung in ([None] if not plan.rungs else [plan.rung(r) for r in rungs] if rungs is not None else plan.rungs):
        run_plan = plan if rung is None else plan.for_rung(rung.name)
        label = "reproduction" if rung is None else rung.what
        out[label] = []
        for seed in plan.seeds if seeds is None else seeds:
            name = plan.run_name(None if rung is None else rung.name, seed)

            def train_run(seed: int = seed, name: str = name, run_plan: Plan = run_plan, rung=rung) -> Trained:
                data_ = need_data(data, name, budget)
                recorder = GradientRecorder(every=run_plan.extra["record_every"])
                meta = {"data_source": data_.source, "changes": {} if rung is None else plan.changes_for(rung.name)}
                return _fit(run_plan, failure_loaders(data_, run_plan, seed, device), seed, device, progress,
                            recorder, meta)

            out[label].append(train_or_load(name, train_run, budget=budget, store=store, quiet=quiet))
    return out


def reproduction_runs(data: Data, budget: str, store: Optional[str] = None, **options) -> list[RunResult]:
    """The reproduction of the failure (``plans.FAILURE``: the network and recipe, unchanged) over its seeds: one
    ``RunResult`` per seed. ``options`` as ``runs_over_seeds``."""
    return runs_over_seeds(FAILURE, data, budget, store, **options)["reproduction"]


def ablation_runs(data: Data, budget: str, store: Optional[str] = None, **options) -> dict[str, list[RunResult]]:
    """Every ablation run (``plans.FAILURE_ABLATION``) over its seeds: ``{rung.what: [runs]}``. ``options`` as
    ``runs_over_seeds``."""
    return runs_over_seeds(FAILURE_ABLATION, data, budget, store, **options)


def depth_runs(data: Data, budget: str, store: Optional[str] = None, **options) -> dict[str, list[RunResult]]:
    """The depth question (``plans.FAILURE_DEPTH``) over its seeds: ``{rung.what: [runs]}``. ``options`` as
    ``runs_over_seeds``."""
    return runs_over_seeds(FAILURE_DEPTH, data, budget, store, **options)


def fix_runs(data: Data, budget: str, store: Optional[str] = None, **options) -> dict[str, list[RunResult]]:
    """The batch-norm fix isolated on the failing network (``plans.BATCH_NORM_FIX``: batch norm x init, then the
    recipe's other ingredients one at a time): ``{rung.what: [runs]}``. ``options`` as ``runs_over_seeds``."""
    return runs_over_seeds(BATCH_NORM_FIX, data, budget, store, **options)


def step_losses(result: RunResult) -> list[float]:
    """Every step's training loss of a run (trained or stored), in nats."""
    return list(result.history.meta.get("step_losses") or [])


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


def seed_table(runs: Mapping[str, Sequence[RunResult]], title: str = "run") -> str:
    """The verdict table with every seed's own numbers, no averages: for each label of ``{label: [runs over seeds]}``
    (``ablation_runs``, ``depth_runs``), each seed's ``loss_drop`` (nats below ln 10) and final validation accuracy,
    and how many seeds are past ``LEARNING``; a diverged seed reads ``div.``, and a row that diverged in every seed
    gets a line with its first losses and the step its loss became infinite or NaN. At most 88 columns for three
    seeds.

    Args:
        runs: ``{label: [runs over seeds]}``, every label with the same seeds.
        title: the heading of the label column.
    Returns:
        The table, one line per label, with its header and a line that states the threshold.
    """
    rows = summarize(runs)
    seeds = [r.history.meta.get("seed", i) for i, r in enumerate(next(iter(runs.values())))]
    drop_cols, acc_cols = "".join(f"{f's{s}':>8}" for s in seeds), "".join(f"{f's{s}':>6}" for s in seeds)
    lines = [f"{'':<30}{'loss below ln 10 (nats)':^{8 * len(seeds)}}   {'val acc (%)':^{6 * len(seeds)}}",
             f"{title:<30}{drop_cols}   {acc_cols}  learning"]
    notes = []
    for row, results in zip(rows, runs.values()):
        drops, accs = iter(row.drop), iter(row.val_acc)
        cells_drop, cells_acc = "", ""
        for r in results:
            if r.history.meta.get("diverged"):
                cells_drop, cells_acc = cells_drop + f"{'div.':>8}", cells_acc + f"{'-':>6}"
            else:
                d = next(drops)
                cells_drop += f"{0.0 if round(d, 4) == 0 else d:>8.4f}"
                cells_acc += f"{100 * next(accs):>6.1f}"
        lines.append(f"{row.label:<30}{cells_drop}   {cells_acc}  {row.learning} of {row.seeds}")
        if row.diverged == row.seeds:
            first = [step_losses(r)[0] for r in results]
            stop = [len(step_losses(r)) + 1 for r in results]
            steps = f"{min(stop)}" if min(stop) == max(stop) else f"{min(stop)} to {max(stop)}"
            notes.append(f"{row.label}: first loss {min(first):.1e} to {max(first):.1e}, inf or NaN at step "
                         f"{steps}")
    lines.append(f"learning: mean loss of the last fifth of the steps more than {LEARNING} nats below ln 10")
    return "\n".join(line.rstrip() for line in lines + notes)


def batch_norm_runs(data: Data, budget: str, store: Optional[str] = None,
                    seeds: Optional[Sequence[int]] = None, device: torch.device | str | None = None,
                    progress: Optional[bool] = None, quiet: bool = True) -> list[RunResult]:
    """The batch-norm network's main run (``plans.BATCH_NORM``: VGG-11 with batch norm and the CIFAR head) over
    seeds.

    Each seed draws its own initial weights, batch order, crops and flips; the validation split is the plan's
    (``split_seed``) for all. Seed 0 keeps the bare name (``batch-norm``) and is recorded with its weights, so that a
    loaded run comes with its trained network; every run stores its test accuracy (``history.meta["test_acc"]``).

    Args:
        data: CIFAR-10 (``None`` will do when every run is stored and ``store="load"``).
        budget: ``"smoke"``, ``"cpu"`` or ``"gpu"``.
        store: ``"load"`` (stored runs, training what is missing), ``"train"`` or ``"record"``; default
            ``store_policy``: the environment's choice, else the plan's.
        seeds: default: the plan's ``seeds``.
        device: default ``pick_device()``.
        progress: passed to ``train`` (a line per epoch).
        quiet: do not print a line for every stored run that is loaded.
    Returns:
        One ``RunResult`` per seed, in the order of ``seeds``.
    """
    plan = pick(BATCH_NORM, budget)
    store = store_policy(plan.store, store)
    device = pick_device(device)
    out = []
    for seed in plan.seeds if seeds is None else seeds:
        name = plan.run_name(seed=seed)

        def build(seed: int = seed) -> nn.Module:
            torch.manual_seed(seed)          # the same initial weights for the same seed
            return build_vgg(**plan.model).to(device)

        def train_run(seed: int = seed, name: str = name, build=build) -> Trained:
            data_ = need_data(data, name, budget)
            loaders = make_loaders(data_, plan.run, seed=plan.split_seed, augment=plan.augment, device=device,
                                   loader_seed=seed)

            def finish(model: Optional[nn.Module], history: History) -> None:
                preds, labels = predict(model, loaders.test)
                history.meta.update(test_acc=(preds == labels).float().mean().item(), test_size=len(labels))

            meta = {"data_source": data_.source, "seed": seed, "split_seed": plan.split_seed,
                    "model": dict(plan.model), "budget_detail": str(plan.run)}
            return fit(build, loaders.train, loaders.val, plan.train_config(seed), finish=finish, device=device,
                       progress=progress, meta=meta)

        out.append(train_or_load(name, train_run, budget=budget, store=store, build_model=build,
                                 keep_weights=seed == 0, quiet=quiet))
    return out
