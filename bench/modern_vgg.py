"""Benchmark: the modern VGG's recipe (``vgg_helpers.modern``), over seeds, with its wall time.

Two modes:

* ``--holdout`` (choosing the recipe): trains on 45,000 training images and measures on the other 5,000 (the
  book's validation split, seed 0). The test set is not touched.
* default (the final result): trains on all 50,000 training images and measures on the 10,000 test images.

Every seed is one run; the result file holds every run and the median, mean and standard deviation of the final
accuracy (with test-time augmentation) and of the wall time from the first training step to that accuracy.
Decoding the images (``load_cifar10``) is reported separately. ``--eval-every-epoch`` also measures the accuracy
after every epoch (without test-time augmentation; that time is excluded from the training time), which gives
the time to the blog post's 88.2%::

    python -m bench.modern_vgg --arch modern-256 --epochs 8 --seeds 0 1 2
    python -m bench.modern_vgg --holdout --epochs 8 --set lr=10 label_smoothing=0.1
    python -m bench.modern_vgg --arch modern-128-256 --epochs 13 --seeds 100 --float32   # as without bfloat16
    python -m bench.modern_vgg --holdout --arch modern-128-256 --epochs 7 --net whiten=false   # a network change

``--set`` changes fields of the recipe (``ModernRecipe``), ``--net`` fields of the network (``ModernConfig``:
``whiten``, ``pool_first``, ``identity_init``, ``logit_scale``, ...; ``--arch`` and ``--activation`` have
their own options).

``--float32`` trains without autocast even where bfloat16 is native: what ``train_modern`` does on a CPU without
it (AVX2 only), measured on this CPU (which is not that CPU: say which one ran it).

The data comes from ``make_loaders`` (the book's split and random subsets); the result goes to ``bench/results``
only. The book's stored final runs are recorded by ``python -m vgg_helpers.book.record modern``.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import math
import statistics
import time
from dataclasses import asdict, fields, replace
from typing import Any, Optional, Sequence
from unittest import mock

import torch

from vgg_helpers.book.modern import EVAL_BATCH
from vgg_helpers.book.plans import BLOG_POST_TEST_ACCURACY
from vgg_helpers.data import CIFAR10, RunBudget, make_loaders
from vgg_helpers.diagnostics import first_reaching
from vgg_helpers import fast as fast_module
from vgg_helpers import modern as modern_module
from vgg_helpers.modern import MODERN_CONFIGS, ModernConfig, ModernRecipe, build_modern_vgg, train_modern
from vgg_helpers.runtime import pick_device, set_threads
from vgg_helpers.settings import settings

from . import add_data_and_out, load_data, save

__all__ = ["parse_settings", "parse_net", "modern_vgg", "main"]

# ModernConfig fields that other options set (the layer list comes from --arch)
_NET_OWN_OPTIONS = {"layers": "--arch", "activation": "--activation", "num_classes": "CIFAR-10's 10 classes"}


def _typed_fields(pairs: Sequence[str], owner: type, option: str,
                  elsewhere: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """``FIELD=VALUE`` texts as fields of the dataclass ``owner``, with their types (``SystemExit`` with a clear
    message otherwise); ``elsewhere`` names fields another option sets, and where."""
    elsewhere = elsewhere or {}
    types = {f.name: f.type for f in fields(owner) if f.name not in elsewhere}
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if key in elsewhere:
            raise SystemExit(f"error: {option} cannot set {key}: it comes from {elsewhere[key]}")
        if not sep or key not in types:
            raise SystemExit(f"error: {option} takes FIELD=VALUE with a field of {owner.__name__} "
                             f"({', '.join(types)}); got {pair!r}")
        kind = types[key]
        if kind == "bool":
            if text.lower() not in ("true", "false"):
                raise SystemExit(f"error: {key} takes true or false; got {text!r}")
            out[key] = text.lower() == "true"
            continue
        try:
            out[key] = text if kind == "str" else int(text) if kind == "int" else float(text)
        except ValueError:
            raise SystemExit(f"error: {key} takes {'an' if kind == 'int' else 'a'} {kind}; got {text!r}") from None
    return out


def parse_settings(pairs: Sequence[str]) -> dict[str, Any]:
    """``["lr=10", "flip=random"]`` as ``ModernRecipe`` fields with their types (a clear error otherwise)."""
    return _typed_fields(pairs, ModernRecipe, "--set")


def parse_net(pairs: Sequence[str]) -> dict[str, Any]:
    """``["whiten=false", "logit_scale=0.2"]`` as ``ModernConfig`` fields with their types (a clear error
    otherwise; ``layers``, ``activation`` and ``num_classes`` are set elsewhere)."""
    return _typed_fields(pairs, ModernConfig, "--net", _NET_OWN_OPTIONS)


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "mean": statistics.fmean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else 0.0, "min": min(values), "max": max(values)}


def modern_vgg(data: CIFAR10, arch: str, recipe: ModernRecipe, seeds: Sequence[int], holdout: bool = False,
               eval_every_epoch: bool = False, train_size: Optional[int] = None, test_size: Optional[int] = None,
               activation: str = "gelu", device: Optional[str] = None, data_load_s: float = 0.0,
               verbose: bool = True, float32: bool = False, net: Optional[dict[str, Any]] = None) -> dict:
    """Train the recipe once per seed and collect the results.

    Args:
        data: CIFAR-10 in memory.
        arch: a key of ``MODERN_CONFIGS``.
        recipe: the recipe (its ``seed`` is replaced by each of ``seeds``).
        seeds: one run per seed.
        holdout: train on the 45,000 images of the book's training split, measure on its 5,000 validation images.
        eval_every_epoch: measure the accuracy after every epoch too (time excluded).
        train_size: N random training images only (quick runs and tests).
        test_size: N random test images only (final runs; the hold-out is always its 5,000 images).
        activation: ``"gelu"`` or ``"relu"``.
        device: default ``pick_device()``.
        data_load_s: seconds spent loading ``data`` (reported, not counted).
        verbose: print every epoch.
        float32: no autocast, even where bfloat16 is native (the precision of a CPU without it).
        net: other ``ModernConfig`` fields (e.g. ``{"whiten": False}``), recorded in the settings as ``net``.
    Returns:
        The result dict (``save`` writes it).
    """
    device = pick_device(device)
    if holdout and test_size is not None:
        raise ValueError("the hold-out is measured on its 5,000 validation images: drop test_size (--test-size)")
    # (train_modern draws its own batches from the recipe; the loaders' batch only has to fit the images)
    sizes = RunBudget(train_size=train_size, val_size=5000 if holdout else 0, epochs=math.ceil(recipe.epochs),
                      batch_size=min(recipe.batch_size, train_size or recipe.batch_size), test_size=test_size)
    loaders = make_loaders(data, sizes, seed=0, device=device, eval_batch_size=EVAL_BATCH)   # the book's split
    measured = loaders.val if holdout else loaders.test
    runs = []
    for seed in seeds:
        torch.manual_seed(seed)
        model = build_modern_vgg(arch, activation=activation, **(net or {}))
        r = replace(recipe, seed=seed)

        def show(row: dict, seed: int = seed) -> None:
            if verbose:
                acc = "" if row["val_acc"] is None else f" acc {row['val_acc']:.4f}"
                print(f"seed {seed} epoch {row['epoch']:>2}: loss {row['train_loss']:.4f} train acc "
                      f"{row['train_acc']:.4f}{acc} | {row['time']:.0f} s", flush=True)

        with contextlib.ExitStack() as stack:
            for module in (modern_module, fast_module) if float32 else ():   # training and evaluation
                stack.enter_context(mock.patch.object(module, "autocast_dtype", lambda device: None))
            h = train_modern(model, loaders, r, measure_on="val" if holdout else "test", device=device,
                             eval_every_epoch=eval_every_epoch, on_epoch=show)
        h.meta.update(arch=arch, data_source=data.source)
        hit = first_reaching(h.val_acc, BLOG_POST_TEST_ACCURACY)
        runs.append({"seed": seed, "final_acc": h.meta["final_acc"], "seconds": h.meta["total_seconds"],
                     "train_seconds": h.meta["train_seconds"], "epoch_acc": h.val_acc, "epoch_seconds": h.time,
                     "train_loss": h.train_loss, "train_acc": h.train_acc,
                     "epoch_to_blog_post": None if hit is None else h.epoch[hit],
                     "seconds_to_blog_post": None if hit is None else h.time[hit]})
        if verbose:
            print(f"seed {seed}: final accuracy {h.meta['final_acc']:.4f} (test-time augmentation level "
                  f"{r.tta_level}) in {h.meta['total_seconds']:.0f} s", flush=True)
    meta = h.meta
    return {
        "kind": f"modern-vgg-{'holdout' if holdout else 'test'}-{device.type}{'-float32' if float32 else ''}",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "environment": {k: meta[k] for k in ("torch", "python", "device", "cpu", "cpu_count", "torch_threads",
                                             "gpu", "cpu_capability", "cpu_bf16") if k in meta},
        "settings": {"arch": arch, "layers": list(MODERN_CONFIGS[arch]), "activation": activation,
                     **({"net": dict(net)} if net else {}), "recipe": asdict(recipe), "seeds": list(seeds),
                     "autocast": meta.get("autocast"),
                     "data_source": data.source, "train_images": len(loaders.train_idx),
                     "measured_on": f"{measured.dataset_size:,} {'validation' if holdout else 'test'} images",
                     "timing": "seconds: first training step to the final accuracy (test-time augmentation "
                               "included); per-epoch evaluations and image decoding excluded"},
        "runs": runs,
        "final_acc": _summary([r["final_acc"] for r in runs]),
        "seconds": _summary([r["seconds"] for r in runs]),
        "data_load_s": data_load_s,
    }


def main(argv: Optional[list[str]] = None) -> int:
    """Measure, record the result in ``--out`` and return the exit status (see the module docstring)."""
    env = settings()
    ap = argparse.ArgumentParser(prog="python -m bench.modern_vgg", description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="modern-256", choices=list(MODERN_CONFIGS))
    ap.add_argument("--activation", default="gelu", choices=["gelu", "relu"])
    ap.add_argument("--epochs", type=float, default=ModernRecipe.epochs)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--holdout", action="store_true", help="measure on the 5,000 validation images, not the test set")
    ap.add_argument("--eval-every-epoch", action="store_true")
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="other ModernRecipe fields")
    ap.add_argument("--net", nargs="*", default=[], metavar="FIELD=VALUE",
                    help="other ModernConfig fields (the network), e.g. whiten=false")
    ap.add_argument("--train-size", type=int, default=None)
    ap.add_argument("--test-size", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--float32", action="store_true", help="no autocast, as on a CPU without native bfloat16")
    add_data_and_out(ap)
    args = ap.parse_args(argv)
    recipe = ModernRecipe(epochs=args.epochs, **parse_settings(args.set))
    net = parse_net(args.net)
    if args.train_size is not None and args.train_size < recipe.batch_size:
        ap.error(f"--train-size {args.train_size} is less than one batch of {recipe.batch_size} images, so nothing "
                 f"would be trained: add --set batch_size={max(1, args.train_size)} or train on more images")
    if args.holdout and args.test_size is not None:
        ap.error("--holdout measures on its 5,000 validation images: drop --test-size")
    set_threads(args.threads)
    t0 = time.perf_counter()
    data = load_data(args, env)
    result = modern_vgg(data, args.arch, recipe, args.seeds, holdout=args.holdout,
                        eval_every_epoch=args.eval_every_epoch, train_size=args.train_size,
                        test_size=args.test_size, activation=args.activation, device=env.device,
                        data_load_s=time.perf_counter() - t0, float32=args.float32, net=net)
    print(json.dumps({k: result[k] for k in ("final_acc", "seconds")}, indent=1))
    print("saved", save(result, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
