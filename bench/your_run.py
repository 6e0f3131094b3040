"""Time a training chapter's "Your run" cell, in this machine's precision or in float32.

Usage:
    python -m bench.your_run notebooks/08-training-fast.ipynb              # as the chapter runs here
    python -m bench.your_run notebooks/08-training-fast.ipynb --float32    # as on a CPU without bfloat16

The chapter runs in a Jupyter kernel (``nbclient``) from its first cell to its "Your run" code cell, in the
budget of ``VGG_BOOK_BUDGET`` (default ``cpu``) and with the data of ``VGG_DATA_DIR``; the notebook file is only
read. ``--float32`` first tells ``vgg_helpers.runtime`` that this CPU has no native bfloat16, so every autocast the
book would use is off: the precision a CPU with AVX2 only gets. Printed: the cell's wall time, with the CPU, torch
and precision it ran on (what the how-made pages quote).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Optional

import nbformat

# Runs in the kernel before the chapter: no bfloat16 anywhere (the chapters ask the runtime module for it).
FLOAT32 = """
import vgg_helpers.runtime as _rt
_rt.bf16_supported = lambda device="cpu": False
_rt.autocast_dtype = lambda device="cpu": None
import vgg_helpers.fast, vgg_helpers.modern
vgg_helpers.fast.autocast_dtype = vgg_helpers.modern.autocast_dtype = _rt.autocast_dtype
"""
REPORT = """
import json as _json, torch as _torch
print("@@" + _json.dumps({"torch": _torch.__version__, "threads": _torch.get_num_threads(),
                          "cpu_capability": _torch.backends.cpu.get_cpu_capability(),
                          "native_bf16": _rt.bf16_supported("cpu")}))
"""


def cells_to_run(nb: nbformat.NotebookNode, float32: bool) -> tuple[list[nbformat.NotebookNode], int]:
    """The cells to execute: (the float32 patch,) the chapter up to its "Your run" code cell, and a report.

    Args:
        nb: the chapter.
        float32: put the float32 patch first.
    Returns:
        The cells, and the index of the "Your run" code cell among them.
    Raises:
        SystemExit: when the chapter has no "## Your run" section with a code cell.
    """
    heading = next((i for i, c in enumerate(nb.cells)
                    if c.cell_type == "markdown" and c.source.lstrip().startswith("## Your run")), None)
    live = next((i for i, c in enumerate(nb.cells) if heading is not None and i > heading and c.cell_type == "code"),
                None)
    if live is None:
        raise SystemExit("this notebook has no '## Your run' section followed by a code cell")
    first = [nbformat.v4.new_code_cell(FLOAT32 if float32 else "import vgg_helpers.runtime as _rt")]
    cells = first + [nbformat.from_dict(c) for c in nb.cells[:live + 1] if c.cell_type == "code"]
    return cells + [nbformat.v4.new_code_cell(REPORT)], len(cells) - 1


def main(argv: Optional[list[str]] = None) -> int:
    """Command line entry point."""
    from nbclient import NotebookClient

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebook", type=Path)
    ap.add_argument("--float32", action="store_true", help="no bfloat16 autocast, as on a CPU without it")
    args = ap.parse_args(argv)
    chapter = nbformat.read(args.notebook, as_version=4)
    cells, live = cells_to_run(chapter, args.float32)
    nb = nbformat.v4.new_notebook(cells=cells, metadata=chapter.metadata)
    client = NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": "notebooks"}})
    starts: dict[int, float] = {}
    client.on_cell_execute = lambda cell, cell_index: starts.__setitem__(cell_index, time.perf_counter())
    client.on_cell_executed = lambda cell, cell_index, execute_reply: starts.__setitem__(
        cell_index, time.perf_counter() - starts[cell_index])
    client.execute()
    report = next(json.loads(line[2:]) for o in nb.cells[-1].outputs for line in o.get("text", "").splitlines()
                  if line.startswith("@@"))
    precision = "float32 (forced)" if args.float32 else ("bfloat16 where the chapter uses it"
                                                          if report["native_bf16"] else "float32")
    print(f"{args.notebook.name}: 'Your run' cell {starts[live]:.1f} s, {precision}; torch {report['torch']}, "
          f"{report['threads']} threads, CPU capability {report['cpu_capability']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
