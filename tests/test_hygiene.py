"""Notebook hygiene: every chapter is in the book, was run top to bottom once, has no unexpected error, carries
its generated Colab badge and setup cell, and tags its exercise solutions so student copies can hide them."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import yaml

from tools import student_copies, sync_notebooks, time_notebooks

ROOT = Path(__file__).resolve().parents[1]

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MIN_SOLUTIONS = 2


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code"]


def execution_problems(nb: nbformat.NotebookNode) -> list[str]:
    """Problems with the execution counts: non-empty code cells must be numbered 1, 2, ..., n in order.

    Args:
        nb: a notebook.
    Returns:
        One message per problem (empty when it was run once, top to bottom, in a fresh kernel).
    """
    problems = []
    expected = 1
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if not cell.source.strip():  # nbclient and Jupyter do not execute empty cells
            if cell.get("outputs"):
                problems.append(f"cell {i}: empty cell with outputs")
            continue
        if cell.execution_count != expected:
            problems.append(f"cell {i}: execution_count {cell.execution_count}, expected {expected}")
            expected = (cell.execution_count or expected) + 1
        else:
            expected += 1
    return problems


def error_cells(nb: nbformat.NotebookNode) -> list[str]:
    """Cells with an error output that are not tagged ``raises-exception``.

    Args:
        nb: a notebook.
    Returns:
        ``"cell i: ErrorName"`` for each.
    """
    bad = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or "raises-exception" in _tags(cell):
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                bad.append(f"cell {i}: {out.get('ename')}: {out.get('evalue', '')[:200]}")
    return bad


def test_hygiene_checks_can_fail():
    """The checks above catch a re-run cell, a cell run out of order and an untagged error."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("a = 1", execution_count=1),
                nbformat.v4.new_code_cell("b = 2", execution_count=3),
                nbformat.v4.new_code_cell("", execution_count=None),
                nbformat.v4.new_code_cell("1/0", execution_count=4, outputs=[
                    nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero",
                                           traceback=[])])]
    assert execution_problems(nb) == ["cell 1: execution_count 3, expected 2"]
    assert error_cells(nb) == ["cell 3: ZeroDivisionError: division by zero"]
    nb.cells[3].metadata["tags"] = ["raises-exception"]
    assert error_cells(nb) == []
    nb.cells[1].execution_count = 2
    nb.cells[3].execution_count = 3
    assert execution_problems(nb) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_in_the_toc(path: Path):
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = {c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])}
    assert f"notebooks/{path.stem}" in files, f"{path.name} is missing from _toc.yml"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_run_once_top_to_bottom(path: Path):
    nb = _read(path)
    problems = execution_problems(nb)
    assert not problems, (f"{path.name} was not run once, top to bottom, in a fresh kernel "
                          f"(re-run it: jupyter nbconvert --to notebook --execute --inplace {path.name}):\n"
                          + "\n".join(problems))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_unexpected_errors(path: Path):
    bad = error_cells(_read(path))
    assert not bad, f"{path.name}: error outputs in cells not tagged raises-exception:\n" + "\n".join(bad)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_badge_and_setup_cell(path: Path):
    """Same logic as ``python tools/sync_notebooks.py --check``."""
    nb = _read(path)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.lstrip().startswith("# "), \
        f"{path.name}: the first cell must be markdown starting with '# N. Title'"
    assert sync_notebooks.badge(path) in first.source, \
        f"{path.name}: no (or a stale) Colab badge: run python tools/sync_notebooks.py"
    code = _code_cells(nb)
    assert code, f"{path.name} has no code cell"
    assert "setup" in _tags(code[0]), f"{path.name}: the first code cell must be tagged 'setup'"
    assert code[0].source == sync_notebooks.setup_source(), \
        f"{path.name}: the setup cell is out of date: run python tools/sync_notebooks.py"
    assert sync_notebooks.main(["--check", str(path)]) == 0


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_solutions_are_tagged(path: Path):
    nb = _read(path)
    solutions = [c for c in nb.cells if student_copies.is_solution(c)]
    assert len(solutions) >= MIN_SOLUTIONS, (
        f"{path.name}: {len(solutions)} code cell(s) tagged 'solution'; every chapter needs at least "
        f"{MIN_SOLUTIONS} exercises whose solution cells are tagged ['solution', 'hide-cell']")
    for cell in solutions:
        assert "hide-cell" in _tags(cell), f"{path.name}: a solution cell is not tagged hide-cell:\n{cell.source[:200]}"
        assert cell.source.strip(), f"{path.name}: an empty solution cell"
    hidden_only = [c for c in nb.cells if c.cell_type == "code" and "hide-cell" in _tags(c)
                   and "solution" not in _tags(c) and "exercise" in c.source.lower()[:200]]
    assert not hidden_only, f"{path.name}: a hidden exercise cell is not tagged 'solution':\n{hidden_only[0].source[:200]}"


def test_readme_and_package_docstring_name_every_module_and_folder():
    import vgg_helpers

    import vgg_helpers.book as harness

    readme = (ROOT / "README.md").read_text()
    package = ROOT / "vgg_helpers"
    modules = sorted(p.stem for p in package.glob("*.py") if p.stem != "__init__")
    modules += sorted(p.parent.name for p in package.glob("*/__init__.py") if p.parent.name != "book")
    missing = [m for m in modules if f"| `{m}` |" not in readme or f"``{m}``" not in vgg_helpers.__doc__]
    assert not missing, f"describe these modules in README.md's table and vgg_helpers/__init__.py: {missing}"
    harness_modules = sorted(p.stem for p in (package / "book").glob("*.py") if p.stem != "__init__")
    missing = [m for m in harness_modules if f"| `book.{m}` |" not in readme or f"``{m}``" not in harness.__doc__]
    assert not missing, f"describe these harness modules in README.md and vgg_helpers/book/__init__.py: {missing}"
    import subprocess

    tracked = subprocess.run(["git", "ls-files"], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    folders = sorted({line.split("/")[0] for line in tracked.splitlines() if "/" in line} - {".ci"})
    unnamed = [f for f in folders if f"`{f}/`" not in readme]
    assert not unnamed, f"README.md's layout table does not describe these folders: {unnamed}"


MACHINE_PATH = re.compile(r"(/work/|/tmp/|/home/|/root/|/Users/|[A-Z]:\\\\)")
PAGE_COLUMNS = 88                    # what the rendered book's content column shows without scrolling


def machine_paths(nb: nbformat.NotebookNode) -> list[str]:
    """Outputs that show a path of the machine the notebook ran on (the book must not)."""
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            text = out.get("text", "") + "".join(str(v) for k, v in out.get("data", {}).items()
                                                 if k.startswith("text/"))
            match = MACHINE_PATH.search(text)
            if match:
                found.append(f"cell {i}: ...{text[max(0, match.start() - 40):match.end() + 40]}...")
    return found


def test_machine_path_check_can_fail():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print(path)", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="saved to /tmp/vgg-scaling-x/run\n")])]
    assert len(machine_paths(nb)) == 1
    nb.cells[0].outputs[0].text = "saved to the run folder\n"
    assert machine_paths(nb) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_show_no_machine_paths(path: Path):
    found = machine_paths(_read(path))
    assert not found, f"{path.name}: outputs show paths of the machine it ran on:\n" + "\n".join(found)


def too_wide(nb: nbformat.NotebookNode, columns: int = PAGE_COLUMNS) -> list[str]:
    """Code lines and printed output lines wider than the rendered page.

    Error tracebacks (expected errors, tagged ``raises-exception``) are left out: the book shows them in a
    scrolling box, and their messages are one long line by nature.

    Args:
        nb: a notebook.
        columns: the page width.
    Returns:
        One line per offender, naming the cell.
    """
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        found += [f"cell {i} code: {line}" for line in cell.source.splitlines() if len(line) > columns]
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                text = out.get("text", "")
            elif out.get("output_type") in ("execute_result", "display_data"):
                text = "" if "text/html" in out.get("data", {}) or "image/png" in out.get("data", {}) \
                    else str(out.get("data", {}).get("text/plain", ""))
            else:
                continue
            found += [f"cell {i} output: {line}" for line in text.splitlines() if len(line) > columns]
    return found


def test_page_width_check_can_fail():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1  " + "#" * 90, outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="ok\n" + "-" * 89 + "\n"),
        nbformat.v4.new_output("error", ename="ValueError", evalue="v" * 200, traceback=["t" * 200])])]
    assert [line.split(":")[0] for line in too_wide(nb)] == ["cell 0 code", "cell 0 output"]
    nb.cells[0].source = "x = 1"
    nb.cells[0].outputs = nb.cells[0].outputs[2:]
    assert too_wide(nb) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_code_and_output_fit_the_rendered_page(path: Path):
    long = too_wide(_read(path))
    assert not long, f"{path.name}: lines over {PAGE_COLUMNS} columns:\n" + "\n".join(long)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_solution_is_folded_in_the_book_and_in_colab(path: Path):
    for cell in (c for c in _read(path).cells if student_copies.is_solution(c)):
        first = cell.source.split("\n", 1)[0]
        assert first == sync_notebooks.SOLUTION_TITLE and cell.metadata.get("cellView") == "form" \
            and "hide-cell" in _tags(cell), (
                f"{path.name}: a solution cell is not a collapsed form cell (first line "
                f"{sync_notebooks.SOLUTION_TITLE!r}, metadata cellView: form, tag hide-cell); run "
                f"python tools/sync_notebooks.py:\n{cell.source[:200]}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_has_a_level_and_a_time(path: Path):
    """The labels are parsed where the chapter times are computed (tools/time_notebooks.exercises)."""
    labelled, unlabelled = time_notebooks.exercises(_read(path))
    assert len(labelled) + len(unlabelled) >= MIN_SOLUTIONS, \
        f"{path.name}: {len(labelled) + len(unlabelled)} exercise admonition(s)"
    assert not unlabelled, (f"{path.name}: exercise titles must end with '(easy|medium|hard · M min)': "
                            f"{unlabelled}")
    numbers = [e["number"] for e in labelled]
    assert numbers == list(range(1, len(numbers) + 1)), \
        f"{path.name}: exercises are not numbered 1, 2, ...: {numbers}"


SELF_CHECK_ANSWER = "<details><summary>Answer</summary>"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_chapter_has_self_check_questions_with_hidden_answers(path: Path):
    cells = [c.source for c in _read(path).cells
             if c.cell_type == "markdown" and c.source.lstrip().startswith("## Self-check")]
    assert len(cells) == 1, f"{path.name}: expected one markdown cell starting '## Self-check'"
    text = cells[0]
    questions = re.findall(r"^\*\*(\d+)\.\*\*", text, flags=re.M)
    answers = text.count(SELF_CHECK_ANSWER)
    assert 2 <= len(questions) <= 4 and answers == len(questions) == text.count("</details>"), (
        f"{path.name}: a self-check needs 2-4 questions '**N.** ...', each followed by a hidden answer "
        f"'{SELF_CHECK_ANSWER} ... </details>'; found {len(questions)} questions, {answers} answers")
    assert questions == [str(i) for i in range(1, len(questions) + 1)]


# ---- a chapter is a book's page, not a lab notebook ----
MAX_WORDS = 4500          # prose words of a chapter (time_notebooks.reading_stats)
MAX_READING_MINUTES = 40  # by the book's own rule (time_notebooks.READING_RULE)

# What belongs on a chapter's "how these numbers were made" page (book/how-made/), never on the chapter itself:
# environment variables, store switches, benchmark and record commands, test tolerances, notes to teachers,
# lab-diary asides and nbval's markers.
MAINTAINER_MATERIAL = {
    "an environment variable": re.compile(r"\bVGG_[A-Z_]+"),
    "a store switch": re.compile(r"\bstore\s*=|\bSTORE\w*\b|USE_STORED|SAVE_REFERENCE"),
    "a benchmark command or path": re.compile(r"python -m bench\b|(?<![\w-])bench/"),
    "a record command": re.compile(r"vgg_helpers\.book\.record|python -m [\w.]*record\b"),
    "a test tolerance": re.compile(r"\btests? (?:allows?|accepts?|tolerates?)\b|\btests?' tolerances?\b|"
                                   r"\btest tolerances?\b", re.I),
    "a note to teachers": re.compile(r"instructor guide|for the instructor", re.I),
    "a lab-diary aside": re.compile(r"\bdiscard", re.I),
    "an nbval marker": re.compile(r"NBVAL_"),
}


def _cell_texts(cell: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """``(where, text)`` for a cell's source and each of its text outputs."""
    texts = [("source", cell.source)]
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            texts.append(("output", out.get("text", "")))
        elif out.get("output_type") in ("execute_result", "display_data"):
            texts.append(("output", str(out.get("data", {}).get("text/plain", ""))))
    return texts


def maintainer_material(nb: nbformat.NotebookNode) -> list[str]:
    """Maintainer material on a chapter's page: one line per find (the setup cell is exempt: folded, generated)."""
    found = []
    for i, cell in enumerate(nb.cells):
        if "setup" in _tags(cell):
            continue
        for where, text in _cell_texts(cell):
            for what, pattern in MAINTAINER_MATERIAL.items():
                for m in pattern.finditer(text):
                    found.append(f"cell {i} {where}: {what}: ...{text[max(0, m.start() - 40):m.end() + 40]}...")
    return found


def test_maintainer_material_check_can_fail():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("Run `python -m bench.throughput` (the tests allow 0.3 points)."),
                nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nruns = fix_runs(data, store=STORE)", outputs=[
                    nbformat.v4.new_output("stream", name="stdout", text="set VGG_BOOK_USE_STORED=0\n")])]
    found = "\n".join(maintainer_material(nb))
    for what in ("a benchmark command", "a test tolerance", "an nbval marker", "a store switch",
                 "an environment variable"):
        assert what in found, found
    nb.cells = [nbformat.v4.new_markdown_cell("The stored runs of the book; a benchmark of the data path."),
                nbformat.v4.new_code_cell("runs = fix_runs(data, BUDGET)")]
    assert maintainer_material(nb) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_maintainer_material_on_the_page(path: Path):
    found = maintainer_material(_read(path))
    assert not found, (f"{path.name}: maintainer material belongs on the chapter's page under book/how-made/:\n"
                       + "\n".join(found))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_setup_cell_is_folded_and_says_one_line(path: Path):
    setup = _code_cells(_read(path))[0]
    assert {"setup", "hide-input"} <= set(_tags(setup)), f"{path.name}: the setup cell must be tagged hide-input"
    assert not [o for o in setup.outputs if o.get("output_type") == "execute_result"], \
        f"{path.name}: the setup cell echoes a value"
    printed = "".join(o.get("text", "") for o in setup.outputs if o.get("output_type") == "stream")
    lines = printed.splitlines()
    assert len(lines) == 1 and all(k in lines[0] for k in ("device:", "budget:", "data:")), \
        f"{path.name}: the setup cell should print one line (device, budget, data); it printed {lines}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_check_markers_are_tags_not_comments(path: Path):
    nb = _read(path)
    commented = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "# NBVAL" in c.source]
    assert not commented, f"{path.name}: cells {commented} carry an nbval comment; tag them nbval-check-output"
    assert any("nbval-check-output" in _tags(c) for c in nb.cells), \
        f"{path.name}: no cell's output is checked (tag a deterministic one nbval-check-output)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_length(path: Path):
    stats = time_notebooks.reading_stats(_read(path))
    assert stats["words"] <= MAX_WORDS and stats["minutes"] <= MAX_READING_MINUTES, \
        (f"{path.name}: {stats['words']} words of prose and {stats['minutes']} reading minutes "
         f"({time_notebooks.READING_RULE}); a chapter stays within {MAX_WORDS} words and {MAX_READING_MINUTES} "
         "minutes: move records to its page under book/how-made/, cut repetition")


def test_every_training_chapter_links_its_how_made_page():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    for part in toc["parts"]:
        for chapter in part.get("chapters", []):
            for section in chapter.get("sections", []):
                page = ROOT / f"{section['file']}.md"
                assert page.is_file(), f"_toc.yml lists {section['file']} but there is no such page"
                if not chapter["file"].startswith("notebooks/"):
                    continue
                text = "\n".join(c.source for c in _read(ROOT / f"{chapter['file']}.ipynb").cells
                                 if c.cell_type == "markdown")
                link = section["file"].removeprefix("book/")
                assert f"../book/{link}" in text, f"{chapter['file']} does not link its page {section['file']}"
                assert page.read_text().startswith("# How these numbers were made"), page
