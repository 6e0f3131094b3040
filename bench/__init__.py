"""Benchmarks: how fast the book trains, measured and recorded (not part of the ``vgg_helpers`` package).

Run from the repository root; every result is a JSON file in ``bench/results/`` with the hardware, torch version,
settings and date:

* ``python -m bench.throughput``       -- images/s of the book's input pipeline against in-memory and conventional;
* ``python -m bench.time_to_accuracy`` -- training time to a test accuracy for chapter 7's recipe;
* ``python -m bench.report``           -- rewrite the "Recorded numbers" part of ``bench/README.md``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from vgg_helpers.data import CIFAR10, load_cifar10
from vgg_helpers.files import write_json
from vgg_helpers.settings import Settings

__all__ = ["RESULTS_DIR", "save", "add_data_and_out", "load_data"]

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
    return load_cifar10(args.data_dir or env.data_dir, cache_dir=env.cache_dir)
