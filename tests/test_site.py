"""The book as a product: site configuration, the repository URL in one place, launch and download buttons,
hidden solutions, the API reference, the instructor guide's generated timing table and the troubleshooting page.
(tests/test_browser.py checks the same pages in a real browser.)"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import nbformat
import pytest
import yaml

from tools import sync_notebooks, time_notebooks

ROOT = Path(__file__).resolve().parents[1]

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
SLUG, BRANCH = sync_notebooks.repository()
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SKIP_DIRS = {".git", ".venv", "_build", "student", "runs", "data", "wheelhouse", "__pycache__", ".ipynb_checkpoints"}


def repo_files() -> list[Path]:
    """Every file of the working tree that git would track (committed or not, not ignored).

    Returns:
        Absolute paths.
    """
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                             capture_output=True, check=True).stdout.decode()
        files = [ROOT / f for f in out.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (e.g. an unpacked archive)
        files = [p for p in ROOT.rglob("*") if p.is_file() and not SKIP_DIRS & set(p.relative_to(ROOT).parts)]
    return [f for f in files if f.is_file()]


def hard_coded_urls(path: Path, slug: str = SLUG) -> list[int]:
    """Lines of a file that name the repository (``owner/name``), outside what tools/sync_notebooks.py (and
    tools/student_copies.py) generate.

    Args:
        path: a file of the repository.
        slug: ``owner/name`` of the repository.
    Returns:
        Line numbers (1-based) naming it; for a notebook, the cell numbers instead.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return []
    needle = slug.lower()
    if needle not in text.lower():
        return []
    if path.suffix == ".ipynb":
        nb = nbformat.reads(text, as_version=4)
        hits = []
        for i, cell in enumerate(nb.cells):
            source = cell.source
            if i == 0:
                source = source.replace(sync_notebooks.badge(path), "")
                if path.parent.name == "student":      # a student copy links its chapter (tools/student_copies.py)
                    source = source.replace(sync_notebooks.colab_url(path.parents[1] / "notebooks" / path.name), "")
            if cell.cell_type == "code" and source == sync_notebooks.setup_source():
                source = ""
            outputs = json.dumps(cell.get("outputs", []))
            if needle in source.lower() or needle in outputs.lower():
                hits.append(i)
        return hits
    return [n for n, line in enumerate(text.splitlines(), 1) if needle in line.lower()]


def test_config_is_complete():
    assert CONFIG["title"] == "VGG from Scratch" and CONFIG["author"]
    assert CONFIG["execute"]["execute_notebooks"] == "off"
    assert re.fullmatch(r"https://github\.com/[^/]+/[^/]+", CONFIG["repository"]["url"].rstrip("/"))
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    html = CONFIG["html"]
    assert html["use_repository_button"] and html["use_download_button"]
    exts = CONFIG["sphinx"]["extra_extensions"]
    assert "sphinx.ext.autodoc" in exts and "sphinx.ext.napoleon" in exts


def test_repository_url_lives_only_in_config():
    offenders = []
    for path in repo_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel == "_config.yml":
            continue
        hits = hard_coded_urls(path)
        if hits:
            offenders.append(f"{rel}: {'cells' if path.suffix == '.ipynb' else 'lines'} {hits}")
    assert not offenders, (f"the repository ({SLUG}) is hard-coded outside _config.yml; read it from there "
                           "(tools/sync_notebooks.repository()) instead:\n" + "\n".join(offenders))


def test_url_check_can_fail(tmp_path: Path):
    md = tmp_path / "page.md"
    md.write_text(f"intro\nsee https://github.com/{SLUG.upper()} for the code\n")
    assert hard_coded_urls(md) == [2]
    md.write_text("nothing here\n")
    assert hard_coded_urls(md) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_page_has_launch_and_download_buttons(built_book: Path, path: Path):
    html = (built_book / "notebooks" / f"{path.stem}.html").read_text()
    colab = sync_notebooks.colab_url(path)
    assert f'href="{colab}"' in html, f"no Colab launch button to {colab}"
    assert f"_sources/notebooks/{path.name}" in html, "no download button for the .ipynb"
    assert f"https://github.com/{SLUG}" in html, "no repository button"
    assert (built_book / "_sources" / "notebooks" / path.name).exists()


def test_formulas_use_the_books_own_mathjax_and_no_launch_button_lacks_a_target(built_book: Path):
    """The offline site: MathJax comes from _static/mathjax (no CDN), and there is no Binder button (the repository
    has no Binder configuration)."""
    assert CONFIG["sphinx"]["config"]["mathjax_path"] == "mathjax/tex-mml-chtml.js"
    assert (ROOT / "_static" / "mathjax" / "tex-mml-chtml.js").is_file()
    assert list((ROOT / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))
    assert not CONFIG["launch_buttons"].get("binderhub_url")
    for page in ("notebooks/06-batch-norm-fix", "notebooks/10-many-gpus", "book/intro"):
        html = (built_book / f"{page}.html").read_text()
        scripts = re.findall(r'<script[^>]+src="([^"]*mathjax[^"]*)"', html, flags=re.I)
        assert scripts and all(src.startswith("../_static/mathjax/") for src in scripts), (page, scripts)
        assert "mybinder.org" not in html, f"{page} has a Binder launch button"
    assert (built_book / "_static" / "mathjax" / "tex-mml-chtml.js").is_file()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_solutions_are_folded_in_the_book(built_book: Path, path: Path):
    html = (built_book / "notebooks" / f"{path.stem}.html").read_text()
    nb = nbformat.read(path, as_version=4)
    solutions = [c for c in nb.cells if c.cell_type == "code" and "solution" in c.metadata.get("tags", [])]
    folded = re.findall(r'<div class="cell\b[^"]*\btag_solution\b[^"]*">\s*<details class="[^"]*\bhide\b', html)
    assert len(folded) == len(solutions), f"{len(folded)} of {len(solutions)} solutions are folded away"
    assert "togglebutton" in html, "sphinx-togglebutton is not loaded"


def test_api_reference_documents_every_module(built_book: Path):
    """Every module of the package (the library, its exercise topics and the harness) has its section, and every
    public function or class is documented where it is defined (a re-export is documented once, at home)."""
    import importlib
    import pkgutil

    import vgg_helpers

    text = (ROOT / "book" / "api.md").read_text()
    html = (built_book / "book" / "api.html").read_text()
    modules = [m.name for m in pkgutil.walk_packages(vgg_helpers.__path__, "vgg_helpers.")
               if not m.name.rsplit(".", 1)[-1].startswith("_")]
    assert "vgg_helpers.book.plans" in modules and "vgg_helpers.exercises.fast" in modules
    missing = [m for m in modules if f".. automodule:: {m}\n" not in text]
    assert not missing, f"book/api.md has no automodule for: {missing}"
    for name in modules:
        module = importlib.import_module(name)
        for obj in getattr(module, "__all__", []):
            value = getattr(module, obj)
            if not (callable(value) and value.__doc__ and hasattr(value, "__module__")):
                continue  # constants appear only with a "#:" doc comment
            home = value.__module__
            assert f'id="{home}.{obj}"' in html, f"{home}.{obj} (exported by {name}) is not documented"
    assert 'id="vgg_helpers.models.build_vgg"' in html and "Parameters" in html
    assert html.index('id="vgg_helpers.data.make_loaders"') < html.index('id="vgg_helpers.book.store.train_or_load"'), \
        "the library comes first, the harness apart after it"


def test_instructor_guide_table_is_generated_from_the_json(built_book: Path):
    assert time_notebooks.main(["--check"]) == 0, "run python tools/time_notebooks.py --render"
    html = (built_book / "book" / "instructor-guide.html").read_text()
    data = time_notebooks.load_timings()
    if data is None:
        assert "No measurement yet" in html
        return
    for name, entry in data["notebooks"].items():
        assert f"{name}.ipynb" in html
        if entry["status"] == "ok":
            assert f"{entry['seconds']:.1f}" in html
    for section in ("90 minutes", "Half day", "pre-download", "Offline mode", "What usually goes wrong"):
        assert section in html


def test_timing_table_rendering(tmp_path: Path):
    data = {"budget": "cpu", "date": "2026-01-02T03:04:05+00:00",
            "hardware": {"cpu": "Test CPU", "logical_cores": 2, "gpu": None, "python": "3.11", "torch": "2.9"},
            "notebooks": {"01-architecture-table": {"seconds": 75.04, "status": "ok", "error": None},
                          "99-extra": {"seconds": 3.0, "status": "error", "error": "boom"}}}
    table = time_notebooks.render_table(data)
    assert "VGG_BOOK_BUDGET=cpu" in table and "Test CPU" in table and "2 logical cores" in table
    assert "| 1:15 | 75.0 |" in table and "| failed | 3.0 |" in table
    assert "**1:15**" in table
    page = f"# Guide\n\n{time_notebooks.START}\nold\n{time_notebooks.END}\n\nrest\n"
    new = time_notebooks.render_page(page, data)
    assert "old" not in new and new.endswith("\n\nrest\n") and table in new
    with pytest.raises(ValueError):
        time_notebooks.render_page("# no markers\n", data)


def test_troubleshooting_page(built_book: Path):
    html = (built_book / "book" / "troubleshooting.html").read_text()
    for topic in ("10% accuracy", "Colab has no GPU", "does not download", "VGG_DATA_DIR", "num_workers",
                  "Out of memory"):
        assert topic in html, topic
    if (ROOT / "notebooks" / "05-ten-percent-failure.ipynb").exists():
        assert 'href="../notebooks/05-ten-percent-failure.html"' in html
    if (ROOT / "book" / "stuck-at-10.md").exists():
        assert 'href="stuck-at-10.html"' in html
