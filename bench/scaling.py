"""Benchmark: training images per second with 1 and 2 processes (torchrun + DDP), chapter 8's scaling numbers.

Each configuration launches ``python -m vgg_helpers.distributed`` under torchrun with chapter 8's cpu (or gpu)
plan, one epoch of ``--steps`` steps of the global batch, and reads the images per second it measured (the median
step time, so start-up and the final evaluation do not count). The configurations run in turn, ``--rounds`` times
in mirrored order, and the result records every round::

    python -m bench.scaling                       # CPU: 1 process x 1 thread, 1 x 2 threads, 2 processes x 1 thread
    python -m bench.scaling --device cuda         # GPU: 1 process, and one per GPU when there are several
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

import torch

from vgg_helpers.budgets import CHAPTER8, pick
from vgg_helpers.models import build_vgg, count_parameters
from vgg_helpers.runtime import environment_info
from vgg_helpers.settings import settings

from . import add_data_and_out, count, save

__all__ = ["configurations", "launch", "measure", "main"]


def configurations(device: str, cores: int, gpus: int) -> list[tuple[int, int]]:
    """``(processes, threads per process)`` to compare: on the CPU, one process with one thread and with every
    core, and one single-thread process per core; on GPUs, one process and one per GPU."""
    if device == "cuda":
        return [(1, 1)] + ([(gpus, 1)] if gpus > 1 else [])
    return list(dict.fromkeys([(1, 1), (1, cores), (cores, 1)]))


def launch(processes: int, threads: int, plan_args: list[str], out: Path) -> dict:
    """One torchrun launch of the training script; returns its ``summary.json``."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
           "-m", "vgg_helpers.distributed", "--out", str(out), "--threads", str(threads), *plan_args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads((out / "summary.json").read_text())


def measure(device: str, budget: str, steps: int, rounds: int, data_dir: Optional[str]) -> dict:
    """Run every configuration ``rounds`` times (mirrored order) and collect images per second."""
    plan = pick(CHAPTER8, budget)
    batch = plan.run.batch_size
    configs = configurations(device, torch.get_num_threads() if device == "cpu" else 1,
                             torch.cuda.device_count() if device == "cuda" else 0)
    plan_args = ["--budget", budget, "--device", device, "--epochs", "1", "--train-size", str(steps * batch),
                 "--val-size", "0", "--test-size", str(batch)]
    if data_dir:
        plan_args += ["--data-dir", data_dir]
    measured: dict[tuple[int, int], list[float]] = {c: [] for c in configs}
    summaries = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for c in (configs if r % 2 == 0 else configs[::-1]):
                s = launch(*c, plan_args, Path(tmp) / f"{c[0]}x{c[1]}-{r}")
                measured[c].append(s["images_per_s"])
                summaries[c] = s
                print(f"round {r + 1}: {c[0]} process(es) x {c[1]} thread(s): {s['images_per_s']:.0f} images/s",
                      flush=True)
    base = statistics.median(measured[configs[0]])
    rows = [dict(processes=p, threads_per_process=t, images_per_s=v, median=statistics.median(v), min=min(v),
                 max=max(v), speedup_vs_1x1=statistics.median(v) / base) for (p, t), v in measured.items()]
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
    add_data_and_out(ap)
    args = ap.parse_args(argv)
    budget = args.budget or ("gpu" if args.device == "cuda" else "cpu")
    result = measure(args.device, budget, args.steps, args.rounds, args.data_dir or env.data_dir)
    for row in result["configurations"]:
        print(f"{row['processes']} x {row['threads_per_process']}: median {row['median']:.0f} images/s "
              f"({row['min']:.0f}-{row['max']:.0f}), {row['speedup_vs_1x1']:.2f}x one process with one thread")
    print("saved", save(result, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
