"""Benchmark: one choice made on the hold-out, under the measurement protocol (``bench/README.md``).

A book plan's recipe (the base) and the same recipe with one change (the arm) are trained on the plan's 45,000
training images with the same seeds and measured on the 5,000 validation images only: nothing here evaluates the
test set. The decision follows the protocol's rule, fixed before the runs: keep the simpler recipe unless the other
one's mean paired gain (seed by seed) is larger than two standard errors of those gains. The simpler recipe is the
base, unless ``--simpler arm`` says the change is the simplification (fewer epochs, one ingredient less).

    python -m bench.holdout batch-norm --set epochs=4 --simpler arm --base stored
    python -m bench.holdout fast-ladder --rung no-bn-kaiming --base-set lr=0.02 --set lr=0.05
    python -m bench.holdout fast-ladder --rung no-bn-kaiming --base-set lr=0.02 --set lr=0.01 \
        --base-from bench/results/holdout-fast-ladder-cpu-<date>.json     # the same base, not trained again

``--rung`` starts from one rung of a plan's ladder and ``--base-set`` adjusts the base before the change (e.g. a
rung's learning rate set back to the value the search started from). ``--base stored`` takes the base's
seeds from the book's stored runs of the plan (their last validation accuracy): the same code, data split and
seeds, trained when they were recorded; ``--base-from`` takes them from an earlier result of this command with
the same base. A run whose loss becomes NaN is a result: it counts as chance accuracy (0.1). Each result file
records the hardware, the torch version, the threads and every seed's history. Each finished run is kept in the
cache folder until the comparison completes: the same command, run again after an interruption, trains only the
runs it had not finished.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import torch

from bench import add_data_and_out, count, load_data, save
from vgg_helpers.book.plans import TOPICS, Plan, pick
from vgg_helpers.book.store import fit, stored_history
from vgg_helpers.data import CIFAR10, make_loaders
from vgg_helpers.diagnostics import paired_gains
from vgg_helpers.files import write_json
from vgg_helpers.fast import FastModel
from vgg_helpers.models import build_vgg
from vgg_helpers.runtime import environment_info, pick_device, set_threads
from vgg_helpers.settings import settings

__all__ = ["PLANS", "paired_decision", "holdout_run", "stored_base", "main"]

# the classic plans (trained by ``train``) a choice can be made on, by their topic names in the book's plans
PLANS: dict[str, Mapping[str, Plan]] = {topic: TOPICS[topic] for topic in ("batch-norm", "fast-ladder")}
HOLDOUT_IMAGES = 5000       # the protocol's validation split: 5,000 of the 50,000 training images
CHANCE = 0.1                # the accuracy a diverged run is counted with: ten classes


def paired_decision(base: Sequence[float], arm: Sequence[float], simpler: str = "base") -> dict[str, Any]:
    """The protocol's rule on two arms' accuracies, paired by seed (``base[i]`` and ``arm[i]`` share seed i).

    Args:
        simpler: which recipe is kept without a clear gain of the other: ``"base"`` (the change must earn its
            place) or ``"arm"`` (the change simplifies; the base must earn its extra).
    Returns:
        ``gains`` (arm minus base, per seed), their ``mean``, ``sd`` and standard error ``se`` (sd / sqrt(n)), and
        ``adopt``: whether the arm is the recipe to keep: ``mean > 2 * se`` when the base is the simpler one,
        ``not -mean > 2 * se`` when the arm is.
    Raises:
        ValueError: fewer than three pairs, arms of different lengths, or ``simpler`` not base/arm.

    >>> d = paired_decision([0.80, 0.81, 0.79], [0.82, 0.83, 0.82])
    >>> round(d["mean"], 4), d["adopt"]
    (0.0233, True)
    >>> paired_decision([0.80, 0.81, 0.79], [0.81, 0.80, 0.80])["adopt"]
    False
    >>> paired_decision([0.80, 0.81, 0.79], [0.81, 0.80, 0.80], simpler="arm")["adopt"]
    True
    """
    if simpler not in ("base", "arm"):
        raise ValueError(f"simpler must be 'base' or 'arm', got {simpler!r}")
    if len(base) != len(arm):
        raise ValueError(f"the arms must be paired by seed: {len(base)} base runs against {len(arm)} arm runs")
    if len(base) < 3:
        raise ValueError(f"the protocol needs at least three seeds per arm, got {len(base)}: add --seeds")
    paired = paired_gains(arm, base)
    gains, mean, sd, se = paired["gains"], paired["gain"], paired["gain_sd"], paired["gain_se"]
    adopt = mean > 2 * se if simpler == "base" else not -mean > 2 * se
    return dict(gains=gains, mean=mean, sd=sd, se=se, simpler=simpler, adopt=adopt)


def _holdout_plan(plan: Plan, changes: Mapping[str, Any]) -> Plan:
    plan = plan.changed(changes) if changes else plan
    if plan.run.val_size != HOLDOUT_IMAGES or plan.run.train_size is not None:
        raise ValueError(f"plan {plan.name!r} does not train on the 45,000/5,000 hold-out (train_size="
                         f"{plan.run.train_size}, val_size={plan.run.val_size}): the protocol's choices are made "
                         f"there; use the cpu or gpu budget's plan")
    return plan


def holdout_run(plan: Plan, seed: int, data: CIFAR10, device: torch.device | str | None = None) -> dict[str, Any]:
    """Train ``plan`` with ``seed`` (its speed settings too: layout, bfloat16) and measure it on the validation
    images after every epoch (never the test set). Returns the seed, the last validation accuracy, the history's
    columns and the training seconds; a run whose loss became NaN has ``diverged`` (its message) and chance
    accuracy."""
    device = pick_device(device)
    loaders = make_loaders(data, plan.run, seed=plan.split_seed, augment=plan.augment, device=device,
                           loader_seed=seed, channels_last=plan.speed.channels_last)

    def build() -> FastModel:
        torch.manual_seed(seed)               # the same initial weights for the same seed, as the book's runs
        return FastModel.with_settings(build_vgg(**plan.model), plan.speed).to(device)

    started = time.perf_counter()
    model, history = fit(build, loaders.train, loaders.val, plan.train_config(seed), allow_divergence=True,
                         device=device, progress=False)
    if model is None:
        return dict(seed=seed, val_acc=CHANCE, diverged=history.meta["diverged"],
                    seconds=time.perf_counter() - started)
    return dict(seed=seed, val_acc=history.val_acc[-1], val_history=list(history.val_acc),
                train_loss=list(history.train_loss), seconds=history.time[-1])


def stored_base(plan: Plan, seeds: Sequence[int], budget: str, rung: Optional[str] = None) -> list[dict[str, Any]]:
    """The base's runs as the book stored them (``<plan name>[-<rung>][-s<seed>]``): their last validation
    accuracy."""
    out = []
    for seed in seeds:
        name = plan.run_name(rung, seed=seed)
        history = stored_history(name, budget)
        if history is None or not history.val_acc or history.val_acc[-1] is None:
            raise FileNotFoundError(f"no stored {budget}-budget run {name!r} with validation accuracies: train the "
                                    f"base instead (leave out --base stored)")
        out.append(dict(seed=seed, val_acc=history.val_acc[-1], val_history=list(history.val_acc),
                        seconds=history.time[-1], stored=name))
    return out


def base_from(path: Path, plan: str, rung: Optional[str], base_changes: Mapping[str, Any],
              seeds: Sequence[int]) -> list[dict[str, Any]]:
    """The base runs of an earlier result of this command, which must have had the same plan, rung, base
    adjustments and seeds (a ``ValueError`` says which differs)."""
    earlier = json.loads(Path(path).read_text())
    want = dict(plan=plan, rung=rung, base_changes=dict(base_changes), seeds=list(seeds))
    found = {k: earlier.get(k) for k in want}
    if found != want:
        differ = ", ".join(f"{k}: {found[k]!r} there, {want[k]!r} here" for k in want if found[k] != want[k])
        raise ValueError(f"{path} measured another base ({differ}): its base runs cannot be reused")
    return earlier["base"]


def progress_file(cache_dir: Path, command: Mapping[str, Any]) -> Path:
    """Where a comparison keeps its finished runs until it completes (one file per command: only the same plan,
    changes, seeds and base resume it), so that an interrupted one (hours of training) starts where it stopped.
    A reused base enters ``command`` as its runs, not its path: another spelling of the same file resumes too."""
    key = hashlib.sha1(json.dumps(command, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return Path(cache_dir) / "holdout" / f"{command['plan']}-{key}.json"


def _setting(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE (e.g. epochs=4), got {text!r}")
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            pass
    return key, {"true": True, "false": False}.get(value.lower(), value)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.holdout", description=__doc__.split("\n\n")[0])
    parser.add_argument("plan", choices=sorted(PLANS), help="the book's plan whose recipe is the base")
    parser.add_argument("--rung", default=None, help="start from this rung of the plan's ladder")
    parser.add_argument("--base-set", nargs="+", type=_setting, default=[], metavar="FIELD=VALUE",
                        help="adjust the base first (e.g. val_size=5000 for a rung trained on all images)")
    parser.add_argument("--set", nargs="+", type=_setting, required=True, metavar="FIELD=VALUE",
                        help="the one change the arm makes (a plan setting: epochs=4, lr=0.05, ...)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--base", choices=["train", "stored"], default="train",
                        help="train the base with the same seeds, or take the book's stored runs")
    parser.add_argument("--base-from", type=Path, default=None, metavar="RESULT.json",
                        help="take the base runs from an earlier result of this command (same base and seeds)")
    parser.add_argument("--simpler", choices=["base", "arm"], default="base",
                        help="the recipe kept without a clear gain of the other (arm: the change simplifies)")
    parser.add_argument("--budget", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--threads", type=count, default=None, help="torch threads (default: one per core)")
    add_data_and_out(parser)
    args = parser.parse_args(argv)
    if len(args.seeds) < 3:
        parser.error(f"the protocol needs at least three seeds, got {args.seeds}")
    changes, base_changes = dict(args.set), dict(args.base_set)
    try:
        plan = pick(PLANS[args.plan], args.budget)
        plan = plan.for_rung(args.rung) if args.rung else plan
        base_plan = _holdout_plan(plan, base_changes)
        arm_plan = _holdout_plan(base_plan, changes)
        reused = base_from(args.base_from, args.plan, args.rung, base_changes, args.seeds) if args.base_from else None
    except (ValueError, OSError) as e:
        parser.error(str(e))
    if reused is not None and args.base == "stored":
        parser.error("--base stored and --base-from both name the base: give one")
    if args.base == "stored" and base_changes:
        parser.error("--base stored takes the runs as they were stored: --base-set would make them another base")
    threads = set_threads(args.threads)
    env = settings()
    data = load_data(args, env)
    started = time.perf_counter()
    progress = progress_file(env.cache_dir, dict(plan=args.plan, rung=args.rung, base_changes=base_changes,
                                                 changes=changes, seeds=args.seeds, budget=args.budget,
                                                 base=args.base, base_from=reused))
    done = json.loads(progress.read_text()) if progress.exists() else {"base": [], "arm": []}
    if done["base"] or done["arm"]:
        print(f"resuming an interrupted comparison: {len(done['base']) + len(done['arm'])} finished run(s) are not "
              f"trained again (delete {progress} to start over)", flush=True)

    def run(arm_name: str, plan: Plan, seed: int) -> dict[str, Any]:
        """One seed of one arm: taken from the progress file, or trained and added to it (atomically)."""
        kept = next((r for r in done[arm_name] if r["seed"] == seed), None)
        if kept is None:
            kept = holdout_run(plan, seed, data)
            done[arm_name].append(kept)
            write_json(progress, done)
        return kept

    if reused is not None:
        base = reused
    elif args.base == "stored":
        base = stored_base(pick(PLANS[args.plan], args.budget), args.seeds, args.budget, args.rung)
    else:
        base = [run("base", base_plan, s) for s in args.seeds]
    arm = []
    for seed in args.seeds:
        arm.append(run("arm", arm_plan, seed))
        print(f"seed {seed}: validation accuracy {arm[-1]['val_acc']:.4f} in {arm[-1]['seconds']:.0f} s "
              f"(base {base[len(arm) - 1]['val_acc']:.4f})", flush=True)
    decision = paired_decision([r["val_acc"] for r in base], [r["val_acc"] for r in arm], args.simpler)
    verdict = "adopt the change" if decision["adopt"] else "keep the base"
    print(f"{args.plan} {changes}: paired gain {decision['mean']:+.4f} +- {decision['sd']:.4f} (sd; se "
          f"{decision['se']:.4f}) over {len(args.seeds)} seeds -> {verdict}")
    source = f"from {args.base_from.name}" if reused is not None else args.base
    result = dict(kind=f"holdout-{args.plan}-{args.budget}", date=datetime.now(timezone.utc).isoformat(
        timespec="seconds"), plan=args.plan, rung=args.rung, base_changes=base_changes, budget=args.budget,
        changes=changes, base_source=source,
        run=asdict(base_plan.run), arm_run=asdict(arm_plan.run), seeds=args.seeds, threads=threads,
        data_source=data.source, environment=environment_info("cpu"), base=base, arm=arm,
        decision=decision, verdict=verdict, wall_seconds=time.perf_counter() - started)
    path = save(result, args.out)
    progress.unlink(missing_ok=True)            # complete: nothing left to resume
    print(f"wrote {path}")
    return result


if __name__ == "__main__":   # pragma: no cover
    sys.exit(0 if main() else 1)
