"""Build one reveal.js slide deck per workshop session from the chapters it uses (``make slides``).

Usage:
    python tools/slides.py                    # every plan of tools/workshop.py -> _build/slides/
    python tools/slides.py --plan half-day    # one deck
    python tools/slides.py --out DIR          # another folder

For each plan of ``tools/workshop.py`` the chapters it reads, runs or demonstrates (and the paper-reading page,
where the plan has that slot) are merged, in the plan's order, into one temporary notebook; the chapter files
are only read. Slide metadata is set on every cell:

- a markdown cell that starts with a heading (``#``, ``##``, ``###``) starts a new **slide**, any other markdown
  cell a **subslide** (below it), and a code cell continues the slide of the prose that introduces it
  (``-``), with its committed outputs;
- the setup cell and the solutions (tags ``setup``, ``solution``, ``remove-cell``) are **skipped**, and hidden
  inputs (``hide-input``) show their output only;
- the plan itself is the deck's first slides, and every welcome, break, exercises or discussion slot gets a
  slide with its time.

The MyST syntax of the book that a notebook viewer does not know is rewritten: admonitions become block quotes,
cross-reference roles their text, ``$...$`` math MathML (``latex2mathml``: no MathJax, so no network), and the
Colab badge is dropped. The notebook is then converted exactly as by ``jupyter nbconvert --to
slides`` (nbconvert's ``SlidesExporter``), with a small template that loads reveal.js with plain script tags
from a copy next to the decks (``reveal.js/``, taken from the installed ``sphinx-revealjs`` package), so the
decks open without a network, from a web server or straight from the disk.
"""
from __future__ import annotations

import argparse
import html
import re
import shutil
import sys
from pathlib import Path
from typing import Any, Iterable

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))            # run as a script: import tools from this checkout

from tools import time_notebooks, workshop  # noqa: E402

OUT = ROOT / "_build" / "slides"
REVEAL_DIR = "reveal.js"
SKIP_TAGS = {"setup", "solution", "remove-cell"}
HIDE_INPUT_TAGS = {"hide-input", "remove-input"}

# The deck's template: nbconvert's reveal template without its CDN scripts (require.js, jQuery, mermaid and
# MathJax), loading the local reveal.js with script tags instead.
TEMPLATE = r"""{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_css -%}
<link rel="icon" href="data:,">
<style type="text/css">
:root { --jp-code-font-size: 15px; --jp-content-font-size1: 18px; }
.reveal .slides section { overflow-y: auto; max-height: 100%; }
.reveal .slides section.stack { overflow-y: visible; }
.reveal .slides blockquote { width: 95%; text-align: left; font-style: normal; font-size: 0.9em; }
.reveal .slides math[display="block"] { display: block; margin: 0.5em auto; }
.reveal .slides table { font-size: 0.6em; }
</style>
{%- endblock html_head_css -%}
{% block footer_js %}
<script src="{{ reveal_url_prefix }}/dist/reveal.js"></script>
<script src="{{ reveal_url_prefix }}/plugin/notes/notes.js"></script>
<script>
Reveal.initialize({
    controls: true,
    progress: true,
    history: true,
    center: false,
    transition: "{{ reveal_transition }}",
    slideNumber: "{{ reveal_number }}",
    plugins: [RevealNotes],
    width: {{ reveal_width }},
    height: {{ reveal_height }},
});
</script>
{% endblock footer_js %}
"""


def reveal_source() -> Path:
    """The reveal.js copy that the ``sphinx-revealjs`` package ships.

    Returns:
        Its folder (holding ``dist/reveal.js`` and ``plugin/notes/notes.js``).
    Raises:
        SystemExit: when the package is not installed.
    """
    try:
        import sphinx_revealjs
    except ImportError:
        raise SystemExit("tools/slides.py needs the sphinx-revealjs package (it ships reveal.js): "
                         "pip install -r requirements-dev.txt") from None
    base = Path(sphinx_revealjs.__file__).parent / "_static" / "revealjs"
    if not (base / "dist" / "reveal.js").is_file():
        raise SystemExit(f"no reveal.js in {base}: reinstall sphinx-revealjs (pip install -r requirements-dev.txt)")
    return base


def copy_reveal(out: Path) -> Path:
    """Copy reveal.js (its ``dist`` folder and the notes plugin) to ``out/reveal.js``.

    Args:
        out: the decks' folder.
    Returns:
        The copy's folder.
    """
    src, dst = reveal_source(), out / REVEAL_DIR
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src / "dist", dst / "dist", ignore=shutil.ignore_patterns("*.map", "*.esm.js"))
    shutil.copytree(src / "plugin" / "notes", dst / "plugin" / "notes", ignore=shutil.ignore_patterns("*.map"))
    if (src / "LICENSE").exists():
        shutil.copy2(src / "LICENSE", dst / "LICENSE")
    return dst


# ---- MyST to plain notebook markdown ----

_FENCE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w-]+)\}\s*(?P<arg>.*)$")
_ROLE = re.compile(r"\{[\w:-]+\}`(?P<body>[^`]*)`")
_BADGE = re.compile(r"^\s*\[!\[[^\]]*\]\([^)]*\)\]\([^)]*\)\s*$", re.M)
_CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.S)
_DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.S)
_INLINE_MATH = re.compile(r"(?<![\\$\w])\$(?=\S)([^$\n]+?)(?<=\S)\$(?![\w$])")


def _role_text(match: re.Match) -> str:
    body = match.group("body")
    titled = re.match(r"(?P<title>.*?)\s*<(?P<target>[^>]+)>$", body)
    if titled:
        return titled.group("title")
    return body.rsplit("/", 1)[-1].replace("-", " ")


def _mathml(tex: str, display: bool) -> str:
    try:
        from latex2mathml.converter import convert

        return convert(tex.strip(), display="block" if display else "inline")
    except Exception:  # an expression the converter does not know: show the TeX itself
        return f"<code>{html.escape(tex.strip())}</code>"


def _math(text: str) -> str:
    """Replace ``$$...$$`` and ``$...$`` outside code by MathML."""
    parts = _CODE.split(text)
    for i in range(0, len(parts), 2):   # the even parts are outside code
        part = _DISPLAY_MATH.sub(lambda m: "\n" + _mathml(m.group(1), True) + "\n", parts[i])
        parts[i] = _INLINE_MATH.sub(lambda m: _mathml(m.group(1), False), part)
    return "".join(parts)


def _directives(text: str) -> str:
    """MyST directives (```` ```{admonition} Title ````, ```` ```{note} ````) as block quotes."""
    out: list[str] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        fence, name, arg = match.group("fence"), match.group("name"), match.group("arg").strip()
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != fence:
            if not re.match(r"^:[\w-]+:", lines[i]):       # directive options such as :class: tip
                body.append(lines[i])
            i += 1
        i += 1                                              # the closing fence
        title = arg if name == "admonition" else name.capitalize() + (f": {arg}" if arg else "")
        inner = _directives("\n".join(body)).strip("\n").split("\n")
        out += [f"> **{title}**", ">"] + [f"> {line}" if line else ">" for line in inner]
    return "\n".join(out)


def plain_markdown(text: str) -> str:
    """A markdown cell of the book as a notebook viewer (and nbconvert) can show it.

    Args:
        text: MyST markdown.
    Returns:
        CommonMark with inline HTML: no badge, directives as block quotes, roles as text, math as MathML.
    """
    text = _BADGE.sub("", text)
    text = re.sub(r"^\([\w-]+\)=\s*$", "", text, flags=re.M)      # MyST targets
    text = re.sub(r"^%.*$", "", text, flags=re.M)                 # MyST comments
    text = _directives(text)
    text = _ROLE.sub(_role_text, text)
    text = _math(text)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


# ---- slide metadata ----

def slide_type(cell: nbformat.NotebookNode) -> str:
    """The reveal.js slide type of a chapter's cell (see the module's docstring for the rules).

    Args:
        cell: a notebook cell.
    Returns:
        ``"slide"``, ``"subslide"``, ``"-"`` or ``"skip"``.
    """
    tags = set(cell.get("metadata", {}).get("tags", []))
    if tags & SKIP_TAGS:
        return "skip"
    if time_notebooks.TIMES_TAG in tags:
        return "-"
    if cell.cell_type == "markdown":
        return "slide" if re.match(r"#{1,3}\s", cell.source.lstrip()) else "subslide"
    if cell.cell_type == "code":
        return "-"
    return "skip"


def _md(text: str, kind: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(text, metadata={"slideshow": {"slide_type": kind}})


def chapter_cells(path: Path) -> list[nbformat.NotebookNode]:
    """A chapter's cells with slide metadata, ready to be merged into a deck.

    Args:
        path: the chapter notebook.
    Returns:
        New cells (the notebook file is not changed); skipped cells are left out.
    """
    nb = nbformat.read(path, as_version=4)
    cells = []
    for cell in nb.cells:
        kind = slide_type(cell)
        if kind == "skip":
            continue
        cell = nbformat.from_dict(cell)
        cell.metadata["slideshow"] = {"slide_type": kind}
        if cell.cell_type == "markdown":
            cell.source = plain_markdown(cell.source)
            cell.pop("attachments", None)
        elif set(cell.metadata.get("tags", [])) & HIDE_INPUT_TAGS:
            cell.metadata.setdefault("tags", []).append("slides-hide-input")
        cells.append(cell)
    return cells


def page_cells(path: Path) -> list[nbformat.NotebookNode]:
    """A markdown page of the book as slides: one slide per ``##`` section.

    Args:
        path: the page.
    Returns:
        Markdown cells.
    """
    text = path.read_text()
    sections = re.split(r"(?m)^(?=## )", text)
    return [_md(plain_markdown(s), "slide") for s in sections if s.strip()]


def _slot_slide(row: workshop.Row) -> nbformat.NotebookNode:
    start, end = workshop._hmm(row.start), workshop._hmm(row.start + row.minutes)
    titles = {"fixed": "Session", "break": "Break", "exercises": "Exercises"}
    return _md(f"## {titles.get(row.slot.kind, 'Session')} · {start}-{end}\n\n"
               f"{plain_markdown(workshop.describe(row, workshop.plain_name, 'the one-page guide'))}", "slide")


def deck_notebook(plan: workshop.Plan, data: dict[str, Any] | None,
                  root: Path = ROOT) -> nbformat.NotebookNode:
    """One notebook holding a session's slides: the plan, then every slot's material in order.

    Args:
        plan: the session plan.
        data: the timings data (for the plan's minutes).
        root: the repository root (chapters in ``notebooks/``, pages in ``book/``).
    Returns:
        A new notebook with slide metadata on every cell.
    """
    rows = workshop.plan_rows(plan, data)
    nb = nbformat.v4.new_notebook()
    nb.metadata["title"] = plan.title
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    table = workshop.render_plan(plan, data, name=workshop.plain_name, paper="the one-page guide", heading="")
    nb.cells += [_md(f"# VGG from Scratch\n\n## {plan.title}", "slide"),
                 _md("## The plan\n\n" + plain_markdown(table), "slide")]
    shown: set[str] = set()
    seen_ids: set[str] = set()
    for row in rows:
        slot = row.slot
        if slot.kind == "paper":
            nb.cells += page_cells(root / f"{workshop.PAPER_PAGE}.md")
        elif slot.kind in ("chapter", "demo"):
            for stem in slot.chapters:
                if stem not in shown:
                    shown.add(stem)
                    nb.cells += chapter_cells(root / "notebooks" / f"{stem}.ipynb")
        elif row.slot is not plan.slots[0]:
            nb.cells.append(_slot_slide(row))
    for cell in nb.cells:                   # the chapters' cell ids must stay unique in the merged notebook
        while cell.get("id") in seen_ids or not cell.get("id"):
            cell["id"] = nbformat.v4.new_markdown_cell().id
        seen_ids.add(cell["id"])
    return nb


def export(nb: nbformat.NotebookNode, target: Path, work: Path) -> Path:
    """Convert a deck notebook to reveal.js HTML, as ``jupyter nbconvert --to slides`` does.

    Args:
        nb: the deck notebook.
        target: the HTML file to write (``<name>.slides.html``).
        work: a scratch folder (the template is written there).
    Returns:
        ``target``.
    """
    from nbconvert import SlidesExporter
    from traitlets.config import Config

    template = work / "vgg_deck.html.j2"
    template.write_text(TEMPLATE)
    c = Config()
    c.SlidesExporter.reveal_url_prefix = REVEAL_DIR
    c.SlidesExporter.reveal_theme = "white"
    c.SlidesExporter.reveal_number = "c/t"
    c.SlidesExporter.exclude_input_prompt = True
    c.SlidesExporter.exclude_output_prompt = True
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_cell_tags = set(SKIP_TAGS)
    c.TagRemovePreprocessor.remove_input_tags = {"slides-hide-input"}
    c.TagRemovePreprocessor.remove_all_outputs_tags = {"remove-output"}
    exporter = SlidesExporter(config=c, template_file=str(template))
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": nb.metadata.get("title", "")}})
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(body, encoding="utf-8")
    return target


def _index(plans: Iterable[workshop.Plan], out: Path) -> Path:
    items = "\n".join(f'<li><a href="{p.key}.slides.html">{html.escape(p.title)}</a></li>' for p in plans)
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>VGG from Scratch: "
            f"workshop slides</title></head>\n<body><h1>VGG from Scratch: workshop slides</h1>\n<ul>\n{items}\n"
            "</ul>\n<p>Built by <code>make slides</code> (tools/slides.py) from the chapters.</p></body></html>\n")
    (out / "index.html").write_text(page, encoding="utf-8")
    return out / "index.html"


def build(out: Path = OUT, keys: list[str] | None = None, data: dict[str, Any] | None = None,
          root: Path = ROOT) -> list[Path]:
    """Build the decks of the chosen plans into ``out``, with a local reveal.js and an index page.

    Args:
        out: the output folder.
        keys: plan keys (default: every plan).
        data: the timings data (default: ``book/_data/notebook_timings.json``).
        root: the repository root.
    Returns:
        The decks written.
    Raises:
        SystemExit: for an unknown plan.
    """
    import tempfile

    plans = {p.key: p for p in workshop.PLANS}
    unknown = [k for k in keys or [] if k not in plans]
    if unknown:
        raise SystemExit(f"no such plan: {', '.join(unknown)} (plans: {', '.join(plans)})")
    chosen = [plans[k] for k in keys] if keys else list(plans.values())
    data = data if data is not None else time_notebooks.load_timings()
    out.mkdir(parents=True, exist_ok=True)
    copy_reveal(out)
    written = []
    with tempfile.TemporaryDirectory(prefix="vgg-slides-") as work:
        for plan in chosen:
            nb = deck_notebook(plan, data, root)
            written.append(export(nb, out / f"{plan.key}.slides.html", Path(work)))
            n = sum(c.metadata["slideshow"]["slide_type"] in ("slide", "subslide") for c in nb.cells)
            print(f"wrote {written[-1]} ({n} slides)")
    _index(chosen, out)
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line entry point.

    Args:
        argv: arguments (default: ``sys.argv[1:]``).
    Returns:
        0.
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT, help="output folder (default: %(default)s)")
    ap.add_argument("--plan", action="append", dest="plans", metavar="KEY",
                    help=f"build only this plan's deck (repeatable): {', '.join(p.key for p in workshop.PLANS)}")
    args = ap.parse_args(argv)
    build(args.out, args.plans)
    return 0


if __name__ == "__main__":
    sys.exit(main())
