"""Record the book's stored runs (maintainers): ``python -m vgg_helpers.book.record TOPIC --budget cpu``.

One command for every topic; each part trains its runs with ``store="record"`` and stores them in
``vgg_helpers/book/stored_runs/`` (never in the smoke budget), printing one line per run or per rung::

    python -m vgg_helpers.book.record failure --budget cpu                  # reproduction, ablation, depth
    python -m vgg_helpers.book.record batch-norm --only fix --match kaiming  # a part, and only some runs
    python -m vgg_helpers.book.record modern --only final --threads 2

A topic's runs take from minutes (``paper``) to hours (``failure``) on a 2-core CPU; two recordings can share the
machine with ``--threads 1`` each. A recording survives a kill: run the same command again and it resumes, taking
the runs that had finished from ``<cache>/recordings/`` (``store.resumable``) and training only the rest; the run
that was cut short starts again from its beginning, and no stored file is ever half written (atomic writes).
``--fresh`` starts over instead. The folder is removed when the recording completes.
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..data import load_cifar10
from ..runtime import current_budget, pick_device, set_threads
from ..settings import settings
from . import failure, fast, modern, paper, store
from .plans import (BATCH_NORM, BATCH_NORM_FIX, FAILURE_ABLATION, FAILURE_DEPTH, FAST, FAST_NO_AUGMENT,
                    MODERN_LADDER, pick)

__all__ = ["PARTS", "main", "resume_folder"]


def _summaries(runs: dict) -> list[str]:
    return [f"{s.label:<32} drop {[round(d, 4) for d in s.drop]} val {[round(a, 4) for a in s.val_acc]} "
            f"diverged {s.diverged}" for s in failure.summarize(runs)]


def _rungs(table: dict, budget: str, match: str) -> list[str]:
    return [r.name for r in pick(table, budget).rungs if match in pick(table, budget).run_name(r.name)]


def _failure(part: str, a: argparse.Namespace) -> list[str]:
    if part == "reproduction":
        return _summaries({"reproduction": failure.reproduction_runs(a.data, a.budget, "record", device=a.device)})
    table, repeat = {"ablation": (FAILURE_ABLATION, failure.ablation_runs),
                     "depth": (FAILURE_DEPTH, failure.depth_runs)}[part]
    return _summaries(repeat(a.data, a.budget, "record", rungs=_rungs(table, a.budget, a.match), device=a.device))


def _batch_norm(part: str, a: argparse.Namespace) -> list[str]:
    if part == "fix":
        return _summaries(failure.fix_runs(a.data, a.budget, "record", rungs=_rungs(BATCH_NORM_FIX, a.budget, a.match),
                                           device=a.device))
    plan = pick(BATCH_NORM, a.budget)
    runs = failure.batch_norm_runs(a.data, a.budget, "record", device=a.device, progress=True,
                                   seeds=[s for s in plan.seeds if a.match in plan.run_name(seed=s)])
    return [f"{r.name}: val {r.history.val_acc[-1]:.4f} test {r.history.meta['test_acc']:.4f} "
            f"{r.history.time[-1]:.0f} s" for r in runs]


def _paper(part: str, a: argparse.Namespace) -> list[str]:
    if part == "jitter":
        return [f"{r.name} " + str({k: round(v["acc"], 4) for k, v in r.history.meta["test_methods"].items()})
                for r in paper.jitter_runs(a.data, a.budget, "record", progress=a.progress, device=a.device)]
    runs = {"init": paper.init_runs, "schedule": paper.schedule_runs}[part](a.data, a.budget, "record",
                                                                             progress=a.progress, device=a.device)
    return [f"{name:<14} test acc " + " ".join(f"{r.history.meta['test_acc']}" for r in rs) for name, rs in runs.items()]


def _fast(part: str, a: argparse.Namespace) -> list[str]:
    if part == "ladder":
        return [f"{row['rung']:<22} val acc {[None if x is None else round(x, 4) for x in row['accs']]}  "
                f"training {row['train_seconds']:.0f} s (mean)"
                for row in fast.run_ladder(a.data, a.budget, store="record", progress=a.progress, device=a.device)]
    plan = pick(FAST if part == "final" else FAST_NO_AUGMENT, a.budget)
    h = fast.fast_run(a.data, plan, budget=a.budget, store="record", eval_each_epoch="test", progress=a.progress,
                      device=a.device).history
    return [f"{part:<22} test acc {h.meta['test_acc']}  training {h.meta['train_seconds'][-1]:.0f} s"]


def _modern(part: str, a: argparse.Namespace) -> list[str]:
    if part == "ladder":
        wanted = a.match.split(",")    # e.g. --match 0-,1- (two recordings, a thread each)
        rungs = [r.name for r in pick(MODERN_LADDER, a.budget).rungs if any(w in r.name for w in wanted)]
        runs = modern.ladder_runs(a.data, a.budget, "record", rungs=rungs, device=a.device, progress=True)
        return [f"{name}: {[round(r.history.meta['acc_by_tta']['0']['acc'], 4) for r in rs]} "
                f"{[round(r.history.time[-1]) for r in rs]} s" for name, rs in runs.items()]
    if part == "bridge":
        return [f"{r['network']} network, {r['recipe']} recipe: val acc (flip) {[round(x, 4) for x in r['accs']]} "
                f"{[round(x) for x in r['seconds']]} s"
                for r in modern.bridge_runs(a.data, a.budget, "record", device=a.device, progress=True,
                                            match=a.match)]
    runs = modern.final_runs(a.data, a.budget, "record", device=a.device, progress=True,
                             name={"final": "modern-final", "short": "modern-short"}[part])
    return [f"{r.name}: test acc {r.history.meta['final_acc']:.4f} in {r.history.meta['total_seconds']:.0f} s"
            for r in runs]


# topic -> (its parts, the function that records one part)
PARTS: dict[str, tuple[tuple[str, ...], Callable[[str, argparse.Namespace], list[str]]]] = {
    "failure": (("reproduction", "ablation", "depth"), _failure),
    "batch-norm": (("main", "fix"), _batch_norm),
    "paper": (("init", "schedule", "jitter"), _paper),
    "fast": (("ladder", "final", "final-no-augment"), _fast),
    "modern": (("ladder", "final", "short", "bridge"), _modern),
}


def main(argv: Optional[list[str]] = None) -> int:
    """Record a topic's stored runs (see the module docstring).

    Args:
        argv: command-line arguments (default ``sys.argv``).
    Returns:
        The exit status.
    """
    ap = argparse.ArgumentParser(prog="python -m vgg_helpers.book.record",
                                 description="Train a topic's runs and store them in vgg_helpers/book/stored_runs/.")
    ap.add_argument("topic", choices=list(PARTS))
    ap.add_argument("--budget", default="cpu", choices=["cpu", "gpu"])
    ap.add_argument("--only", nargs="+", help="the topic's parts to record (default: all of them)")
    ap.add_argument("--match", default="", help="only the runs whose stored name contains this text")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default one per core; 1 when two recordings share the machine)")
    ap.add_argument("--fresh", action="store_true",
                    help="start over: do not resume an interrupted recording of the same command")
    a = ap.parse_args(argv)
    if a.threads is not None and a.threads < 1:
        ap.error(f"--threads must be 1 or more; got {a.threads}")
    parts, record = PARTS[a.topic]
    unknown = sorted(set(a.only or ()) - set(parts))
    if unknown:
        ap.error(f"topic {a.topic} has the parts {', '.join(parts)}; not {', '.join(unknown)}")
    env = settings()
    a.data = load_cifar10(env.data_dir, cache_dir=env.cache_dir)
    a.device = pick_device(env.device)
    a.progress = env.progress
    set_threads(a.threads)
    a.budget = current_budget(a.budget)
    print(f"recording the {a.topic} runs ({a.budget} budget) on {a.device} ({a.data.source})", flush=True)
    folder = resume_folder(env.cache_dir, a.topic, a.budget, a.only or parts, a.match)
    if a.fresh and folder.exists():
        shutil.rmtree(folder)
    t0 = time.perf_counter()
    with store.resumable(folder) as kept:
        if kept:
            print(f"resuming an interrupted recording: {len(kept)} finished run(s) are not trained again "
                  f"({', '.join(kept)})", flush=True)
        for part in a.only or parts:
            for line in record(part, a):
                print(f"{line}  [{time.perf_counter() - t0:.0f} s]", flush=True)
    shutil.rmtree(folder)
    return 0


def resume_folder(cache_dir: Path, topic: str, budget: str, parts: Sequence[str], match: str) -> Path:
    """Where a recording keeps its finished runs until it completes: one folder per command (topic, budget,
    parts and ``--match``), so that only the same command resumes it."""
    key = hashlib.sha1(repr((topic, budget, sorted(parts), match)).encode()).hexdigest()[:10]
    return Path(cache_dir) / "recordings" / f"{topic}-{budget}-{key}"


if __name__ == "__main__":
    raise SystemExit(main())
