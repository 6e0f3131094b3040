"""Benchmarks: how fast the book trains, measured and recorded (not part of the ``vgg_helpers`` package).

Run from the repository root; every result is a JSON file in ``bench/results/`` with the hardware, torch version,
settings and date:

* ``python -m bench.throughput``       -- images/s of the book's input pipeline against in-memory and conventional;
* ``python -m bench.time_to_accuracy`` -- training time to a test accuracy for the fast recipe;
* ``python -m bench.modern_vgg``       -- the modern VGG's recipe over seeds: accuracy and wall time;
* ``python -m bench.precision``        -- one training step in float32 and in bfloat16 on this CPU;
* ``python -m bench.report``           -- rewrite the "Recorded numbers" part of ``bench/README.md``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from vgg_helpers.data import CIFAR10, DataNotFoundError, load_cifar10
from vgg_helpers.files import write_json
from vgg_helpers.settings import Settings

__all__ = ["RESULTS_DIR", "save", "add_data_and_out", "load_data", "count", "fraction"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"   # the same folder wherever the command runs from


def save(result: dict, out_dir: Path = RESULTS_DIR) -> Path:
    """Write a result as ``<kind>-<date>.json`` atomically and return its path.

    Args:
        result: a benchmark's result, with ``kind`` and an ISO ``date``.
        out_dir: the folder (default ``bench/results/``).
    Returns:
        The file written.
    """
    stamp = result["date"].replace(":", "").replace("+0000", "Z")
    return write_json(Path(out_dir) / f"{result['kind']}-{stamp}.json", result)


def count(text: str) -> int:
    """An ``argparse`` type: a whole number >= 1 (``--steps 0`` is refused when parsed, not minutes later)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def fraction(text: str) -> float:
    """An ``argparse`` type: a number in (0, 1], such as an accuracy (``0.882``, not ``88.2``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0 < value <= 1:
        hint = f" (a fraction: write {value / 100:g} for {value:g}%)" if 1 < value <= 100 else ""
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text}{hint}")
    return value


def add_data_and_out(parser: argparse.ArgumentParser) -> None:
    """The options every benchmark command has: where the data comes from and where results go."""
    parser.add_argument("--data-dir", default=None, help="CIFAR-10 folder (default: VGG_DATA_DIR, else download)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="folder for the result file")


def load_data(args: argparse.Namespace, env: Settings) -> CIFAR10:
    """CIFAR-10 from ``--data-dir``, else ``VGG_DATA_DIR`` (``env``), else the download.

    Args:
        args: parsed options (``add_data_and_out``).
        env: ``settings()``, read by the command at its top.
    Returns:
        The data set in memory.
    """
    try:
        return load_cifar10(args.data_dir or env.data_dir, cache_dir=env.cache_dir)
    except DataNotFoundError as e:
        raise SystemExit(f"error: {e}") from None
