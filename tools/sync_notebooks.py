"""Write each notebook's Colab badge, setup cell and folded solutions (URLs from _config.yml, their one home).

Usage:
    python tools/sync_notebooks.py          # rewrite badges and setup cells in notebooks/*.ipynb
    python tools/sync_notebooks.py --check  # exit 1 and list the notebooks that are out of date

Conventions every chapter follows:
* the first cell is markdown and starts with the chapter title (``# ...``); the line right after the title is
  the "Open in Colab" badge for that very notebook;
* the first code cell is the setup cell, tagged ``setup``; its source is ``setup_source()``;
* every exercise solution (a code cell tagged ``solution``) is folded away: tagged ``hide-cell`` for the book,
  and a Colab form cell (first line ``#@title Solution``, metadata ``cellView: form``) for Colab and Jupyter.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
# The badge image is the book's own (_static/), relative to notebooks/ and student/: the offline site and GitHub
# show it without a network (Colab itself shows the alt text: the reader is in Colab already).
BADGE_IMG = "../_static/colab-badge.svg"
# A badge line, whatever image it shows (an earlier version used Colab's remote image).
BADGE_LINE = re.compile(r"^\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)\s*$")


def repository() -> tuple[str, str]:
    """Return (owner/name, branch) from _config.yml's ``repository`` section."""
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    url = cfg["repository"]["url"].rstrip("/")
    m = re.match(r"https://github\.com/([^/]+/[^/]+)$", url)
    if not m:
        raise SystemExit(f"_config.yml repository.url must look like https://github.com/OWNER/NAME; got {url}")
    return m.group(1), cfg["repository"].get("branch", "main")


def colab_url(notebook: Path) -> str:
    """The Colab address that opens this notebook from the repository."""
    slug, branch = repository()
    rel = notebook.resolve().relative_to(ROOT).as_posix()
    return f"https://colab.research.google.com/github/{slug}/blob/{branch}/{rel}"


def badge(notebook: Path) -> str:
    return f"[![Open In Colab]({BADGE_IMG})]({colab_url(notebook)})"


def setup_source() -> str:
    """The first code cell of every chapter (every line fits the rendered page's 88 columns).

    Folded on the site (``hide-input``); it prints one line: versions, device, budget and data source.
    """
    return f'''# Setup: run this cell first. In Colab it installs the book's helpers from its
# repository and keeps Colab's own torch; on your machine it installs nothing.
import subprocess, sys

BOOK = "{book_url()}"
if "google.colab" in sys.modules:
    try:
        import vgg_helpers
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                        "torchinfo", BOOK], check=True)

from vgg_helpers.runtime import describe_runtime
from vgg_helpers.settings import settings

SETTINGS = settings()
DEVICE = describe_runtime(SETTINGS.device, SETTINGS.budget, SETTINGS.data_dir)'''


def book_url() -> str:
    """What the setup cell installs in Colab: the book's repository at its branch (pip's git form)."""
    slug, branch = repository()
    return f"git+https://github.com/{slug}@{branch}"


SOLUTION_TAG = "solution"
SOLUTION_TITLE = "#@title Solution"


def is_solution(cell: nbformat.NotebookNode) -> bool:
    """Whether a cell is an exercise solution (a code cell tagged ``solution``)."""
    return cell.cell_type == "code" and SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def fold_solution(cell: nbformat.NotebookNode) -> bool:
    """Make a solution cell collapsed wherever a learner reads it.

    In the book the ``hide-cell`` tag folds it away; in Colab a ``#@title`` first line with the cell
    metadata ``cellView: form`` shows only the title until clicked (plain Jupyter shows the title first).

    Args:
        cell: a code cell tagged ``solution``.
    Returns:
        True when the cell was changed.
    """
    changed = False
    tags = cell.metadata.setdefault("tags", [])
    if "hide-cell" not in tags:
        tags.append("hide-cell")
        changed = True
    lines = cell.source.split("\n")
    if lines[0].strip().replace(" ", "").lower().startswith("#@title"):
        lines = lines[1:]
    source = "\n".join([SOLUTION_TITLE] + lines)
    if source != cell.source:
        cell.source, changed = source, True
    if cell.metadata.get("cellView") != "form":
        cell.metadata["cellView"] = "form"
        changed = True
    return changed


def sync_notebook(nb: nbformat.NotebookNode, path: Path) -> bool:
    """Bring one notebook, read from ``path``, up to date in memory. Returns True when something changed."""
    changed = False
    first = nb.cells[0]
    if first.cell_type != "markdown" or not first.source.lstrip().startswith("# "):
        raise SystemExit(f"{path}: the first cell must be markdown starting with the chapter title '# ...'")
    lines = first.source.split("\n")
    lines = [line for line in lines if not BADGE_LINE.match(line)]
    title_at = next(i for i, line in enumerate(lines) if line.startswith("# "))
    new = lines[: title_at + 1] + ["", badge(path)] + [line for line in lines[title_at + 1:]]
    # collapse the blank lines we may have doubled around the badge
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(new))
    if text != first.source:
        first.source, changed = text, True
    code = [c for c in nb.cells if c.cell_type == "code"]
    if not code:
        raise SystemExit(f"{path}: no code cell; the setup cell must be the first one")
    cell = code[0]
    tags = cell.metadata.setdefault("tags", [])
    for tag in ("setup", "hide-input"):
        if tag not in tags:
            tags.append(tag)
            changed = True
    if cell.source != setup_source():
        cell.source, changed = setup_source(), True
    for cell in nb.cells:
        if is_solution(cell):
            changed = fold_solution(cell) or changed
    return changed


def sync(path: Path) -> bool:
    """Bring one notebook file up to date (badge, setup cell, folded solutions). Returns True when it changed."""
    nb = nbformat.read(path, as_version=4)
    changed = sync_notebook(nb, path)
    if changed:
        nbformat.write(nb, path)
    return changed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only report notebooks that are out of date")
    ap.add_argument("paths", nargs="*", type=Path)
    args = ap.parse_args(argv)
    missing = [str(n) for n in args.paths if not n.is_file()]
    if missing:
        ap.error(f"no such notebook: {', '.join(missing)} (give paths such as notebooks/01-architecture-table.ipynb)")
    paths = args.paths or sorted((ROOT / "notebooks").glob("*.ipynb"))
    stale = []
    for p in paths:
        if args.check:
            if sync_notebook(nbformat.read(p, as_version=4), p):
                stale.append(p)
        elif sync(p):
            stale.append(p)
    for p in stale:
        print(("out of date: " if args.check else "updated: ") + str(p))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
