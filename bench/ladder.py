"""Train chapter 7's ingredient ladder in one budget and store every history for the notebook.

Usage (from the repository root; bench/README.md gives the time the cpu budget took)::

    VGG_DATA_DIR=../shared/data/cifar10-jpeg python bench/ladder.py --budget cpu

Writes ``vgg_helpers/reference_runs/ch7-*-<budget>.json`` (what ``notebooks/07-training-fast.ipynb`` loads in
the cpu budget) and a summary ``bench/results/ladder-<budget>-<date>.json``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from pathlib import Path

from vgg_helpers.bench import RESULTS_DIR, run_ladder, save
from vgg_helpers.budgets import CHAPTER7_LADDER_BUDGET
from vgg_helpers.data import load_cifar10
from vgg_helpers.training import environment_info


def main(argv: list[str] | None = None) -> int:
    """Run the ladder and write the summary.

    Args:
        argv: command-line arguments (``--budget``, ``--out``).
    Returns:
        The exit status.
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", default="cpu", choices=["smoke", "cpu", "gpu"])
    ap.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = ap.parse_args(argv)
    os.environ["VGG_BOOK_SAVE_REFERENCE"] = "1"
    t0 = time.perf_counter()
    data = load_cifar10()
    rows = run_ladder(data, args.budget, use_stored=False)
    summary = {"kind": f"ladder-{args.budget}",
               "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "environment": environment_info(), "data_source": data.source,
               "budget_detail": str(CHAPTER7_LADDER_BUDGET[args.budget]),
               "rungs": [{k: v for k, v in r.items() if k != "history"} for r in rows],
               "total_wall_s": time.perf_counter() - t0}
    for r in summary["rungs"]:
        print(f"{r['name']:<28} test acc {r['test_acc']:.4f}  training {r['train_seconds']:.0f} s")
    print(f"whole ladder: {summary['total_wall_s']:.0f} s")
    print("saved", save(summary, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
