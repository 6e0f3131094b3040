"""Chapter 8's fast-training recipe: the speed settings, the test-time flip, one run, and the ladder.

* ``FastModel`` wraps a network with the speed settings (channels_last, bfloat16 autocast, ``torch.compile``)
  and the test-time flip; the training code sees a normal model.
* ``fast_run`` trains (or loads) one run of a ``ChapterPlan`` and records its test accuracy and timings.
* ``ladder_plans`` / ``run_ladder`` walk ``budgets.CHAPTER7_LADDER`` from chapter 6's run to the final recipe.

Measuring lives in ``bench/`` (benchmarks and their recorded results); this module is the recipe. Maintainers
record the chapter's stored runs with ``python -m vgg_helpers.fast record --budget cpu``.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Iterable, Iterator, Optional

import torch
from torch import nn

from .budgets import (CHAPTER6, CHAPTER7, CHAPTER7_LADDER, CHAPTER7_LADDER_RUN, ChapterPlan, Rung, SpeedSettings,
                      pick, split_changes)
from .data import CIFAR10, make_loaders
from .models import build_vgg
from .runs import RunResult, check_store, load_run, recording_setup, train_or_load
from .runtime import autocast_dtype, pick_device, set_threads
from .training import History, TrainConfig, _device_of

__all__ = ["FastModel", "TimedLoader", "test_accuracy", "first_reaching", "fast_run", "LadderStep",
           "ladder_plans", "run_ladder", "main"]


class FastModel(nn.Module):
    """Wrap a network with the speed settings and the test-time flip; training code sees a normal model.

    Args:
        net: the network (e.g. from ``build_vgg``).
        channels_last: convert the network's weights and every input batch to ``torch.channels_last``.
        amp: run the forward pass under autocast in ``runtime.autocast_dtype(device)``: bfloat16 where it is
            native (a CPU with bfloat16 instructions, a GPU of compute capability 8.0 or more), float16 on an
            older GPU (``train`` then adds a gradient scaler), nothing where it would be emulated and slower.
            The logits are returned as float32, so the loss is computed in full precision.
        compile: ``torch.compile`` the network (pays off on a GPU for long runs; compiling takes minutes).
        tta_flip: in eval mode, average the logits of each image and its mirror image.
    """

    def __init__(self, net: nn.Module, channels_last: bool = False, amp: bool = False, compile: bool = False,
                 tta_flip: bool = False) -> None:
        super().__init__()
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        self.net = torch.compile(net) if compile else net
        self.channels_last, self.amp, self.tta_flip = channels_last, amp, tta_flip
        self._dtypes: dict[torch.device, Optional[torch.dtype]] = {}
        self.config = getattr(net, "config", None)   # train() records model.config in the history

    def amp_dtype(self, device: torch.device | str) -> Optional[torch.dtype]:
        """The autocast precision of the forward pass on ``device`` (``None``: float32 throughout).

        Args:
            device: where the inputs are.
        Returns:
            ``torch.bfloat16``, ``torch.float16`` (``train`` adds a gradient scaler) or ``None``.
        """
        device = torch.device(device)
        if device not in self._dtypes:
            self._dtypes[device] = autocast_dtype(device) if self.amp else None
        return self._dtypes[device]

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        dtype = self.amp_dtype(x.device)
        with torch.autocast(device_type=x.device.type, dtype=dtype or torch.bfloat16,
                            enabled=dtype is not None):
            out = self.net(x)
        return out.float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._logits(x)
        if self.tta_flip and not self.training:
            out = (out + self._logits(x.flip(3))) / 2
        return out


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


def test_accuracy(model: nn.Module, loader: Iterable, device: torch.device | str | None = None) -> dict:
    """Accuracy without and with the test-time flip, from one pass (each image and its mirror run once).

    Args:
        model: a network or a ``FastModel`` (its own ``tta_flip`` is bypassed here).
        loader: yields ``(images, labels)``.
        device: default: the model's device.
    Returns:
        ``{"plain": acc, "flip": acc}`` as fractions.
    """
    device = _device_of(model, device)
    logits = model._logits if isinstance(model, FastModel) else model
    was_training = model.training
    model.eval()
    plain = flip = count = 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            a, b = logits(x), logits(x.flip(3))
            plain += (a.argmax(1) == y).sum().item()
            flip += ((a + b).argmax(1) == y).sum().item()
            count += len(y)
    model.train(was_training)
    if count == 0:
        raise ValueError("test_accuracy() got an empty loader: give it at least one batch of test images.")
    return {"plain": plain / count, "flip": flip / count}


def first_reaching(values: list[Optional[float]], target: float) -> Optional[int]:
    """Index of the first value >= ``target`` (``None`` values are skipped), or ``None`` if none reaches it."""
    return next((i for i, v in enumerate(values) if v is not None and v >= target), None)


def fast_run(name: str, data: CIFAR10, plan: ChapterPlan, *, budget: str, store: str = "train",
             eval_each_epoch: Optional[str] = None, progress: Optional[bool] = None,
             device: torch.device | str | None = None, quiet: bool = False) -> RunResult:
    """Train one chapter-8 run of ``plan`` (or load its stored history) and record test accuracy and timings.

    Args:
        name: run name (``reference_runs/<name>-<budget>.json`` when stored).
        data: CIFAR-10 in memory.
        plan: data sizes, network, recipe, speed settings, augmentation, test-time flip, split seed.
        budget: the budget the run belongs to.
        store: ``"train"``, ``"load"`` or ``"record"`` (``vgg_helpers.runs``).
        eval_each_epoch: ``None``, ``"val"`` (into ``history.val_*``) or ``"test"`` (into ``history.test_*``:
            the benchmark's choice, never used for tuning); its time is excluded from ``train_seconds``.
        progress: passed to ``train``.
        device: default ``pick_device()``.
        quiet: do not print the line that says a run was loaded rather than trained.
    Returns:
        A ``RunResult``. ``history.meta`` holds ``test_acc`` (with the flip if ``plan.tta_flip``),
        ``test_acc_plain``, ``test_acc_flip``, ``train_seconds`` (per epoch, cumulative, evaluations excluded),
        ``eval_seconds``, ``final_eval_seconds`` and ``eval_set``. A run whose loss became NaN is a result too:
        ``meta["diverged"]`` holds the message and the test accuracies are ``None`` (never measured).
    """
    if eval_each_epoch not in (None, "val", "test"):
        raise ValueError(f"eval_each_epoch must be None, 'val' or 'test'; got {eval_each_epoch!r}")
    if check_store(store) == "load":
        stored = load_run(name, budget, quiet=quiet)
        if stored is not None:
            return stored
    if not isinstance(data, CIFAR10):
        raise TypeError(f"fast_run needs the data set to train '{name}' (no stored {budget}-budget run was used); "
                        f"got {type(data).__name__}. Pass data=load_cifar10(...).")
    device = pick_device(device)
    speed = plan.speed
    threads = set_threads(speed.threads)
    loaders = make_loaders(data, plan.run, seed=plan.split_seed, augment=plan.augment, device=device,
                           channels_last=speed.channels_last)
    val = TimedLoader(loaders.val) if eval_each_epoch == "val" and loaders.val is not None else None
    test = TimedLoader(loaders.test) if eval_each_epoch == "test" else None

    def build_model() -> nn.Module:
        torch.manual_seed(plan.recipe.get("seed", 0))
        return FastModel(build_vgg(**plan.model), channels_last=speed.channels_last, amp=speed.amp,
                         compile=speed.compile, tta_flip=plan.tta_flip)

    def finish(model: Optional[nn.Module], history: History) -> None:
        timed = val or test
        evals = timed.seconds if timed is not None else [0.0] * len(history.time)
        history.meta["eval_seconds"] = evals
        history.meta["train_seconds"] = [t - sum(evals[:i + 1]) for i, t in enumerate(history.time)]
        if model is None:       # diverged: nothing was measured
            history.meta.update(test_acc=None, test_acc_plain=None, test_acc_flip=None)
            return
        t0 = time.perf_counter()
        acc = test_accuracy(model, loaders.test)
        history.meta["final_eval_seconds"] = time.perf_counter() - t0
        history.meta.update(test_acc=acc["flip"] if plan.tta_flip else acc["plain"], test_acc_plain=acc["plain"],
                            test_acc_flip=acc["flip"], test_images=len(loaders.test_idx))

    meta = {"data_source": data.source, "speed": asdict(speed), "augment": plan.augment, "tta_flip": plan.tta_flip,
            "train_images": len(loaders.train_idx), "eval_set": eval_each_epoch, "threads": threads,
            "model_kwargs": dict(plan.model)}
    config = TrainConfig(epochs=plan.run.epochs, **plan.recipe)
    return train_or_load(name, build_model, loaders.train, val, config, budget=budget, store=store, finish=finish,
                         allow_divergence=True, device=device, progress=progress, meta=meta, test_loader=test)


@dataclass(frozen=True)
class LadderStep:
    """One rung of chapter 8's ladder with everything needed to train it."""

    rung: Rung              # name, what it changes, its base rung, the changes
    plan: ChapterPlan       # the run's complete settings
    reuse_base: bool        # True when it only turns on the test-time flip: its base run is re-read, not retrained


_OTHER_KEYS = ("augment", "tta_flip", "val_size")


def _apply(plan: ChapterPlan, changes: dict) -> ChapterPlan:
    model, recipe, speed, other = split_changes(changes)
    unknown = set(other) - set(_OTHER_KEYS)
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; a rung may change build_vgg arguments, TrainConfig "
                         f"fields, SpeedSettings fields and {', '.join(_OTHER_KEYS)}")
    run = replace(plan.run, val_size=other["val_size"]) if "val_size" in other else plan.run
    return replace(plan, run=run, model={**plan.model, **model}, recipe={**plan.recipe, **recipe},
                   speed=replace(plan.speed, **speed), augment=other.get("augment", plan.augment),
                   tta_flip=other.get("tta_flip", plan.tta_flip))


def ladder_plans(budget: str, ladder: Optional[list[Rung]] = None) -> list[LadderStep]:
    """The runs of chapter 8's ladder, each with its complete plan.

    Rung 0 is chapter 6's plan of ``budget`` (float32, NCHW, one thread per core, no test-time flip) at the
    ladder's reduced budget ``CHAPTER7_LADDER_RUN``; every later rung applies its changes to its base rung.

    Args:
        budget: ``"smoke"``, ``"cpu"`` or ``"gpu"``.
        ladder: the rungs (default ``CHAPTER7_LADDER``).
    Returns:
        One ``LadderStep`` per rung.
    Raises:
        ValueError: a rung changes an unknown setting or starts from a rung that does not come before it.
    """
    chapter6 = pick(CHAPTER6, budget)
    start = replace(chapter6, run=CHAPTER7_LADDER_RUN[budget], speed=SpeedSettings(), tta_flip=False, store="train")
    plans: dict[str, ChapterPlan] = {}
    steps = []
    for rung in CHAPTER7_LADDER if ladder is None else ladder:
        if rung.base is not None and rung.base not in plans:
            raise ValueError(f"ladder rung {rung.name!r} starts from {rung.base!r}, which is not an earlier rung")
        try:
            plan = _apply(plans[rung.base] if rung.base else start, dict(rung.changes))
        except ValueError as e:
            raise ValueError(f"ladder rung {rung.name!r}: {e}") from None
        plans[rung.name] = plan
        steps.append(LadderStep(rung, plan, reuse_base=rung.base is not None and set(rung.changes) == {"tta_flip"}))
    return steps


def run_ladder(data: Optional[CIFAR10], budget: str, store: str = "train", progress: Optional[bool] = None,
               device: torch.device | str | None = None, quiet: bool = False) -> list[dict]:
    """Train (or load) every rung of the ladder and collect the results.

    Args:
        data: CIFAR-10 in memory (``None`` will do when every rung is stored and ``store="load"``).
        budget: the ladder's budget (``CHAPTER7_LADDER_RUN[budget]``).
        store: ``"train"``, ``"load"`` or ``"record"``.
        progress: passed to ``train``.
        device: default ``pick_device()``.
        quiet: do not print a line for every stored run that is loaded.
    Returns:
        One row per rung: ``name``, ``what``, ``base``, ``test_acc`` (with the flip if the rung uses it;
        ``None`` if it diverged), ``train_seconds`` (evaluations excluded), ``diverged``, ``source`` and
        ``history``.
    """
    rows: dict[str, dict] = {}
    for step in ladder_plans(budget):
        rung = step.rung
        if step.reuse_base:
            base = rows[rung.base]
            history, source = base["history"], base["source"]
            acc = history.meta["test_acc_flip"] if step.plan.tta_flip else history.meta["test_acc_plain"]
        else:
            result = fast_run(rung.name, data, step.plan, budget=budget, store=store, progress=progress,
                              device=device, quiet=quiet)
            history, source = result.history, result.source
            acc = history.meta["test_acc"]
        secs = history.meta["train_seconds"][-1] if history.meta.get("train_seconds") else None
        rows[rung.name] = {"name": rung.name, "what": rung.what, "base": rung.base, "test_acc": acc,
                           "train_seconds": secs, "diverged": history.meta.get("diverged"), "source": source,
                           "history": history}
    return list(rows.values())


def main(argv: Optional[list[str]] = None) -> int:
    """Record chapter 8's stored runs (maintainers): ``python -m vgg_helpers.fast record --budget cpu``.

    Args:
        argv: command-line arguments.
    Returns:
        The exit status.
    """
    rec = recording_setup("python -m vgg_helpers.fast", "chapter 8's", ["ladder", "final", "final-no-augment"],
                          argv, threads=False)
    args, data, budget, device, progress = rec.args, rec.data, rec.budget, rec.device, rec.settings.progress
    if "ladder" in args.only:
        for row in run_ladder(data, budget, store="record", progress=progress, device=device):
            print(f"{row['name']:<28} test acc {row['test_acc']}  training {row['train_seconds']} s", flush=True)
    plan = pick(CHAPTER7, budget)
    for what, name, augment in (("final", "ch7-final", True), ("final-no-augment", "ch7-final-no-augment", False)):
        if what in args.only:
            h = fast_run(name, data, replace(plan, augment=augment), budget=budget, store="record",
                         eval_each_epoch="test", progress=progress, device=device).history
            print(f"{name:<28} test acc {h.meta['test_acc']}  training {h.meta['train_seconds'][-1]:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
