"""Build the workshop's slide decks: one reveal.js deck per slot of every session plan (``make slides``).

Usage:
    python tools/slides.py                    # every plan of tools/workshop.py -> _build/slides/
    python tools/slides.py --plan half-day    # one plan's decks
    python tools/slides.py --out DIR          # another folder

Each slot of a plan (``tools/workshop.py``) gets its own deck, ``<plan>/<NN>-<kind>.slides.html``, sized to its
minutes: about one slide per minute the instructor talks (``slide_budget``: 1.2 per minute of a welcome, paper,
demo or discussion slot, so at most 12 for a 10-minute demo; one slide, the instructions, for a slot in which
the learners work). A deck is

- the slot's slide (its time, what happens, the chosen exercises) -- for the first slot also the plan;
- for a **demo**, each chapter's title slide and the cells the chapter marks for slides (the tag ``slide``):
  a code cell becomes a slide titled by its section, with its committed outputs (its code too when it is short
  and not folded), and the prose around it becomes the slide's **speaker notes** (press ``s``);
- for a **paper** slot, one slide per section of ``book/reading-the-paper.md``: its lists on the slide, its
  paragraphs in the notes.

The MyST syntax of the book that a notebook viewer does not know is rewritten: admonitions become block quotes,
cross-reference roles their text, ``$...$`` math MathML (``latex2mathml``: no MathJax, so no network), and the
Colab badge is dropped. The notebook of a deck is converted exactly as by ``jupyter nbconvert --to slides``
(nbconvert's ``SlidesExporter``), with a small template that loads reveal.js with plain script tags from a copy
next to the decks (``reveal.js/``, taken from the installed ``sphinx-revealjs`` package), so the decks open
without a network, from a web server or straight from the disk. The slides are 1280x800 pixels; a browser test
(tests/test_browser.py) fails when anything on a slide overflows.
"""
from __future__ import annotations

import argparse
import html
import re
import shutil
import sys
from pathlib import Path
from typing import Any

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
:root { --jp-code-font-size: 17px; --jp-content-font-size1: 24px; }
.reveal .slides { text-align: left; }
.reveal .slides section { overflow: hidden; height: 100%; }
.reveal .slides section.stack { overflow: visible; }
.reveal h1 { font-size: 1.9em; } .reveal h2 { font-size: 1.4em; } .reveal h3 { font-size: 1.1em; }
.reveal .slides blockquote { width: 95%; text-align: left; font-style: normal; font-size: 0.9em; }
.reveal .slides math[display="block"] { display: block; margin: 0.5em auto; }
.reveal .slides table { font-size: 0.8em; }
.reveal .slides .jp-OutputArea-output table { font-size: 0.55em; }
.reveal .slides p, .reveal .slides li { font-size: 0.8em; }
.reveal .slides img { max-height: 470px; width: auto; margin: 0.2em 0; }
.reveal .slides pre { box-sizing: border-box; width: 100%; max-width: 100%; margin: 0; }
.reveal .slides .jp-OutputArea-output pre, .reveal .slides .jp-InputArea pre { font-size: 17px; line-height: 1.3; }
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


# ---- slides from the chapters' tagged cells ----

SLIDE_TAG = "slide"
TALK_KINDS = ("fixed", "paper", "demo")   # slots in which the instructor talks; in the others the learners work
SLIDES_PER_MINUTE = 1.2
MAX_CODE_LINES = 8                         # a longer code cell shows its outputs only (the code is in the chapter)
_HEADING = re.compile(r"^(#{1,3})\s+(.*)$", re.M)


def slide_budget(row: workshop.Row) -> int:
    """The most slides a slot's deck may have: 1.2 per minute of talk, one where the learners work.

    Args:
        row: the slot with its computed minutes.
    Returns:
        Slides.
    """
    talk = row.minutes if row.slot.kind in TALK_KINDS else 1
    return max(1, round(SLIDES_PER_MINUTE * talk))


def _md(text: str, kind: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(text, metadata={"slideshow": {"slide_type": kind}})


def _notes(parts: list[str]) -> list[nbformat.NotebookNode]:
    text = "\n\n".join(p for p in parts if p.strip())
    return [_md(text, "notes")] if text else []


def _tags(cell: nbformat.NotebookNode) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def _prose(cell: nbformat.NotebookNode) -> bool:
    return cell.cell_type == "markdown" and not _tags(cell) & (SKIP_TAGS | {SLIDE_TAG, time_notebooks.TIMES_TAG})


def _section(cells: list[nbformat.NotebookNode], index: int) -> str:
    """The title of the section holding cell ``index``: its nearest ``##`` (or ``###``) heading before it."""
    for cell in reversed(cells[:index]):
        if cell.cell_type == "markdown":
            headings = [m.group(2) for m in _HEADING.finditer(cell.source) if len(m.group(1)) >= 2]
            if headings:
                return plain_markdown(headings[-1])
    return ""


def _around(cells: list[nbformat.NotebookNode], index: int) -> list[str]:
    """The prose right before and right after cell ``index`` (up to the neighbouring code cells), for notes."""
    before, after = [], []
    i = index - 1
    while i >= 0 and _prose(cells[i]):
        before.insert(0, cells[i].source)
        i -= 1
    i = index + 1
    while i < len(cells) and _prose(cells[i]):
        after.append(cells[i].source)
        i += 1
    return [plain_markdown(t) for t in before + after]


def chapter_slides(path: Path) -> list[nbformat.NotebookNode]:
    """A chapter's slides: its title, then one slide per cell tagged ``slide``, the prose around it as notes.

    Args:
        path: the chapter notebook (only read).
    Returns:
        New cells with slide metadata.
    """
    cells = nbformat.read(path, as_version=4).cells
    title, _, intro = cells[0].source.partition("\n")
    out = [_md(f"# {title.lstrip('# ').strip()}", "slide")] + _notes([plain_markdown(intro)])
    for i, cell in enumerate(cells):
        if SLIDE_TAG not in _tags(cell) or _tags(cell) & SKIP_TAGS:
            continue
        if cell.cell_type == "markdown":
            out.append(_md(plain_markdown(cell.source), "slide"))
            continue
        code = nbformat.from_dict(cell)
        code.metadata["slideshow"] = {"slide_type": "-"}
        if _tags(cell) & HIDE_INPUT_TAGS or len(cell.source.splitlines()) > MAX_CODE_LINES:
            code.metadata.setdefault("tags", []).append("slides-hide-input")
        section = _section(cells, i)
        out += [_md(f"### {section}" if section else "", "slide"), code] + _notes(_around(cells, i))
    return out


_ITEM = re.compile(r"^(?:[-*]|\d+\.) ", re.M)


def _leads(block: str) -> str:
    """A list shortened for a slide: an item's bold lead (``1. **Lead.** detail``), else its first sentence."""
    items = [m.start() for m in _ITEM.finditer(block)]
    if not items:
        return block
    out = []
    for start, end in zip(items, items[1:] + [len(block)]):
        item = block[start:end].strip()
        lead = re.match(r"((?:[-*]|\d+\.) \*\*[^*]+\*\*)", item)
        marker, _, text = " ".join(item.split()).partition(" ")
        first = re.split(r"(?<=\.)\s+(?=[A-Z])", text)[0]
        out.append(lead.group(1) if lead else f"{marker} {first}")
    return "\n".join(out)


def page_slides(path: Path) -> list[nbformat.NotebookNode]:
    """A markdown page as slides: one per ``#``/``##`` section, its heading and lists (each item's bold lead, or
    its first sentence) on the slide, the whole text in the notes.

    Args:
        path: the page.
    Returns:
        New cells with slide metadata.
    """
    out = []
    for section in re.split(r"(?m)^(?=#{1,2} )", path.read_text()):
        if not section.strip():
            continue
        shown, notes = [], []
        for block in re.split(r"\n\s*\n", plain_markdown(section)):
            first = block.lstrip()
            if first.startswith("#"):
                shown.append(block)
                continue
            notes.append(block)
            if first.startswith(("- ", "* ", "|")) or re.match(r"\d+\. ", first):
                shown.append(_leads(block))
        out += [_md("\n\n".join(shown), "slide")] + _notes(notes)
    return out


def _kind_title(row: workshop.Row) -> str:
    if row.slot.kind == "fixed":                       # "Welcome; everyone ..." -> "Welcome"
        return re.split(r"[;:,(]", row.slot.what)[0].strip()
    titles = {"paper": "Reading the paper", "demo": "Demo", "chapter": "Your turn: a chapter",
              "exercises": "Your turn: exercises", "break": "Break"}
    return titles[row.slot.kind]


def _slot_slide(row: workshop.Row) -> nbformat.NotebookNode:
    start, end = workshop._hmm(row.start), workshop._hmm(row.start + row.minutes)
    what = plain_markdown(workshop.describe(row, workshop.plain_name, "the one-page guide"))
    return _md(f"## {_kind_title(row)} · {start}-{end} ({row.minutes} min)\n\n{what}", "slide")


def _plan_slide(plan: workshop.Plan, rows: list[workshop.Row]) -> nbformat.NotebookNode:
    lines = ["| time | min | what |", "|---|---:|---|"]
    for r in rows:
        chapters = ", ".join(workshop.plain_name(c) for c in r.slot.chapters)
        lines.append(f"| {workshop._hmm(r.start)}-{workshop._hmm(r.start + r.minutes)} | {r.minutes} | "
                     f"{_kind_title(r)}{': ' + chapters if chapters else ''} |")
    return _md(f"## {plan.title}\n\n" + "\n".join(lines), "slide")


def slot_deck(plan: workshop.Plan, index: int, rows: list[workshop.Row],
              root: Path = ROOT) -> nbformat.NotebookNode:
    """The deck of one slot of a plan.

    Args:
        plan: the session plan.
        index: the slot's position in the plan.
        rows: the plan's rows (``workshop.plan_rows``).
        root: the repository root (chapters in ``notebooks/``, pages in ``book/``).
    Returns:
        A new notebook with slide metadata on every cell.
    """
    row = rows[index]
    nb = nbformat.v4.new_notebook()
    nb.metadata["title"] = f"{plan.title}: {_kind_title(row)}, {workshop._hmm(row.start)}"
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    if index == 0:
        nb.cells += [_md(f"# VGG from Scratch\n\n{plan.intro}", "slide"), _plan_slide(plan, rows)]
    nb.cells.append(_slot_slide(row))
    if row.slot.kind == "paper":
        nb.cells += page_slides(root / f"{workshop.PAPER_PAGE}.md")
    elif row.slot.kind == "demo":
        for stem in row.slot.chapters:
            nb.cells += chapter_slides(root / "notebooks" / f"{stem}.ipynb")
    seen: set[str] = set()
    for cell in nb.cells:                   # the chapters' cell ids must stay unique in the merged notebook
        while cell.get("id") in seen or not cell.get("id"):
            cell["id"] = nbformat.v4.new_markdown_cell().id
        seen.add(cell["id"])
    return nb


def count_slides(nb: nbformat.NotebookNode) -> int:
    """The slides of a deck notebook (cells that start a slide or a subslide)."""
    return sum(c.metadata.get("slideshow", {}).get("slide_type") in ("slide", "subslide") for c in nb.cells)


def deck_name(plan: workshop.Plan, index: int) -> str:
    """A slot deck's path under the output folder, e.g. ``90-minutes/03-demo.slides.html``."""
    return f"{plan.key}/{index + 1:02d}-{plan.slots[index].kind}.slides.html"


def export(nb: nbformat.NotebookNode, target: Path, work: Path, reveal_prefix: str = REVEAL_DIR) -> Path:
    """Convert a deck notebook to reveal.js HTML, as ``jupyter nbconvert --to slides`` does.

    Args:
        nb: the deck notebook.
        target: the HTML file to write (``<name>.slides.html``).
        work: a scratch folder (the template is written there).
        reveal_prefix: the path from the deck to the reveal.js copy.
    Returns:
        ``target``.
    """
    from nbconvert import SlidesExporter
    from traitlets.config import Config

    template = work / "vgg_deck.html.j2"
    template.write_text(TEMPLATE)
    c = Config()
    c.SlidesExporter.reveal_url_prefix = reveal_prefix
    c.SlidesExporter.reveal_theme = "white"
    c.SlidesExporter.reveal_number = "c/t"
    c.SlidesExporter.reveal_width = "1280"
    c.SlidesExporter.reveal_height = "800"
    c.SlidesExporter.exclude_input_prompt = True
    c.SlidesExporter.exclude_output_prompt = True
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_cell_tags = set(SKIP_TAGS)
    c.TagRemovePreprocessor.remove_input_tags = {"slides-hide-input"}
    c.TagRemovePreprocessor.remove_all_outputs_tags = {"remove-output"}
    exporter = SlidesExporter(config=c, template_file=str(template))
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": nb.metadata.get("title", "")}})
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(target)                     # atomic: a reader never sees half a deck
    return target


def _index(decks: list[tuple[workshop.Plan, workshop.Row, str, int, int]], out: Path) -> Path:
    parts, current = [], None
    for plan, row, name, n, budget in decks:
        if plan is not current:
            if current is not None:
                parts.append("</table>")
            parts.append(f"<h2>{html.escape(plan.title)}</h2>\n<table><tr><th>time</th><th>min</th>"
                         "<th>deck</th><th>slides</th></tr>")
            current = plan
        when = f"{workshop._hmm(row.start)}-{workshop._hmm(row.start + row.minutes)}"
        label = html.escape(_kind_title(row) + (": " + ", ".join(workshop.plain_name(c) for c in row.slot.chapters)
                                                if row.slot.chapters else ""))
        parts.append(f'<tr><td>{when}</td><td>{row.minutes}</td><td><a href="{name}">{label}</a></td>'
                     f"<td>{n} of at most {budget}</td></tr>")
    parts.append("</table>")
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>VGG from Scratch: "
            "workshop slides</title></head>\n<body><h1>VGG from Scratch: workshop slides</h1>\n"
            "<p>One deck per slot of each session plan (the instructor guide's tables). Press <kbd>s</kbd> in a "
            "deck for the speaker notes.</p>\n" + "\n".join(parts) +
            "\n<p>Built by <code>make slides</code> (tools/slides.py) from the chapters.</p></body></html>\n")
    (out / "index.html").write_text(page, encoding="utf-8")
    return out / "index.html"


def build(out: Path = OUT, keys: list[str] | None = None, data: dict[str, Any] | None = None,
          root: Path = ROOT) -> list[Path]:
    """Build the slot decks of the chosen plans into ``out``, with a local reveal.js and an index page.

    Args:
        out: the output folder.
        keys: plan keys (default: every plan).
        data: the timings data (default: ``book/_data/notebook_timings.json``).
        root: the repository root.
    Returns:
        The decks written.
    Raises:
        SystemExit: for an unknown plan, or a deck with more slides than its slot's budget.
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
    written, listed = [], []
    with tempfile.TemporaryDirectory(prefix="vgg-slides-") as work:
        for plan in chosen:
            rows = workshop.plan_rows(plan, data)
            for index, row in enumerate(rows):
                nb = slot_deck(plan, index, rows, root)
                n, budget = count_slides(nb), slide_budget(row)
                if n > budget:
                    raise SystemExit(f"{deck_name(plan, index)}: {n} slides for a {row.minutes}-minute "
                                     f"{row.slot.kind} slot (at most {budget}): tag fewer cells 'slide'")
                written.append(export(nb, out / deck_name(plan, index), Path(work), f"../{REVEAL_DIR}"))
                listed.append((plan, row, deck_name(plan, index), n, budget))
                print(f"wrote {written[-1].relative_to(out)} ({n} slides of at most {budget})")
    _index(listed, out)
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
                    help=f"build only this plan's decks (repeatable): {', '.join(p.key for p in workshop.PLANS)}")
    args = ap.parse_args(argv)
    build(args.out, args.plans)
    return 0


if __name__ == "__main__":
    sys.exit(main())
