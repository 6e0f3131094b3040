"""Benchmark: images per second of the book's pipeline, the in-memory ceiling and conventional pipelines.

What is measured, and how, is ``vgg_helpers.book.pipelines.measure_pipelines``; this command records it::

    python -m bench.throughput --variants --compile-variant --steps 12 --rounds 3
"""
from __future__ import annotations

import argparse
import json
from typing import Optional

from vgg_helpers.book.pipelines import measure_pipelines
from vgg_helpers.runtime import pick_device
from vgg_helpers.settings import settings

from . import add_data_and_out, count, load_data, save


def main(argv: Optional[list[str]] = None) -> int:
    """Measure, record the result in ``--out`` and return the exit status (see the module docstring)."""
    env = settings()
    ap = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="vgg11")
    ap.add_argument("--width", type=float, default=0.5)
    ap.add_argument("--batch-size", type=count, default=128)
    ap.add_argument("--steps", type=count, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=count, default=3, help="mirrored passes over all pipelines to average")
    ap.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    ap.add_argument("--num-workers", type=int, default=2)
    ap.add_argument("--threads", type=count, default=None)
    ap.add_argument("--no-amp", dest="amp", action="store_false", help="float32 instead of bfloat16 autocast")
    ap.add_argument("--variants", action="store_true",
                    help="also: in-memory with 1 thread / the other layout / autocast toggled")
    ap.add_argument("--compile-variant", action="store_true", help="with --variants: also torch.compile")
    ap.add_argument("--no-imagefolder", dest="imagefolder", action="store_false")
    ap.add_argument("--device", default="cpu", help="where the pipelines train: cpu (default), cuda or auto")
    add_data_and_out(ap)
    args = ap.parse_args(argv)
    data = load_data(args, env)
    device = pick_device(None if args.device == "auto" else args.device)
    result = measure_pipelines(data, args.arch, args.width, args.batch_size, args.steps, args.warmup,
                               args.channels_last, args.num_workers, args.threads, variants=args.variants,
                               imagefolder=args.imagefolder, amp=args.amp, compile_variant=args.compile_variant,
                               rounds=args.rounds, device=device)
    print(json.dumps({"ratios": result["ratios"], "book_vs": result["book_vs"]}, indent=1))
    print("saved", save(result, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
