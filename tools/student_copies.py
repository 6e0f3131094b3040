"""Write workshop copies of the chapters: every exercise solution replaced by a placeholder, all outputs cleared.

Usage:
    python tools/student_copies.py                 # notebooks/*.ipynb -> student/*.ipynb (committed)
    python tools/student_copies.py --check         # exit 1 when a committed copy is out of date
    python tools/student_copies.py --out DIR NB... # chosen notebooks into another folder

A solution is a code cell tagged ``solution`` (in the book it is also tagged ``hide-cell``; in Colab it is a
collapsed form cell, see ``tools/sync_notebooks.py``). In the student copy its source becomes ``PLACEHOLDER``, an
ordinary visible cell to write in (for a build-it exercise, whose next cell checks it, with a stand-in per checked
name: ``not_attempted``, so that the check says "not attempted yet" and Run All goes on), and it keeps its tags,
so an instructor can still find it; every code cell loses its outputs and execution count, so students start from
a clean notebook. The copy's "Open in Colab" badge
opens the copy itself, and a line under it links the full chapter.
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

import nbformat

try:
    from tools.sync_notebooks import BADGE_IMG, SOLUTION_TAG, badge, colab_url, is_solution
except ModuleNotFoundError:          # run as a script: tools/ is on sys.path, the repository root is not
    from sync_notebooks import BADGE_IMG, SOLUTION_TAG, badge, colab_url, is_solution

ROOT = Path(__file__).resolve().parents[1]
STUDENT_DIR = ROOT / "student"
PLACEHOLDER = "# Your solution here\n"
# A build-it exercise (its check cell follows) gets stand-ins for the pieces it asks for, so that until they are
# written the check says "not attempted yet" and Run All goes on through the chapter.
OPEN_EXERCISE = ("# Your solution here: write {names}. Until you do, the check below\n"
                 "# says \"not attempted yet\" and the rest of the chapter runs on.\n"
                 "from vgg_helpers.exercises import not_attempted\n\n")
STUDENT_NOTE = ("*Student copy: the exercise solutions are removed and the outputs cleared. "
                "The full chapter, with solutions: {link}.*")

__all__ = ["is_solution", "checked_names", "placeholder", "student_copy", "write_student_copies", "stale_copies",
           "main"]


def _retarget_badge(nb: nbformat.NotebookNode, source: Path, target: Path) -> None:
    """Point the copy's Colab badge at the copy, and link the full chapter under it."""
    first = nb.cells[0]
    if first.cell_type != "markdown" or BADGE_IMG not in first.source:
        return
    lines = first.source.split("\n")
    at = next(i for i, line in enumerate(lines) if BADGE_IMG in line)
    lines[at] = badge(target)
    link = f"[open it in Colab]({colab_url(source)})"
    lines[at + 1:at + 1] = ["", STUDENT_NOTE.format(link=link)]
    first.source = "\n".join(lines)


def student_copy(nb: nbformat.NotebookNode, source: Path | None = None,
                 target: Path | None = None) -> tuple[nbformat.NotebookNode, int]:
    """Make the student version of a notebook (the argument is left unchanged).

    Args:
        nb: the chapter, as read by ``nbformat.read(path, as_version=4)``.
        source: the chapter's path, and ``target`` the copy's (both inside the repository): with both, the
            copy's Colab badge opens the copy and a line links the chapter.
        target: see ``source``.
    Returns:
        The student notebook and the number of solutions it hides.
    """
    out = nbformat.from_dict(nb)  # deep copy
    if source is not None and target is not None:
        _retarget_badge(out, source, target)
    hidden = 0
    code = [c for c in out.cells if c.cell_type == "code"]
    for i, cell in enumerate(code):
        cell.outputs = []
        cell.execution_count = None
        cell.metadata.pop("execution", None)
        if is_solution(cell):
            checked = checked_names(cell.source, code[i + 1].source if i + 1 < len(code) else "")
            cell.source = placeholder(checked)
            cell.metadata.pop("cellView", None)          # a cell to write in, not a folded form
            hidden += 1
    out.metadata.pop("widgets", None)
    return out, hidden


def checked_names(solution: str, next_cell: str) -> list[str]:
    """The names a solution defines that the next cell hands to a ``check_*`` call (a build-it exercise)."""
    try:
        defined = {n.name for n in ast.parse(solution).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        defined |= {t.id for n in ast.parse(solution).body if isinstance(n, ast.Assign)
                    for t in n.targets if isinstance(t, ast.Name)}
        calls = [n for n in ast.walk(ast.parse(next_cell)) if isinstance(n, ast.Call)
                 and isinstance(n.func, ast.Name) and n.func.id.startswith("check_")]
    except SyntaxError:
        return []
    names = [a.id for c in calls for a in c.args if isinstance(a, ast.Name) and a.id in defined]
    return list(dict.fromkeys(names))


def placeholder(names: list[str]) -> str:
    """The student copy's cell for a solution: a stand-in per checked name (``not_attempted``), or a bare line."""
    if not names:
        return PLACEHOLDER.rstrip("\n")
    return OPEN_EXERCISE.format(names=" and ".join(names)) + "\n".join(f"{n} = not_attempted({n!r})" for n in names)


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
        target = out_dir / path.name
        copy, hidden = student_copy(nbformat.read(path, as_version=4), *_inside_repo(path, target))
        nbformat.write(copy, target)
        written[target] = hidden
    return written


def _inside_repo(source: Path, target: Path) -> tuple[Path | None, Path | None]:
    """Both paths when both lie inside the repository (they have Colab addresses), else (None, None)."""
    try:
        source.resolve().relative_to(ROOT)
        target.resolve().relative_to(ROOT)
    except ValueError:
        return None, None
    return source, target


def stale_copies(notebooks: list[Path], out_dir: Path = STUDENT_DIR) -> list[str]:
    """The committed student copies that differ from what ``write_student_copies`` would write now.

    Args:
        notebooks: the chapters.
        out_dir: where their copies are.
    Returns:
        One line per missing or out-of-date copy, and per copy whose chapter no longer exists.
    """
    problems = []
    for path in notebooks:
        target = out_dir / path.name
        if not target.exists():
            problems.append(f"{target.name}: missing")
            continue
        copy, _ = student_copy(nbformat.read(path, as_version=4), *_inside_repo(path, target))
        if nbformat.writes(copy).rstrip("\n") != target.read_text(encoding="utf-8").rstrip("\n"):
            problems.append(f"{target.name}: out of date")
    names = {p.name for p in notebooks}
    problems += [f"{p.name}: its chapter is gone" for p in sorted(out_dir.glob("*.ipynb")) if p.name not in names]
    return problems


def main(argv: list[str] | None = None) -> int:
    """Command line entry point.

    Args:
        argv: arguments (default: ``sys.argv[1:]``).
    Returns:
        The exit status: 0, or 1 when a notebook has no solution cell to hide.
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=STUDENT_DIR, help="output folder (default: student/)")
    ap.add_argument("--check", action="store_true", help="only check that the copies in --out are up to date")
    ap.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    args = ap.parse_args(argv)
    missing = [str(n) for n in args.notebooks if not n.is_file()]
    if missing:
        ap.error(f"no such notebook: {', '.join(missing)} (give paths such as notebooks/01-architecture-table.ipynb)")
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    if args.check:
        problems = stale_copies(notebooks, args.out)
        for line in problems:
            print(f"student copy {line}; run `make student-copies`")
        return 1 if problems else 0
    status = 0
    for target, hidden in write_student_copies(notebooks, args.out).items():
        print(f"{target}: {hidden} solution(s) replaced")
        if hidden == 0:
            print(f"  warning: no cell tagged '{SOLUTION_TAG}' in {target.name}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
