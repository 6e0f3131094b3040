"""Benchmarks and the fast-training helpers of chapter 7 ("Going further: training VGG fast").

Two benchmarks, each written as JSON (with hardware, torch version, thread count and date) to ``bench/results/``:

``throughput``
    Images per second of three ways to feed the same model, measured one after the other in one process:

    (a) ``book``: the book's pipeline -- ``TensorLoader`` with random crop + flip on uint8 tensors in memory;
    (b) ``in_memory``: the same model trained on one normalised batch already in memory (the ceiling: no
        loading, no augmentation);
    (c) ``conventional_*``: torchvision's ``ImageFolder`` over the JPEG files, and a PIL-per-image dataset over
        in-memory arrays (as ``torchvision.datasets.CIFAR10`` is), each with ``DataLoader`` + PIL transforms
        (RandomCrop, RandomHorizontalFlip, ToTensor, Normalize).

    Every pipeline is measured twice per round, in mirrored order (A B C D D C B A), and averaged over
    ``--rounds`` rounds, because the speed of a small shared machine wanders from one second to the next.
    ``ratios`` divides every pipeline's images/s by ``in_memory``; ``book_vs`` divides ``book`` by each other
    pipeline. Optionally (``--variants``) the in-memory ceiling is also measured with 1 thread, with the other
    memory layout, with bfloat16 autocast toggled and (``--compile-variant``) with ``torch.compile``, to show what
    each speed setting buys.

``time-to-accuracy``
    Trains chapter 7's final recipe for the chosen budget and evaluates on the **test set** after every epoch
    (for this benchmark only; nothing is tuned on it). Reports the training wall time until the test accuracy
    first reaches the target (default 88.2%, the blog post's result), with the per-epoch test evaluations
    **excluded** from that time (they are reported separately), the final test accuracy with and without the
    test-time flip, and the end-to-end wall time of the whole command (data loading + training + evaluations).

Usage::

    python -m vgg_helpers.bench throughput --variants
    python -m vgg_helpers.bench time-to-accuracy --budget cpu
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

import numpy as np
import torch
from torch import nn

from .budgets import (CHAPTER6_MODEL, CHAPTER6_MODEL_COMMON, CHAPTER6_RECIPE, CHAPTER7, CHAPTER7_AUGMENT,
                      CHAPTER7_LADDER, CHAPTER7_LADDER_BUDGET, CHAPTER7_MODEL, CHAPTER7_RECIPE, CHAPTER7_SPEED,
                      CHAPTER7_SPLIT_SEED, CHAPTER7_TTA_FLIP, RunBudget, SpeedSettings)
from .data import (CIFAR10, CIFAR10_MEAN, CIFAR10_STD, TensorLoader, load_cifar10, random_subset,
                   split_train_val)
from .models import build_vgg
from .training import (History, TrainConfig, TrainingDiverged, atomic_write, current_budget, environment_info,
                       load_reference, pick_device, reference_path, train_or_load)

__all__ = ["bf16_supported", "FastModel", "TimedLoader", "set_threads", "test_accuracy", "fast_run",
           "ladder_settings", "run_ladder", "compute_ratios",
           "throughput", "time_to_accuracy", "first_reaching", "save", "main"]

RESULTS_DIR = Path("bench") / "results"
BLOG_POST_ACCURACY = 0.882   # test accuracy of the blog post this book started from


# --------------------------------------------------------------------------------------------------
# Fast-training helpers (used by chapter 7)
# --------------------------------------------------------------------------------------------------
def bf16_supported(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` computes in bfloat16 natively (CPU: AVX512-BF16 or AMX through oneDNN; CUDA: Ampere+).

    Args:
        device: ``"cpu"`` or a CUDA device.
    Returns:
        True when bfloat16 autocast makes convolutions faster there rather than emulating them.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):     # a build without oneDNN
            return False
    return False


class FastModel(nn.Module):
    """Wrap a network with the speed settings and the test-time flip; training code sees a normal model.

    Args:
        net: the network (e.g. from ``build_vgg``).
        channels_last: convert the network's weights and every input batch to ``torch.channels_last``.
        amp: run the forward pass under bfloat16 autocast: on CUDA, and on a CPU with native bfloat16
            instructions (``bf16_supported()``; elsewhere it would be emulated and slower, so it is skipped). The
            logits are returned as float32, so the loss is computed in full precision and no gradient scaler is
            needed (bfloat16 has float32's exponent range).
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
        self._amp_devices = {"cuda"} | ({"cpu"} if amp and bf16_supported("cpu") else set())
        self.config = getattr(net, "config", None)   # train() records model.config in the history

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16,
                            enabled=self.amp and x.device.type in self._amp_devices):
            out = self.net(x)
        return out.float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._logits(x)
        if self.tta_flip and not self.training:
            out = (out + self._logits(x.flip(3))) / 2
        return out


class TimedLoader:
    """A loader wrapper that records how long each full pass over it took (the consumer's work included).

    ``train`` evaluates its ``val_loader`` once per epoch; wrapping it gives the seconds spent evaluating, so
    they can be subtracted from the training time.
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


def set_threads(threads: Optional[int] = None) -> int:
    """Set torch's intra-op thread count (default: one per logical core) and return it."""
    torch.set_num_threads(threads or os.cpu_count() or 1)
    return torch.get_num_threads()


def test_accuracy(model: nn.Module, loader: Iterable, device: torch.device | str | None = None) -> dict:
    """Accuracy without and with the test-time flip, from one pass (each image and its mirror run once).

    Args:
        model: a network or a ``FastModel`` (its own ``tta_flip`` is bypassed here).
        loader: yields ``(images, labels)``.
        device: default: the model's device.
    Returns:
        ``{"plain": acc, "flip": acc}`` as fractions.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
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
    return {"plain": plain / count, "flip": flip / count}


def fast_run(name: str, data: CIFAR10, run: RunBudget, model_kwargs: dict, recipe: dict, speed: SpeedSettings,
             augment: bool = True, tta_flip: bool = True, eval_each_epoch: str | None = None,
             budget: str | None = None, use_stored: bool | None = None, progress: bool | None = None,
             split_seed: int = 0) -> tuple[Optional[nn.Module], History]:
    """Train one chapter-7 run (or load its stored history) and record its test accuracy and timings.

    Args:
        name: run name; with ``VGG_BOOK_SAVE_REFERENCE=1`` the history is stored as
            ``reference_runs/<name>-<budget>.json`` (cpu and gpu budgets only).
        data: CIFAR-10 in memory.
        run: data sizes, epochs and batch size.
        model_kwargs: ``build_vgg`` keyword arguments (``arch``, ``width``, ``batch_norm``, ``init``, ...).
        recipe: ``TrainConfig`` fields.
        speed: threads, channels_last, amp, compile.
        augment: random crop + flip while training.
        tta_flip: the reported ``test_acc`` uses the test-time flip.
        eval_each_epoch: ``None`` (no per-epoch evaluation), ``"val"`` or ``"test"`` (the benchmark's choice);
            its time is measured and excluded from ``meta["train_seconds"]``.
        budget: default ``current_budget()``.
        use_stored: load the stored history instead of training when there is one.
        progress: passed to ``train``.
        split_seed: seed of the validation split and of the training subset.
    Returns:
        ``(model, history)``; ``model`` is ``None`` when the history was loaded. ``history.meta`` holds
        ``test_acc`` (with the flip if ``tta_flip``), ``test_acc_plain``, ``test_acc_flip``, ``train_seconds``
        (per epoch, cumulative, evaluations excluded), ``eval_seconds`` (per-epoch evaluations),
        ``final_eval_seconds`` (the final test evaluation, both views) and ``eval_set``.
    """
    budget = current_budget(budget)
    if use_stored is None:
        use_stored = os.environ.get("VGG_BOOK_USE_STORED") == "1"
    if use_stored and load_reference(name, budget) is not None:
        return train_or_load(name, lambda: None, [], budget=budget, use_stored=True)   # prints where it came from
    threads = set_threads(speed.threads)
    device = pick_device()
    train_idx, val_idx = split_train_val(len(data.train_labels), run.val_size, seed=split_seed)
    train_idx = random_subset(train_idx, run.train_size, split_seed)
    cl = speed.channels_last
    train_loader = TensorLoader(data.train_images[train_idx], data.train_labels[train_idx], run.batch_size,
                                shuffle=True, augment=augment, seed=split_seed, device=device, drop_last=True,
                                channels_last=cl)
    test_idx = random_subset(torch.arange(len(data.test_labels)), run.test_size, split_seed)
    test_loader = TensorLoader(data.test_images[test_idx], data.test_labels[test_idx], 500, device=device,
                               channels_last=cl)
    eval_loader = None
    if eval_each_epoch == "val":
        eval_loader = TimedLoader(TensorLoader(data.train_images[val_idx], data.train_labels[val_idx], 500,
                                               device=device, channels_last=cl))
    elif eval_each_epoch == "test":
        eval_loader = TimedLoader(test_loader)
    elif eval_each_epoch is not None:
        raise ValueError(f"eval_each_epoch must be None, 'val' or 'test'; got {eval_each_epoch!r}")

    def build_model() -> nn.Module:
        torch.manual_seed(recipe.get("seed", 0))
        net = build_vgg(head="cifar", input_size=32, num_classes=10, **{"batch_norm": True, **model_kwargs})
        return FastModel(net, channels_last=cl, amp=speed.amp, compile=speed.compile, tta_flip=tta_flip)

    meta = {"data_source": data.source, "speed": asdict(speed), "augment": augment, "tta_flip": tta_flip,
            "train_images": len(train_idx), "eval_set": eval_each_epoch, "threads": threads,
            "model_kwargs": model_kwargs}
    diverged = None
    save_env = os.environ.pop("VGG_BOOK_SAVE_REFERENCE", None)    # stored below, once the test accuracy is known
    try:
        model, history = train_or_load(name, build_model, train_loader, eval_loader,
                                       TrainConfig(epochs=run.epochs, **recipe), budget=budget, use_stored=False,
                                       device=device, progress=progress, meta=meta)
    except TrainingDiverged as e:     # the no-batch-norm rung may blow up: that is a result too
        diverged, model = str(e), None
        history = History(meta={**environment_info(device), "run": name, "budget": budget, **meta})
    finally:
        if save_env is not None:
            os.environ["VGG_BOOK_SAVE_REFERENCE"] = save_env
    evals = eval_loader.seconds if eval_loader is not None else [0.0] * len(history.time)
    history.meta["eval_seconds"] = evals
    history.meta["train_seconds"] = [t - sum(evals[:i + 1]) for i, t in enumerate(history.time)]
    if diverged:
        history.meta.update(diverged=diverged, test_acc=0.1, test_acc_plain=0.1, test_acc_flip=0.1)
    else:
        t0 = time.perf_counter()
        acc = test_accuracy(model, test_loader)
        history.meta["final_eval_seconds"] = time.perf_counter() - t0
        history.meta.update(test_acc=acc["flip"] if tta_flip else acc["plain"], test_acc_plain=acc["plain"],
                            test_acc_flip=acc["flip"], test_images=len(test_idx))
    if save_env == "1" and budget != "smoke":
        history.save(reference_path(name, budget))
    return model, history


_MODEL_KEYS = ("batch_norm", "init", "arch", "width")
_SPEED_KEYS = ("threads", "channels_last", "amp", "compile")


def _chapter6_state(budget: str) -> dict:
    """Every setting of chapter 6's run, flattened into one dict (rung 0 of the ladder)."""
    return {**CHAPTER6_RECIPE, **CHAPTER6_MODEL[budget],
            **{k: CHAPTER6_MODEL_COMMON[k] for k in ("batch_norm", "init")},
            "threads": None, "channels_last": False, "amp": False, "compile": False,
            "augment": True, "tta_flip": False, "val_size": CHAPTER7_LADDER_BUDGET[budget].val_size}


def ladder_settings(budget: str | None = None) -> list[dict]:
    """The runs of chapter 7's ladder (``CHAPTER7_LADDER``), each with everything needed to train it.

    Args:
        budget: default ``current_budget()``.
    Returns:
        One dict per rung with keys ``name``, ``what``, ``base`` (the rung it changes, or ``None``), ``changes``,
        ``model_kwargs``, ``recipe``, ``speed``, ``run`` (a ``RunBudget``), ``augment``, ``tta_flip`` and
        ``reuse_base`` (True for a rung that only turns on the test-time flip: it re-reads its base run).
    """
    budget = current_budget(budget)
    known = {*CHAPTER6_RECIPE, *_MODEL_KEYS, *_SPEED_KEYS, "augment", "tta_flip", "val_size"}
    states: dict[str, dict] = {}
    rungs = []
    for name, what, base, changes in CHAPTER7_LADDER:
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"ladder rung {name!r} changes unknown settings {sorted(unknown)}; "
                             f"known: {sorted(known)}")
        if base is not None and base not in states:
            raise ValueError(f"ladder rung {name!r} starts from {base!r}, which is not an earlier rung")
        state = {**(states[base] if base else _chapter6_state(budget)), **changes}
        states[name] = state
        run = replace(CHAPTER7_LADDER_BUDGET[budget], val_size=state["val_size"])
        rungs.append({"name": name, "what": what, "base": base, "changes": dict(changes),
                      "model_kwargs": {k: state[k] for k in _MODEL_KEYS},
                      "recipe": {k: state[k] for k in CHAPTER6_RECIPE},
                      "speed": SpeedSettings(**{k: state[k] for k in _SPEED_KEYS}), "run": run,
                      "augment": state["augment"], "tta_flip": state["tta_flip"],
                      "reuse_base": base is not None and set(changes) == {"tta_flip"}})
    return rungs


def run_ladder(data: CIFAR10, budget: str | None = None, use_stored: bool | None = None,
               progress: bool | None = None) -> list[dict]:
    """Train (or load) every rung of the ladder under ``CHAPTER7_LADDER_BUDGET`` and collect the results.

    Args:
        data: CIFAR-10 in memory.
        budget: default ``current_budget()``.
        use_stored: load stored histories (``reference_runs/<name>-<budget>.json``) instead of training.
        progress: passed to ``train``.
    Returns:
        One row per rung: ``name``, ``what``, ``base``, ``test_acc`` (with the flip if the rung uses it),
        ``train_seconds`` (training only, evaluations excluded), ``diverged`` and ``history``.
    """
    budget = current_budget(budget)
    rows: dict[str, dict] = {}
    for rung in ladder_settings(budget):
        if rung["reuse_base"]:
            history = rows[rung["base"]]["history"]
            acc = history.meta["test_acc_flip"] if rung["tta_flip"] else history.meta["test_acc_plain"]
        else:
            _, history = fast_run(rung["name"], data, rung["run"], rung["model_kwargs"], rung["recipe"],
                                  rung["speed"], augment=rung["augment"], tta_flip=rung["tta_flip"],
                                  budget=budget, use_stored=use_stored, progress=progress,
                                  split_seed=CHAPTER7_SPLIT_SEED)
            acc = history.meta["test_acc"]
        secs = history.meta["train_seconds"][-1] if history.meta.get("train_seconds") else float("nan")
        rows[rung["name"]] = {"name": rung["name"], "what": rung["what"], "base": rung["base"], "test_acc": acc,
                              "train_seconds": secs, "diverged": history.meta.get("diverged"),
                              "history": history}
    return list(rows.values())


# --------------------------------------------------------------------------------------------------
# Throughput benchmark
# --------------------------------------------------------------------------------------------------
def _images_per_second(model: nn.Module, batches: Iterator, steps: int, warmup: int,
                       channels_last: bool) -> float:
    """Train for ``warmup + steps`` steps; return images per second over the timed steps."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    images, t0 = 0, time.perf_counter()
    for i in range(warmup + steps):
        if i == warmup:
            t0, images = time.perf_counter(), 0
        x, y = next(batches)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        images += len(y)
    return images / (time.perf_counter() - t0)


def _forever(make: Callable[[], Iterable]) -> Iterator:
    while True:
        yield from make()


def conventional_loader(root: Path | None, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                        num_workers: int, from_files: bool) -> Iterable:
    """torchvision Dataset + DataLoader + PIL transforms, the way most tutorials feed CIFAR-10.

    Args:
        root: the image-folder copy (``train/<class>/*.jpg``); used when ``from_files``.
        images, labels: uint8 (N, 3, 32, 32) and int64 tensors; used when not ``from_files``.
        batch_size: images per batch.
        num_workers: DataLoader worker processes.
        from_files: ``ImageFolder`` over JPEG files (decoding every image every epoch) instead of arrays.
    Returns:
        A ``DataLoader``.
    """
    import torchvision.transforms as T
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision.datasets import ImageFolder

    transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                           T.Normalize(CIFAR10_MEAN, CIFAR10_STD)])
    if from_files:
        ds: Dataset = ImageFolder(str(Path(root) / "train"), transform=transform)
    else:
        class ArrayDataset(Dataset):
            """One PIL image per item from uint8 arrays, as torchvision.datasets.CIFAR10 does."""

            def __init__(self) -> None:
                self.data = images.permute(0, 2, 3, 1).contiguous().numpy()
                self.targets = labels.tolist()

            def __len__(self) -> int:
                return len(self.targets)

            def __getitem__(self, i: int):
                return transform(Image.fromarray(self.data[i])), self.targets[i]

        ds = ArrayDataset()
    return DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=num_workers, drop_last=True,
                      persistent_workers=num_workers > 0)


def compute_ratios(images_per_second: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """Ratios of a throughput result.

    Args:
        images_per_second: pipeline name -> images/s; must hold ``in_memory`` and ``book``.
    Returns:
        ``(ratios, book_vs)``: every pipeline divided by ``in_memory``, and ``book`` divided by every other
        pipeline except ``book`` itself.
    """
    ceiling, book = images_per_second["in_memory"], images_per_second["book"]
    ratios = {k: v / ceiling for k, v in images_per_second.items()}
    book_vs = {k: book / v for k, v in images_per_second.items() if k != "book"}
    return ratios, book_vs


def throughput(arch: str = "vgg11", width: float = 0.5, batch_size: int = 128, steps: int = 30, warmup: int = 3,
               channels_last: bool = True, num_workers: int = 2, threads: Optional[int] = None,
               data_dir: str | None = None, data: CIFAR10 | None = None, variants: bool = False,
               imagefolder: bool = True, amp: bool = True, compile_variant: bool = False, rounds: int = 1) -> dict:
    """Measure images per second of the three pipelines on the same model, one after the other.

    Args:
        arch, width: the batch-norm VGG trained (``head="cifar"``).
        batch_size: images per step.
        steps, warmup: timed steps and untimed steps before them, per pipeline.
        channels_last: NHWC layout for the model and every batch.
        num_workers: DataLoader workers of the conventional pipelines.
        threads: torch threads (default: one per core).
        data_dir: CIFAR-10 folder (default ``VGG_DATA_DIR``); its ``train/`` folder feeds ``ImageFolder``.
        data: CIFAR-10 already in memory (tests pass a tiny synthetic set; ``ImageFolder`` is then skipped
            unless ``data_dir`` has a ``train/`` folder).
        variants: also measure the in-memory ceiling with 1 thread, with the other memory layout and with
            bfloat16 autocast toggled: what each speed setting buys.
        imagefolder: include the ImageFolder pipeline when the JPEG folder exists.
        amp: bfloat16 autocast for every pipeline (where the CPU or GPU has native bfloat16; see ``FastModel``).
        compile_variant: with ``variants``, also measure the in-memory ceiling with ``torch.compile`` (the
            compile time is reported separately and not counted in images/s).
        rounds: how many mirrored passes over all pipelines to average (each pipeline is measured twice per
            round).
    Returns:
        A dict with ``settings``, ``environment``, ``images_per_second``, ``ratios``, ``book_vs``,
        ``targets`` (whether the book reached 95% of in-memory and beat every conventional pipeline) and,
        with ``variants``, ``in_memory_variants``.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1; got {rounds}")
    threads = set_threads(threads)
    if data is None:
        data = load_cifar10(data_dir)
    folder = data_dir or os.environ.get("VGG_DATA_DIR")
    root = Path(folder) if folder else None
    train_idx, _ = split_train_val(len(data.train_labels), min(5000, len(data.train_labels) // 10), seed=0)
    images, labels = data.train_images[train_idx], data.train_labels[train_idx]

    amp_used = amp and bf16_supported("cpu")     # every pipeline here trains on the CPU

    def fresh_model(cl: bool = channels_last, use_amp: bool = amp, use_compile: bool = False) -> nn.Module:
        torch.manual_seed(0)
        m = build_vgg(arch, head="cifar", input_size=32, num_classes=10, batch_norm=True, width=width)
        return FastModel(m, channels_last=cl, amp=use_amp, compile=use_compile)

    book = TensorLoader(images, labels, batch_size=batch_size, shuffle=True, augment=True, drop_last=True,
                        channels_last=channels_last)
    fixed = next(iter(TensorLoader(images, labels, batch_size=batch_size, shuffle=True)))
    runs: dict[str, Callable[[], Iterator]] = {
        "in_memory": lambda: _forever(lambda: [fixed]),
        "book": lambda: _forever(lambda: book),
        "conventional_pil_arrays": lambda: _forever(
            lambda: conventional_loader(root, images, labels, batch_size, num_workers, from_files=False)),
    }
    if imagefolder and root is not None and (root / "train").is_dir():
        runs["conventional_imagefolder"] = lambda: _forever(
            lambda: conventional_loader(root, images, labels, batch_size, num_workers, from_files=True))
    # A process gets faster over its first seconds (allocator, oneDNN primitive caches): warm up once, untimed.
    # On a small shared machine the speed of the same steps also wanders by +-10% from one second to the next,
    # so every pipeline is measured in mirrored order (A B C D D C B A), ``rounds`` times, and each result is the
    # mean of its 2 * rounds measurements: a steady drift cancels out of the ratios and the noise averages down.
    _images_per_second(fresh_model(), runs["in_memory"](), 2 * warmup, 0, channels_last)
    names = list(runs)
    order = (names + names[::-1]) * rounds
    seen: dict[str, list[float]] = {}
    for name in order:
        ips = _images_per_second(fresh_model(), runs[name](), steps, warmup, channels_last)
        seen.setdefault(name, []).append(ips)
        print(f"{name:>26}: {ips:8.1f} images/s", flush=True)
    results = {k: float(np.mean(v)) for k, v in seen.items()}
    ratios, book_vs = compute_ratios(results)
    out = {
        "kind": "throughput", "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "environment": environment_info("cpu" if not torch.cuda.is_available() else "cuda"),
        "settings": {"arch": arch, "width": width, "batch_norm": True, "batch_size": batch_size, "steps": steps,
                     "warmup": warmup, "rounds": rounds, "channels_last": channels_last, "amp": amp,
                     "amp_used": amp_used,
                     "num_workers": num_workers,
                     "threads": threads, "data_source": data.source, "train_images": len(train_idx)},
        "images_per_second": results,
        "runs": seen,
        "ratios": ratios,
        "book_vs": book_vs,
        "targets": {"book_at_least_95pct_of_in_memory": ratios["book"] >= 0.95,
                    "book_at_least_conventional": all(v >= 1.0 for k, v in book_vs.items()
                                                      if k.startswith("conventional"))},
    }
    if variants:
        var: dict[str, float] = {}
        settings = [(threads, channels_last, amp, False), (threads, not channels_last, amp, False),
                    (1, channels_last, amp, False), (threads, channels_last, not amp, False)]
        if compile_variant:
            settings.append((threads, channels_last, amp, True))
        for n_threads, cl, use_amp, use_compile in settings:
            label = f"threads={n_threads}, channels_last={cl}, amp={use_amp}" + (", compile" if use_compile else "")
            torch.set_num_threads(n_threads)
            batch = (fixed[0].contiguous(memory_format=torch.channels_last) if cl else fixed[0].contiguous(),
                     fixed[1])
            model = fresh_model(cl, use_amp, use_compile)
            t0 = time.perf_counter()
            if use_compile:     # the first steps compile; their time is recorded, not counted in images/s
                _images_per_second(model, _forever(lambda: [batch]), 1, 1, cl)
                out["compile_seconds"] = time.perf_counter() - t0
            var[label] = _images_per_second(model, _forever(lambda: [batch]), steps, warmup, cl)
            print(f"  in_memory {label}: {var[label]:8.1f} images/s", flush=True)
        torch.set_num_threads(threads)
        out["in_memory_variants"] = var
    return out


# --------------------------------------------------------------------------------------------------
# Time-to-accuracy benchmark
# --------------------------------------------------------------------------------------------------
def first_reaching(values: list[float], target: float) -> Optional[int]:
    """Index of the first value >= target, or ``None``."""
    return next((i for i, v in enumerate(values) if v is not None and v >= target), None)


def time_to_accuracy(budget: str = "cpu", target: float = BLOG_POST_ACCURACY, data_dir: str | None = None,
                     data: CIFAR10 | None = None, epochs: Optional[int] = None, train_size: Optional[int] = None,
                     test_size: Optional[int] = None, width: Optional[float] = None,
                     save_as: Optional[str] = None, progress: bool | None = None,
                     augment: bool = CHAPTER7_AUGMENT) -> dict:
    """Train chapter 7's final recipe of ``budget`` with a test evaluation after every epoch.

    Args:
        budget: which column of ``CHAPTER7`` / ``CHAPTER7_MODEL`` / ``CHAPTER7_SPEED``.
        target: test accuracy whose first crossing is timed.
        data_dir, data: where CIFAR-10 comes from (``data`` wins).
        epochs, train_size, test_size, width: overrides for quick runs (tests).
        save_as: also store the history as reference run ``<save_as>-<budget>.json`` (e.g. ``"ch7-final"``),
            which chapter 7 loads.
        progress: passed to ``train``.
        augment: random crop + flip while training; ``False`` is the full-budget ablation, recorded as its own
            kind (``time-to-accuracy-<budget>-no-augment``) so it never replaces the recipe's own result.
    Returns:
        A dict with ``settings``, ``environment``, per-epoch ``epochs`` rows (``test_acc``, ``train_seconds``
        excluding evaluations, ``eval_seconds``), ``time_to_target_s`` (training seconds, evaluations
        excluded; ``None`` if never reached), ``wall_to_target_s`` (evaluations included),
        ``final_test_acc`` (flip and plain) and ``total_wall_s`` (the whole call).
    """
    t_start = time.perf_counter()
    if data is None:
        data = load_cifar10(data_dir)
    load_s = time.perf_counter() - t_start
    run = CHAPTER7[budget]
    run = RunBudget(train_size=train_size if train_size is not None else run.train_size, val_size=run.val_size,
                    epochs=epochs or run.epochs, batch_size=run.batch_size,
                    test_size=test_size if test_size is not None else run.test_size)
    model_kwargs = dict(CHAPTER7_MODEL[budget], **({"width": width} if width else {}))
    name = save_as or "ch7-time-to-accuracy"
    save_env = os.environ.get("VGG_BOOK_SAVE_REFERENCE")
    if save_as is None:
        os.environ.pop("VGG_BOOK_SAVE_REFERENCE", None)
    else:
        os.environ["VGG_BOOK_SAVE_REFERENCE"] = "1"
    try:
        _, h = fast_run(name, data, run, model_kwargs, CHAPTER7_RECIPE, CHAPTER7_SPEED[budget],
                        augment=augment, tta_flip=CHAPTER7_TTA_FLIP, eval_each_epoch="test",
                        budget=budget, use_stored=False, progress=progress, split_seed=CHAPTER7_SPLIT_SEED)
    finally:
        if save_env is None:
            os.environ.pop("VGG_BOOK_SAVE_REFERENCE", None)
        else:
            os.environ["VGG_BOOK_SAVE_REFERENCE"] = save_env
    accs = h.val_acc
    hit = first_reaching(accs, target)
    rows = [{"epoch": e, "test_acc": a, "train_seconds": ts, "eval_seconds": es, "wall_seconds": w}
            for e, a, ts, es, w in zip(h.epoch, accs, h.meta["train_seconds"], h.meta["eval_seconds"], h.time)]
    return {
        "kind": f"time-to-accuracy-{budget}" + ("" if augment else "-no-augment"),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "environment": {k: h.meta[k] for k in ("torch", "python", "device", "cpu", "cpu_count", "torch_threads")
                        if k in h.meta} | ({"gpu": h.meta["gpu"]} if "gpu" in h.meta else {}),
        "settings": {"budget": budget, "target": target, "run": asdict(run), "model": model_kwargs,
                     "recipe": CHAPTER7_RECIPE, "speed": h.meta["speed"], "augment": augment,
                     "tta_flip": CHAPTER7_TTA_FLIP, "data_source": data.source,
                     "train_images": h.meta["train_images"], "test_images": h.meta.get("test_images"),
                     "timing": "train_seconds exclude the per-epoch test evaluations and data loading"},
        "epochs": rows,
        "reached_target_at_epoch": None if hit is None else rows[hit]["epoch"],
        "time_to_target_s": None if hit is None else rows[hit]["train_seconds"],
        "wall_to_target_s": None if hit is None else rows[hit]["wall_seconds"],
        "train_seconds": rows[-1]["train_seconds"] if rows else None,
        "final_eval_s": h.meta.get("final_eval_seconds"),
        # the clock of the budget: first training step to the final test accuracy, without the per-epoch
        # evaluations that only this benchmark does
        "time_to_result_s": (rows[-1]["train_seconds"] + h.meta.get("final_eval_seconds", 0.0)) if rows else None,
        "final_test_acc": {"flip": h.meta["test_acc_flip"], "plain": h.meta["test_acc_plain"]},
        "data_load_s": load_s,
        "total_wall_s": time.perf_counter() - t_start,
        "diverged": h.meta.get("diverged"),
    }


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------
def save(result: dict, out_dir: Path = RESULTS_DIR) -> Path:
    """Write a result as ``<kind>-<date>.json`` atomically and return its path."""
    stamp = result["date"].replace(":", "").replace("+0000", "Z")
    path = Path(out_dir) / f"{result['kind']}-{stamp}.json"
    atomic_write(path, lambda f: json.dump(result, f, indent=1), mode="w")
    return path


def main(argv: list[str] | None = None) -> int:
    """Run a benchmark from the command line (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m vgg_helpers.bench", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("throughput", help="images/s of the book's, in-memory and conventional pipelines")
    t.add_argument("--arch", default="vgg11")
    t.add_argument("--width", type=float, default=0.5)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--steps", type=int, default=30)
    t.add_argument("--warmup", type=int, default=3)
    t.add_argument("--rounds", type=int, default=3, help="mirrored passes over all pipelines to average")
    t.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    t.add_argument("--num-workers", type=int, default=2)
    t.add_argument("--threads", type=int, default=None)
    t.add_argument("--no-amp", dest="amp", action="store_false", help="float32 instead of bfloat16 autocast")
    t.add_argument("--variants", action="store_true",
                   help="also: in-memory with 1 thread / the other layout / autocast toggled")
    t.add_argument("--compile-variant", action="store_true", help="with --variants: also torch.compile")
    t.add_argument("--no-imagefolder", dest="imagefolder", action="store_false")
    a = sub.add_parser("time-to-accuracy", help="train chapter 7's recipe, test after every epoch")
    a.add_argument("--budget", default="cpu", choices=["smoke", "cpu", "gpu"])
    a.add_argument("--target", type=float, default=BLOG_POST_ACCURACY)
    a.add_argument("--epochs", type=int, default=None)
    a.add_argument("--train-size", type=int, default=None)
    a.add_argument("--test-size", type=int, default=None)
    a.add_argument("--width", type=float, default=None)
    a.add_argument("--save-as", default=None, help="also store the history as a reference run of this name")
    a.add_argument("--no-augment", dest="augment", action="store_false",
                   help="ablation: train without random crop and flip (recorded as its own kind)")
    for p in (t, a):
        p.add_argument("--data-dir", default=None)
        p.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = ap.parse_args(argv)
    if args.cmd == "throughput":
        result = throughput(args.arch, args.width, args.batch_size, args.steps, args.warmup, args.channels_last,
                            args.num_workers, args.threads, args.data_dir, variants=args.variants,
                            imagefolder=args.imagefolder, amp=args.amp, compile_variant=args.compile_variant,
                            rounds=args.rounds)
        print(json.dumps({"ratios": result["ratios"], "book_vs": result["book_vs"]}, indent=1))
    else:
        result = time_to_accuracy(args.budget, args.target, args.data_dir, epochs=args.epochs,
                                  train_size=args.train_size, test_size=args.test_size, width=args.width,
                                  save_as=args.save_as, augment=args.augment)
        print(json.dumps({k: result[k] for k in ("reached_target_at_epoch", "time_to_target_s", "train_seconds",
                                                 "time_to_result_s", "final_test_acc", "total_wall_s")}, indent=1))
    print("saved", save(result, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
