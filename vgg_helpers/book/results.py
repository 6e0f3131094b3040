"""The repository's recorded results that a chapter cites, shipped with the package: every recording on the test
set and every comparison made on the hold-out.

The measurement protocol (``book/measurement-protocol.md``) makes every choice on the 45,000 / 5,000 hold-out and
touches the test set once per frozen schedule. The result files of those runs live in the repository
(``bench/results``), which a learner's install does not have; ``python -m bench.report`` summarises them into
``results.json`` here (its ``--check``, run by the tests, fails while the summary is out of date), so that a
chapter can print the numbers its prose cites:

* ``recordings_on_test_set`` -- every recording of the modern VGG on the test set, the ones that missed included;
  ``recordings_table`` prints them;
* ``holdout_comparisons`` -- every comparison of a base recipe and one change on the hold-out, paired by seed;
  ``comparisons_table`` prints them;
* ``precision_steps`` -- one training step timed in float32 and in bfloat16 autocast, on each CPU measured;
  ``precision_table`` prints them.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Optional, Sequence

from ..diagnostics import mean_sd

__all__ = ["RESULTS_FILE", "recordings_on_test_set", "recordings_table", "holdout_comparisons",
           "comparisons_table", "precision_steps", "precision_table"]

RESULTS_FILE = Path(__file__).with_name("results.json")   # written by `python -m bench.report`


def _load() -> dict:
    return json.loads(RESULTS_FILE.read_text())


def recordings_on_test_set() -> list[dict]:
    """Every recording of the modern VGG on the 10,000 test images, oldest first (the protocol keeps every one).
    Each is a dict: ``date``, ``source``, ``network``, ``epochs``, ``recipe_changes`` (fields that differ from
    ``ModernRecipe``'s defaults), ``precision``, ``device``, ``cpu``, ``cpu_bf16``, ``threads``, ``under_protocol``
    (made under the protocol: a frozen schedule, seeds declared beforehand) and, per seed, ``seeds``, ``test_acc``
    and ``seconds``."""
    return _load()["test_set_recordings"]


def holdout_comparisons(plan: Optional[str] = None) -> list[dict]:
    """Every comparison made on the hold-out (trained on 45,000 images, measured on the other 5,000), oldest
    first; with ``plan`` (e.g. ``"fast-ladder"``, ``"modern"``), that plan's only. Each is a dict: ``date``,
    ``source`` (the result files), ``plan``, ``network``, ``base`` (what the base recipe is), ``change`` (the one
    change of the arm), ``epochs``, ``precision``, ``cpu``, ``seeds``, ``base_acc`` and ``arm_acc`` (validation
    accuracy per seed) and the arm's paired gain over the base: ``gains``, ``gain``, ``gain_se``."""
    rows = _load()["holdout_comparisons"]
    return [r for r in rows if plan is None or r["plan"] == plan]


def _span(values: Sequence[int]) -> str:
    """``[100, 101, 102]`` as ``"100-102"``, one value as itself, others joined by commas."""
    values = sorted(values)
    if len(values) > 1 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}-{values[-1]}"
    return ",".join(map(str, values))


def recordings_table(recordings: Optional[Sequence[Mapping]] = None) -> list[str]:
    """Recordings (default: ``recordings_on_test_set()``) as lines of a table (at most 88 characters each), in
    their order: a line marks where the measurement protocol begins, and a footnote gives the recipe changes of the
    rows marked with a star."""
    recordings = recordings_on_test_set() if recordings is None else recordings
    lines = [f"{'date':<10} {'network':<15} {'ep':>2} {'precision':<9} {'CPU':<10} {'seeds':<7} "
             f"{'test acc (%)':>13} {'lowest':>6} {'seconds':>7}"]
    notes, protocol = [], False
    for r in recordings:
        if r["under_protocol"] and not protocol:
            protocol = True
            lines.append("-- the protocol from here on: each schedule frozen, its seeds declared beforehand --")
        net, accs, secs = r["network"], r["test_acc"], [round(s) for s in r["seconds"]]
        if r["recipe_changes"]:
            net += "*" * (len(notes) + 1)
            changes = ", ".join(f"{k}={v}" for k, v in r["recipe_changes"].items())
            notes.append(f"{'*' * (len(notes) + 1)} the final recipe with {changes}")
        acc = mean_sd(accs, 100, 2) if len(accs) > 1 else f"{100 * accs[0]:.2f}"
        secs_span = f"{min(secs)}-{max(secs)}" if len(secs) > 1 else str(secs[0])
        lines.append(f"{r['date']:<10} {net:<15} {r['epochs']:>2g} {r['precision']:<9} {r['cpu'] or '?':<10} "
                     f"{_span(r['seeds']):<7} {acc:>13} {100 * min(accs):6.2f} {secs_span:>7}")
    return lines + notes


def comparisons_table(comparisons: Sequence[Mapping]) -> list[str]:
    """Hold-out comparisons (``holdout_comparisons(...)``) as lines of a table (at most 88 characters each): a
    line naming the base recipe wherever it changes, then per comparison what the arm changes, its epochs, the
    base's and the arm's mean validation accuracy, and the arm's paired gain with its standard error, called clear
    when it is more than two standard errors from zero."""
    lines = [f"{'change (arm)':<30} {'ep':>2} {'base (%)':>8} {'arm (%)':>7} {'gain, points':>14} "
             f"{'clear':>5} {'CPU, precision'}"]
    last = None
    for r in comparisons:
        if (r["plan"], r["network"], r["base"]) != last:
            last = (r["plan"], r["network"], r["base"])
            lines.append(f"base: {r['plan']} ({r['network']}), {r['base']}"[:88])
        base_acc, arm_acc = (sum(a) / len(a) for a in (r["base_acc"], r["arm_acc"]))
        gain = f"{100 * r['gain']:+.2f} +- {100 * r['gain_se']:.2f}"
        clear = "yes" if abs(r["gain"]) > 2 * r["gain_se"] else "no"
        where = f"{(r['cpu'] or '?').split()[-1]}, {r['precision']}"
        lines.append(f"{r['change'][:30]:<30} {r['epochs']:>2g} {100 * base_acc:8.2f} {100 * arm_acc:7.2f} "
                     f"{gain:>14} {clear:>5} {where}")
    return lines


def precision_steps(plan: Optional[str] = None) -> list[dict]:
    """One training step timed in float32 and in bfloat16 autocast (``bench.precision``: the median of 5 timed
    steps), oldest first; with ``plan``, the steps of that plan's network only. Each is a dict: ``date``,
    ``source``, ``cpu``, ``cpu_bf16`` (whether the CPU computes in bfloat16 natively), ``threads``, ``plan``,
    ``network``, ``batch_size``, ``layout``, ``float32_s`` and ``bfloat16_s`` (seconds per step)."""
    rows = _load()["precision_steps"]
    return [r for r in rows if plan is None or r["plan"] == plan]


def precision_table(steps: Sequence[Mapping]) -> list[str]:
    """Steps (``precision_steps(...)``) as lines of a table (at most 88 characters each): the CPU and whether it
    has native bfloat16, the threads, the network and batch, seconds per step in float32 and in bfloat16 autocast,
    and how many times as long bfloat16 took (the layout is not shown)."""
    lines = [f"{'CPU':<10} {'native bf16':>11} {'threads':>7} {'network':<14} {'batch':>5} {'float32 s':>9} "
             f"{'bf16 s':>7} {'bf16/fp32':>9}"]
    for r in steps:
        native = {True: "yes", False: "no"}.get(r["cpu_bf16"], "?")
        lines.append(f"{(r['cpu'] or '?')[:10]:<10} {native:>11} {r['threads']:>7} {r['network'][:14]:<14} "
                     f"{r['batch_size']:>5} {r['float32_s']:9.3f} {r['bfloat16_s']:7.3f} "
                     f"{r['bfloat16_s'] / r['float32_s']:8.2f}x")
    return lines
