"""The rendered book: builds offline with no Sphinx warning, every page in the TOC is rendered."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            files += [chapter["file"]] + [s["file"] for s in chapter.get("sections", [])]
    return files


def test_book_builds_without_warnings(built_book):
    log = (built_book.parents[1] / "build.log").read_text()
    assert "WARNING" not in log, log[-3000:]
    for f in _toc_files():
        assert (built_book / f"{f}.html").exists(), f"{f} is in _toc.yml but was not rendered"


def test_intro_says_what_and_who(built_book):
    html = (built_book / "book" / "intro.html").read_text()
    assert "VGG from Scratch" in html and "Who this book is for" in html


def test_every_notebook_is_in_the_toc():
    listed = set(_toc_files())
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert f"notebooks/{nb.stem}" in listed, f"{nb.name} is missing from _toc.yml"
