"""Benchmark: one training step in float32 and with bfloat16 autocast, on this CPU, for the book's networks.

Whether bfloat16 autocast pays depends on the CPU: with the AVX512-BF16 or AMX instructions it computes in
bfloat16; elsewhere it is emulated. ``vgg_helpers.runtime.bf16_supported`` decides which one the book's training
uses; this command measures whether that decision was right on this machine::

    python -m bench.precision                          # the final, short and classic fast networks
    python -m bench.precision --plans modern --steps 3
    python -m bench.precision --plans modern-short --batch-size 512 1024 --layouts channels_last contiguous

Each network takes one training step (forward, loss, backward, SGD update; channels-last layout, as the book
trains, unless ``--layouts`` names others) on a batch of random images of its plan's batch size (or each of
``--batch-size``), float32 and bfloat16 alternating, after two warm-up steps of each; every variant takes its
step in turn, so a drift in the machine's speed hits them all. The median over ``--steps`` steps is recorded with
the CPU's model and instruction sets, and per 1,024 images, so that batch sizes compare. No data set is read.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import statistics
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F

from vgg_helpers.book.fast import build_network
from vgg_helpers.book.plans import FAST, MODERN, MODERN_SHORT, Plan
from vgg_helpers.runtime import bf16_supported, cpu_bf16_instructions, environment_info, set_threads

from . import RESULTS_DIR, count, save

PLANS = {"modern": MODERN, "modern-short": MODERN_SHORT, "fast": FAST}   # the cpu budget's networks
LAYOUTS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}   # memory layouts


def per_1024_images(medians: dict[str, float], batch_size: int) -> dict[str, float]:
    """Step seconds per precision, rescaled to 1,024 images, so that batch sizes compare."""
    return {k: v * 1024 / batch_size for k, v in medians.items()}


def step_timer(plan: Plan, batch_size: Optional[int] = None, seed: int = 0,
               layout: str = "channels_last") -> Callable[[bool], float]:
    """A function that takes one training step of ``plan``'s network and returns its seconds.

    Args:
        plan: a plan of ``vgg_helpers.book.plans`` (its network and batch size).
        batch_size: images per step (default: the plan's).
        seed: the network's initial weights and the random batch.
        layout: a key of ``LAYOUTS``: the memory layout of the network and the batch.
    Returns:
        ``step(bf16)``: one step, with bfloat16 autocast when ``bf16`` is true.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {sorted(LAYOUTS)}; got {layout!r}")
    torch.manual_seed(seed)
    n = batch_size or plan.run.batch_size
    model = build_network(plan.model).to(memory_format=LAYOUTS[layout])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    images = torch.randn(n, 3, 32, 32).contiguous(memory_format=LAYOUTS[layout])
    labels = torch.randint(0, 10, (n,))

    def step(bf16: bool) -> float:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return time.perf_counter() - start
    return step


def measure(plans: Sequence[str], steps: int = 5, warmup: int = 2, batch_sizes: Sequence[Optional[int]] = (None,),
            layouts: Sequence[str] = ("channels_last",)) -> list[dict]:
    """Median step seconds in float32 and with bfloat16 autocast for each named plan's cpu network.

    Args:
        plans: keys of ``PLANS``.
        steps: timed steps of each precision and variant (every variant in turn, float32 then bfloat16, so a drift
            in the machine's speed hits them all).
        warmup: untimed steps of each first.
        batch_sizes: images per step, one variant each (``None``: the plan's).
        layouts: keys of ``LAYOUTS``, one variant each.
    Returns:
        One row per plan, batch size and layout: network, batch size, layout, the step times and their medians,
        the medians per 1,024 images and ``bf16_over_float32``.
    """
    variants = [(name, n or PLANS[name]["cpu"].run.batch_size, layout)
                for name in plans for n in batch_sizes for layout in layouts]
    timers = [step_timer(PLANS[name]["cpu"], n, layout=layout) for name, n, layout in variants]
    for step in timers:
        for _ in range(warmup):
            step(False), step(True)
    times: list[dict[str, list[float]]] = [{"float32": [], "bfloat16": []} for _ in variants]
    for _ in range(steps):
        for step, t in zip(timers, times):
            t["float32"].append(step(False))
            t["bfloat16"].append(step(True))
    rows = []
    for (name, n, layout), t in zip(variants, times):
        plan = PLANS[name]["cpu"]
        medians = {k: statistics.median(v) for k, v in t.items()}
        rows.append({"plan": name, "network": plan.model.get("arch"), "width": plan.model.get("width"),
                     "batch_size": n, "layout": layout, "seconds": t, "median_s": medians,
                     "per_1024_images_s": per_1024_images(medians, n),
                     "bf16_over_float32": medians["bfloat16"] / medians["float32"]})
    return rows


def main(argv: Optional[list[str]] = None) -> int:
    """Measure, record the result in ``--out`` and return the exit status (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m bench.precision", description=__doc__.splitlines()[0])
    ap.add_argument("--plans", nargs="+", choices=sorted(PLANS), default=["modern", "modern-short", "fast"])
    ap.add_argument("--steps", type=count, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch-size", type=count, nargs="+", default=[None], metavar="N",
                    help="images per step, one variant each (default: each plan's)")
    ap.add_argument("--layouts", nargs="+", choices=sorted(LAYOUTS), default=["channels_last"],
                    help="memory layouts, one variant each (default: channels_last, as the book trains)")
    ap.add_argument("--threads", type=count, default=None, help="torch threads (default: one per core)")
    ap.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for the result file")
    args = ap.parse_args(argv)
    threads = set_threads(args.threads)
    rows = measure(args.plans, args.steps, args.warmup, args.batch_size, args.layouts)
    result = {"kind": "precision-cpu", "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
              "environment": environment_info("cpu"), "instructions": cpu_bf16_instructions(),
              "settings": {"steps": args.steps, "warmup": args.warmup, "threads": threads,
                           "layouts": args.layouts, "data": "random images (no data set read)"},
              "book_uses_bf16": bf16_supported("cpu"), "rows": rows}
    for r in rows:
        per = r["per_1024_images_s"]
        print(f"{r['plan']:>12} ({r['network']}, batch {r['batch_size']}, {r['layout']}): float32 "
              f"{r['median_s']['float32']:.3f} s, bfloat16 {r['median_s']['bfloat16']:.3f} s per step "
              f"({r['bf16_over_float32']:.2f}x); per 1,024 images {per['float32']:.3f} / {per['bfloat16']:.3f} s")
    print(f"the book trains in {'bfloat16' if result['book_uses_bf16'] else 'float32'} on this CPU")
    print("saved", save(result, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
