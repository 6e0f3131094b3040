"""Write each notebook's Colab badge and setup cell from _config.yml (the one place the repository URL lives).

Usage:
    python tools/sync_notebooks.py          # rewrite badges and setup cells in notebooks/*.ipynb
    python tools/sync_notebooks.py --check  # exit 1 and list the notebooks that are out of date

Conventions every chapter follows:
* the first cell is markdown and starts with the chapter title (``# ...``); the line right after the title is
  the "Open in Colab" badge for that very notebook;
* the first code cell is the setup cell, tagged ``setup``; its source is ``setup_source()``.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
BADGE_IMG = "https://colab.research.google.com/assets/colab-badge.svg"


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
    """The first code cell of every chapter."""
    slug, branch = repository()
    return f'''# Setup: run this cell first. In Colab it installs vgg_helpers and torchinfo from the book's repository
# (Colab's own torch is kept: our requirements accept it). On your machine, after `make test`, it installs nothing.
import importlib.util, os, subprocess, sys

if "google.colab" in sys.modules or os.environ.get("VGG_BOOK_FORCE_INSTALL"):
    source = os.environ.get("VGG_BOOK_INSTALL_SOURCE", "git+https://github.com/{slug}@{branch}")
    if importlib.util.find_spec("vgg_helpers") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "torchinfo", source], check=True)

from vgg_helpers.runtime import describe_runtime
from vgg_helpers.settings import settings

SETTINGS = settings()        # the VGG_* environment variables, read once (see vgg_helpers.settings)
describe_runtime(SETTINGS.device)'''


def sync(path: Path) -> bool:
    """Bring one notebook up to date. Returns True when something changed."""
    nb = nbformat.read(path, as_version=4)
    changed = False
    first = nb.cells[0]
    if first.cell_type != "markdown" or not first.source.lstrip().startswith("# "):
        raise SystemExit(f"{path}: the first cell must be markdown starting with the chapter title '# ...'")
    lines = first.source.split("\n")
    lines = [line for line in lines if BADGE_IMG not in line]
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
    if "setup" not in tags:
        tags.append("setup")
        changed = True
    if cell.source != setup_source():
        cell.source, changed = setup_source(), True
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
            nb = nbformat.read(p, as_version=4)
            code = [c for c in nb.cells if c.cell_type == "code"]
            ok = badge(p) in nb.cells[0].source and code and code[0].source == setup_source() \
                and "setup" in code[0].metadata.get("tags", [])
            if not ok:
                stale.append(p)
        elif sync(p):
            stale.append(p)
    for p in stale:
        print(("out of date: " if args.check else "updated: ") + str(p))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
