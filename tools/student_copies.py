"""Write workshop copies of the chapters: every exercise solution replaced by a placeholder, all outputs cleared.

Usage:
    python tools/student_copies.py                 # notebooks/*.ipynb -> student/*.ipynb (git-ignored)
    python tools/student_copies.py --out DIR NB... # chosen notebooks into another folder

A solution is a code cell tagged ``solution`` (in the book it is also tagged ``hide-cell``, so it is folded
away until the reader clicks it). In the student copy its source becomes ``PLACEHOLDER`` and it keeps its tags,
so an instructor can still find it; every code cell loses its outputs and execution count, so students start from
a clean notebook.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOLUTION_TAG = "solution"
PLACEHOLDER = "# Your solution here\n"


def is_solution(cell: nbformat.NotebookNode) -> bool:
    """Tell whether a cell is an exercise solution.

    Args:
        cell: a notebook cell.
    Returns:
        True for code cells tagged ``solution``.
    """
    return cell.cell_type == "code" and SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def student_copy(nb: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, int]:
    """Make the student version of a notebook (the argument is left unchanged).

    Args:
        nb: the chapter, as read by ``nbformat.read(path, as_version=4)``.
    Returns:
        The student notebook and the number of solutions it hides.
    """
    out = nbformat.from_dict(nb)  # deep copy
    hidden = 0
    for cell in out.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs = []
        cell.execution_count = None
        cell.metadata.pop("execution", None)
        if is_solution(cell):
            cell.source = PLACEHOLDER.rstrip("\n")
            hidden += 1
    out.metadata.pop("widgets", None)
    return out, hidden


def write_student_copies(notebooks: list[Path], out_dir: Path) -> dict[Path, int]:
    """Write one student copy per notebook.

    Args:
        notebooks: chapter notebooks to copy.
        out_dir: the folder to write them to (created when missing); file names are kept.
    Returns:
        For each written copy, the number of hidden solutions.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[Path, int] = {}
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        copy, hidden = student_copy(nb)
        target = out_dir / path.name
        nbformat.write(copy, target)
        written[target] = hidden
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line entry point.

    Args:
        argv: arguments (default: ``sys.argv[1:]``).
    Returns:
        The exit status: 0, or 1 when a notebook has no solution cell to hide.
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "student", help="output folder (default: student/)")
    ap.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    args = ap.parse_args(argv)
    missing = [str(n) for n in args.notebooks if not n.is_file()]
    if missing:
        ap.error(f"no such notebook: {', '.join(missing)} (give paths such as notebooks/01-architecture-table.ipynb)")
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    status = 0
    for target, hidden in write_student_copies(notebooks, args.out).items():
        print(f"{target}: {hidden} solution(s) replaced")
        if hidden == 0:
            print(f"  warning: no cell tagged '{SOLUTION_TAG}' in {target.name}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
