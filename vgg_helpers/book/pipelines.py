"""Is data loading the bottleneck? Images per second of the same training step fed by different pipelines.

The chapter on training fast measures, one after the other in one process and on the same model:

(a) ``book``: the book's pipeline -- ``TensorLoader`` with random crop + flip on uint8 tensors in memory;
(b) ``in_memory``: the same model trained on one normalised batch already in memory (the ceiling: no
    loading, no augmentation);
(c) ``conventional_*``: torchvision's ``ImageFolder`` over the JPEG files, and a PIL-per-image dataset over
    in-memory arrays (as ``torchvision.datasets.CIFAR10`` is), each with ``DataLoader`` + PIL transforms
    (RandomCrop, RandomHorizontalFlip, ToTensor, Normalize).

Every pipeline is measured twice per round, in mirrored order (A B C D D C B A), and averaged over ``rounds``
rounds, because the speed of a small shared machine wanders from one second to the next. ``ratios`` divides
every pipeline's images/s by ``in_memory``; ``book_vs`` divides ``book`` by each other pipeline. Optionally
(``variants``) the in-memory ceiling is also measured with 1 thread, with the other memory layout, with bfloat16
autocast toggled and (``compile_variant``) with ``torch.compile``, to show what each speed setting buys.

``bench/throughput.py`` runs this as a benchmark and records the result; the chapter runs it live, briefly.
"""
from __future__ import annotations

import datetime as _dt
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

import numpy as np
import torch
from torch import nn

from ..data import CIFAR10, CIFAR10_MEAN, CIFAR10_STD, RunBudget, make_loaders
from ..fast import FastModel
from ..models import build_vgg
from ..runtime import bf16_supported, environment_info, set_threads

__all__ = ["conventional_loader", "compute_ratios", "measure_pipelines"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _images_per_second(model: nn.Module, batches: Iterator, steps: int, warmup: int,
                       channels_last: bool, device: torch.device = torch.device("cpu")) -> float:
    """Train for ``warmup + steps`` steps on ``device``; return images per second over the timed steps."""
    model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    images, t0 = 0, time.perf_counter()
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            t0, images = time.perf_counter(), 0
        x, y = next(batches)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        images += len(y)
    _sync(device)
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


def measure_pipelines(data: CIFAR10, arch: str = "vgg11", width: float = 0.5, batch_size: int = 128,
                      steps: int = 30, warmup: int = 3, channels_last: bool = True, num_workers: int = 2,
                      threads: Optional[int] = None, variants: bool = False, imagefolder: bool = True,
                      amp: bool = True, compile_variant: bool = False, rounds: int = 1,
                      device: torch.device | str = "cpu") -> dict:
    """Measure images per second of the three pipelines on the same model, one after the other.

    Args:
        arch, width: the batch-norm VGG trained (``head="cifar"``).
        batch_size: images per step.
        steps, warmup: timed steps and untimed steps before them, per pipeline.
        channels_last: NHWC layout for the model and every batch.
        num_workers: DataLoader workers of the conventional pipelines.
        threads: torch threads (default: one per core).
        data: CIFAR-10 in memory; ``ImageFolder`` reads ``data.location``'s ``train/`` folder when it has one
            (tests pass a tiny synthetic set without one: that pipeline is then skipped).
        variants: also measure the in-memory ceiling with 1 thread, with the other memory layout and with
            bfloat16 autocast toggled: what each speed setting buys.
        imagefolder: include the ImageFolder pipeline when the JPEG folder exists.
        amp: bfloat16 autocast for every pipeline (where the CPU or GPU has native bfloat16; see ``FastModel``).
        compile_variant: with ``variants``, also measure the in-memory ceiling with ``torch.compile`` (the
            compile time is reported separately and not counted in images/s).
        rounds: how many mirrored passes over all pipelines to average (each pipeline is measured twice per
            round).
        device: where every pipeline trains (the conventional pipelines' batches are copied there).
    Returns:
        A dict with ``settings``, ``environment``, ``images_per_second``, ``ratios``, ``book_vs``,
        ``targets`` (whether the book reached 95% of in-memory and beat every conventional pipeline) and,
        with ``variants``, ``in_memory_variants``.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1; got {rounds}")
    threads = set_threads(threads)
    device = torch.device(device)
    root = Path(data.location) if data.location else None
    # the training images of the book's split (a 5,000-image hold-out, as in chapter 6)
    run = RunBudget(train_size=None, val_size=min(5000, len(data.train_labels) // 10), epochs=1,
                    batch_size=batch_size)
    loaders = make_loaders(data, run, seed=0, augment=True, device=device, channels_last=channels_last)
    images, labels = data.train_images[loaders.train_idx], data.train_labels[loaders.train_idx]
    amp_used = amp and bf16_supported(device)

    def fresh_model(cl: bool = channels_last, use_amp: bool = amp, use_compile: bool = False) -> nn.Module:
        torch.manual_seed(0)
        m = build_vgg(arch, head="cifar", input_size=32, num_classes=10, batch_norm=True, width=width)
        return FastModel(m, channels_last=cl, amp=use_amp, compile=use_compile)

    book = loaders.train
    fixed = next(iter(make_loaders(data, run, seed=0, device=device).train))   # one batch, not augmented
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
    _images_per_second(fresh_model(), runs["in_memory"](), 2 * warmup, 0, channels_last, device)
    names = list(runs)
    order = (names + names[::-1]) * rounds
    seen: dict[str, list[float]] = {}
    for name in order:
        ips = _images_per_second(fresh_model(), runs[name](), steps, warmup, channels_last, device)
        seen.setdefault(name, []).append(ips)
        print(f"{name:>26}: {ips:8.1f} images/s", flush=True)
    results = {k: float(np.mean(v)) for k, v in seen.items()}
    ratios, book_vs = compute_ratios(results)
    out = {
        "kind": "throughput", "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "environment": environment_info(device),
        "settings": {"arch": arch, "width": width, "batch_norm": True, "batch_size": batch_size, "steps": steps,
                     "warmup": warmup, "rounds": rounds, "channels_last": channels_last, "amp": amp,
                     "amp_used": amp_used,
                     "num_workers": num_workers,
                     "threads": threads, "data_source": data.source, "train_images": len(images),
                     "device": device.type},
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
                _images_per_second(model, _forever(lambda: [batch]), 1, 1, cl, device)
                out["compile_seconds"] = time.perf_counter() - t0
            var[label] = _images_per_second(model, _forever(lambda: [batch]), steps, warmup, cl, device)
            print(f"  in_memory {label}: {var[label]:8.1f} images/s", flush=True)
        torch.set_num_threads(threads)
        out["in_memory_variants"] = var
    return out
