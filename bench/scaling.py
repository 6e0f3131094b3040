"""Benchmark: training images per second with 1 and 2 processes (torchrun + DDP): the scaling numbers.

Each configuration launches ``python -m vgg_helpers.distributed`` under torchrun with the scaling plan of the cpu
(or gpu) budget (``vgg_helpers.book.plans.SCALING``), one epoch of ``--steps`` steps of the global batch, and reads the images per second it measured (the median
step time, so start-up and the final evaluation do not count). The configurations run in turn, ``--rounds`` times
in mirrored order, and the result records every round::

    python -m bench.scaling                       # CPU: 1 process x 1 thread, 1 x 2 threads, 2 processes x 1 thread
                                                  #      (with synced batch norm, and without it)
    python -m bench.scaling --device cuda         # GPU: 1 process, and one per GPU when there are several
"""
from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
from pathlib import Path
from typing import Optional

import torch

from vgg_helpers.book.plans import SCALING, pick
from vgg_helpers.book.scaling import script_args
from vgg_helpers.distributed import launch as run_script
from vgg_helpers.models import build_vgg, count_parameters
from vgg_helpers.runtime import environment_info
from vgg_helpers.settings import settings

from . import add_data_and_out, count, save

__all__ = ["configurations", "label", "launch", "measure", "main"]


def configurations(device: str, cores: int, gpus: int) -> list[tuple[int, int, bool]]:
    """``(processes, threads per process, synced batch norm)`` to compare: on the CPU, one process with one thread
    and with every core, and one single-thread process per core with and without synced batch norm (what the
    syncing costs); on GPUs, one process and one per GPU."""
    if device == "cuda":
        return [(1, 1, True)] + ([(gpus, 1, True), (gpus, 1, False)] if gpus > 1 else [])
    many = [(cores, 1, True), (cores, 1, False)] if cores > 1 else []
    return list(dict.fromkeys([(1, 1, True), (1, cores, True), *many]))


def launch(processes: int, threads: int, sync: bool, plan_args: list[str], out: Path) -> dict:
    """One torchrun launch of the training script; returns its ``summary.json``."""
    try:
        return run_script(out, processes, *plan_args, *([] if sync else ["--no-sync-bn"]), threads=threads).summary
    except RuntimeError as e:
        raise SystemExit(f"error: {e}") from None


def label(processes: int, threads: int, sync: bool = True) -> str:
    """How the tables name a configuration, e.g. ``2 processes x 1 thread, batch norm per process``."""
    text = f"{processes} process{'es' if processes > 1 else ''} x {threads} thread{'s' if threads > 1 else ''}"
    return text + ("" if sync or processes == 1 else ", batch norm per process")


def measure(device: str, budget: str, steps: int, rounds: int, data_dir: Optional[str],
            max_processes: Optional[int] = None) -> dict:
    """Run every configuration ``rounds`` times (mirrored order) and collect images per second.

    ``max_processes`` leaves out the configurations with more processes (a quick check of the set-up).
    """
    plan = pick(SCALING, budget)
    batch = plan.run.batch_size
    configs = configurations(device, torch.get_num_threads() if device == "cpu" else 1,
                             torch.cuda.device_count() if device == "cuda" else 0)
    configs = [c for c in configs if max_processes is None or c[0] <= max_processes]
    plan_args = [*script_args(plan), "--device", device, "--epochs", "1", "--train-size", str(steps * batch),
                 "--val-size", "0", "--test-size", str(batch)]
    if data_dir:
        plan_args += ["--data-dir", data_dir]
    measured: dict[tuple[int, int, bool], list[float]] = {c: [] for c in configs}
    summaries = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for c in (configs if r % 2 == 0 else configs[::-1]):
                s = launch(*c, plan_args, Path(tmp) / f"{c[0]}x{c[1]}-{c[2]}-{r}")
                measured[c].append(s["images_per_s"])
                summaries[c] = s
                print(f"round {r + 1}: {label(*c)}: {s['images_per_s']:.0f} images/s", flush=True)
    base = statistics.median(measured[configs[0]])
    rows = [dict(processes=p, threads_per_process=t, sync_batchnorm=sync, images_per_s=v,
                 median=statistics.median(v), min=min(v), max=max(v), speedup_vs_1x1=statistics.median(v) / base,
                 allreduce_s=summaries[(p, t, sync)]["allreduce_s"]) for (p, t, sync), v in measured.items()]
    params = count_parameters(build_vgg(**plan.model))
    last = summaries[configs[-1]]
    return dict(kind=f"scaling-{device}", date=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                environment=environment_info(device), data=last["data"],
                settings=dict(budget=budget, model=dict(plan.model), global_batch=batch, steps=steps, rounds=rounds,
                              recipe=dict(plan.recipe)),
                parameters=params, gradient_mb=params * 4 / 1e6, configurations=rows)


def main(argv: Optional[list[str]] = None) -> int:
    """Measure, record the result in ``--out`` and return the exit status (see the module docstring)."""
    env = settings()
    ap = argparse.ArgumentParser(prog="python -m bench.scaling", description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--budget", choices=("smoke", "cpu", "gpu"), default=None,
                    help="whose plan (model, batch) to run: default cpu on the CPU, gpu on CUDA")
    ap.add_argument("--steps", type=count, default=40, help="training steps per launch")
    ap.add_argument("--rounds", type=count, default=3, help="mirrored passes over all configurations")
    ap.add_argument("--max-processes", type=count, default=None,
                    help="leave out configurations with more processes (tools/gpu_check.sh --tiny uses 1)")
    add_data_and_out(ap)
    args = ap.parse_args(argv)
    budget = args.budget or ("gpu" if args.device == "cuda" else "cpu")
    result = measure(args.device, budget, args.steps, args.rounds, args.data_dir or env.data_dir,
                     args.max_processes)
    for row in result["configurations"]:
        print(f"{label(row['processes'], row['threads_per_process'], row.get('sync_batchnorm', True))}: median {row['median']:.0f} images/s "
              f"({row['min']:.0f}-{row['max']:.0f}), {row['speedup_vs_1x1']:.2f}x one process with one thread")
    print("saved", save(result, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
